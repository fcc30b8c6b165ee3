"""What a correction costs next to a prediction, and how the cost grows with the store, as a table.

    python -m bench.bench_feedback [--requests 100] [--filled 9000] [--rounds 3]

Starts `python -m app` with an empty corrections folder and one holding `--filled` corrections (the cap
is counted by listing the folder at each correction), and sends the same drawn canvases, one at a time:
`POST /predict`, then `POST /feedback` to each server. The rounds take turns, so that all see the same
slow and fast moments of this noisy machine; the ratios to `POST /predict` are what holds.
"""

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from app.corrections import encode, new_correction
from tests.support.drawing import drawn_canvases
from tests.support.server import run_app, stop_app
from tests.support.table import markdown_table


def timed_posts(url: str, path: str, canvases: list[tuple[bytes, str]]) -> list[float]:
    """Milliseconds per request, one at a time on one connection."""
    times = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for png, digit in canvases:
            started = time.perf_counter()
            response = client.post(path, params={"digit": digit} if path == "/feedback" else None,
                                   files={"file": ("digit.png", png, "image/png")})
            times.append((time.perf_counter() - started) * 1e3)
            assert response.status_code in (200, 201), response.text
    return times


def fill(folder: Path, count: int) -> None:
    """`count` corrections, written straight (keeping each through CorrectionsStore would list the folder each time)."""
    folder.mkdir(parents=True)
    data = encode(new_correction(np.zeros((28, 28), np.uint8), 3, 0, 0.5, "0" * 64))
    for index in range(count):
        (folder / f"20260101T000000{index:06d}Z-3-{uuid.uuid4().hex}.png").write_bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100, help="requests of each kind per round")
    parser.add_argument("--filled", type=int, default=9000, help="corrections already in the full folder")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    canvases = drawn_canvases(args.requests)
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as tmp:
        tmp = Path(tmp)
        (tmp / "empty").mkdir()
        (tmp / "filled").mkdir()
        fill(tmp / "filled" / "feedback", args.filled)
        empty, empty_url = run_app(tmp / "empty", FEEDBACK_MAX_RECORDS=str(10**9))
        filled, filled_url = run_app(tmp / "filled", FEEDBACK_MAX_RECORDS=str(10**9))
        try:
            runs = {"POST /predict": [], "POST /feedback, empty store": [],
                    f"POST /feedback, {args.filled:,} corrections": []}
            for _ in range(args.rounds):
                runs["POST /predict"] += timed_posts(empty_url, "/predict", canvases)
                runs["POST /feedback, empty store"] += timed_posts(empty_url, "/feedback", canvases)
                runs[f"POST /feedback, {args.filled:,} corrections"] += timed_posts(filled_url, "/feedback", canvases)
        finally:
            stop_app(empty)
            stop_app(filled)
    baseline = statistics.median(runs["POST /predict"])
    print(f"{args.rounds} rounds of {args.requests} requests each, one at a time\n")
    rows = [(name, f"{statistics.median(times):.1f}", f"{statistics.quantiles(times, n=10)[-1]:.1f}",
             f"{statistics.median(times) / baseline:.2f}") for name, times in runs.items()]
    print(markdown_table(["request", "median ms", "p90 ms", "median / POST /predict"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
