"""Benchmark the running app through its Gradio HTTP API, as a table.

    python bench/bench_app.py [--requests 300] [--concurrency 16]

Starts `python -m app` on a free port and measures: process start to /health answering 200; one
prediction (upload the canvas, call `predict`, read the result from the event stream) at
concurrency 1, over raw HTTP and through gradio_client; the server's CPU time per prediction at
concurrency 16 (its /proc CPU time before and after); its resident memory after the load.
Inputs are what the Sketchpad sends from Chromium: 800x800 opaque RGBA PNG canvases, encoded as
the browser encodes them, each with one MNIST test digit drawn in black at a random size and place.
"""

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.drawing import browser_png, draw_digit  # noqa: E402
from training.data import load_mnist  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def drawn_canvases(count: int, seed: int = 0) -> list[tuple[bytes, str]]:
    """`count` (PNG, digit) pairs: MNIST test digits drawn as Chromium's Sketchpad sends them."""
    mnist = load_mnist(REPO / "tests" / "data" / "mnist")
    rng = np.random.default_rng(seed)
    indices = [i % len(mnist.x_test) for i in range(count)]
    return [(browser_png(draw_digit(mnist.x_test[i], rng)), str(mnist.y_test[i])) for i in indices]


def start_server(port: int, command: list[str] | None = None) -> tuple[subprocess.Popen, float]:
    """Start the app (`python -m app` unless told otherwise) with its default settings; return it and
    the seconds from process start to /health answering 200."""
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1"}
    started = time.perf_counter()
    server = subprocess.Popen(command or [sys.executable, "-m", "app"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # logs: as a collector takes them
    while time.perf_counter() - started < 60:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server, time.perf_counter() - started
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"the app exited with status {server.returncode}")
        time.sleep(0.02)
    server.kill()
    raise RuntimeError("the app did not answer /health within 60 s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def predict_http(client: httpx.AsyncClient, png: bytes) -> dict:
    """One prediction over Gradio's HTTP API: upload, call, then the result from the event stream."""
    upload = await client.post("/gradio_api/upload", files={"files": ("canvas.png", png, "image/png")})
    path = upload.json()[0]
    sketch = {"background": None, "layers": [], "composite": {"path": path, "meta": {"_type": "gradio.FileData"}}}
    call = await client.post("/gradio_api/call/predict", json={"data": [sketch]})
    event_id = call.json()["event_id"]
    event = None
    async with client.stream("GET", f"/gradio_api/call/predict/{event_id}") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "error":
                    raise RuntimeError(f"prediction failed: {line}")
                return {"data": line[5:].strip()}
    raise RuntimeError("the event stream ended without a result")


async def latencies(base: str, canvases: list[bytes], concurrency: int) -> list[float]:
    """Seconds per prediction, `concurrency` at a time, over all canvases."""
    queue = list(canvases)
    times: list[float] = []
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        async def worker():
            while queue:
                png = queue.pop()
                started = time.perf_counter()
                await predict_http(client, png)
                times.append(time.perf_counter() - started)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times


def gradio_client_latencies(base: str, paths: list[Path]) -> list[float]:
    from gradio_client import Client, handle_file

    client = Client(base, verbose=False, analytics_enabled=False)
    times = []
    for path in paths:
        started = time.perf_counter()
        client.predict({"background": None, "layers": [], "composite": handle_file(str(path))}, api_name="/predict")
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_app"))
    args = parser.parse_args()

    canvases = [png for png, _ in drawn_canvases(args.requests)]
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, png in enumerate(canvases[:50]):
        paths.append(args.workdir / f"canvas{i}.png")
        paths[-1].write_bytes(png)

    port = free_port()
    server, start_seconds = start_server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(latencies(base, canvases[:20], 1))  # warm-up
        single = asyncio.run(latencies(base, canvases, 1))
        client_single = gradio_client_latencies(base, paths)
        cpu_before = cpu_seconds(server.pid)
        wall = time.perf_counter()
        loaded = asyncio.run(latencies(base, canvases * 2, args.concurrency))
        wall = time.perf_counter() - wall
        cpu_per_prediction = (cpu_seconds(server.pid) - cpu_before) / len(loaded)
        rss = resident_mb(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)

    ms = lambda seconds: f"{seconds * 1e3:.1f} ms"  # noqa: E731
    rows = [
        ("one prediction over HTTP (upload, call, result), p50, concurrency 1", ms(statistics.median(single)),
         "<= 20 ms"),
        ("the same, p90", ms(statistics.quantiles(single, n=10)[8]), ""),
        ("the same through gradio_client, p50", ms(statistics.median(client_single)), ""),
        (f"server CPU time per prediction, concurrency {args.concurrency}", ms(cpu_per_prediction), "<= 10 ms"),
        (f"p50 / p99 latency at concurrency {args.concurrency}",
         f"{ms(statistics.median(loaded))} / {ms(statistics.quantiles(loaded, n=100)[98])}", ""),
        (f"throughput at concurrency {args.concurrency}", f"{len(loaded) / wall:.0f} predictions/s", ""),
        ("resident memory of the server after the load", f"{rss:.0f} MB", "<= 250 MB"),
        ("process start to /health answering 200", f"{start_seconds:.2f} s", "<= 4 s"),
    ]
    print("| figure | measured | target |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
