"""How long the contact sheet of the corrections waiting for review takes to make, as a table.

    python -m bench.bench_review [--corrections 500 2000 10000] [--rounds 3]

Fills a temporary corrections folder with `--corrections` corrections (the MNIST slice's pictures, each shifted a
little so that none repeats; digits, answers, probabilities and times drawn at random over a week) and runs
`python -m training.review FOLDER` on it, as a person does: the seconds include Python's start-up.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from app.corrections import Correction, encode
from tests.support.paths import MNIST_SLICE, REPO
from tests.support.table import markdown_table
from training.data import load_mnist


def fill(folder: Path, count: int) -> None:
    """`count` corrections, written straight (keeping each through CorrectionsStore would list the folder each time)."""
    mnist = load_mnist(MNIST_SLICE)
    pictures = np.concatenate([mnist.x_train, mnist.x_test])
    labels = np.concatenate([mnist.y_train, mnist.y_test])
    rng = np.random.default_rng(0)
    start = datetime(2026, 11, 23, tzinfo=UTC)
    folder.mkdir()
    for index in range(count):
        shift = divmod(index // len(pictures), 5)  # 25 shifts of each picture: none repeats below 15,000
        picture = np.roll(pictures[index % len(pictures)], (shift[0] % 5 - 2, shift[1] - 2), axis=(0, 1))
        sent = start + timedelta(seconds=float(rng.uniform(0, 7 * 86400)))
        correction = Correction(picture, int(labels[index % len(labels)]), int(rng.integers(10)),
                                float(rng.uniform(0.3, 1.0)), "0" * 64, sent.isoformat(timespec="milliseconds"))
        (folder / f"{sent:%Y%m%dT%H%M%S%fZ}-{correction.meant}-{uuid.uuid4().hex}.png").write_bytes(encode(correction))


def time_sheet(folder: Path, out: Path) -> float:
    """Seconds for `python -m training.review` to make the sheet."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "training.review", str(folder), "--out", str(out)], cwd=REPO, check=True,
                   capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corrections", type=int, nargs="+", default=[500, 2000, 10_000],
                        help="corrections waiting, one folder each (10,000: the app's default cap)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-review-") as tmp:
        for count in args.corrections:
            folder, out = Path(tmp) / f"feedback-{count}", Path(tmp) / f"review-{count}.html"
            fill(folder, count)
            seconds = statistics.median(time_sheet(folder, out) for _ in range(args.rounds))
            rows.append((f"{count:,}", f"{seconds:.2f}", f"{out.stat().st_size / 2**20:.1f} MB",
                         "<= 5 s" if count == 500 else ""))
    print(f"median of {args.rounds} runs of `python -m training.review FOLDER`, start-up included\n")
    print(markdown_table(["corrections waiting", "seconds to make the sheet", "sheet size", "target"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
