"""Evaluate a model folder's model.tflite (what the app serves) on MNIST's test set and on the kept-out sets:
the writers, the negatives, the style set and the users' corrections; exit 1 when it misses a gate.

    python -m training.evaluate --model DIR --data MNIST --handwriting HANDWRITING [--styles style_set.npz]
        [--feedback DIR [--feedback-unreviewed]] [--served app/model] [--gate NAME=VALUE ...] [--out DIR]

Prints the metrics as JSON (with --out, also writes them to DIR/metrics.json beside a confusion matrix per set).
The gates are training/gates.py's table (--gate sets one; a gate on a set not measured is skipped, saying so).
Beside them, with --feedback, the model must read the corrections folder's kept-out records (those accepted in
review; with --feedback-unreviewed those waiting too) at least as well as the model in service did when the
users met it. --served (the model in service's folder) adds max_digit_drop: corrections that teach a digit
wrong, accepted by mistake, poison their own kept-out fifth alike, and the overall accuracy hides what one digit
loses; that digit's MNIST accuracy shows it. Compare with a model in service trained as long.
The same functions compute the metrics and draw the plots that training writes.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from app.classifier import Classifier
from app.contract import DIGITS, NOT_A_DIGIT, NUM_CLASSES, TFLITE_FILE
from training.data import (
    add_corrections_options,
    check_corrections_options,
    load_corrections,
    load_mnist,
    to_model_input,
)
from training.gates import GATE, GATES
from training.negatives import load_negatives
from training.strokes import load_writers
from training.styles import load_style_set, small_digits
from training.tracking import log_figures, log_folder, log_params, set_tags, tracked_run

GROUPS = ("styles", "datasets", "sources")  # what a set may name for each image, to give accuracies per group
NEGATIVE_GROUPS = ("groups", "datasets", "kinds")  # what the negatives name for each drawing
MATRIX_TITLES = {"style_validation": "Style set (held-out fonts and templates)",  # confusion matrices: set -> title
                 "writers_validation": "Real writers kept out"}
REFUSALS_PICTURE = "refusals.png"  # plot_refusals' examples, beside the confusion matrices


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy (a digit answered "not a digit" counts as an error), per-digit accuracy, the share refused
    ("not a digit") and the confusion matrix (rows: true class, columns: answered; 11 x 11)."""
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "test_accuracy": float((predicted == labels).mean()),
        "test_images": int(len(labels)),
        "test_errors": int((predicted != labels).sum()),
        "refused": float((predicted == NOT_A_DIGIT).mean()) if len(labels) else 0.0,
        "per_class_accuracy": {name: float(acc) for name, acc in zip(DIGITS, per_class[:len(DIGITS)], strict=True)},
        "confusion_matrix": confusion.tolist(),
    }


def set_metrics(probabilities: np.ndarray, data: dict[str, np.ndarray]) -> dict:
    """Accuracy on one named set: overall, per digit (and the worst), per group the set names (each style of
    the style set; each dataset and lab of the real writers), and its confusions."""
    metrics = classification_metrics(probabilities, data["labels"].astype(np.int64))
    right = probabilities.argmax(axis=1) == data["labels"]
    groups = {f"per_{key.rstrip('s')}_accuracy": {str(name): float(right[data[key] == name].mean())
                                                   for name in np.unique(data[key])}
              for key in GROUPS if key in data}
    people = {"writers": len(np.unique(data["writers"]))} if "writers" in data else {}
    return {"accuracy": metrics["test_accuracy"], "images": metrics["test_images"], **people,
            "refused": metrics["refused"], "worst_digit_accuracy": min(metrics["per_class_accuracy"].values()),
            "per_digit_accuracy": metrics["per_class_accuracy"], **groups,
            "confusion_matrix": metrics["confusion_matrix"]}


def evaluate(tflite_path: Path, sets: dict[str, dict[str, np.ndarray]]) -> tuple[dict, dict[str, np.ndarray]]:
    """One LiteRT classifier on each named set ({name: images, labels, ...}): {name: metrics} and {name:
    probabilities}. MNIST's test set ("mnist_test") gets classification_metrics, the corrections
    ("feedback_validation") feedback_metrics, the negatives ("negatives_validation") refusal_metrics, every other
    set set_metrics."""
    classifier = Classifier(tflite_path)
    metrics, probabilities = {}, {}
    for name, data in sets.items():
        probabilities[name] = classifier.predict_many(to_model_input(data["images"]))
        measure = {"mnist_test": lambda p, d: classification_metrics(p, d["labels"]),
                   "feedback_validation": feedback_metrics,
                   "negatives_validation": refusal_metrics}.get(name, set_metrics)
        metrics[name] = measure(probabilities[name], data)
    return metrics, probabilities


