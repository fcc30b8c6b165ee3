"""The README's screenshot (docs/screenshot.png), stamped with the sha256 of the model it shows, so that a test
without a browser (tests/test_screenshot.py) sees when it no longer shows the shipped model."""

import io
from pathlib import Path

from PIL import Image, PngImagePlugin

from tests.support.paths import REPO

SCREENSHOT = REPO / "docs" / "screenshot.png"
MODEL_KEY = "model sha256"  # the PNG text chunk's keyword
REFRESH = "UPDATE_SCREENSHOT=1 python -m pytest tests/test_browser.py -k screenshot"


def save_screenshot(png: bytes, path: Path, model_sha256: str) -> None:
    """Write the page's PNG with the model's sha256 in a text chunk, in 256 colours (a third of the bytes;
    the page has few colours)."""
    stamp = PngImagePlugin.PngInfo()
    stamp.add_text(MODEL_KEY, model_sha256)
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    image.save(path, pnginfo=stamp, optimize=True)


def screenshot_model(path: Path) -> str | None:
    """The sha256 of the model a screenshot shows, or None if it was never stamped."""
    with Image.open(path) as image:
        return image.text.get(MODEL_KEY)
