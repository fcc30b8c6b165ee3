"""The MNIST loader on the real IDX files, and on missing, truncated, corrupt and mismatched ones."""

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from tests.support.paths import MNIST_SLICE
from training.data import MnistError, load_mnist, to_model_input, write_idx

# SHA-256 of the uncompressed files, from ../shared/data/mnist/README.md (the original MNIST's).
ORIGINAL_SHA256 = {
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
}


@pytest.fixture
def slice_copy(tmp_path):
    """A writable copy of the shipped slice, to damage."""
    folder = tmp_path / "mnist"
    shutil.copytree(MNIST_SLICE, folder)
    return folder


def test_slice_is_the_start_of_mnist(mnist_slice):
    assert mnist_slice.x_train.shape == (400, 28, 28) and mnist_slice.x_train.dtype == np.uint8
    assert mnist_slice.x_test.shape == (200, 28, 28)
    assert mnist_slice.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist_slice.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert set(mnist_slice.checksums) == {p.name for p in MNIST_SLICE.glob("*.gz")}


def test_full_mnist_is_the_original(full_mnist, tmp_path):
    assert (len(full_mnist.x_train), len(full_mnist.x_test)) == (60000, 10000)
    assert np.bincount(full_mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    for name, array in [("train-images-idx3-ubyte", full_mnist.x_train),
                        ("train-labels-idx1-ubyte", full_mnist.y_train),
                        ("t10k-images-idx3-ubyte", full_mnist.x_test), ("t10k-labels-idx1-ubyte", full_mnist.y_test)]:
        write_idx(tmp_path / name, array)  # written back, byte for byte the original file
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == ORIGINAL_SHA256[name]


def test_reads_uncompressed_files(slice_copy, mnist_slice):
    for path in slice_copy.glob("*.gz"):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    plain = load_mnist(slice_copy)
    np.testing.assert_array_equal(plain.x_train, mnist_slice.x_train)
    np.testing.assert_array_equal(plain.y_test, mnist_slice.y_test)


def test_reads_keras_npz(tmp_path, mnist_slice):
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, x_train=mnist_slice.x_train, y_train=mnist_slice.y_train,
                        x_test=mnist_slice.x_test, y_test=mnist_slice.y_test)
    from_npz = load_mnist(path)
    np.testing.assert_array_equal(from_npz.x_test, mnist_slice.x_test)
    assert list(from_npz.checksums) == ["mnist.npz"]


def test_npz_missing_an_array(tmp_path, mnist_slice):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=mnist_slice.x_train, y_train=mnist_slice.y_train, x_test=mnist_slice.x_test)
    with pytest.raises(MnistError, match=r"mnist.npz: missing array\(s\) y_test$"):
        load_mnist(path)


def test_missing_file(slice_copy):
    (slice_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MnistError, match=r"t10k-labels-idx1-ubyte\(\.gz\): file not found"):
        load_mnist(slice_copy)


def test_missing_folder_or_wrong_kind_of_path(tmp_path):
    with pytest.raises(MnistError, match="not a folder of IDX files nor an .npz file"):
        load_mnist(tmp_path / "nowhere")


def test_truncated_data(slice_copy):
    path = slice_copy / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(MnistError, match=r"train-images-idx3-ubyte.gz: truncated: header says \[400, 28, 28\] "
                                         r"= 313600 bytes of data, found 313500"):
        load_mnist(slice_copy)


def test_truncated_gzip(slice_copy):
    path = slice_copy / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(MnistError, match="t10k-images-idx3-ubyte.gz: corrupt or truncated gzip data"):
        load_mnist(slice_copy)


def test_corrupt_gzip(slice_copy):
    path = slice_copy / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[100:200] = bytes(100)  # zeroes in the middle of the deflate stream
    path.write_bytes(bytes(data))
    with pytest.raises(MnistError, match="t10k-images-idx3-ubyte.gz: corrupt or truncated gzip data"):
        load_mnist(slice_copy)


def test_wrong_magic_number(slice_copy):
    images, labels = slice_copy / "train-images-idx3-ubyte.gz", slice_copy / "train-labels-idx1-ubyte.gz"
    images.write_bytes(labels.read_bytes())  # a labels file where the images belong
    with pytest.raises(MnistError, match=r"train-images-idx3-ubyte.gz: magic number 2049, expected 2051 \(images"):
        load_mnist(slice_copy)


def test_header_only(slice_copy):
    (slice_copy / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08"))
    with pytest.raises(MnistError, match="t10k-labels-idx1-ubyte.gz: truncated: 3 bytes"):
        load_mnist(slice_copy)


def test_mislabelled_count(slice_copy, mnist_slice):
    write_idx(slice_copy / "t10k-labels-idx1-ubyte.gz", mnist_slice.y_test[:150])
    with pytest.raises(MnistError, match="t10k-images-idx3-ubyte.gz holds 200 images but "
                                         "t10k-labels-idx1-ubyte.gz holds 150 labels"):
        load_mnist(slice_copy)


def test_wrong_image_size(slice_copy):
    write_idx(slice_copy / "t10k-images-idx3-ubyte.gz", np.zeros((200, 32, 32), np.uint8))
    with pytest.raises(MnistError, match=r"t10k-images-idx3-ubyte.gz: images have shape \[200, 32, 32\]"):
        load_mnist(slice_copy)


def test_label_out_of_range(slice_copy, mnist_slice):
    labels = mnist_slice.y_train.copy()
    labels[7] = 10
    write_idx(slice_copy / "train-labels-idx1-ubyte.gz", labels)
    with pytest.raises(MnistError, match="train-labels-idx1-ubyte.gz: label 10 is not a digit 0-9"):
        load_mnist(slice_copy)


def test_to_model_input_meets_the_contract(mnist_slice):
    x = to_model_input(mnist_slice.x_test)
    assert x.shape == (200, 28, 28, 1) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0
    # MNIST polarity: the border is background (black, 0), the ink is white.
    assert x[:, 0, :, 0].max() == 0.0 and x[:, :, 0, 0].max() == 0.0


def test_npz_that_is_not_an_npz(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"this is not a zip archive")
    with pytest.raises(MnistError, match="mnist.npz: not a readable .npz file"):
        load_mnist(path)