def refusal_metrics(probabilities: np.ndarray, negatives: dict[str, np.ndarray]) -> dict:
    """On drawings that are no digit: the share answered "not a digit", overall, per group (unseen writers,
    unseen characters, generated, unseen shapes), dataset and kind, the worst group and kind, and the digits
    answered instead."""
    refused = probabilities.argmax(axis=1) == NOT_A_DIGIT
    per = {f"per_{key.rstrip('s')}_refused": {str(name): float(refused[negatives[key] == name].mean())
                                              for name in np.unique(negatives[key])}
           for key in NEGATIVE_GROUPS if key in negatives}
    answered = np.bincount(probabilities[~refused].argmax(axis=1), minlength=len(DIGITS))
    worst = {name.replace("per_", "worst_"): min(values.values()) for name, values in per.items() if values}
    return {"refused": float(refused.mean()) if len(refused) else 0.0, "images": int(len(refused)), **worst,
            **per, "answered_as_digit": dict(zip(DIGITS, answered.tolist(), strict=True))}


def feedback_metrics(probabilities: np.ndarray, corrections: dict[str, np.ndarray]) -> dict:
    """The model against the model in service on the same records: its accuracy, the served one's (answered ==
    meant, when the user met it), and its accuracy on the records that correct it. None: nothing to measure."""
    right = probabilities.argmax(axis=1) == corrections["labels"]
    served_right = corrections["answered"] == corrections["labels"]
    corrected = ~served_right
    return {"records": int(len(right)),
            "accuracy": float(right.mean()) if len(right) else None,
            "served_accuracy": float(served_right.mean()) if len(right) else None,
            "corrections": int(corrected.sum()),
            "corrections_accuracy": float(right[corrected].mean()) if corrected.any() else None}


def digit_drops(per_class: dict[str, float], served: dict[str, float], tolerance: float) -> list[str]:
    """The digits a model reads more than `tolerance` worse than the model in service, each as "7: 0.9844 <
    0.9912" (per-class accuracies, as classification_metrics gives them, on the same images)."""
    return [f"{digit}: {per_class[digit]:.4f} < {served[digit]:.4f}" for digit in DIGITS
            if per_class[digit] < served[digit] - tolerance]


def feedback_counts(corrections: dict[str, dict[str, np.ndarray]], include_unreviewed: bool) -> dict:
    """How many records of the folder were read, both splits: accepted in review, and not reviewed (None: not
    asked for)."""
    reviewed = np.concatenate([split["reviewed"] for split in corrections.values()])
    return {"accepted_records": int(reviewed.sum()),
            "unreviewed_records": int((~reviewed).sum()) if include_unreviewed else None}


