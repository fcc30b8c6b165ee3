"""Load test: many concurrent clients through the Gradio HTTP API on loopback, as a table.

    python -m bench.bench_load [--clients 32] [--predictions 10000] [--seconds 600] [--canvases 200]

Starts `python -m app` on a free port. `--clients` clients each loop over one prediction at a time (upload
the canvas, call `predict`, read the result from the event stream: tests/support/load.py, which
tests/test_load.py runs too) until `--predictions` have been made or `--seconds` have passed. The canvases
are a fixed set of MNIST test digits drawn as Chromium's Sketchpad sends them (tests/support/drawing.py), so
each answer can be checked. Measured: errors (an HTTP error or any event other than `complete`), wrong
digits, latency p50/p90/p99/max, throughput, the server's CPU time per prediction, and its resident memory
sampled every 1,000 predictions: the first half of the run is the warm-up, over the second half it must stay
flat. The load generator shares the machine with the server: its own CPU per prediction is shown too, and
the load average around the run.
"""

import argparse
import asyncio
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.config import Settings
from tests.support.drawing import drawn_canvases
from tests.support.load import RSS_EVERY, latencies, load
from tests.support.process import cpu_seconds
from tests.support.server import run_app, stop_app
from tests.support.table import markdown_table

P99_TARGET_MS = 2000  # at 32 clients on the 2-core CI machine; see docs/benchmarks.md
RSS_GROWTH_TARGET_MB = 20  # over the second half of the run: the first half is the warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--predictions", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=600, help="stop earlier than --predictions after this")
    parser.add_argument("--canvases", type=int, default=200, help="distinct canvases (MNIST test digits)")
    args = parser.parse_args()

    canvases = drawn_canvases(args.canvases)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as workdir:
        server, base = run_app(Path(workdir), LOG_LEVEL=Settings.log_level)  # logging as by default: it costs
        try:
            asyncio.run(latencies(base, [png for png, _ in canvases[:50]], 4))  # warm-up, not counted
            cpu_before, own_before = cpu_seconds(server.pid), resource.getrusage(resource.RUSAGE_SELF)
            wall = time.perf_counter()
            run = asyncio.run(load(base, canvases, args.clients, args.predictions, args.seconds, server.pid))
            wall = time.perf_counter() - wall
            server_cpu = cpu_seconds(server.pid) - cpu_before
            own = resource.getrusage(resource.RUSAGE_SELF)
            own_cpu = own.ru_utime + own.ru_stime - own_before.ru_utime - own_before.ru_stime
            health = httpx.get(f"{base}/health", timeout=10).status_code
        finally:
            stop_app(server)
    load_after = os.getloadavg()[0]

    times, errors, rss = run["times"], sum(run["errors"].values()), run["rss"]
    made = len(times) + errors
    percentile = lambda p: statistics.quantiles(times, n=100, method="inclusive")[p - 1]  # noqa: E731
    ms = lambda seconds: f"{seconds * 1e3:.0f} ms"  # noqa: E731
    p99 = percentile(99)
    halfway = (len(rss) - 1) // 2  # the sample taken half-way through the run
    growth = rss[-1] - rss[halfway] if len(rss) > 1 else float("nan")
    missed = lambda ok: "" if ok else " (**missed**)"  # noqa: E731
    rows = [
        ("concurrent clients, each one prediction at a time", str(args.clients), ""),
        ("predictions made (upload, call, event stream)", f"{made:,} in {wall:.0f} s", ""),
        ("errors (HTTP error or an event other than `complete`)", str(errors), "0" + missed(errors == 0)),
        ("answers that are not a valid Label value", str(run["invalid"]), "0" + missed(run["invalid"] == 0)),
        ("wrong digits", f"{run['wrong']} ({run['wrong'] / max(len(times), 1):.2%})",
         "≤ 2 %" + missed(run["wrong"] <= 0.02 * len(times))),
        ("latency p50 / p90 / p99 / max",
         f"{ms(percentile(50))} / {ms(percentile(90))} / {ms(p99)} / {ms(max(times))}",
         f"p99 ≤ {P99_TARGET_MS} ms at {args.clients} clients" + missed(p99 * 1e3 <= P99_TARGET_MS)),
        ("throughput", f"{len(times) / wall:.0f} predictions/s", ""),
        ("server CPU time per prediction", ms(server_cpu / made) if made else "-", ""),
        ("load generator's CPU time per prediction (same machine)", ms(own_cpu / made) if made else "-", ""),
        (f"server resident memory every {RSS_EVERY:,} predictions", ", ".join(f"{mb:.0f}" for mb in rss) + " MB",
         ""),
        (f"its growth over the second half ({(halfway + 1) * RSS_EVERY:,} predictions to the end)", f"{growth:+.0f} MB",
         f"≤ {RSS_GROWTH_TARGET_MB} MB" + missed(growth <= RSS_GROWTH_TARGET_MB)),
        ("/health after the load", str(health), "200" + missed(health == 200)),
        ("process start to /health answering 200", f"{server.ready_seconds:.2f} s", ""),
        (f"load average (1 min) before / after, {os.cpu_count()} cores", f"{load_before:.2f} / {load_after:.2f}", ""),
    ]
    print(markdown_table(["figure", "measured", "target"], rows))
    for message, times_seen in run["errors"].most_common(5):
        print(f"\nerror x{times_seen}: {message}")


if __name__ == "__main__":
    main()
