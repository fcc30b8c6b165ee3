"""The app in a real browser: headless Chromium driven by Playwright, drawing on the Sketchpad with the mouse.

Needs Chromium (`CHROMIUM`, default Debian's /usr/bin/chromium) and the `playwright` package, which drives
it without downloading a browser. Without Chromium the browser tests are skipped, unless REQUIRE_BROWSER=1
(as .ci/run sets), which makes them fail instead.
"""

import math
import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from app.ui import CANVAS, EMPTY_MESSAGE

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
# Every wait is for a condition; the limit is generous because each mouse move over the canvas is slow in
# software WebGL, and other tests may share the machine's cores.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)


def arc(centre_x, centre_y, radius_x, radius_y, start_degrees, end_degrees, points):
    """Points along an ellipse, in canvas pixels (y down, 0 degrees pointing right, 90 down)."""
    angles = [math.radians(start_degrees + (end_degrees - start_degrees) * i / (points - 1)) for i in range(points)]
    return [(centre_x + radius_x * math.cos(a), centre_y + radius_y * math.sin(a)) for a in angles]


# Each digit is a list of strokes; each stroke a list of points on the app's 800x800 canvas. Few points
# per stroke: the brush joins them with straight lines, and each point is a slow mouse move.
ONE = [[(410, 170), (390, 630)]]
SEVEN = [[(250, 190), (550, 190), (370, 630)]]
ZERO = [arc(400, 400, 150, 230, -90, 270, 9)]


def from_template(name: str, height: int = 480, points_per_stroke: int = 12):
    """A stroke template of training/styles.py (a unit box, the digit 0.6 wide) as canvas strokes: centred,
    `height` pixels tall, each stroke cut to at most `points_per_stroke` evenly spaced points."""
    from training.styles import TEMPLATES

    left, top = (CANVAS[0] - 0.6 * height) / 2, (CANVAS[1] - height) / 2
    strokes = []
    for stroke in TEMPLATES[name][1]:
        step = max(1, math.ceil((len(stroke) - 1) / (points_per_stroke - 1)))
        kept = stroke[::step] if (len(stroke) - 1) % step == 0 else [*stroke[::step], stroke[-1]]
        strokes.append([(left + x * height, top + y * height) for x, y in kept])
    return strokes


@contextmanager
def chromium():
    """A headless Chromium, or a skip (a failure with REQUIRE_BROWSER=1) saying how to get one."""
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} for the browser tests: install Debian's chromium; .ci/run does"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def open_app(browser: Browser, url: str):
    """A fresh page (its own session) with the app loaded and the Sketchpad ready."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    expect(page.locator(".pixi-target canvas")).to_be_visible()
    yield page
    context.close()


def brush_button(page: Page):
    return page.get_by_label("Brush", exact=True)


def draw(page: Page, strokes, midway=None):
    """Drag the mouse along each stroke, mapping canvas pixels to the page; call `midway()`, if given, once
    the first stroke's second point is drawn, with the mouse button still down.

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
        for index, point in enumerate(stroke[1:]):
            page.mouse.move(*on_page(point))
            if midway and index == 0:
                midway()
                midway = None
        page.mouse.up()


def expect_reads(page: Page, digit: str):
    """The label names `digit` with three guesses, the 28x28 picture shows and the empty message is gone."""
    expect(page.get_by_test_id("label-output-value")).to_have_text(digit)
    expect(page.locator("[data-testid$='-confidence-set']")).to_have_count(3)
    expect(page.locator("#seen img")).to_have_js_property("naturalWidth", 28)
    expect(page.get_by_text(EMPTY_MESSAGE)).to_have_count(0)


def expect_empty(page: Page):
    """No label, no 28x28 picture, and the message asking for a digit (alone or after "Nothing to read: ...")."""
    expect(page.get_by_test_id("label-output-value")).to_have_count(0)
    expect(page.locator("#seen img")).to_have_count(0)
    expect(page.get_by_text(EMPTY_MESSAGE)).to_be_visible()


def clear_canvas(page: Page):
    page.get_by_label("Clear canvas", exact=True).click()
