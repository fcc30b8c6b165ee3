"""Evaluate a model folder's model.tflite (what the app serves) on the MNIST test set, the style set and the
users' corrections.

    python -m training.evaluate --model app/model --data ../shared/data/mnist [--min-accuracy 0.99]
        [--styles style_set.npz --min-style-accuracy 0.97] [--feedback feedback [--feedback-unreviewed]]
        [--served app/model [--max-digit-drop 0.005]] [--out DIR]

Prints the metrics as JSON (with --out, also writes them to DIR/metrics.json beside DIR/confusion_matrix.png
and DIR/style_confusion_matrix.png) and exits with status 1 when the MNIST test accuracy is below
--min-accuracy, the style set's (its validation split: held-out fonts and templates) below
--min-style-accuracy, or, with --feedback, the accuracy on the corrections folder's kept-out records
(training.data.load_corrections: those accepted in review, and with --feedback-unreviewed those waiting too)
below the model in service's on them (the share it answered right when the users met it), or, with --served
(the model in service's folder), when any digit's MNIST test accuracy falls more than --max-digit-drop below
that model's on the same images. That last gate is for corrections that teach a digit wrong, accepted by
mistake (say 300 records saying 7s are 1s): the corrections' own gate is blind to them (their kept-out fifth
is poisoned alike, and the model in service read none of it "right"), and the overall accuracy hides what
one digit loses; that digit's own accuracy shows it. Compare with a model in service trained as long: an
under-trained model falls below it on several digits, whatever it was fed.
The same functions compute the metrics and draw the plots that training writes.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from app.classifier import Classifier
from app.contract import CLASS_NAMES, NUM_CLASSES, TFLITE_FILE
from training.data import load_corrections, load_mnist, to_model_input
from training.styles import load_style_set

STYLE_MATRIX_TITLE = "Style set (held-out fonts and templates)"
MAX_DIGIT_DROP = 0.005  # with --served: how far below the model in service a digit may fall (about 5 test images)


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, per-class accuracy and confusion matrix (rows: true digit, columns: predicted)."""
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return {
        "test_accuracy": float((predicted == labels).mean()),
        "test_images": int(len(labels)),
        "test_errors": int((predicted != labels).sum()),
        "per_class_accuracy": {name: float(acc) for name, acc in zip(CLASS_NAMES, per_class, strict=True)},
        "confusion_matrix": confusion.tolist(),
    }


def evaluate_tflite(tflite_path: Path, images: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray]:
    """Metrics of the LiteRT model on uint8 MNIST images, and its probabilities."""
    probabilities = Classifier(tflite_path).predict_many(to_model_input(images))
    return classification_metrics(probabilities, labels), probabilities


def style_metrics(probabilities: np.ndarray, styles: dict[str, np.ndarray]) -> dict:
    """Accuracy on one split of the style set: overall, per digit (and the worst), per style, confusions."""
    metrics = classification_metrics(probabilities, styles["labels"].astype(np.int64))
    right = probabilities.argmax(axis=1) == styles["labels"]
    per_style = {str(name): float(right[styles["styles"] == name].mean()) for name in np.unique(styles["styles"])}
    return {"accuracy": metrics["test_accuracy"], "images": metrics["test_images"],
            "worst_digit_accuracy": min(metrics["per_class_accuracy"].values()),
            "per_digit_accuracy": metrics["per_class_accuracy"], "per_style_accuracy": per_style,
            "confusion_matrix": metrics["confusion_matrix"]}


def evaluate_styles(tflite_path: Path, styles: dict[str, np.ndarray]) -> dict:
    """style_metrics of the LiteRT model on a split of the style set."""
    return style_metrics(Classifier(tflite_path).predict_many(to_model_input(styles["images"])), styles)


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
    return [f"{digit}: {per_class[digit]:.4f} < {served[digit]:.4f}" for digit in CLASS_NAMES
            if per_class[digit] < served[digit] - tolerance]


def feedback_counts(corrections: dict[str, dict[str, np.ndarray]], include_unreviewed: bool) -> dict:
    """How many records of the folder were read, both splits: accepted in review, and not reviewed (None: not
    asked for)."""
    reviewed = np.concatenate([split["reviewed"] for split in corrections.values()])
    return {"accepted_records": int(reviewed.sum()),
            "unreviewed_records": int((~reviewed).sum()) if include_unreviewed else None}


