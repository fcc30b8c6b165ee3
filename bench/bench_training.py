"""Benchmark a training step and its input pipeline, as a table: how much of the 2 cores training uses.

    python bench/bench_training.py [--steps 60] [--rounds 3]      # MNIST from $MNIST_DIR, else the slice

Three ways through the same batches of train.py's pipeline (MNIST and the style set's slice, augmented),
taking turns in each round so that all see the same machine:
- input only: the tf.data pipeline (shuffle, batch, warp, stroke width) with no model;
- model only: the training step on batches the pipeline made beforehand;
- training: both at once, as model.fit runs them in train.py.
Cores used is the process's CPU time over the wall time. Training's cost over the model's alone is what the
input pipeline takes from the step (the two share the two cores).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.support.paths import MNIST_SLICE, STYLE_SLICE  # noqa: E402
from training.data import load_mnist  # noqa: E402
from training.model import build_model  # noqa: E402
from training.styles import load_style_set  # noqa: E402
from training.train import TrainConfig, make_datasets  # noqa: E402


def timed(run) -> tuple[float, float]:
    """Wall seconds and cores used (CPU seconds over wall seconds) of run()."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall = time.perf_counter() - wall
    return wall, (time.process_time() - cpu) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    mnist = load_mnist(os.environ.get("MNIST_DIR") or MNIST_SLICE)
    styles = load_style_set(STYLE_SLICE)["training"]
    config = TrainConfig()
    train, _, _, _ = make_datasets(mnist, styles, config)
    train = train.repeat()
    made = list(train.take(args.steps))  # the model-only way trains on these
    made = tf.data.Dataset.from_tensor_slices(tuple(tf.stack(part) for part in zip(*made, strict=True)))
    model = build_model(config.dropout)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=False)
    model.fit(train.take(5), verbose=0)  # trace once

    ways = {
        "input only": lambda: [None for _ in train.take(args.steps)],
        "model only": lambda: model.fit(made, verbose=0),
        "training": lambda: model.fit(train.take(args.steps), verbose=0),
    }
    results = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, run in ways.items():
            results[name].append(timed(run))

    model_ms = statistics.median(wall for wall, _ in results["model only"]) / args.steps * 1000
    print(f"\n{args.steps} steps of {config.batch_size} images, median of {args.rounds} rounds, "
          f"{os.cpu_count()} cores, MNIST from {mnist.source}\n")
    print("| way | ms per step | images/s | cores used | vs model only |")
    print("| --- | --- | --- | --- | --- |")
    for name, runs in results.items():
        ms = statistics.median(wall for wall, _ in runs) / args.steps * 1000
        cores = statistics.median(used for _, used in runs)
        print(f"| {name} | {ms:.1f} | {config.batch_size / ms * 1000:.0f} | {cores:.2f} | {ms / model_ms:.2f} |")
    print(f"\nKeras {keras.__version__}, TensorFlow {tf.__version__}, "
          f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}")


if __name__ == "__main__":
    main()
