"""Shared fixtures: the MNIST slice the repository ships, and the full data set when MNIST_DIR names it; a
server and a browser for a module. What tests import is in tests/support/."""

import os

import pytest

from tests.support.paths import MNIST_SLICE, STYLE_SLICE, WRITERS_SLICE


@pytest.fixture(scope="session")
def mnist_slice():
    from training.data import load_mnist

    return load_mnist(MNIST_SLICE)


@pytest.fixture(scope="session")
def style_slice():
    from training.styles import load_style_set

    return load_style_set(STYLE_SLICE)


@pytest.fixture(scope="session")
def style_validation():
    """The style set's whole validation split (held-out fonts and templates), drawn now: slow, so once a session."""
    from training.styles import style_set

    return style_set("validation")


def full_data(variable: str, what: str) -> str:
    """The folder $variable names; the test is skipped, saying so, when it is not set."""
    if not (folder := os.environ.get(variable)):
        pytest.skip(f"full-data check skipped: set {variable} to {what}")
    return folder


@pytest.fixture(scope="session")
def full_mnist():
    """The full MNIST from $MNIST_DIR."""
    from training.data import load_mnist

    return load_mnist(full_data("MNIST_DIR", "a folder of the four MNIST IDX files"))


@pytest.fixture(scope="session")
def writers_slice():
    from training.strokes import load_writers

    return load_writers(WRITERS_SLICE)


@pytest.fixture(scope="session")
def handwriting_dir():
    """The full handwriting folder (real writers' pen strokes) from $HANDWRITING_DIR."""
    return full_data("HANDWRITING_DIR", "the handwriting folder of pen strokes")


@pytest.fixture(scope="session")
def full_writers_validation(handwriting_dir):
    """The real writers kept out, drawn now from $HANDWRITING_DIR: slow, so once a session."""
    from training.strokes import load_writers

    return load_writers(handwriting_dir, which=("validation",))["validation"]


@pytest.fixture(scope="session")
def full_negatives_validation(handwriting_dir):
    """The drawings that are no digit kept out (whole writers, whole kinds), drawn now from $HANDWRITING_DIR:
    slow, so once a session."""
    from training.negatives import load_negatives

    return load_negatives(handwriting_dir, which=("validation",))["validation"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """python -m app with 1 MB uploads, for one test module: its URL (test_bad_input.py has its own)."""
    from tests.support.server import run_app, stop_app

    process, url = run_app(tmp_path_factory.mktemp("server"), MAX_UPLOAD_MB="1")
    yield url
    if died := stop_app(process):
        pytest.fail(f"the server died: {died}")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (tests/support/browser.py) for a module's browser tests. Not for the whole session:
    Playwright's sync API keeps an event loop running, and asyncio.run() elsewhere refuses to start then."""
    from tests.support.browser import chromium

    with chromium() as browser:
        yield browser
