"""Which training data moves which figure: the same network trained side by side on MNIST with and without the
style set and the real writers' training split, each model measured on every kept-out set.

    python -m bench.bench_data --data MNIST --handwriting HANDWRITING [--epochs 8]

Each recipe is trained for --epochs (fewer than the shipped model's, to fit four runs in about 30 minutes on
2 cores), exported to model.tflite and read by training.evaluate's one classifier. Prints a table: a row per
recipe, a column per figure.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from app.contract import TFLITE_FILE
from tests.support.table import markdown_table
from training.data import load_mnist
from training.evaluate import evaluate, validation_sets
from training.export import write_model_files
from training.fit import train
from training.recipe import DigitsConfig
from training.strokes import load_writers
from training.styles import build_style_set

RECIPES = {  # name -> the extra training sets mixed into MNIST's
    "MNIST only": (),
    "MNIST + style set": ("style",),
    "MNIST + real writers": ("writers",),
    "MNIST + style set + real writers": ("style", "writers"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the MNIST IDX folder")
    parser.add_argument("--handwriting", required=True, help="the handwriting folder (pen strokes)")
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    mnist, styles, writers = load_mnist(args.data), build_style_set(), load_writers(args.handwriting)
    sets = validation_sets(mnist, styles, writers)
    training = {"style": styles["training"], "writers": writers["training"]}
    rows = []
    for name, parts in RECIPES.items():
        model, _, run = train(mnist, {part: training[part] for part in parts}, DigitsConfig(epochs=args.epochs))
        with tempfile.TemporaryDirectory() as folder:
            write_model_files(model, Path(folder))
            metrics, _ = evaluate(Path(folder) / TFLITE_FILE, sets)
        kept_out = metrics["writers_validation"]
        rows.append((name, f"{metrics['mnist_test']['test_accuracy']:.2%}",
                     f"{kept_out['accuracy']:.2%} / {kept_out['worst_digit_accuracy']:.1%}",
                     " / ".join(f"{kept_out['per_dataset_accuracy'][dataset]:.2%}"
                                for dataset in ("unipen", "pendigits")),
                     f"{metrics['style_validation']['accuracy']:.2%}", f"{metrics['small_styles']['accuracy']:.1%}",
                     f"{run['seconds']:.0f} s"))
        print(f"{name}: done", file=sys.stderr)
    print(markdown_table(["training data", "MNIST test", "real writers kept out / worst digit",
                          "UNIPEN / pen digits", "style set held out", "templates drawn small", "fitting"], rows))


if __name__ == "__main__":
    main()
