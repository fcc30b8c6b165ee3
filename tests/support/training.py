"""Short training runs and evaluations on the slices, as a user types them, but for two things: the handwriting
slice's writers' digits and negatives are read from their pre-drawn files (tests/data/*_slice.npz; drawing the
negatives takes minutes), and training holds out 100 of MNIST's 400 training images instead of the recipe's 5,000.

    python -m tests.support.training train detector --digits app/model ...   # the same, in a process of its own
    python -m tests.support.training evaluate --model DIR --handwriting DIR ...
"""

import os
import sys
from contextlib import contextmanager
from dataclasses import replace
from unittest import mock

from tests.support.paths import NEGATIVES_SLICE, WRITERS_SLICE


@contextmanager
def drawn_slices(module):
    """`module`'s load_writers and load_negatives read the pre-drawn slices, whatever folder they are given."""
    from training.negatives import load_negatives
    from training.strokes import load_writers

    def writers(_, *split, **splits):
        return load_writers(WRITERS_SLICE, *split, **splits)

    def negatives(_, *split, **splits):
        return load_negatives(NEGATIVES_SLICE, *split, **splits)

    with mock.patch.object(module, "load_writers", writers), mock.patch.object(module, "load_negatives", negatives):
        yield


def train_on_slices(*argv, validation_images: int = 100) -> int:
    """training.train's exit status for `argv` (paths may be Path objects). $HANDWRITING_DIR, --handwriting's
    default, is ignored: the run is what `argv` says, whatever data the environment names."""
    from training import fit, train

    with mock.patch.dict(os.environ):
        os.environ.pop("HANDWRITING_DIR", None)
        args, config = train.parse_args([str(arg) for arg in argv])
    with drawn_slices(fit):
        return train.run(args, replace(config, validation_images=validation_images))


def evaluate_on_slices(*argv) -> int:
    """training.evaluate's exit status for `argv`."""
    from training import evaluate

    with drawn_slices(evaluate):
        return evaluate.main([str(arg) for arg in argv])


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    sys.exit(train_on_slices(*rest) if command == "train" else evaluate_on_slices(*rest))
