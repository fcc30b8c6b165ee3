"""Benchmark the preprocessing of browser canvases, as a table.

    python -m bench.bench_preprocess [--canvases 200] [--rounds 5]

Inputs: the canvas Chromium's Sketchpad sent (tests/data/browser_composite.png), and MNIST test digits from
the repository's slice drawn on 800x800 canvases at random sizes and places, encoded as Chromium encodes
them; and real writers' digits (tests/data/handwriting/) drawn 15-20 % of the canvas high, whose strokes the
preprocessing thins. Times app.preprocess.preprocess per canvas, one thread, with and without its stroke-width
step, and the PNG decoding on its own by libspng (what the app uses) and by Pillow, taking turns in each round
so that both see the same machine.
"""

import argparse
import io
import statistics
import time

import numpy as np
import pyspng
from PIL import Image

from app import preprocess as preprocessing
from app.preprocess import preprocess
from tests.support.drawing import browser_png, drawn_canvases
from tests.support.paths import BROWSER_COMPOSITE, HANDWRITING_SLICE
from tests.support.table import markdown_table
from training.strokes import draw_lines, read_digits, screen_lines


def seconds_each(function, inputs: list, rounds: int) -> list[float]:
    """Seconds per call of function(input), over all inputs, `rounds` times, after one warm-up pass."""
    for item in inputs[:10]:
        function(item)
    times = []
    for _ in range(rounds):
        for item in inputs:
            started = time.perf_counter()
            function(item)
            times.append(time.perf_counter() - started)
    return times


def small_writers(count: int) -> list[bytes]:
    """`count` real writers' digits drawn 15-20 % of the canvas high, as Chromium encodes the canvas."""
    rng = np.random.default_rng(0)
    samples = [sample for sample in read_digits(HANDWRITING_SLICE) if sum(map(len, sample["strokes"])) > 4]
    return [browser_png(draw_lines(screen_lines(sample["strokes"]), rng.uniform(0.15, 0.2), rng))
            for sample in samples[:count]]


def with_and_without_stroke_width(canvases: list, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds per preprocess, with the stroke-width step and with it left out, taking turns."""
    mended, as_drawn = [], []
    keep = preprocessing.even_strokes
    for _ in range(rounds):
        mended += seconds_each(preprocess, canvases, 1)
        preprocessing.even_strokes = lambda crop: crop
        try:
            as_drawn += seconds_each(preprocess, canvases, 1)
        finally:
            preprocessing.even_strokes = keep
    return mended, as_drawn


def decode_with_pillow(png: bytes):
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--canvases", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    canvases = [png for png, _ in drawn_canvases(args.canvases)]
    chromium_canvas = [BROWSER_COMPOSITE.read_bytes()] * 50

    real = seconds_each(preprocess, chromium_canvas, args.rounds * 4)
    drawn, drawn_as_is = with_and_without_stroke_width(canvases, args.rounds)
    small, small_as_is = with_and_without_stroke_width(small_writers(args.canvases), args.rounds)
    libspng, pillow = [], []
    for _ in range(args.rounds):
        libspng += seconds_each(pyspng.load, canvases, 1)
        pillow += seconds_each(decode_with_pillow, canvases, 1)

    ms = lambda seconds: f"{seconds * 1e3:.2f} ms"  # noqa: E731
    rows = [
        ("preprocess the canvas Chromium sent, p50", ms(statistics.median(real)), "<= 3 ms"),
        (f"preprocess {args.canvases} drawn 800x800 canvases, p50 / p90",
         f"{ms(statistics.median(drawn))} / {ms(statistics.quantiles(drawn, n=10)[8])}", ""),
        ("the same without the stroke-width step, p50", ms(statistics.median(drawn_as_is)), ""),
        (f"preprocess {min(args.canvases, 250)} real writers' digits drawn 15-20 % high (strokes thinned), p50 / "
         "without the step", f"{ms(statistics.median(small))} / {ms(statistics.median(small_as_is))}", ""),
        ("decode one canvas PNG: libspng (pyspng) / Pillow, p50",
         f"{ms(statistics.median(libspng))} / {ms(statistics.median(pillow))} "
         f"(1/{statistics.median(pillow) / statistics.median(libspng):.1f})", ""),
    ]
    print(markdown_table(["figure", "measured", "target"], rows))


if __name__ == "__main__":
    main()