def evaluate_feedback(tflite_path: Path, corrections: dict[str, np.ndarray]) -> dict:
    """feedback_metrics of the LiteRT model on a split of the corrections (training.data.load_corrections)."""
    return feedback_metrics(Classifier(tflite_path).predict_many(to_model_input(corrections["images"])), corrections)


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
    ax.set(xticks=range(NUM_CLASSES), yticks=range(NUM_CLASSES), xlabel="predicted digit",
           ylabel="true digit", title=f"{title} ({matrix.trace()} of {matrix.sum()} right)")
    fig.colorbar(image, ax=ax, label="errors")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="model folder holding model.tflite")
    parser.add_argument("--data", default=os.environ.get("MNIST_DIR"),
                        help="IDX folder or mnist.npz (default: $MNIST_DIR)")
    parser.add_argument("--styles", type=Path, help="the style set (python -m training.styles --out): measure "
                        "its validation split (held-out fonts and templates) too")
    parser.add_argument("--min-accuracy", type=float, default=0.0, help="fail below this test accuracy")
    parser.add_argument("--min-style-accuracy", type=float, default=0.0,
                        help="fail below this accuracy on the style set's validation split (needs --styles)")
    parser.add_argument("--feedback", type=Path, help="the corrections folder (FEEDBACK_DIR): measure the kept-out "
                        "records of those accepted in review, and fail when the model reads them worse than the "
                        "model in service did")
    parser.add_argument("--feedback-unreviewed", action="store_true", help="with --feedback: the records still "
                        "waiting for review too; never the rejected ones")
    parser.add_argument("--served", type=Path, help="the model in service's folder (app/model): fail when a digit's "
                        "MNIST test accuracy falls more than --max-digit-drop below that model's")
    parser.add_argument("--max-digit-drop", type=float, default=MAX_DIGIT_DROP,
                        help=f"with --served: the fall allowed (default: {MAX_DIGIT_DROP})")
    parser.add_argument("--out", type=Path, help="folder to write metrics.json and the confusion matrices into")
    args = parser.parse_args(argv)
    if args.min_style_accuracy > 0 and args.styles is None:
        parser.error("--min-style-accuracy needs --styles")
    if args.feedback_unreviewed and not args.feedback:
        parser.error("--feedback-unreviewed needs --feedback")
    mnist = load_mnist(args.data)
    metrics, _ = evaluate_tflite(args.model / TFLITE_FILE, mnist.x_test, mnist.y_test)
    if args.styles:
        metrics["style_validation"] = evaluate_styles(args.model / TFLITE_FILE,
                                                      load_style_set(args.styles)["validation"])
    if args.served:
        metrics["served_per_class_accuracy"] = evaluate_tflite(args.served / TFLITE_FILE, mnist.x_test,
                                                               mnist.y_test)[0]["per_class_accuracy"]
    if args.feedback:
        corrections = load_corrections(args.feedback, args.feedback_unreviewed)
        metrics["feedback_validation"] = {**feedback_counts(corrections, args.feedback_unreviewed),
                                          **evaluate_feedback(args.model / TFLITE_FILE, corrections["validation"])}
    print(json.dumps(metrics, indent=1))
    if args.out:  # written before the gate, so a failed run keeps its evidence
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        plot_confusion_matrix(metrics["confusion_matrix"], args.out / "confusion_matrix.png")
        if args.styles:
            plot_confusion_matrix(metrics["style_validation"]["confusion_matrix"],
                                  args.out / "style_confusion_matrix.png", STYLE_MATRIX_TITLE)
    failures = []
    if metrics["test_accuracy"] < args.min_accuracy:
        failures.append(f"test accuracy {metrics['test_accuracy']:.4f} is below the minimum {args.min_accuracy:.4f}")
    if args.styles and metrics["style_validation"]["accuracy"] < args.min_style_accuracy:
        failures.append(f"style set accuracy {metrics['style_validation']['accuracy']:.4f} is below the minimum "
                        f"{args.min_style_accuracy:.4f}")
    feedback = metrics.get("feedback_validation")
    if feedback and feedback["records"] == 0:
        print(f"no kept-out records in {args.feedback}: the feedback gate has nothing to compare", file=sys.stderr)
    elif feedback and feedback["accuracy"] < feedback["served_accuracy"]:
        failures.append(f"accuracy {feedback['accuracy']:.4f} on the {feedback['records']} kept-out records of "
                        f"{args.feedback} is below {feedback['served_accuracy']:.4f}, the model in service's when "
                        "the users met it")
    if args.served and (drops := digit_drops(metrics["per_class_accuracy"], metrics["served_per_class_accuracy"],
                                             args.max_digit_drop)):
        failures.append(f"MNIST test accuracy more than {args.max_digit_drop} below the model in service's "
                        f"({args.served}) on digit {'; '.join(drops)}")
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
