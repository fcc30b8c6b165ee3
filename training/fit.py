"""The work behind `python -m training.train`: read the data, fit a network, measure it and write the model folder.

training/train.py parses the command and imports this module only then, so its --help never loads TensorFlow.
"""

import argparse
import json
import sys
import time
from dataclasses import asdict

import keras
import numpy as np
import tensorflow as tf

from app.contract import CLASS_NAMES, KERAS_FILE, METADATA_FILE, NUM_CLASSES, NUM_DIGITS, TFLITE_FILE
from training.calibrate import calibrate
from training.card import write_card
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
from training.model import FusedBatchNormalization, build_augmenter, build_model, keep_digits, parts, plain_copy
from training.negatives import CREDIT as NEGATIVES_CREDIT
from training.negatives import load_negatives
from training.recipe import DetectorConfig, DigitsConfig
from training.strokes import CREDIT, load_writers
from training.styles import build_style_set, load_style_set
from training.tracking import log_epoch, log_figures, log_folder


def say(line: str) -> None:
    """One line of progress, out at once: a log shows where the run is (and a forked worker repeats nothing)."""
    print(line, flush=True)


def split_validation(images: np.ndarray, labels: np.ndarray, size: int, seed: int):
    """A seeded random split of the training set into (train, validation) pairs."""
    order = np.random.default_rng(seed).permutation(len(images))
    size = min(size, len(images) - 1)
    val, train = order[:size], order[size:]
    return (images[train], labels[train]), (images[val], labels[val])


def training_arrays(mnist: Mnist, extra: list[dict[str, np.ndarray]], config: DigitsConfig):
    """What the network learns from, as (images, labels) pairs: MNIST's training images but those held out for
    the curves, with the `extra` sets' images (the training splits of the style set, the writers' digits, the
    negatives and the corrections); and the held out."""
    (x_train, y_train), (x_val, y_val) = split_validation(
        mnist.x_train, mnist.y_train, config.validation_images, config.seed)
    x_train = np.concatenate([x_train, *(data["images"] for data in extra)])
    y_train = np.concatenate([y_train, *(data["labels"] for data in extra)]).astype(mnist.y_train.dtype)
    return (x_train, y_train), (x_val, y_val)


def make_datasets(mnist: Mnist, extra: list[dict[str, np.ndarray]], config: DigitsConfig):
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


def learning_rate_schedule(config: DigitsConfig, steps_per_epoch: int):
    """Linear warm-up to the peak rate, then cosine decay to zero by the last step."""
    warmup = min(config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 100, warmup_target=config.learning_rate,
        warmup_steps=warmup, decay_steps=config.epochs * steps_per_epoch - warmup, alpha=0.0)


def digits_network(folder) -> keras.Model:
    """The digits network of the model folder `folder`: what `digits` wrote, or a joined model's digits part."""
    digits, network = parts(keras.saving.load_model(folder / KERAS_FILE))
    digits = network if digits is None else digits
    if digits.outputs[0].shape[-1] != NUM_DIGITS:
        raise ValueError(f"{folder / KERAS_FILE}: not a digits network ({digits.outputs[0].shape[-1]} outputs; "
                         "python -m training.train digits writes one)")
    return digits


def start_from(detector: keras.Model, folder) -> None:
    """Set the detector's weights to those of `folder`'s digits network; its "not a digit" output starts fresh."""
    *body, kernel, bias = digits_network(folder).get_weights()
    fresh_kernel, fresh_bias = detector.get_weights()[-2:]
    fresh_kernel[:, :NUM_DIGITS], fresh_bias[:NUM_DIGITS] = kernel, bias
    detector.set_weights([*body, fresh_kernel, fresh_bias])


def train(mnist: Mnist, extra: dict[str, dict[str, np.ndarray]], config: DigitsConfig, digits=None,
          on_epoch_end=None):
    """Build and fit a network on MNIST and the `extra` training sets ({name: images and labels}): the digits
    network (10 outputs), or with `digits` (a digits model folder) the detector (11 outputs), started from its
    digits network. Return the network (built from Keras' own layers, to save), its per-epoch history and a
    summary of the run. `on_epoch_end(epoch, logs)` is called after each epoch with Keras' figures."""
    keras.utils.set_random_seed(config.seed)
    train_data, val_data, n_train, n_val = make_datasets(mnist, list(extra.values()), config)
    steps_per_epoch = max(1, n_train // config.batch_size)
    model = build_model(config.dropout, FusedBatchNormalization, NUM_CLASSES if digits else NUM_DIGITS)
    if digits:
        start_from(model, digits)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_schedule(config, steps_per_epoch)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,  # XLA makes this CNN ~7x slower on CPU
    )
    say(f"training {config.epochs} epoch{'s' * (config.epochs != 1)} on {n_train} images, {n_val} held out")
    started = time.perf_counter()
    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)] if on_epoch_end else []
    verbose = 1 if sys.stdout.isatty() else 2  # a terminal: Keras' bar; a log: one line per epoch
    history = model.fit(train_data, validation_data=val_data, epochs=config.epochs, verbose=verbose,
                        shuffle=False, callbacks=callbacks)  # the dataset shuffles itself, each epoch
    summary = {"seconds": round(time.perf_counter() - started, 1), "epochs": config.epochs,
               "training_images": n_train, "validation_images": n_val,
               **{f"{name}_images": len(data["labels"]) for name, data in extra.items()}}
    history = {key: [float(v) for v in values] for key, values in history.history.items()}
    return plain_copy(model), history, summary


