"""Before and after "not a digit": models side by side on the same kept-out sets, the refusals they make.

    python -m bench.bench_refusal --data MNIST --handwriting HANDWRITING \
        --model app/model --model OLD_MODEL_DIR [--threshold 0.99] [--cap 0.003 --cap 0.0005] \
        [--bound 0.996 --bound 0.994]

A row per model and way of refusing: its "not a digit" class (argmax); with --cap, that class lowered as
training lowers it (training/calibrate.py) until it refuses that share of MNIST's held-out training images,
one row per cap (the trade-off curve); with --bound, that class lowered (or raised) as far as MNIST's test
accuracy, counting a refusal as an error, stays at or above the bound: a threshold chosen on the test set
itself, so the most any threshold on this model could refuse at that accuracy; and for every model a threshold
on the top digit probability (refused when below), the way one would refuse without that class. Columns: the share
refused of each group of negatives kept out (training/negatives.py), and of the real digits (MNIST's test set,
the real writers kept out), and MNIST's test accuracy counting a refusal as an error.
"""

import argparse
from pathlib import Path

import numpy as np

from app.classifier import load_classifier
from app.contract import NUM_DIGITS
from tests.support.table import markdown_table
from training.calibrate import refusal_margins, refusal_shift
from training.data import load_mnist, to_model_input
from training.fit import split_validation
from training.negatives import load_negatives
from training.recipe import DigitsConfig
from training.strokes import load_writers

GROUPS = ("unseen writers", "unseen characters", "generated", "unseen shapes")


def refusals(probabilities: np.ndarray, threshold: float | None, shift: float = 0.0) -> np.ndarray:
    """Which rows are refused: answered "not a digit" (lowered by `shift`), or (with a threshold) whose top
    digit is less likely."""
    if threshold is None:
        return refusal_margins(probabilities) > shift
    return probabilities[:, :NUM_DIGITS].max(axis=1) < threshold


def bound_shift(margins: np.ndarray, correct: np.ndarray, accuracy: float) -> float:
    """The lowest shift at which refusing the rows whose margin is above it keeps the share of rows `correct`
    and not refused at or above `accuracy` (the rows with the highest margins refused first)."""
    order = np.argsort(margins)[::-1]
    lost = np.cumsum(correct[order])  # right answers lost when the first 1, 2, ... rows are refused
    keep = np.ceil(accuracy * len(correct) - 1e-9)  # right answers to keep, a whole number
    affordable = int(np.searchsorted(lost, correct.sum() - keep, side="right"))
    return float(margins[order][min(affordable, len(order) - 1)])  # refused: above it, so that many at most


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the MNIST IDX folder")
    parser.add_argument("--handwriting", required=True, help="the handwriting folder (pen strokes)")
    parser.add_argument("--model", action="append", required=True, type=Path, help="a model folder (repeat)")
    parser.add_argument("--threshold", type=float, default=0.99)
    parser.add_argument("--cap", action="append", type=float, default=[], help="a share of MNIST's held-out "
                        "training images to refuse at most (repeat)")
    parser.add_argument("--bound", action="append", type=float, default=[], help="an MNIST test accuracy (counting "
                        "a refusal as an error) to keep: adds the row refusing the most at it, its threshold chosen "
                        "on the test set (repeat)")
    args = parser.parse_args()
    mnist = load_mnist(args.data)
    config = DigitsConfig()
    _, (held_out, _) = split_validation(mnist.x_train, mnist.y_train, config.validation_images, config.seed)
    negatives = load_negatives(args.handwriting, which=("validation",))["validation"]
    writers = load_writers(args.handwriting, which=("validation",))["validation"]
    rows = []
    for folder in args.model:
        classifier, _ = load_classifier(folder)
        read = {name: classifier.predict_many(to_model_input(images)) for name, images in
                (("negatives", negatives["images"]), ("mnist", mnist.x_test), ("writers", writers["images"]))}
        correct = read["mnist"][:, :NUM_DIGITS].argmax(axis=1) == mnist.y_test
        ways = [(None, 0.0, "not a digit class")] if classifier.refuses_non_digits else []
        if classifier.refuses_non_digits and args.cap:
            margins = refusal_margins(classifier.predict_many(to_model_input(held_out)))
            ways += [(None, shift, f"not a digit lowered by {shift:.2f} (held-out MNIST refused {cap:.2%})")
                     for cap, shift in ((cap, refusal_shift(margins, cap)) for cap in args.cap)]
        for bound in args.bound if classifier.refuses_non_digits else []:
            shift = bound_shift(refusal_margins(read["mnist"]), correct, bound)
            ways.append((None, shift, f"not a digit shifted by {shift:.2f} (MNIST test right >= {bound:.2%}, "
                         "chosen on it: a bound)"))
        for threshold, shift, way in [*ways, (args.threshold, 0.0, f"top digit < {args.threshold:g}")]:
            refused = {name: refusals(p, threshold, shift) for name, p in read.items()}
            right = correct & ~refused["mnist"]
            rows.append((str(folder), way,
                         *(f"{refused['negatives'][negatives['groups'] == group].mean():.1%}" for group in GROUPS),
                         f"{refused['mnist'].mean():.2%}", f"{refused['writers'].mean():.2%}", f"{right.mean():.2%}"))
    print(markdown_table(["model", "refused when", *(f"negatives: {group}" for group in GROUPS), "MNIST test refused",
                          "real writers refused", "MNIST test right"], rows))


if __name__ == "__main__":
    main()
