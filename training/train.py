"""Train the digit CNN on MNIST and write the model folder the app serves.

    python -m training.train --data ../shared/data/mnist --writers ../shared/data/handwriting \
        --out digits-model                       # the digits network: ~27 min on 2 CPU cores
    python -m training.train --data ../shared/data/mnist --writers ../shared/data/handwriting \
        --negatives ../shared/data/handwriting --keep-digits digits-model \
        --out app/model                          # joined to a "not a digit" detector, as shipped: ~19 min
    python -m training.train --data tests/data/mnist --out /tmp/model --epochs 1  # seconds
    python -m training.train ... --feedback feedback                              # with corrections

MNIST's training images are mixed with the training split of the style set (training/styles.py: stroke
templates and handwriting fonts of many school styles), with --writers the real writers' (training/strokes.py),
with --negatives drawings that are no digit, labelled "not a digit" (training/negatives.py), and with --feedback
the training split of the users' corrections a person accepted (python -m training.review;
training.data.load_corrections), and with --feedback-unreviewed those still waiting for review too. Writes into
--out: model.keras, model.tflite (float32, for LiteRT), metadata.json (metrics, checksums, hyperparameters,
versions), training_curves.png and a confusion matrix per measured set (MNIST's test set, the style set's
held-out fonts and templates, the real writers kept out). With --feedback, metadata.json also holds how many
records were read (accepted, unreviewed) and the accuracy on those kept out of training.
The "not a digit" output is then lowered until at most --max-refused of MNIST's held-out training images are
refused (training/calibrate.py). The metrics are those of model.tflite, the file the app serves.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the log

import keras
import numpy as np
import tensorflow as tf

from app.contract import CLASS_NAMES, KERAS_FILE, LEGACY_CLASSES, METADATA_FILE, NUM_CLASSES, TFLITE_FILE
from training.calibrate import calibrate
from training.data import Mnist, load_corrections, load_mnist, to_model_input
from training.evaluate import (
    REFUSALS_PICTURE,
    classification_metrics,
    evaluate,
    feedback_counts,
    plot_refusals,
    plot_training_curves,
    validation_sets,
    write_plots,
)
from training.export import write_metadata, write_model_files
from training.model import (
    Augmentation,
    FusedBatchNormalization,
    build_augmenter,
    build_model,
    digit_outputs,
    keep_digits,
    parts,
    plain_copy,
)
from training.negatives import CREDIT as NEGATIVES_CREDIT
from training.negatives import NEGATIVES_FILE, load_negatives
from training.strokes import CREDIT, WRITERS_FILE, load_writers
from training.styles import STYLE_SET_FILE, build_style_set, load_style_set
from training.tracking import log_epoch, log_figures, log_folder, log_params, tracked_run


@dataclass
class TrainConfig:
    epochs: int = 24  # MNIST, the style set and the real writers: about 85,000 images an epoch (negatives: +30,000)
    batch_size: int = 128
    learning_rate: float = 2e-3  # peak, reached after the warm-up, then cosine decay to 0
    warmup_epochs: int = 1
    dropout: float = 0.4
    validation_images: int = 5000  # held out of the 60,000 training images for the curves and the refusal cap
    max_refused: float = 0.0005  # of those held out, at most this share refused (training/calibrate.py): MNIST test
    # accuracy >= 99.6 %, counting a refusal as an error, leaves the shipped digits about 6 of its 10,000 to refuse
    seed: int = 42
    augmentation: Augmentation = field(default_factory=Augmentation)


# --keep-digits: the detector is fine-tuned from the digits network, so it needs fewer epochs at a lower rate
# (docs/model.md, "Train it again": ~14 min of fitting on 2 CPU cores)
DETECTOR_DEFAULTS = {"epochs": 8, "learning_rate": 5e-4}


def split_validation(images: np.ndarray, labels: np.ndarray, size: int, seed: int):
    """A seeded random split of the training set into (train, validation) pairs."""
    order = np.random.default_rng(seed).permutation(len(images))
    size = min(size, len(images) - 1)
    val, train = order[:size], order[size:]
    return (images[train], labels[train]), (images[val], labels[val])


def training_arrays(mnist: Mnist, extra: list[dict[str, np.ndarray]], config: TrainConfig):
    """What the model learns from, as (images, labels) pairs: MNIST's training images but those held out for
    the curves, with the `extra` sets' images (the training splits of the style set, the real writers and the
    corrections); and the held out."""
    (x_train, y_train), (x_val, y_val) = split_validation(
        mnist.x_train, mnist.y_train, config.validation_images, config.seed)
    x_train = np.concatenate([x_train, *(data["images"] for data in extra)])
    y_train = np.concatenate([y_train, *(data["labels"] for data in extra)]).astype(mnist.y_train.dtype)
    return (x_train, y_train), (x_val, y_val)


def make_datasets(mnist: Mnist, extra: list[dict[str, np.ndarray]], config: TrainConfig):
    """Shuffled, augmented batches of training_arrays' training images, and plain validation batches of
    MNIST."""
    (x_train, y_train), (x_val, y_val) = training_arrays(mnist, extra, config)
    seeds = tf.data.Dataset.random(config.seed, rerandomize_each_iteration=True).batch(2)  # one per batch
    batches = (tf.data.Dataset.from_tensor_slices((to_model_input(x_train), y_train))
               .shuffle(len(x_train), seed=config.seed, reshuffle_each_iteration=True)
               .batch(config.batch_size, drop_remainder=len(x_train) >= config.batch_size))  # a fixed batch
    # size for Keras' image ops; the few images left over differ each epoch
    train = (tf.data.Dataset.zip(batches, seeds)
             .map(build_augmenter(config.augmentation), num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
    val = None
    if len(x_val):
        val = tf.data.Dataset.from_tensor_slices((to_model_input(x_val), y_val)).batch(512)
    return train, val, len(x_train), len(x_val)


def learning_rate_schedule(config: TrainConfig, steps_per_epoch: int):
    """Linear warm-up to the peak rate, then cosine decay to zero by the last step."""
    warmup = min(config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 100, warmup_target=config.learning_rate,
        warmup_steps=warmup, decay_steps=config.epochs * steps_per_epoch - warmup, alpha=0.0)


def start_from(model: keras.Model, init: Path) -> None:
    """Set `model`'s weights to those of the model folder `init` (its model.keras, the same network; a keep_digits
    model's detector). The outputs both have are carried over: from a digits network, the "not a digit" output
    keeps its fresh weights; into one, only the digits' outputs go."""
    weights = parts(keras.saving.load_model(init / KERAS_FILE))[1].get_weights()  # a keep_digits model: its detector
    kernel, bias = model.get_weights()[-2:]
    old_kernel, old_bias = weights[-2:]
    if old_kernel.shape[0] != kernel.shape[0] or old_kernel.shape[1] not in (NUM_CLASSES, LEGACY_CLASSES):
        raise ValueError(f"{init / KERAS_FILE}: not this project's network (output {old_kernel.shape})")
    width = min(kernel.shape[1], old_kernel.shape[1])
    kernel[:, :width], bias[:width] = old_kernel[:, :width], old_bias[:width]
    model.set_weights([*weights[:-2], kernel, bias])


