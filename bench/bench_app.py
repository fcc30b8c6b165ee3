"""Benchmark the app against a baseline built like the system it replaces, in one run, as a table.

    python -m bench.bench_app [--requests 300] [--concurrency 16] [--rounds 5] [--idle-seconds 5]

Starts `python -m app` and the baseline (bench/baseline_app.py: FastAPI calling Keras `model.predict`
per request on app/model/model.keras, the canvas sent as a base64 PNG data URL in JSON) on free ports,
and measures both:
- the app's `POST /predict` (the canvas as the multipart field `file`) and the baseline's, at
  concurrency 1 (latency), then twice as many at `--concurrency` (the server's CPU time per prediction,
  from /proc);
- the app's Gradio API (upload the canvas, call `predict`, read the event stream), raw HTTP and
  gradio_client, against the baseline's `POST /predict`, which is all the baseline has;
- each server's CPU time with no client, resident memory after the load, start to /health 200.
The machine is noisy: the loads run in `--rounds` rounds, each taking its turn on the app and the
baseline, so that both see the same slow and fast moments. The load generator shares the machine.
Inputs are what Chromium sends from an HTML canvas: 800x800 opaque RGBA PNGs, encoded as the browser
encodes them, each with one MNIST test digit drawn in black at a random size and place.
"""

import argparse
import asyncio
import base64
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import httpx

from app.config import Settings
from tests.support.drawing import drawn_canvases
from tests.support.gradio_api import predict_async, sketch
from tests.support.load import latencies
from tests.support.process import cpu_seconds, resident_mb, thread_count
from tests.support.server import run_app, stop_app


async def predict_rest(client: httpx.AsyncClient, png: bytes) -> str | None:
    """The app's POST /predict, the canvas as a form's file field (`curl -F file=@canvas.png`); the digit read."""
    response = await client.post("/predict", files={"file": ("canvas.png", png, "image/png")})
    response.raise_for_status()
    return response.json()["digit"]


async def predict_baseline(client: httpx.AsyncClient, data_url: str) -> str:
    """The baseline's POST /predict: JSON {"image": "data:image/png;base64,..."}, as canvas.toDataURL() gives."""
    response = await client.post("/predict", json={"image": data_url})
    response.raise_for_status()
    return response.json()["digit"]


def gradio_client_latencies(base: str, paths: list[Path]) -> list[float]:
    from gradio_client import Client

    client = Client(base, verbose=False, analytics_enabled=False)
    times = []
    for path in paths:
        started = time.perf_counter()
        client.predict(sketch(path), api_name="/predict")
        times.append(time.perf_counter() - started)
    client.close()
    return times


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}"