def _pyplot():
    """Matplotlib without a display, with its cache somewhere writable."""
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "matplotlib"))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(confusion: list[list[int]], path: Path, title: str = "Confusion matrix") -> None:
    """The confusion matrix as a PNG, with counts in the cells."""
    plt = _pyplot()
    matrix = np.array(confusion)
    errors = matrix.copy()
    np.fill_diagonal(errors, 0)  # colour by errors so the few mistakes stand out
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(errors, cmap="Reds")
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, str(count), ha="center", va="center", fontsize=8,
                color="tab:green" if row == col else "black")
    names = [*DIGITS, "no"]  # the last row and column: "not a digit"
    ax.set(xticks=range(NUM_CLASSES), yticks=range(NUM_CLASSES), xticklabels=names, yticklabels=names,
           xlabel="answered", ylabel="true class", title=f"{title} ({matrix.trace()} of {matrix.sum()} right)")
    fig.colorbar(image, ax=ax, label="errors")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_refusals(sets: dict[str, dict[str, np.ndarray]], probabilities: dict[str, np.ndarray], path: Path,
                  per_row: int = 12) -> None:
    """Examples as a PNG: kept-out drawings answered "not a digit" (one of each kind first), those read as a
    digit instead, and the real digits answered "not a digit" (the real writers kept out, then MNIST's test set).
    Nothing is drawn without the negatives."""
    if "negatives_validation" not in sets:
        return
    plt = _pyplot()
    negatives, answered = sets["negatives_validation"], probabilities["negatives_validation"].argmax(axis=1)
    refused = np.flatnonzero(answered == NOT_A_DIGIT)
    _, first_of_kind = np.unique(negatives["kinds"][refused], return_index=True)
    rows = [("said \"not a digit\"", [(negatives["images"][i], negatives["kinds"][i].split(":")[1][:8])
                                       for i in refused[np.sort(first_of_kind)][:per_row]]),
            ("read as a digit", [(negatives["images"][i], f"{negatives['kinds'][i].split(':')[1][:6]}→{answered[i]}")
                                 for i in np.flatnonzero(answered != NOT_A_DIGIT)[:per_row]])]
    digits = [(sets[name]["images"][i], f"{sets[name]['labels'][i]} ({'writer' if name[0] == 'w' else 'MNIST'})")
              for name in ("writers_validation", "mnist_test") if name in sets
              for i in np.flatnonzero(probabilities[name].argmax(axis=1) == NOT_A_DIGIT)]
    rows.append(("digits said \"not a digit\"", digits[:per_row]))
    fig, axes = plt.subplots(len(rows), per_row, figsize=(per_row * 0.9, len(rows) * 1.25))
    for (title, examples), row in zip(rows, axes, strict=True):
        for column, ax in enumerate(row):
            ax.axis("off")
            if column < len(examples):
                ax.imshow(examples[column][0], cmap="gray", vmin=0, vmax=255)
                ax.set_title(examples[column][1], fontsize=7)
        row[0].text(-0.15, 0.5, title if examples else f"{title}: none", fontsize=8, ha="right", va="center",
                    transform=row[0].transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_training_curves(history: dict[str, list[float]], path: Path) -> None:
    """Loss and error rate per epoch, training and validation, as a PNG."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["loss"]) + 1)
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in history:
            loss_ax.plot(epochs, history[key], style, label=key)
    for key, style in (("accuracy", "-"), ("val_accuracy", "--")):
        if key in history:  # error rate on a log scale: accuracy near 1 hides the last tenths of a percent
            errors = [100 * (1 - acc) for acc in history[key]]
            acc_ax.plot(epochs, errors, style, label=key.replace("accuracy", "error"))
    loss_ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="Loss")
    acc_ax.set(xlabel="epoch", ylabel="error rate (%)", yscale="log", title="Error rate")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def validation_sets(mnist, styles=None, writers=None, corrections=None,
                    negatives=None) -> dict[str, dict[str, np.ndarray]]:
    """The named sets a model is measured on: MNIST's test set, the stroke templates drawn small
    (training.styles.small_digits), and the kept-out splits of those given."""
    sets = {"mnist_test": {"images": mnist.x_test, "labels": mnist.y_test}, "small_styles": small_digits()}
    for name, data in (("style_validation", styles), ("writers_validation", writers),
                       ("feedback_validation", corrections), ("negatives_validation", negatives)):
        if data is not None:
            sets[name] = data["validation"]
    return sets


def write_plots(metrics: dict, folder: Path) -> None:
    """The confusion matrices of MNIST's test set and of each kept-out set measured, as PNGs in `folder`."""
    plot_confusion_matrix(metrics["confusion_matrix"], folder / "confusion_matrix.png")
    for name, title in MATRIX_TITLES.items():
        if name in metrics:
            plot_confusion_matrix(metrics[name]["confusion_matrix"],
                                  folder / f"{name.split('_')[0]}_confusion_matrix.png", title)


def figure(metrics: dict, key: str) -> float | None:
    """A metrics.json figure by its key ("test_accuracy", "writers_validation.refused"); None: not measured."""
    value = metrics
    for part in key.split("."):
        if part not in value:
            return None
        value = value[part]
    return value


def gate_failures(metrics: dict, bounds: dict[str, float]) -> list[str]:
    """What misses its gate (bounds: gate name -> bound, training/gates.py's), each said; a figure not measured
    is skipped, saying so on stderr."""
    failures = []
    for name, bound in bounds.items():
        gate = GATE[name]
        for key in gate.figures:
            value = figure(metrics, key)
            if value is None:
                given = f" (measured with {gate.measured_with})" if gate.measured_with else ""
                print(f"gate {name}: {key} not measured{given}, skipped", file=sys.stderr)
            elif (value < bound) if gate.direction == "min" else (value > bound):
                side = "below the minimum" if gate.direction == "min" else "above the maximum"
                failures.append(f"{key} {value:.4f} is {side} {bound:.4f} ({name})")
    return failures


def gate_value(text: str) -> tuple[str, float]:
    """--gate's NAME=VALUE, a gate of training/gates.py and a share."""
    name, _, value = text.partition("=")
    if name not in GATE:
        raise argparse.ArgumentTypeError(f"{name!r} is no gate: {', '.join(GATE)}")
    try:
        bound = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is no number") from None
    if not 0.0 <= bound <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is a share, between 0 and 1")
    return name, bound


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="model folder holding model.tflite")
    parser.add_argument("--data", default=os.environ.get("MNIST_DIR"),
                        help="MNIST: its IDX folder or mnist.npz (default: $MNIST_DIR)")
    parser.add_argument("--handwriting", type=Path, help="the handwriting folder (python -m "
                        "training.fetch_handwriting): its writers and negatives kept out are drawn and measured")
    parser.add_argument("--styles", type=Path, help="the style set (python -m training.styles --out): measure "
                        "its validation split (held-out fonts and templates) too")
    add_corrections_options(parser, "measure the kept-out split of those accepted in review, and fail when the "
                            "model reads them worse than the model in service did")
    parser.add_argument("--served", type=Path, help="the model in service's folder (app/model): measure how far "
                        "each digit's MNIST test accuracy falls below that model's (gate max_digit_drop)")
    gates = "; ".join(f"{gate.name}={gate.default}: {gate.meaning}" for gate in GATES)
    parser.add_argument("--gate", type=gate_value, action="append", default=[], metavar="NAME=VALUE",
                        help=f"set a gate (repeatable); the defaults, training/gates.py's: {gates}")
    parser.add_argument("--out", type=Path, help="folder to write metrics.json and the confusion matrices into")
    args = parser.parse_args(argv)
    check_corrections_options(parser, args)
    args.gates = {**{gate.name: gate.default for gate in GATES}, **dict(args.gate)}
    with tracked_run("evaluate") as run:
        log_params(run, {key: str(value) for key, value in vars(args).items() if value not in (None, [])})
        return gate(args, run)