def digits_network(init: Path) -> keras.Model:
    """The digits-only network of the model folder `init`, for --keep-digits: a keep_digits model's digits
    network, a digits network (trained without the negatives: the first of the two runs) as it is, or one
    network of this contract cut to its digit outputs (training.model.digit_outputs)."""
    digits, network = parts(keras.saving.load_model(init / KERAS_FILE))
    if digits is not None:
        return digits
    classes = network.outputs[0].shape[-1]
    if classes not in (NUM_CLASSES, LEGACY_CLASSES):
        raise ValueError(f"{init / KERAS_FILE}: not this project's network ({classes} outputs)")
    return network if classes == LEGACY_CLASSES else digit_outputs(network)


def train(mnist: Mnist, extra: dict[str, dict[str, np.ndarray]], config: TrainConfig, verbose: int = 1,
          init: Path | None = None, on_epoch_end=None):
    """Build and fit the model on MNIST and the `extra` training sets ({name: images and labels}: the style
    set's, the real writers', the negatives' and the corrections' training splits), starting from the model
    folder `init` if given; return the model (built from Keras' own layers, to save), its per-epoch history and
    a summary of the run. `on_epoch_end(epoch, logs)` is called after each epoch with Keras' figures."""
    keras.utils.set_random_seed(config.seed)
    train_data, val_data, n_train, n_val = make_datasets(mnist, list(extra.values()), config)
    steps_per_epoch = max(1, n_train // config.batch_size)
    # Without the negatives, a digits network: 10 outputs, no "not a digit" it would never learn to say
    classes = NUM_CLASSES if "negatives" in extra else LEGACY_CLASSES
    model = build_model(config.dropout, FusedBatchNormalization, classes)
    if init:
        start_from(model, init)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_schedule(config, steps_per_epoch)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,  # XLA makes this CNN ~7x slower on CPU
    )
    started = time.perf_counter()
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)] if on_epoch_end else []
    history = model.fit(train_data, validation_data=val_data, epochs=config.epochs, verbose=verbose,
                        shuffle=False, callbacks=callbacks)  # the dataset shuffles itself, each epoch
    summary = {"seconds": round(time.perf_counter() - started, 1), "epochs": config.epochs,
               "training_images": n_train, "validation_images": n_val,
               **{f"{name}_images": len(data["labels"]) for name, data in extra.items()}}
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    return plain_copy(model), history, summary