def calibrate_refusal(model: keras.Model, mnist: Mnist, config: DetectorConfig) -> dict | None:
    """Cap the digits `model` refuses at config.max_refused of MNIST's held-out training images (none held out:
    left as trained, None)."""
    _, (held_out, _) = split_validation(mnist.x_train, mnist.y_train, config.validation_images, config.seed)
    if not len(held_out):
        return None
    return {**calibrate(model, to_model_input(held_out), config.max_refused),
            "on": "MNIST training images held out of training"}


def read_data(args: argparse.Namespace) -> dict:
    """Every set the command uses, each announced before it is drawn and described once read; a bad folder fails
    here, before any training."""
    mnist = load_mnist(args.data)
    say(f"MNIST from {mnist.source}: {len(mnist.x_train)} training, {len(mnist.x_test)} test images")
    if not args.styles:
        say("drawing the style set (training/styles.py, under a minute)")
    styles = load_style_set(args.styles) if args.styles else build_style_set()
    say(f"style set from {args.styles or 'training/styles.py'}: "
        + ", ".join(f"{len(data['labels'])} {which}" for which, data in styles.items()))
    writers = negatives = None
    if args.handwriting:
        say(f"drawing the writers' digits of {args.handwriting}")
        writers = load_writers(args.handwriting)
        describe_splits("writers' digits", args.handwriting, writers, "digits", "writers")
    else:
        print("no --handwriting: trained and measured without the writers' digits", file=sys.stderr, flush=True)
    if args.command == "detector":
        say(f"drawing the negatives: the other characters of {args.handwriting} and generated shapes (~2 min)")
        negatives = load_negatives(args.handwriting)
        describe_splits("negatives", args.handwriting, negatives, "drawings", "kinds")
    corrections = load_corrections(args.feedback, args.feedback_unreviewed) if args.feedback else None
    return {"mnist": mnist, "styles": styles, "writers": writers, "negatives": negatives, "corrections": corrections}


def fit_and_write(args: argparse.Namespace, config: DigitsConfig, run) -> int:
    """Read the data, train, measure and write the model folder, logging to MLflow (training/tracking.py; `run`
    None: off)."""
    data = read_data(args)
    mnist, styles, writers, negatives, corrections = data.values()
    detector = args.command == "detector"
    digits = digits_network(args.digits) if detector else None  # a wrong folder fails before training
    extra = {"style": styles["training"], "writers": writers and writers["training"],
             "negatives": negatives and negatives["training"], "corrections": corrections and corrections["training"]}
    model, history, summary = train(mnist, {name: data for name, data in extra.items() if data is not None}, config,
                                    args.digits if detector else None, lambda epoch, logs: log_epoch(run, epoch, logs))
    if detector:
        model = keep_digits(digits, model)
        summary["keeps_digits"] = True
        summary["started_from"] = {"folder": str(args.digits), **json.loads(
            (args.digits / METADATA_FILE).read_text())["files"][TFLITE_FILE]}
        summary["refusal"] = calibrate_refusal(model, mnist, config)
    else:
        summary["refusal"] = None
    say(f"writing {args.out} and measuring {TFLITE_FILE}")
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
    if corrections:  # the served file's figures on the corrections kept out of training ("records": how many)
        measured["feedback_validation"] = {
            "folder": str(args.feedback), **feedback_counts(corrections, args.feedback_unreviewed),
            "training_records": len(corrections["training"]["labels"]), **measured["feedback_validation"]}
    classes = NUM_CLASSES if detector else NUM_DIGITS
    path = write_metadata(args.out, {
        "model": {"name": model.name, "parameters": int(model.count_params()),
                  "input": "float32 [N, 28, 28, 1] in [0, 1], white ink on black, MNIST-centred",
                  "output": (f"float32 [N, {classes}] probabilities of the digits 0-9"
                             + (" and not a digit" if detector else "")),
                  "classes": CLASS_NAMES[:classes]},
        **tflite_metrics,  # the served file's figures
        "keras_test_accuracy": keras_metrics["test_accuracy"],
        "tflite_keras_agreement": agreement,
        **measured,  # the served file's figures on the kept-out sets: fonts and templates, writers, corrections
        "training": summary,
        "hyperparameters": asdict(config),
        "history": history,
        "data": {"source": mnist.source, "sha256": mnist.checksums,
                 "writers": {"source": str(args.handwriting), "credit": CREDIT} if writers else None,
                 "negatives": {"source": str(args.handwriting), "credit": NEGATIVES_CREDIT} if negatives else None},
        "files": files,
    })
    write_card(args.out)
    say(summary_line(tflite_metrics, keras_metrics, agreement, measured, summary))
    if corrections:
        say(describe_corrections(measured["feedback_validation"]))
    log_figures(run, json.loads(path.read_text()), skip=("history",))  # the curves: logged epoch by epoch
    log_folder(run, args.out, (METADATA_FILE,))
    say(f"wrote {path.parent}")
    return 0


def describe_splits(name: str, source, splits: dict, unit: str, key: str) -> None:
    """One line on a set read: how many of each split, by how many distinct `key` (writers, kinds)."""
    say(f"{name} from {source}: " + ", ".join(f"{len(data['labels'])} {which} {unit} by {len(set(data[key]))} "
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


def describe_corrections(figures: dict) -> str:
    """One line on the corrections: how many were read (accepted, and unreviewed when asked for) and trained on,
    and how the model reads the kept-out ones."""
    read = f"{figures['accepted_records']} accepted corrections"
    if figures["unreviewed_records"] is not None:
        read += f" and {figures['unreviewed_records']} not reviewed"
    line = f"corrections from {figures['folder']}: {read}, {figures['training_records']} trained on, "
    if not figures["records"]:
        return line + "none kept out to measure"
    return line + (f"{figures['records']} kept out: accuracy {figures['accuracy']:.4f} on them, the model in "
                   f"service's {figures['served_accuracy']:.4f}")
