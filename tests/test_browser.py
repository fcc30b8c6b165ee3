"""The app in a real browser: headless Chromium draws digits with the mouse and reads the answers.

Proves what only a browser can: the brush is selected when the page loads (a drag draws at once), mouse
strokes on the Sketchpad are read as the right digit with its top 3 and the 28x28 picture the model saw,
and the Sketchpad's own "Clear canvas" button brings back the empty state (no label, no picture, the
"Draw one digit" message) and leaves the brush selected.

Chromium and Playwright as tests/support/browser.py says. UPDATE_SCREENSHOT=1 writes the screenshot the
README shows (docs/screenshot.png); otherwise it goes to pytest's tmp_path:

    UPDATE_SCREENSHOT=1 python -m pytest tests/test_browser.py
"""

import os
import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import (
    ONE,
    SEVEN,
    ZERO,
    brush_button,
    clear_canvas,
    draw,
    expect_empty,
    expect_reads,
    open_app,
)
from tests.support.server import REPO, run_app, stop_app

SCREENSHOT = REPO / "docs" / "screenshot.png"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    process, url = run_app(tmp_path_factory.mktemp("browser-server"))
    yield url
    if died := stop_app(process):
        pytest.fail(f"the server died: {died}")


@pytest.fixture
def page(browser, app_url):
    with open_app(browser, app_url) as page:
        yield page


def test_the_brush_is_selected_on_load_and_a_drawn_1_is_read_at_once(page):
    expect(brush_button(page)).to_have_class(re.compile(r"\bhighlight\b"))
    expect_empty(page)
    draw(page, ONE)  # no click on the brush first
    expect_reads(page, "1")


def test_digits_drawn_one_after_another_are_read_and_cleared(page, tmp_path):
    for digit, strokes in [("7", SEVEN), ("0", ZERO)]:
        draw(page, strokes)
        expect_reads(page, digit)
        if digit == "7":
            page.mouse.move(0, 0)  # the brush's outline off the canvas
            screenshot = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "screenshot.png"
            page.screenshot(path=screenshot)
        clear_canvas(page)
        expect_empty(page)  # and the next digit is drawn without clicking the brush


def test_the_brush_stays_selected_after_clearing(page):
    """The Sketchpad's clear deselects its tool; the app selects the brush again."""
    expect(brush_button(page)).to_have_class(re.compile(r"\bhighlight\b"))
    clear_canvas(page)
    expect(brush_button(page)).to_have_class(re.compile(r"\bhighlight\b"))
    expect_empty(page)
