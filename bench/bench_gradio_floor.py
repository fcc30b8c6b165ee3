"""Gradio's own cost per prediction: the app's UI and API with a `predict` that does nothing.

    python -m bench.bench_gradio_floor [--requests 300] [--concurrency 16]

Same canvases, same three HTTP requests (upload, call, event stream) and the same measurements as
bench_app.py, but the function returns an empty answer at once: what is left is Gradio, FastAPI and
uvicorn. Subtract it from bench_app.py's figures to see what the preprocessing and the model cost.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

from app.config import Settings
from tests.support.drawing import drawn_canvases
from tests.support.load import latencies
from tests.support.process import cpu_seconds
from tests.support.server import run_app, stop_app


def serve() -> int:
    """`python -m app` itself, settings and logging included, with a predict that does nothing."""
    import app.__main__
    import app.ui

    app.ui.predict = lambda reader, sketch, request_id=None: (None, None, "")
    return app.__main__.main()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sys.exit(serve())

    canvases = [png for png, _ in drawn_canvases(args.requests)]
    with tempfile.TemporaryDirectory(prefix="bench-gradio-floor-") as workdir:
        command = ("-m", "bench.bench_gradio_floor", "--serve")
        server, base = run_app(Path(workdir), command, LOG_LEVEL=Settings.log_level)
        try:
            asyncio.run(latencies(base, canvases[:20], 1))  # warm-up
            single = asyncio.run(latencies(base, canvases, 1))
            cpu_before = cpu_seconds(server.pid)
            loaded = asyncio.run(latencies(base, canvases * 2, args.concurrency))
            cpu_per_prediction = (cpu_seconds(server.pid) - cpu_before) / len(loaded)
        finally:
            stop_app(server)
    print("| figure (predict does nothing) | measured |\n| --- | --- |")
    p50 = statistics.median(single) * 1e3
    print(f"| one prediction over HTTP (upload, call, result), p50, concurrency 1 | {p50:.1f} ms |")
    print(f"| server CPU time per prediction, concurrency {args.concurrency} | {cpu_per_prediction * 1e3:.1f} ms |")


if __name__ == "__main__":
    main()