def calibrate_refusal(model: keras.Model, mnist: Mnist, config: TrainConfig) -> dict | None:
    """Cap the digits `model` refuses at config.max_refused of MNIST's held-out training images (none held out:
    left as trained, None)."""
    _, (held_out, _) = split_validation(mnist.x_train, mnist.y_train, config.validation_images, config.seed)
    if not len(held_out):
        return None
    return {**calibrate(model, to_model_input(held_out), config.max_refused),
            "on": "MNIST training images held out of training"}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, TrainConfig]:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("MNIST_DIR"),
                        help="IDX folder or mnist.npz (default: $MNIST_DIR; none: Keras' download)")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument("--styles", type=Path, help=f"the style set ({STYLE_SET_FILE} from python -m training.styles "
                        "--out; default: draw it now, under a minute): its training split is mixed into MNIST's, "
                        "its validation split measured")
    parser.add_argument("--writers", type=Path, help="the real writers' pen strokes: the handwriting folder "
                        f"(../shared/data/handwriting, drawn now: under a minute) or {WRITERS_FILE} from python -m "
                        "training.strokes --out; its training writers are mixed into MNIST's, those kept out measured "
                        "(default: none)")
    parser.add_argument("--negatives", type=Path, help="drawings that are no digit, learnt as \"not a digit\": the "
                        f"handwriting folder (letters and symbols, drawn now with generated shapes: ~2 min) or "
                        f"{NEGATIVES_FILE} from python -m training.negatives --out; those kept out (whole writers "
                        "and whole kinds) measured (default: none)")
    parser.add_argument("--feedback", type=Path, help="the users' corrections folder (FEEDBACK_DIR): the training "
                        "split of the records accepted in review (its accepted/ folder) is mixed into MNIST's, "
                        "their kept-out split measured (default: none)")
    parser.add_argument("--feedback-unreviewed", action="store_true", help="with --feedback: the records still "
                        "waiting for review (its top level) too; never the rejected ones")
    parser.add_argument("--init", type=Path, help="a model folder to start from (its model.keras): fine-tune it, "
                        "with fewer --epochs and a lower --learning-rate; a digits network gets \"not a digit\" "
                        "added when --negatives is given")
    parser.add_argument("--keep-digits", type=Path, metavar="DIGITS_MODEL", help="a digits model folder: its digits "
                        "network reads digits, unchanged, and the network trained here starts from it and only says "
                        "\"not a digit\" (training.model.keep_digits; needs --negatives)")
    parser.add_argument("--epochs", type=int, help=f"default: {defaults.epochs}; with --keep-digits, "
                        f"{DETECTOR_DEFAULTS['epochs']}")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, help=f"peak; default: {defaults.learning_rate}; with "
                        f"--keep-digits, {DETECTOR_DEFAULTS['learning_rate']}")
    parser.add_argument("--validation-images", type=int, default=defaults.validation_images)
    parser.add_argument("--max-refused", type=float, default=defaults.max_refused, help="the share of MNIST's held-out "
                        "training images the model may refuse as \"not a digit\": the \"not a digit\" output is "
                        "lowered until it refuses no more (training/calibrate.py; default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                        help="Keras output: 0 silent, 1 progress bars, 2 one line per epoch (for logs)")
    args = parser.parse_args(argv)
    base = DETECTOR_DEFAULTS if args.keep_digits else asdict(defaults)
    for name in DETECTOR_DEFAULTS:  # the settings whose default depends on --keep-digits
        if getattr(args, name) is None:
            setattr(args, name, base[name])
    if args.epochs < 1 or args.batch_size < 1 or args.learning_rate <= 0 or args.validation_images < 0:
        parser.error("--epochs and --batch-size must be >= 1, --learning-rate > 0, --validation-images >= 0")
    if not 0 <= args.max_refused <= 1:
        parser.error("--max-refused must be a fraction between 0 and 1")
    if args.keep_digits and not args.negatives:
        parser.error("--keep-digits needs --negatives (the drawings its detector learns as \"not a digit\")")
    if args.keep_digits and args.init:
        parser.error("--keep-digits starts from its own digits model: leave out --init")
    if args.feedback_unreviewed and not args.feedback:
        parser.error("--feedback-unreviewed needs --feedback")
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                         validation_images=args.validation_images, max_refused=args.max_refused, seed=args.seed)
    return args, config