def ratio(app: float, baseline: float) -> str:
    """app / baseline, as "1/N" when the app is below the baseline."""
    if not baseline or not app:
        return "—"
    return f"1/{baseline / app:.1f}" if app < baseline else f"{app / baseline:.1f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300,
                        help="predictions per server and API at concurrency 1; twice as many under load")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="turns each load is split into")
    parser.add_argument("--idle-seconds", type=float, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench_app"))
    args = parser.parse_args()

    drawn = drawn_canvases(args.requests)
    canvases = [png for png, _ in drawn]
    data_urls = ["data:image/png;base64," + base64.b64encode(png).decode() for png in canvases]
    truth = dict(drawn) | dict(zip(data_urls, (digit for _, digit in drawn), strict=True))
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, png in enumerate(canvases[:50]):
        paths.append(args.workdir / f"canvas{i}.png")
        paths[-1].write_bytes(png)

    app, app_url = run_app(args.workdir / "app", LOG_LEVEL=Settings.log_level)  # logging as by default: it costs
    baseline = None
    try:
        baseline_command = ("-m", "bench.baseline_app", "--port", "{port}")
        baseline, base_url = run_app(args.workdir / "baseline", baseline_command)
        # Each load: (server process, URL, call, inputs). Rounds alternate between them.
        loads = {"rest": (app, app_url, predict_rest, canvases), "gradio": (app, app_url, predict_async, canvases),
                 "baseline": (baseline, base_url, predict_baseline, data_urls)}
        for _, url, call, inputs in loads.values():  # warm-up, not counted: the baseline traces its predict here
            asyncio.run(latencies(url, inputs[:20], 1, call))

        time.sleep(1)
        idle_before = {name: cpu_seconds(server.pid) for name, server in (("app", app), ("baseline", baseline))}
        time.sleep(args.idle_seconds)
        idle = {name: (cpu_seconds(server.pid) - idle_before[name]) / args.idle_seconds
                for name, server in (("app", app), ("baseline", baseline))}

        single = {name: [] for name in loads}
        answers = {name: [] for name in loads}
        for round_ in range(args.rounds):
            for name, (_, url, call, inputs) in loads.items():
                chunk = inputs[round_::args.rounds]
                single[name] += asyncio.run(latencies(url, chunk, 1, call, answers[name]))
        client_single = gradio_client_latencies(app_url, paths)

        loaded = {name: [] for name in loads}
        cpu = dict.fromkeys(loads, 0.0)
        wall = dict.fromkeys(loads, 0.0)
        for round_ in range(args.rounds):
            for name, (server, url, call, inputs) in loads.items():
                chunk = inputs[round_::args.rounds] * 2
                cpu_before, started = cpu_seconds(server.pid), time.perf_counter()
                loaded[name] += asyncio.run(latencies(url, chunk, args.concurrency, call))
                wall[name] += time.perf_counter() - started
                cpu[name] += cpu_seconds(server.pid) - cpu_before
        rss = {"app": resident_mb(app.pid), "baseline": resident_mb(baseline.pid)}
        threads = {"app": thread_count(app.pid), "baseline": thread_count(baseline.pid)}
    finally:
        for server in (app, baseline):
            if server is not None:
                stop_app(server)

    right = {name: sum(answer == truth[canvas] for canvas, answer in answers[name]) / len(answers[name])
             for name in ("rest", "baseline")}
    cpu_per = {name: cpu[name] / len(loaded[name]) for name in loads}
    rate = {name: len(loaded[name]) / wall[name] for name in loads}
    p50 = {name: statistics.median(times) for name, times in single.items()}
    p90 = {name: statistics.quantiles(times, n=10)[8] for name, times in single.items()}
    c_p50 = {name: statistics.median(times) for name, times in loaded.items()}
    c_p99 = {name: statistics.quantiles(times, n=100)[98] for name, times in loaded.items()}

    ms = lambda seconds: f"{seconds * 1e3:.1f} ms"  # noqa: E731
    per_s = lambda rate: f"{rate:.0f} /s"  # noqa: E731
    c = args.concurrency
    rows = [  # figure, this app, baseline, format, target, missed
        (f"`POST /predict`: server CPU per prediction, concurrency {c}", cpu_per["rest"], cpu_per["baseline"], ms,
         "≤ 1/15", cpu_per["rest"] > cpu_per["baseline"] / 15),
        ("`POST /predict`: p50 latency, concurrency 1", p50["rest"], p50["baseline"], ms,
         "≤ 1/8", p50["rest"] > p50["baseline"] / 8),
        ("`POST /predict`: p90 latency, concurrency 1", p90["rest"], p90["baseline"], ms, "", False),
        (f"`POST /predict`: p50 latency, concurrency {c}", c_p50["rest"], c_p50["baseline"], ms, "", False),
        (f"`POST /predict`: p99 latency, concurrency {c}", c_p99["rest"], c_p99["baseline"], ms, "", False),
        (f"`POST /predict`: throughput, concurrency {c}", rate["rest"], rate["baseline"], per_s, "", False),
        ("`POST /predict`: digits read right", right["rest"], right["baseline"], lambda f: f"{f:.0%}", "", False),
        (f"Gradio API¹: server CPU per prediction, concurrency {c}", cpu_per["gradio"], cpu_per["baseline"], ms,
         "≤ 1/5", cpu_per["gradio"] > cpu_per["baseline"] / 5),
        ("Gradio API¹: p50 latency, concurrency 1", p50["gradio"], p50["baseline"], ms, "", False),
        ("Gradio API¹: p90 latency, concurrency 1", p90["gradio"], p90["baseline"], ms, "", False),
        (f"Gradio API¹: p50 latency, concurrency {c}", c_p50["gradio"], c_p50["baseline"], ms, "", False),
        (f"Gradio API¹: p99 latency, concurrency {c}", c_p99["gradio"], c_p99["baseline"], ms, "", False),
        (f"Gradio API¹: throughput, concurrency {c}", rate["gradio"], rate["baseline"], per_s, "", False),
        ("gradio_client: p50 latency, concurrency 1", statistics.median(client_single), None, ms, "", False),
        (f"idle server CPU (no client, over {args.idle_seconds:g} s)", idle["app"], idle["baseline"],
         lambda s: f"{s * 1e3:.1f} ms/s", "report", False),
        ("resident memory after the load", rss["app"], rss["baseline"], lambda mb: f"{mb:.0f} MB",
         "≤ 250 MB", rss["app"] > 250),
        ("process start to /health 200", app.ready_seconds, baseline.ready_seconds, lambda s: f"{s:.2f} s",
         "≤ 3 s", app.ready_seconds > 3),
        ("threads after the load", threads["app"], threads["baseline"], str, "", False),
    ]

    print(f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"machine: {machine()}")
    print(f"requests per server and API: {args.requests} at concurrency 1, {2 * args.requests} at concurrency {c},"
          f" in {args.rounds} alternating rounds\n")
    print("| figure | this app | baseline | ratio | target |\n| --- | --- | --- | --- | --- |")
    for figure, ours, theirs, fmt, target, missed in rows:
        shown = "—" if theirs is None else fmt(theirs)
        print(f"| {figure} | {fmt(ours)} | {shown} | {ratio(ours, theirs)} | {target}{' (**missed**)' * missed} |")
    print("\n¹ upload the canvas, call `predict`, read the event stream; its baseline is the baseline's"
          " `POST /predict`, the only API the baseline has.")


if __name__ == "__main__":
    main()
