r"""Train the two networks the app serves as one model: the digits network, then the "not a digit" detector.

    python -m training.train digits --data $MNIST_DIR --handwriting $HANDWRITING_DIR \
        --out digits-model                       # ~27 min on 2 CPU cores
    python -m training.train detector --digits digits-model --data $MNIST_DIR --handwriting $HANDWRITING_DIR \
        --out app/model                          # joined to the digits network, as shipped: ~19 min
    python -m training.train digits --data tests/data/mnist --out /tmp/digits --epochs 1   # seconds

The handwriting folder comes from `python -m training.fetch_handwriting --out DIR`. Both commands mix into
MNIST's training images the style set's training split (training/styles.py), the writers' digits of the
handwriting's training writers (training/strokes.py) and, with --feedback, the training split of the users'
corrections a person accepted (python -m training.review). The detector starts from the digits network, learns
the handwriting's other characters and generated shapes as "not a digit" (training/negatives.py), and is joined to
the digits network, which it leaves unchanged (training.model.keep_digits); its "not a digit" is then lowered
until at most --max-refused of MNIST's held-out training images are refused (training/calibrate.py).

Each writes into --out model.keras, model.tflite (float32, for LiteRT), metadata.json (the figures of
model.tflite on every set kept out, checksums, the recipe, versions), README.md (the model card, training/card.py)
and a picture per measured set. The settings are training/recipe.py's.
"""

import argparse
import os
import sys
from dataclasses import asdict
from pathlib import Path

from training.data import add_corrections_options, check_corrections_options
from training.recipe import DetectorConfig, DigitsConfig

PROG = "python -m training.train"
HANDWRITING_HELP = ("the handwriting folder (python -m training.fetch_handwriting --out DIR; default: "
                    "$HANDWRITING_DIR): its training writers' digits are mixed into MNIST's, those kept out measured")


def add_data_options(parser: argparse.ArgumentParser, handwriting_help: str, needs_handwriting: bool) -> None:
    """The options both commands share: where the data is, where the model goes."""
    handwriting = os.environ.get("HANDWRITING_DIR")
    parser.add_argument("--data", default=os.environ.get("MNIST_DIR"),
                        help="MNIST: an IDX folder or mnist.npz (default: $MNIST_DIR; none: Keras' download)")
    parser.add_argument("--handwriting", type=Path, default=handwriting and Path(handwriting),
                        required=needs_handwriting and not handwriting, help=handwriting_help)
    parser.add_argument("--out", required=True, type=Path, help="model folder to write")
    parser.add_argument("--styles", type=Path, help="the style set (style_set.npz from python -m training.styles "
                        "--out; default: draw it now, under a minute): its training split is mixed into MNIST's, its "
                        "validation split measured")
    add_corrections_options(parser, "the training split of the corrections accepted in review (its accepted/ "
                            "folder) is mixed into MNIST's, their kept-out split measured")


def add_rate_options(parser: argparse.ArgumentParser, defaults: DigitsConfig) -> None:
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="default: %(default)s")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                        help="peak, after a warm-up epoch, then cosine decay to 0 (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{digits,detector}")

    digits = commands.add_parser("digits", help="train the digits network (10 outputs)",
                                 description=DigitsConfig.__doc__)
    add_data_options(digits, HANDWRITING_HELP + " (default: none)", needs_handwriting=False)
    add_rate_options(digits, DigitsConfig())
    digits.add_argument("--seed", type=int, default=DigitsConfig().seed, help="default: %(default)s")

    detector = commands.add_parser("detector", help="train the \"not a digit\" detector from a digits network and "
                                   "join the two", description=DetectorConfig.__doc__)
    detector.add_argument("--digits", required=True, type=Path, metavar="DIGITS_MODEL", help="the model folder "
                          "`digits` wrote (or a joined model, whose digits network is taken): its digits network "
                          "reads digits, unchanged, and the detector starts from it")
    add_data_options(detector, HANDWRITING_HELP + "; its other characters, with generated shapes, are the "
                     "negatives, those of writers and kinds kept out measured (required)", needs_handwriting=True)
    add_rate_options(detector, DetectorConfig())
    detector.add_argument("--max-refused", type=float, default=DetectorConfig().max_refused, help="the share of "
                          "MNIST's held-out training images the model may refuse: \"not a digit\" is lowered until "
                          "it refuses no more (training/calibrate.py; default: %(default)s)")
    return parser


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, DigitsConfig]:
    """The command's options and its recipe (DigitsConfig or DetectorConfig, as told)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.learning_rate <= 0:
        parser.error("--epochs must be >= 1 and --learning-rate > 0")
    check_corrections_options(parser, args)
    if args.command == "digits":
        return args, DigitsConfig(epochs=args.epochs, learning_rate=args.learning_rate, seed=args.seed)
    if not 0 <= args.max_refused <= 1:
        parser.error("--max-refused must be a fraction between 0 and 1")
    return args, DetectorConfig(epochs=args.epochs, learning_rate=args.learning_rate, max_refused=args.max_refused)


def run(args: argparse.Namespace, config: DigitsConfig) -> int:
    """Train as told, logging to MLflow when MLFLOW_TRACKING_URI is set (training/tracking.py)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the log
    from training.fit import fit_and_write  # TensorFlow loads here, not for --help
    from training.tracking import log_params, tracked_run

    with tracked_run("train") as tracking:
        log_params(tracking, {**asdict(config), **{key: str(value) for key, value in vars(args).items()
                                                   if value is not None and key not in asdict(config)}})
        return fit_and_write(args, config, tracking)


def main(argv: list[str] | None = None) -> int:
    return run(*parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
