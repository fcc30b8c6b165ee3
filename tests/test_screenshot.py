"""The README's screenshot shows the model the app ships: its stamp (tests/support/screenshot.py) is the shipped
model's sha256. No browser: a model retrained without refreshing the screenshot fails here, cheaply."""

import json

from app.contract import METADATA_FILE, TFLITE_FILE
from tests.support.paths import MODEL_DIR, REPO
from tests.support.screenshot import REFRESH, SCREENSHOT, screenshot_model


def test_the_readme_screenshot_shows_the_shipped_model():
    shipped = json.loads((MODEL_DIR / METADATA_FILE).read_text())["files"][TFLITE_FILE]["sha256"]
    shown = screenshot_model(SCREENSHOT)
    assert shown == shipped, (f"{SCREENSHOT.relative_to(REPO)} shows the model {shown or '(no stamp)'}, not the "
                              f"shipped {shipped}: refresh it with `{REFRESH}`")