def gate(args: argparse.Namespace, run) -> int:
    """Measure, write, log to MLflow (training/tracking.py; `run` None: off) and gate: main's work."""
    mnist = load_mnist(args.data)
    corrections = load_corrections(args.feedback, args.feedback_unreviewed) if args.feedback else None
    handwriting = args.handwriting
    sets = validation_sets(mnist, load_style_set(args.styles) if args.styles else None,
                           load_writers(handwriting, which=("validation",)) if handwriting else None, corrections,
                           load_negatives(handwriting, which=("validation",)) if handwriting else None)
    measured, probabilities = evaluate(args.model / TFLITE_FILE, sets)
    metrics = {**measured.pop("mnist_test"), **measured}
    drops = []
    if args.served:
        served = evaluate(args.served / TFLITE_FILE, {"mnist_test": sets["mnist_test"]})[0]["mnist_test"]
        metrics["served_per_class_accuracy"] = served["per_class_accuracy"]
        metrics["served_digit_drop"] = max(0.0, *(served["per_class_accuracy"][digit] - accuracy
                                                  for digit, accuracy in metrics["per_class_accuracy"].items()))
        drops = digit_drops(metrics["per_class_accuracy"], served["per_class_accuracy"], args.gates["max_digit_drop"])
    if corrections:
        metrics["feedback_validation"] = {**feedback_counts(corrections, args.feedback_unreviewed),
                                          **metrics["feedback_validation"]}
    print(json.dumps(metrics, indent=1))
    if args.out:  # written before the gate, so a failed run keeps its evidence
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        write_plots(metrics, args.out)
        plot_refusals(sets, probabilities, args.out / REFUSALS_PICTURE)
    failures = gate_failures(metrics, args.gates)
    if drops:  # which digits failed max_digit_drop
        print(f"MNIST test accuracy more than {args.gates['max_digit_drop']} below the model in service's "
              f"({args.served}) on digit {'; '.join(drops)}", file=sys.stderr)
    feedback = metrics.get("feedback_validation")
    if feedback and feedback["records"] == 0:
        print(f"no kept-out records in {args.feedback}: the feedback gate has nothing to compare", file=sys.stderr)
    elif feedback and feedback["accuracy"] < feedback["served_accuracy"]:
        failures.append(f"accuracy {feedback['accuracy']:.4f} on the {feedback['records']} kept-out records of "
                        f"{args.feedback} is below {feedback['served_accuracy']:.4f}, the model in service's when "
                        "the users met it")
    for failure in failures:
        print(failure, file=sys.stderr)
    log_figures(run, {**metrics, "gate_passed": not failures})
    set_tags(run, {"gate": "; ".join(failures) or "passed"})
    if args.out:
        log_folder(run, args.out, ("metrics.json",))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