def main(argv: list[str] | None = None) -> int:
    args, config = parse_args(argv)
    with tracked_run("train") as run:
        log_params(run, {**asdict(config), **{key: str(value) for key, value in vars(args).items()
                                              if value is not None and key not in asdict(config)}})
        return fit_and_write(args, config, run)


def fit_and_write(args: argparse.Namespace, config: TrainConfig, run) -> int:
    """Read the data, train, measure and write the model folder, logging to MLflow (training/tracking.py; `run`
    None: off): main's work."""
    mnist = load_mnist(args.data)
    print(f"MNIST from {mnist.source}: {len(mnist.x_train)} training, {len(mnist.x_test)} test images")
    styles = load_style_set(args.styles) if args.styles else build_style_set()
    print(f"style set from {args.styles or 'training/styles.py'}: "
          + ", ".join(f"{len(data['labels'])} {which}" for which, data in styles.items()))
    writers = load_writers(args.writers) if args.writers else None
    describe_splits("real writers", args.writers, writers, "digits", "writers",
                    "no --writers: trained and measured without the real writers")
    negatives = load_negatives(args.negatives) if args.negatives else None
    describe_splits("negatives", args.negatives, negatives, "drawings", "kinds",
                    "no --negatives: the model never learns to say \"not a digit\"")
    # read before training: a bad folder fails now
    corrections = load_corrections(args.feedback, args.feedback_unreviewed) if args.feedback else None
    init = args.keep_digits or args.init
    digits = digits_network(init) if args.keep_digits else None
    extra = {"style": styles["training"], "writers": writers and writers["training"],
             "negatives": negatives and negatives["training"], "corrections": corrections and corrections["training"]}
    model, history, summary = train(mnist, {name: data for name, data in extra.items() if data is not None}, config,
                                    args.verbose, init, lambda epoch, logs: log_epoch(run, epoch, logs))
    if digits is not None:
        model = keep_digits(digits, model)
        summary["keeps_digits"] = True
    if init:
        summary["started_from"] = {"folder": str(init), **json.loads((init / METADATA_FILE).read_text())[
            "files"][TFLITE_FILE]}

    refuses = model.outputs[0].shape[-1] == NUM_CLASSES  # False: a digits network (trained without --negatives)
    summary["refusal"] = calibrate_refusal(model, mnist, config) if refuses else None
    files = write_model_files(model, args.out)
    sets = validation_sets(mnist, styles, writers, corrections, negatives)
    measured, probabilities = evaluate(args.out / TFLITE_FILE, sets)
    tflite_metrics = measured.pop("mnist_test")  # the served file's figures; the kept-out sets' are in `measured`
    keras_probabilities = model.predict(to_model_input(mnist.x_test), batch_size=500, verbose=0)
    keras_metrics = classification_metrics(keras_probabilities, mnist.y_test)
    agreement = float((probabilities["mnist_test"].argmax(1) == keras_probabilities.argmax(1)).mean())

    plot_training_curves(history, args.out / "training_curves.png")
    write_plots({**tflite_metrics, **measured}, args.out)
    plot_refusals(sets, probabilities, args.out / REFUSALS_PICTURE)
    if corrections:  # the served file's figures on the records kept out of training ("records": how many)
        measured["feedback_validation"] = {
            "folder": str(args.feedback), **feedback_counts(corrections, args.feedback_unreviewed),
            "training_records": len(corrections["training"]["labels"]), **measured["feedback_validation"]}
    path = write_metadata(args.out, {
        "model": {"name": model.name, "parameters": int(model.count_params()),
                  "input": "float32 [N, 28, 28, 1] in [0, 1], white ink on black, MNIST-centred",
                  "output": (f"float32 [N, {NUM_CLASSES}] probabilities of the digits 0-9 and not a digit"
                             if refuses else f"float32 [N, {LEGACY_CLASSES}] probabilities of the digits 0-9"),
                  "classes": CLASS_NAMES if refuses else CLASS_NAMES[:LEGACY_CLASSES]},
        **tflite_metrics,  # the served file's figures
        "keras_test_accuracy": keras_metrics["test_accuracy"],
        "tflite_keras_agreement": agreement,
        **measured,  # the served file's figures on the kept-out sets: fonts and templates, writers, corrections
        "training": summary,
        "hyperparameters": asdict(config),
        "history": history,
        "data": {"source": mnist.source, "sha256": mnist.checksums,
                 "writers": {"source": str(args.writers), "credit": CREDIT} if writers else None,
                 "negatives": {"source": str(args.negatives), "credit": NEGATIVES_CREDIT} if negatives else None},
        "files": files,
    })
    print(summary_line(tflite_metrics, keras_metrics, agreement, measured, summary))
    if corrections:
        print(describe_feedback(measured["feedback_validation"]))
    log_figures(run, json.loads(path.read_text()), skip=("history",))  # the curves: logged epoch by epoch
    log_folder(run, args.out, (METADATA_FILE,))
    print(f"wrote {path.parent}")
    return 0


