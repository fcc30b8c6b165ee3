"""Benchmark the shipped LiteRT model: file size, load time and forward-pass latency, as a table.

    python -m bench.bench_model [--model app/model] [--model OTHER_MODEL_DIR] [--repeats 2000]

Times Classifier.predict (the app's runtime: contract checks, lock, invoke) on real MNIST test
images from the repository's slice, one thread, after a warm-up. With several --model, a column each, timed
in turns (three rounds, the median kept), so that the machine's noise falls on all alike.
"""

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from app.classifier import Classifier
from app.contract import TFLITE_FILE
from tests.support.paths import MNIST_SLICE, MODEL_DIR
from tests.support.table import markdown_table
from training.data import load_mnist, to_model_input


def time_predict(classifier: Classifier, batch, repeats: int) -> list[float]:
    """Seconds per predict() call, after a warm-up that allocates the tensors for this batch size."""
    for _ in range(20):
        classifier.predict(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        classifier.predict(batch)
        times.append(time.perf_counter() - started)
    return times


def figures(classifier: Classifier, images, repeats: int) -> list[float]:
    """Milliseconds: batch 1 p50 and p99, then per image in batches of 16 and 200."""
    single = time_predict(classifier, images[:1], repeats)
    found = [statistics.median(single) * 1e3, statistics.quantiles(single, n=100)[98] * 1e3]
    for size in (16, 200):
        found.append(statistics.median(time_predict(classifier, images[:size], max(repeats // size, 20))) / size * 1e3)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, action="append", help=f"a model folder (repeat; default: {MODEL_DIR})")
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()
    folders = args.model or [MODEL_DIR]

    images = to_model_input(load_mnist(MNIST_SLICE).x_test)
    classifiers, load_ms = [], []
    for folder in folders:
        started = time.perf_counter()
        classifiers.append(Classifier(folder / TFLITE_FILE))
        load_ms.append((time.perf_counter() - started) * 1e3)
    rounds = [[figures(classifier, images, args.repeats) for classifier in classifiers] for _ in range(3)]
    timed = np.median(np.array(rounds), axis=0)  # [model, figure]

    names = ["forward pass, batch 1, p50", "forward pass, batch 1, p99", "forward pass, batch 16, per image",
             "forward pass, batch 200, per image"]
    targets = ["<= 0.5 ms", "", "", ""]
    rows = [("model.tflite size", *(f"{(folder / TFLITE_FILE).stat().st_size / 2**20:.2f} MB" for folder in folders),
             "<= 3 MB"),
            ("interpreter load", *(f"{ms:.1f} ms" for ms in load_ms), "")]
    rows += [(name, *(f"{value:.3f} ms" for value in timed[:, index]), target)
             for index, (name, target) in enumerate(zip(names, targets, strict=True))]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak resident memory (process, all models)", f"{peak_mb:.0f} MB", *[""] * len(folders)))
    print(markdown_table(["figure", *(str(folder) for folder in folders), "target"], rows))


if __name__ == "__main__":
    main()
