"""The app in a real browser: headless Chromium draws digits with the mouse and reads the answers.

Proves what only a browser can: the brush is selected when the page loads (a drag draws at once), mouse
strokes on the Sketchpad are read as the right digit with its top 3 and the 28x28 picture the model saw,
in US and continental school styles; a star is "not a digit" (the label's top class, the message saying so)
and can be corrected to the digit meant; the Sketchpad's own "Clear canvas" button brings back the empty
state (no label, no picture, the "Draw one digit" message) and leaves the brush selected. And what a stroke
makes the browser send, counted in the server's request log: its picture once, no uploads.

Chromium and Playwright as tests/support/browser.py says. UPDATE_SCREENSHOT=1 writes the screenshot the
README shows, stamped with the served model (tests/support/screenshot.py); otherwise it goes to pytest's tmp_path:

    UPDATE_SCREENSHOT=1 python -m pytest tests/test_browser.py -k screenshot
"""

import collections
import os
import re

import httpx
import pytest
from playwright.sync_api import expect

from app.corrections import correction_paths, read_correction
from tests.support.browser import (
    ONE,
    SEVEN,
    ZERO,
    brush_button,
    clear_canvas,
    draw,
    expect_empty,
    expect_reads,
    from_template,
    open_app,
)
from tests.support.screenshot import SCREENSHOT, save_screenshot, screenshot_model
from tests.support.server import logged_requests, run_app, stop_app


@pytest.fixture(scope="module")
def app_process(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser-server")
    process, url = run_app(folder, LOG_LEVEL="info")  # each request logged
    process.url, process.corrections = url, folder / "feedback"  # run_app's FEEDBACK_DIR
    yield process
    if died := stop_app(process):
        pytest.fail(f"the server died: {died}")


@pytest.fixture(scope="module")
def app_url(app_process):
    return app_process.url


@pytest.fixture
def page(browser, app_url):
    with open_app(browser, app_url) as page:
        yield page


def test_the_brush_is_selected_on_load_and_a_drawn_1_is_read_at_once(page):
    expect(brush_button(page)).to_have_class(re.compile(r"\bhighlight\b"))
    expect_empty(page)
    draw(page, ONE)  # no click on the brush first
    expect_reads(page, "1")


def test_the_screenshot_shows_a_7_read(page, app_url, tmp_path):
    """The README's screenshot: a 7 drawn and read, stamped with the sha256 of the model that read it."""
    draw(page, SEVEN)
    expect_reads(page, "7")
    page.mouse.move(0, 0)  # the brush's outline off the canvas
    served = httpx.get(f"{app_url}/health").json()["model"]["sha256"]
    path = SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / "screenshot.png"
    save_screenshot(page.screenshot(), path, served)
    assert screenshot_model(path) == served


def test_digits_drawn_one_after_another_are_read_and_cleared(page):
    for digit, strokes in [("7", SEVEN), ("0", ZERO)]:
        draw(page, strokes)
        expect_reads(page, digit)
        clear_canvas(page)
        expect_empty(page)  # and the next digit is drawn without clicking the brush


def test_the_page_hides_nothing_it_shows(page):
    """Every one of the 28 rows of the picture the model saw is on top where it is drawn (nothing covers it), and
    the footer ends in its last link, not in a separator."""
    draw(page, SEVEN)
    expect_reads(page, "7")
    covering = page.evaluate("""() => {  // what in the picture's block is drawn over the picture
        const img = document.querySelector('#seen img'), seen = img.getBoundingClientRect();
        return Array.from(document.querySelectorAll('#seen *')).filter(el => !el.contains(img)
                && !el.closest('[data-testid="status-tracker"].hide')).filter(el => {  // Gradio's idle spinner
            const box = el.getBoundingClientRect(), style = getComputedStyle(el);
            return style.visibility !== 'hidden' && style.display !== 'none' && box.width > 0 && box.height > 0
                && box.bottom > seen.top && box.top < seen.bottom && box.right > seen.left && box.left < seen.right;
        }).map(el => `${el.outerHTML.slice(0, 80)} down to ${el.getBoundingClientRect().bottom}, over ${seen.top}`);
    }""")
    assert covering == [], covering
    footer = page.locator("footer").inner_text().split()
    assert footer[-1] not in ("·", "•", "|"), footer


@pytest.mark.parametrize("template", ["1-long-flag", "7-crossed", "4-open", "9-curved", "2-loop"])
def test_digits_as_schools_outside_the_us_teach_them_are_read(page, template):
    """The continental 1 with its long flag, the crossed 7, the open 4, the 9 with a curved tail and the
    looped 2, drawn with the mouse from training/styles.py's templates."""
    from training.styles import TEMPLATES

    draw(page, from_template(template))
    expect_reads(page, str(TEMPLATES[template][0]))


def test_a_wrong_answer_is_corrected_with_one_click_and_kept(page, app_process, tmp_path):
    """"Wrong? It was…" shows with an answer; a click on the digit meant keeps the drawing as a correction, thanks
    the user and hides the digits until the next answer. Nothing is kept by drawing alone."""
    meant = page.locator("#meant")
    expect(meant).to_be_hidden()  # no answer yet
    kept_before = correction_paths(app_process.corrections)
    draw(page, SEVEN)
    expect_reads(page, "7")
    expect(meant).to_be_visible()
    assert correction_paths(app_process.corrections) == kept_before  # drawing and reading keep nothing
    page.screenshot(path=tmp_path / "correction.png")
    meant.get_by_role("button", name="1", exact=True).click()
    expect(page.get_by_text("Thank you: kept as a 1 (the model read 7)")).to_be_visible()
    expect(meant).to_be_hidden()
    [new] = [path for path in correction_paths(app_process.corrections) if path not in kept_before]
    correction = read_correction(new)
    assert (correction.meant, correction.answered, correction.picture.shape) == (1, 7, (28, 28))
    clear_canvas(page)
    expect(meant).to_be_hidden()
    draw(page, ZERO)
    expect_reads(page, "0")
    expect(meant).to_be_visible()  # offered again with the next answer


def test_the_brush_stays_selected_after_clearing(page):
    """The Sketchpad's clear deselects its tool; the app selects the brush again."""
    expect(brush_button(page)).to_have_class(re.compile(r"\bhighlight\b"))
    clear_canvas(page)
    expect(brush_button(page)).to_have_class(re.compile(r"\bhighlight\b"))
    expect_empty(page)


def test_a_stroke_sends_its_picture_once_and_no_uploads(page, app_process):
    """After a stroke the Sketchpad sends its images (accept_blobs) and the page asks for a reading: nothing
    else. An event with the Sketchpad as its input made the browser upload the three 800x800 images again
    at every status update, many times a stroke (docs/benchmarks.md)."""
    draw(page, ONE)
    expect_reads(page, "1")  # the first reading warms up the model and the page
    clear_canvas(page)
    expect_empty(page)
    before = len(logged_requests(app_process))
    draw(page, ZERO)  # one stroke
    expect_reads(page, "0")
    page.wait_for_timeout(1000)  # anything the page sends late
    sent = collections.Counter(entry["path"].removesuffix("/") for entry in logged_requests(app_process)[before:])
    assert sent["/gradio_api/upload"] == 0, sent
    assert sent["/gradio_api/component_server"] <= 3, sent  # background, layer and composite, once
    assert sent["/gradio_api/queue/join"] == 1, sent  # one reading (its event stream is logged when it ends)
