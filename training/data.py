"""The one MNIST loader, for local training, the Azure ML components, evaluation and the tests; and the
loader of the users' corrections.

    mnist = load_mnist(os.environ["MNIST_DIR"])   # a folder of the four IDX files, gzipped or not
    mnist = load_mnist("mnist.npz")              # Keras' mnist.npz
    mnist = load_mnist()                         # keras.datasets.mnist.load_data() (needs internet)

Every file is checked (magic number, dimensions, length, image/label counts, label range); a bad
one raises MnistError naming the file and what is wrong with it.

    corrections = load_corrections("feedback")   # the users' corrections a person accepted (FEEDBACK_DIR/accepted)
    corrections = load_corrections("feedback", include_unreviewed=True)   # and those waiting for review

Each record's split is fixed by a hash of its file name: a record kept out for validation is never trained on,
and reviewing it (training.review moves it under the same name) does not change its split.
"""

import gzip
import hashlib
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.contract import IMAGE_SIZE, NUM_DIGITS, check_input
from app.corrections import ACCEPTED, Correction, UnreadableCorrection, correction_paths, read_correction

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CORRECTIONS_KEPT_OUT_ONE_IN = 5  # 1 correction record in 5, chosen by its name's hash, is kept out for validation


class MnistError(ValueError):
    """A data file is missing, truncated or not what MNIST should be."""


class CorrectionsError(ValueError):
    """The corrections folder is missing or not a folder."""


@dataclass(frozen=True)
class Mnist:
    """MNIST as uint8 arrays: images [N, 28, 28] (0 = background), labels [N] in 0-9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # where it was read from
    checksums: dict[str, str]  # file name -> SHA-256 of the file as stored


def load_mnist(path: str | Path | None = None) -> Mnist:
    """Load MNIST from an IDX folder, an .npz file, or (no path) Keras' download."""
    if path is None:
        return load_keras_download()
    path = Path(path)
    if path.is_dir():
        return load_idx_folder(path)
    if path.suffix == ".npz":
        return load_npz(path)
    raise MnistError(f"{path}: not a folder of IDX files nor an .npz file")


def load_idx_folder(folder: Path) -> Mnist:
    """Read the four IDX files (each plain or .gz) from `folder`."""
    arrays, checksums = {}, {}
    for split, (images_stem, labels_stem) in IDX_FILES.items():
        images_path = find_idx_file(folder, images_stem)
        labels_path = find_idx_file(folder, labels_stem)
        images_data, labels_data = images_path.read_bytes(), labels_path.read_bytes()
        checksums[images_path.name] = hashlib.sha256(images_data).hexdigest()
        checksums[labels_path.name] = hashlib.sha256(labels_data).hexdigest()
        images = parse_idx(images_data, images_path, IMAGES_MAGIC)
        labels = parse_idx(labels_data, labels_path, LABELS_MAGIC)
        check_pair(images, labels, images_path.name, labels_path.name)
        arrays[split] = images, labels
    return Mnist(*arrays["train"], *arrays["test"], source=str(folder), checksums=checksums)


