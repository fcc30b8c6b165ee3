"""Gradio's own cost per prediction: the app's UI and API with a `predict` that does nothing.

    python bench/bench_gradio_floor.py [--requests 300] [--concurrency 16]

Same canvases, same three HTTP requests (upload, call, event stream) and the same measurements as
bench_app.py, but the function returns an empty answer at once: what is left is Gradio, FastAPI and
uvicorn. Subtract it from bench_app.py's figures to see what the preprocessing and the model cost.
"""

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

import httpx
import numpy as np
from bench_app import REPO, cpu_seconds, free_port, latencies


def serve(port: int) -> None:
    """Run the app with a no-op predict (in the child process)."""
    sys.path.insert(0, str(REPO))
    import uvicorn

    import app.ui
    from app.logs import configure_logging
    from app.server import create_app

    app.ui.predict = lambda classifier, metrics, sketch, request_id=None: (None, {"seen": None, "message": ""})
    configure_logging("info")  # as python -m app does by default
    uvicorn.run(create_app(), host="127.0.0.1", port=port, log_config=None, access_log=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)

    from tests.drawing import browser_png, draw_digit
    from training.data import load_mnist

    mnist = load_mnist(REPO / "tests" / "data" / "mnist")
    rng = np.random.default_rng(0)
    canvases = [browser_png(draw_digit(mnist.x_test[i % len(mnist.x_test)], rng)) for i in range(args.requests)]
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        asyncio.run(latencies(base, canvases[:20], 1))  # warm-up
        single = asyncio.run(latencies(base, canvases, 1))
        cpu_before = cpu_seconds(server.pid)
        loaded = asyncio.run(latencies(base, canvases * 2, args.concurrency))
        cpu_per_prediction = (cpu_seconds(server.pid) - cpu_before) / len(loaded)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("| figure (predict does nothing) | measured |\n| --- | --- |")
    p50 = statistics.median(single) * 1e3
    print(f"| one prediction over HTTP (upload, call, result), p50, concurrency 1 | {p50:.1f} ms |")
    print(f"| server CPU time per prediction, concurrency {args.concurrency} | {cpu_per_prediction * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
