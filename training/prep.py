"""Check a raw MNIST folder and write it as one array file that training and evaluation read.

    python -m training.prep --data $MNIST_DIR --out /tmp/prepared
    python -m training.train digits --data /tmp/prepared/mnist.npz --out /tmp/model

The Azure ML prep step runs this on the raw `uri_folder` data asset. It reads the IDX files with the one
loader (which checks every file), checks that both splits hold every digit, and writes into --out:

    mnist.npz   the arrays in Keras' layout (x_train, y_train, x_test, y_test), which `load_mnist` reads
    prep.json   image counts per digit and the SHA-256 of the raw files, to trace a model to its data

The arrays stay uint8: scaling to float32 in [0, 1] is `to_model_input`, applied where the model is fed,
so there is one place for it (and the file stays a quarter of the size).
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from app.contract import NUM_DIGITS
from training.data import Mnist, MnistError, load_mnist

PREPARED_FILE = "mnist.npz"
SUMMARY_FILE = "prep.json"


def check_digits(mnist: Mnist) -> dict[str, list[int]]:
    """Images per digit in each split; a split missing a digit is not MNIST."""
    counts = {}
    for split, labels in (("train", mnist.y_train), ("test", mnist.y_test)):
        per_digit = np.bincount(labels, minlength=NUM_DIGITS)
        missing = [digit for digit, count in enumerate(per_digit) if count == 0]
        if missing:
            raise MnistError(f"{mnist.source}: the {split} split holds no image of digit(s) "
                             f"{', '.join(map(str, missing))}")
        counts[split] = per_digit.tolist()
    return counts


def prepare(data: str | Path, out_dir: Path) -> dict:
    """Load and check `data`, write mnist.npz and prep.json into out_dir; return the summary."""
    mnist = load_mnist(data)
    digits = check_digits(mnist)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / PREPARED_FILE, x_train=mnist.x_train, y_train=mnist.y_train,
                        x_test=mnist.x_test, y_test=mnist.y_test)
    summary = {"source": mnist.source, "sha256": mnist.checksums,
               "train_images": len(mnist.x_train), "test_images": len(mnist.x_test),
               "train_per_digit": digits["train"], "test_per_digit": digits["test"]}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("MNIST_DIR"),
                        help="IDX folder or mnist.npz (default: $MNIST_DIR)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write mnist.npz and prep.json into")
    args = parser.parse_args(argv)
    if not args.data:
        parser.error("--data is required (or set MNIST_DIR)")
    summary = prepare(args.data, args.out)
    print(f"MNIST from {summary['source']}: {summary['train_images']} training, {summary['test_images']} test "
          f"images, every digit in both; wrote {args.out / PREPARED_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