def find_idx_file(folder: Path, stem: str) -> Path:
    """The file `stem` or `stem.gz` in `folder`."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise MnistError(f"{folder / stem}(.gz): file not found")


def parse_idx(data: bytes, path: Path, magic: int) -> np.ndarray:
    """Decode one IDX file's bytes (gzipped or not) into a uint8 array, checking its header."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise MnistError(f"{path}: corrupt or truncated gzip data ({error})") from None
    if len(data) < 4:
        raise MnistError(f"{path}: truncated: {len(data)} bytes, too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise MnistError(f"{path}: magic number {found}, expected {magic} "
                         f"({'images' if magic == IMAGES_MAGIC else 'labels'} file)")
    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise MnistError(f"{path}: truncated header: {len(data)} bytes, expected {header_size}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape))
    found_size = len(data) - header_size
    if found_size != expected:
        problem = "truncated" if found_size < expected else "has trailing bytes"
        raise MnistError(f"{path}: {problem}: header says {list(shape)} = {expected} bytes of data, "
                         f"found {found_size}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str) -> None:
    """Images are [N, 28, 28], labels [N] in 0-9, with the same N."""
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise MnistError(f"{images_name}: images have shape {list(images.shape)}, expected [N, 28, 28]")
    if labels.ndim != 1:
        raise MnistError(f"{labels_name}: labels have shape {list(labels.shape)}, expected [N]")
    if len(images) != len(labels):
        raise MnistError(f"{images_name} holds {len(images)} images but {labels_name} "
                         f"holds {len(labels)} labels")
    if len(labels) and labels.max() >= NUM_DIGITS:
        raise MnistError(f"{labels_name}: label {labels.max()} is not a digit 0-9")


def load_npz(path: Path) -> Mnist:
    """Read Keras' mnist.npz (x_train, y_train, x_test, y_test)."""
    if not path.is_file():
        raise MnistError(f"{path}: file not found")
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise MnistError(f"{path}: not a readable .npz file ({error})") from None
    with npz:
        missing = [key for key in keys if key not in npz.files]
        if missing:
            raise MnistError(f"{path}: missing array(s) {', '.join(missing)}")
        try:
            arrays = {key: np.asarray(npz[key]) for key in keys}
        except (OSError, ValueError, zlib.error) as error:
            raise MnistError(f"{path}: corrupt array data ({error})") from None
    for key, array in arrays.items():
        if array.dtype != np.uint8:
            raise MnistError(f"{path}: {key} has dtype {array.dtype}, expected uint8")
    check_pair(arrays["x_train"], arrays["y_train"], f"{path}:x_train", f"{path}:y_train")
    check_pair(arrays["x_test"], arrays["y_test"], f"{path}:x_test", f"{path}:y_test")
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    return Mnist(**arrays, source=str(path), checksums={path.name: checksum})


def load_keras_download() -> Mnist:
    """keras.datasets.mnist.load_data(): downloads mnist.npz to ~/.keras/datasets on first use."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # the download raises many kinds of error when offline
        raise MnistError(f"keras.datasets.mnist.load_data() failed ({error}); "
                         "pass --data with an IDX folder or mnist.npz instead") from None
    check_pair(x_train, y_train, "x_train", "y_train")
    check_pair(x_test, y_test, "x_test", "y_test")
    arrays = hashlib.sha256(b"".join(a.tobytes() for a in (x_train, y_train, x_test, y_test)))
    return Mnist(x_train, y_train, x_test, y_test, source="keras.datasets.mnist",
                 checksums={"keras mnist.npz arrays": arrays.hexdigest()})

def add_corrections_options(parser, use: str) -> None:
    """--feedback and --feedback-unreviewed, as training and evaluation both take them; `use` says what is done
    with the corrections folder's records."""
    parser.add_argument("--feedback", type=Path, help=f"the users' corrections folder (FEEDBACK_DIR): {use}")
    parser.add_argument("--feedback-unreviewed", action="store_true", help="with --feedback: the corrections still "
                        "waiting for review (its top level) too; never the rejected ones")


def check_corrections_options(parser, args) -> None:
    """The one rule between the two options."""
    if args.feedback_unreviewed and not args.feedback:
        parser.error("--feedback-unreviewed needs --feedback")


def load_corrections(folder: str | Path, include_unreviewed: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """The records of a corrections folder that training reads (read_corrections), both corrections and
    confirmations, split by corrections_split: {"training": {...}, "validation": {...}}, each with images uint8
    [N, 28, 28], labels (the digit meant), answered (the digit the model in service answered), reviewed (True: a
    person accepted it) and names (the record files). A record that cannot be read is skipped with a warning:
    one bad file must not stop a training run."""
    folder = Path(folder)
    readable, unreadable = read_corrections(folder, include_unreviewed)
    for error in unreadable:
        warnings.warn(f"skipped a record of {folder}: {error}", stacklevel=2)
    splits = {"training": [], "validation": []}
    for path, record in readable:
        splits[corrections_split(path.name)].append((path.name, path.parent == folder / ACCEPTED, record))
    return {which: corrections_arrays(records) for which, records in splits.items()}


def read_corrections(folder: Path, include_unreviewed: bool = False) -> tuple[list[tuple[Path, Correction]], list[str]]:
    """The readable records training reads from a corrections folder (FEEDBACK_DIR), with their paths, and why
    each other one is unreadable: the records a person accepted (its accepted/ folder, absent until the first
    review) and, with include_unreviewed, those still waiting for review at its top level too; never the
    rejected ones. CorrectionsError when the folder is missing or not a folder. (Azure ML's upload checks the
    folder here.)"""
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "folder not found"
        raise CorrectionsError(f"{folder}: {problem}; expected the corrections folder (FEEDBACK_DIR)")
    paths = correction_paths(folder / ACCEPTED) + (correction_paths(folder) if include_unreviewed else [])
    return read_records(sorted(paths, key=lambda path: path.name))  # by name: the same order, reviewed or not


def read_records(paths: list[Path]) -> tuple[list[tuple[Path, Correction]], list[str]]:
    """The readable records among `paths`, each with its path, and why each other one is unreadable."""
    readable, unreadable = [], []
    for path in paths:
        try:
            readable.append((path, read_correction(path)))
        except UnreadableCorrection as error:
            unreadable.append(str(error))
    return readable, unreadable


def corrections_split(name: str) -> str:
    """"validation" for 1 record name in CORRECTIONS_KEPT_OUT_ONE_IN, else "training". Chosen by a hash of the
    name, never by position or chance: a record stays in its split however the folder grows."""
    number = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return "validation" if number % CORRECTIONS_KEPT_OUT_ONE_IN == 0 else "training"


def corrections_arrays(records: list[tuple[str, bool, Correction]]) -> dict[str, np.ndarray]:
    """(name, reviewed, Correction) triples as arrays, in the order given."""
    return {
        "images": np.array([record.picture for *_, record in records], np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE),
        "labels": np.array([record.meant for *_, record in records], np.uint8),
        "answered": np.array([record.answered for *_, record in records], np.uint8),
        "reviewed": np.array([reviewed for _, reviewed, _ in records], bool),
        "names": np.array([name for name, *_ in records], str),
    }


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 MNIST images [N, 28, 28] -> the model contract: float32 [N, 28, 28, 1] in [0, 1]."""
    return check_input((images.astype(np.float32) / 255.0)[..., np.newaxis])


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzipped if `path` ends in .gz (the inverse of parse_idx)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    data = header + array.tobytes()
    path = Path(path)
    # mtime=0 keeps the gzipped bytes, and so their checksum, the same on every run.
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
