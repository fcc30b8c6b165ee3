"""Where things are: the repository, and the data the tests and benchmarks read from it."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MNIST_SLICE = REPO / "tests" / "data" / "mnist"  # the start of MNIST, in its IDX files
BROWSER_COMPOSITE = REPO / "tests" / "data" / "browser_composite.png"  # a "7" drawn in Chromium
MODEL_DIR = REPO / "app" / "model"  # the model the app ships
STYLE_SLICE = REPO / "tests" / "data" / "style_slice.npz"  # every 10th image of the style set
WRITERS_SLICE = REPO / "tests" / "data" / "writers_slice.npz"  # every 10th real writer's digit, drawn and read
HANDWRITING_SLICE = REPO / "tests" / "data" / "handwriting"  # every 100th recorded character, as pen strokes
NEGATIVES_SLICE = REPO / "tests" / "data" / "negatives_slice.npz"  # every 40th drawing that is no digit
