"""Benchmark a training step and its input pipeline, as a table: what each part costs, before and now.

    python -m bench.bench_training [--steps 60] [--rounds 3]      # MNIST from $MNIST_DIR, else the slice

The same batches of the training's pipeline (training/fit.py: MNIST and the style set's slice, augmented) go
three ways, each as training runs it now and as it ran before its two speed-ups, taking turns in each round so
that all see the same machine:
- input only: the tf.data pipeline (shuffle, batch, warp, stroke width) with no model; before, the warp
  read its pixels with keras.ops.image.map_coordinates;
- model only: the training step on batches the pipeline made beforehand; before, with Keras' own batch
  norm instead of training.model.FusedBatchNormalization;
- training: both at once, as model.fit runs them.
Cores used is the process's CPU time over the wall time.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from tests.support.paths import MNIST_SLICE, STYLE_SLICE  # noqa: E402
from training import model as training_model  # noqa: E402
from training.data import load_mnist  # noqa: E402
from training.fit import make_datasets  # noqa: E402
from training.model import FusedBatchNormalization, build_model  # noqa: E402
from training.recipe import DigitsConfig  # noqa: E402
from training.styles import load_style_set  # noqa: E402


def keras_bilinear(images, y, x):
    """The warp's read before: Keras' map_coordinates, given the batch index as a first coordinate."""
    batch_index = tf.broadcast_to(tf.cast(tf.range(tf.shape(images)[0]), tf.float32)[:, None, None], tf.shape(x))
    return keras.ops.image.map_coordinates(images, tf.stack([batch_index, y, x]), order=1)


def input_pipeline(mnist, styles, config: DigitsConfig, read=None):
    """The training's batches, endless; read replaces the warp's bilinear read while they are traced."""
    own, training_model.bilinear = training_model.bilinear, read or training_model.bilinear
    try:
        return make_datasets(mnist, [styles], config)[0].repeat()
    finally:
        training_model.bilinear = own


def compiled_model(config: DigitsConfig, batch_norm, batches):
    model = build_model(config.dropout, batch_norm)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=False)
    model.fit(batches.take(5), verbose=0)  # trace once
    return model


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
    config = DigitsConfig()
    train, train_before = input_pipeline(mnist, styles, config), input_pipeline(mnist, styles, config, keras_bilinear)
    made = list(train.take(args.steps))  # the model-only ways train on these
    made = tf.data.Dataset.from_tensor_slices(tuple(tf.stack(part) for part in zip(*made, strict=True)))
    model = compiled_model(config, FusedBatchNormalization, train)
    model_before = compiled_model(config, keras.layers.BatchNormalization, train)

    ways = {
        "input only, before (Keras' map_coordinates)": lambda: [None for _ in train_before.take(args.steps)],
        "input only": lambda: [None for _ in train.take(args.steps)],
        "model only, before (Keras' batch norm)": lambda: model_before.fit(made, verbose=0),
        "model only": lambda: model.fit(made, verbose=0),
        "training, before": lambda: model_before.fit(train_before.take(args.steps), verbose=0),
        "training": lambda: model.fit(train.take(args.steps), verbose=0),
    }
    results = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, run in ways.items():
            results[name].append(timed(run))

    before_ms = statistics.median(wall for wall, _ in results["training, before"]) / args.steps * 1000
    print(f"\n{args.steps} steps of {config.batch_size} images, median of {args.rounds} rounds, "
          f"{os.cpu_count()} cores, MNIST from {mnist.source}\n")
    print("| way | ms per step | images/s | cores used | vs training before |")
    print("| --- | --- | --- | --- | --- |")
    for name, runs in results.items():
        ms = statistics.median(wall for wall, _ in runs) / args.steps * 1000
        cores = statistics.median(used for _, used in runs)
        print(f"| {name} | {ms:.1f} | {config.batch_size / ms * 1000:.0f} | {cores:.2f} | {ms / before_ms:.2f} |")
    print(f"\nKeras {keras.__version__}, TensorFlow {tf.__version__}, "
          f"intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}")


if __name__ == "__main__":
    main()