def describe_splits(name: str, source, splits: dict | None, unit: str, key: str, missing: str) -> None:
    """One line on a set read: how many of each split, by how many distinct `key` (writers, kinds); or, when it
    was not given, `missing` on stderr."""
    if splits is None:
        print(missing, file=sys.stderr)
        return
    print(f"{name} from {source}: " + ", ".join(f"{len(data['labels'])} {which} {unit} by {len(set(data[key]))} "
                                                f"{key}" for which, data in splits.items()))


def summary_line(tflite: dict, keras_metrics: dict, agreement: float, measured: dict, run: dict) -> str:
    """The run in one line: MNIST's test accuracy, then each kept-out set's (and its worst digit), then the time."""
    parts = [f"test accuracy {tflite['test_accuracy']:.4f} (LiteRT), {keras_metrics['test_accuracy']:.4f} (Keras), "
             f"top class agreement {agreement:.4%}"]
    parts += [f"{name} {figures['accuracy']:.4f}, worst digit {figures['worst_digit_accuracy']:.4f}"
              for name, figures in measured.items() if "worst_digit_accuracy" in figures]
    if "negatives_validation" in measured:
        negatives = measured["negatives_validation"]
        parts.append(f"negatives kept out refused {negatives['refused']:.4f}, worst group "
                     f"{negatives['worst_group_refused']:.4f}; MNIST test refused {tflite['refused']:.4f}")
    if run.get("refusal"):
        parts.append(f"\"not a digit\" lowered by {run['refusal']['shift']:.2f} to refuse at most "
                     f"{run['refusal']['max_refused']:.2%} of MNIST's held-out images")
    return "; ".join(parts) + f"; training took {run['seconds']:.0f} s"


def describe_feedback(figures: dict) -> str:
    """One line on the corrections: how many were read (accepted, and unreviewed when asked for) and trained on,
    and how the model reads the kept-out ones."""
    read = f"{figures['accepted_records']} accepted records"
    if figures["unreviewed_records"] is not None:
        read += f" and {figures['unreviewed_records']} not reviewed"
    line = f"feedback from {figures['folder']}: {read}, {figures['training_records']} trained on, "
    if not figures["records"]:
        return line + "none kept out to measure"
    return line + (f"{figures['records']} kept out: accuracy {figures['accuracy']:.4f} on them, the model in "
                   f"service's {figures['served_accuracy']:.4f}")


if __name__ == "__main__":
    sys.exit(main())
