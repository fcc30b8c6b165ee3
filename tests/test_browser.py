"""The app in a real browser: headless Chromium draws digits with the mouse and reads the answers.

Proves what only a browser can: the brush is selected when the page loads (a drag draws at once), mouse
strokes on the Sketchpad are read as the right digit with its top 3 and the 28x28 picture the model saw,
and the Sketchpad's own "Clear canvas" button brings back the empty state (no label, no picture, the
"Draw one digit" message) and leaves the brush selected.

Needs Chromium (`CHROMIUM`, default Debian's /usr/bin/chromium) and the `playwright` package, which drives
it without downloading a browser. Without Chromium these tests are skipped, unless REQUIRE_BROWSER=1 (as
.ci/run sets), which makes them fail instead. UPDATE_SCREENSHOT=1 writes the screenshot the README shows
(docs/screenshot.png); otherwise it goes to pytest's tmp_path:

    UPDATE_SCREENSHOT=1 python -m pytest tests/test_browser.py
"""

import math
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from app.ui import CANVAS, EMPTY_MESSAGE
from tests.conftest import REPO
from tests.test_server import run_app

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOT = REPO / "docs" / "screenshot.png"
# Every wait is for a condition; the limit is generous because each mouse move over the canvas costs about
# half a second of software WebGL here, and other tests may share the two cores.
expect.set_options(timeout=30_000)


def arc(centre_x, centre_y, radius_x, radius_y, start_degrees, end_degrees, points):
    """Points along an ellipse, in canvas pixels (y down, 0 degrees pointing right, 90 down)."""
    angles = [math.radians(start_degrees + (end_degrees - start_degrees) * i / (points - 1)) for i in range(points)]
    return [(centre_x + radius_x * math.cos(a), centre_y + radius_y * math.sin(a)) for a in angles]


# Each digit is a list of strokes; each stroke a list of points on the app's 800x800 canvas. Few points
# per stroke: the brush joins them with straight lines, and each point is a slow mouse move.
ONE = [[(410, 170), (390, 630)]]
SEVEN = [[(250, 190), (550, 190), (370, 630)]]
ZERO = [arc(400, 400, 150, 230, -90, 270, 9)]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} for the browser tests: install Debian's chromium; .ci/run does"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    process, url = run_app(tmp_path_factory.mktemp("browser-server"))
    yield url
    if process.poll() is not None:
        pytest.fail(f"the server died ({process.returncode}): {process.log.read_text()[-3000:]}")
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def page(browser, app_url):
    """A fresh page (its own session) with the app loaded and the Sketchpad ready."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(app_url)
    expect(page.locator(".pixi-target canvas")).to_be_visible()
    yield page
    context.close()


def brush_button(page):
    return page.get_by_label("Brush", exact=True)


def draw(page, strokes):
    """Drag the mouse along each stroke, mapping canvas pixels to the page.

    The Sketchpad shows its 800x800 drawing area centred in its <canvas> element, scaled by the zoom its
    toolbar shows (e.g. "62%").
    """
    box = page.locator(".pixi-target canvas").bounding_box()
    zoom = int(page.get_by_role("button", name=re.compile(r"^\d+%$")).inner_text().rstrip("%")) / 100
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def on_page(point):
        x, y = point
        return centre_x + (x - CANVAS[0] / 2) * zoom, centre_y + (y - CANVAS[1] / 2) * zoom

    for stroke in strokes:
        page.mouse.move(*on_page(stroke[0]))
        page.mouse.down()
        for point in stroke[1:]:
            page.mouse.move(*on_page(point))
        page.mouse.up()


def expect_reads(page, digit: str):
    """The label names `digit` with three guesses, the 28x28 picture shows and the empty message is gone."""
    expect(page.get_by_test_id("label-output-value")).to_have_text(digit)
    expect(page.locator("[data-testid$='-confidence-set']")).to_have_count(3)
    expect(page.locator("#seen img")).to_have_js_property("naturalWidth", 28)
    expect(page.get_by_text(EMPTY_MESSAGE)).to_have_count(0)


def expect_empty(page):
    """No label, no 28x28 picture, and the message asking for a digit (alone or after "Nothing to read: ...")."""
    expect(page.get_by_test_id("label-output-value")).to_have_count(0)
    expect(page.locator("#seen img")).to_have_count(0)
    expect(page.get_by_text(EMPTY_MESSAGE)).to_be_visible()


def clear_canvas(page):
    page.get_by_label("Clear canvas", exact=True).click()


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
