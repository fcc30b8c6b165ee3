"""Cut the repository's MNIST slice from the full data set, in the original gzipped IDX format.

    python -m tests.data.make_mnist_slice MNIST tests/data/mnist

The first 400 training and 200 test images of MNIST, unchanged. Gzip's timestamp is zeroed, so a
rerun writes the same bytes.
"""

import sys
from pathlib import Path

from training.data import IDX_FILES, load_mnist, write_idx

TRAIN_IMAGES, TEST_IMAGES = 400, 200


def main(source: str, destination: str) -> None:
    mnist = load_mnist(source)
    out = Path(destination)
    out.mkdir(parents=True, exist_ok=True)
    (train_images, train_labels), (test_images, test_labels) = IDX_FILES.values()
    write_idx(out / f"{train_images}.gz", mnist.x_train[:TRAIN_IMAGES])
    write_idx(out / f"{train_labels}.gz", mnist.y_train[:TRAIN_IMAGES])
    write_idx(out / f"{test_images}.gz", mnist.x_test[:TEST_IMAGES])
    write_idx(out / f"{test_labels}.gz", mnist.y_test[:TEST_IMAGES])


if __name__ == "__main__":
    main(*sys.argv[1:3])
