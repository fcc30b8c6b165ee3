"""What drawing costs the server: the real Sketchpad in headless Chromium, stroke by stroke, as a table.

    python -m bench.bench_browser [--digits 12] [--idle-seconds 10]

Starts `python -m app` (each request logged) and draws digits with the mouse, with the browser test's
drawing code (tests/support/browser.py): a "1", a "7" and a "0", one stroke each, in turn; each is read,
then cleared. Measures the server's CPU time per stroke above its idle rate (from /proc, idle measured
first with the page open), the requests each stroke makes the browser send (from the server's log), and
the time from lifting the mouse to the answer showing on the page (polled at every animation frame).
Clearing is measured apart. Needs Chromium, as the browser tests do.
"""

import argparse
import collections
import datetime
import statistics
import tempfile
import time
from pathlib import Path

from tests.support.browser import ONE, SEVEN, ZERO, chromium, clear_canvas, draw, expect_empty, open_app
from tests.support.process import cpu_seconds
from tests.support.server import logged_requests, run_app, stop_app
from tests.support.table import markdown_table

DIGITS = [("1", ONE), ("7", SEVEN), ("0", ZERO)]
SHOWS = "(digit) => document.querySelector('[data-testid=label-output-value]')?.textContent === digit"


def idle_rate(pid: int, seconds: float) -> float:
    """The server's CPU seconds per second with the page open and nobody drawing."""
    before, started = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.perf_counter() - started)


def first_image_sent(requests: list[dict]) -> float:
    """When the first request carrying the stroke's images reached the server (epoch seconds)."""
    images = [entry for entry in requests if entry["path"].startswith("/gradio_api/component_server")]
    ended = datetime.datetime.fromisoformat(images[0]["time"]).timestamp()
    return ended - images[0]["ms"] / 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digits", type=int, default=12)
    parser.add_argument("--idle-seconds", type=float, default=10)
    args = parser.parse_args()

    strokes, clears = [], []
    with tempfile.TemporaryDirectory() as workdir, chromium() as browser:
        server, url = run_app(Path(workdir), LOG_LEVEL="info")
        try:
            with open_app(browser, url) as page:
                draw(page, ONE)  # warm-up: the first reading loads the model's kernels and the page's assets
                page.wait_for_function(SHOWS, arg="1", polling="raf")
                clear_canvas(page)
                expect_empty(page)
                idle = idle_rate(server.pid, args.idle_seconds)
                for index in range(args.digits):
                    digit, stroke = DIGITS[index % len(DIGITS)]
                    logged, cpu, started = len(logged_requests(server)), cpu_seconds(server.pid), time.perf_counter()
                    draw(page, stroke)
                    lifted, lifted_at = time.perf_counter(), time.time()
                    page.wait_for_function(SHOWS, arg=digit, polling="raf")
                    answered = time.perf_counter()
                    page.wait_for_timeout(1000)  # whatever the page sends late is counted too
                    seconds = time.perf_counter() - started
                    requests = logged_requests(server)[logged:]
                    sent = collections.Counter(entry["path"].removesuffix("/") for entry in requests)
                    strokes.append({"cpu": cpu_seconds(server.pid) - cpu - idle * seconds, "sent": sent,
                                    "latency": answered - lifted, "browser": first_image_sent(requests) - lifted_at})
                    logged, cpu, started = len(logged_requests(server)), cpu_seconds(server.pid), time.perf_counter()
                    clear_canvas(page)
                    expect_empty(page)
                    page.wait_for_timeout(1000)
                    clears.append(cpu_seconds(server.pid) - cpu - idle * (time.perf_counter() - started))
        finally:
            stop_app(server)

    ms = lambda seconds: f"{seconds * 1e3:.0f} ms"  # noqa: E731
    per_stroke = lambda path: statistics.mean(s["sent"][path] for s in strokes)  # noqa: E731
    cpu = [s["cpu"] for s in strokes]
    latency = [s["latency"] for s in strokes]
    print(f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; {args.digits} strokes, each drawn, "
          "read and cleared, in headless Chromium (software rendering)\n")
    print(markdown_table(["figure", "measured", "target"], [
        ("server CPU per stroke above idle, median (mean)",
         f"{ms(statistics.median(cpu))} ({ms(statistics.mean(cpu))})", "<= 30 ms"),
        ("server CPU per clear above idle, median", ms(statistics.median(clears)), ""),
        ("uploads (POST /gradio_api/upload) per stroke", f"{per_stroke('/gradio_api/upload'):.1f}", "0"),
        ("images sent to the Sketchpad (component_server) per stroke",
         f"{per_stroke('/gradio_api/component_server'):.1f}", ""),
        ("readings asked (queue/join) per stroke", f"{per_stroke('/gradio_api/queue/join'):.1f}", "1"),
        ("mouse lifted to the answer shown, median (max)", f"{ms(statistics.median(latency))} ({ms(max(latency))})",
         "~200 ms"),
        ("of which the browser, until its images reach the server, median",
         ms(statistics.median(s["browser"] for s in strokes)), ""),
        ("server idle CPU with the page open", f"{idle * 1e3:.1f} ms/s", "report"),
    ]))


if __name__ == "__main__":
    main()
