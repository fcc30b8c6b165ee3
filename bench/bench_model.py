"""Benchmark the shipped LiteRT model: file size, load time and forward-pass latency, as a table.

    python bench/bench_model.py [--model app/model] [--repeats 2000]

Times Classifier.predict (the app's runtime: contract checks, lock, invoke) on real MNIST test
images from the repository's slice, one thread, after a warm-up.
"""

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.classifier import Classifier  # noqa: E402
from app.contract import TFLITE_FILE  # noqa: E402
from tests.support.paths import MNIST_SLICE, MODEL_DIR  # noqa: E402
from tests.support.table import markdown_table  # noqa: E402
from training.data import load_mnist, to_model_input  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=MODEL_DIR)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()

    images = to_model_input(load_mnist(MNIST_SLICE).x_test)
    started = time.perf_counter()
    classifier = Classifier(args.model / TFLITE_FILE)
    load_ms = (time.perf_counter() - started) * 1e3

    rows = [("model.tflite size", f"{(args.model / TFLITE_FILE).stat().st_size / 2**20:.2f} MB", "<= 2 MB"),
            ("interpreter load", f"{load_ms:.1f} ms", "")]
    single = time_predict(classifier, images[:1], args.repeats)
    quantiles = statistics.quantiles(single, n=100)
    rows += [("forward pass, batch 1, p50", f"{statistics.median(single) * 1e3:.3f} ms", "<= 0.5 ms"),
             ("forward pass, batch 1, p99", f"{quantiles[98] * 1e3:.3f} ms", "")]
    for size in (16, 200):
        times = time_predict(classifier, images[:size], max(args.repeats // size, 20))
        rows.append((f"forward pass, batch {size}, per image", f"{statistics.median(times) / size * 1e3:.3f} ms", ""))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak resident memory (process)", f"{peak_mb:.0f} MB", ""))

    print(markdown_table(["figure", "measured", "target"], rows))


if __name__ == "__main__":
    main()
