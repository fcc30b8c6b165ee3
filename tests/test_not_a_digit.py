"""The three answers, a digit, "not a digit" and nothing drawn, on every path a person or a program takes: REST,
gradio_client, the page in Chromium, corrections, /metrics and the log, on the shipped model
(docs/model.md#not-a-digit)."""

import json
import time

import httpx
import numpy as np
import pytest
from gradio_client import Client
from PIL import Image
from playwright.sync_api import expect

from app.config import Settings
from app.contract import DIGITS, NOT_A_DIGIT, NOT_A_DIGIT_NAME
from app.corrections import correction_paths, read_correction
from app.reading import Reader
from app.ui import predict
from tests.support.browser import clear_canvas, draw, expect_empty, expect_reads, open_app
from tests.support.drawing import HASH, STAR, browser_png, draw_digit, paint
from tests.support.gradio_api import sketch, sketchpad_value
from tests.support.paths import MODEL_DIR
from tests.support.server import metric_samples, run_app, stop_app

NOT_A_DIGIT_SAID = "That does not look like a digit: of the digits, it looks most like "


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """python -m app on the refusing model, logging each request: (URL, its log, its corrections folder)."""
    folder = tmp_path_factory.mktemp("not-a-digit")
    process, url = run_app(folder, MODEL_DIR=str(MODEL_DIR), LOG_LEVEL="info")
    yield url, process.log, folder / "feedback"
    if died := stop_app(process):
        pytest.fail(f"the server died: {died}")


def post(url: str, picture: bytes) -> dict:
    return httpx.post(f"{url}/predict", content=picture, headers={"Content-Type": "image/png"}, timeout=30).json()


def log_line(log, **fields) -> dict:
    """The first log line holding these fields, waiting a little for the server to write it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("{") and fields.items() <= json.loads(line).items():
                return json.loads(line)
        time.sleep(0.1)
    raise AssertionError(f"no log line with {fields}")


def test_the_model_says_it_refuses(served):
    url, _, _ = served
    assert httpx.get(f"{url}/health").json()["model"]["refuses_non_digits"] is True


@pytest.mark.parametrize("strokes", [STAR, HASH], ids=["star", "hash"])
def test_rest_says_not_a_digit_with_the_digits_it_resembles(served, strokes):
    """"not_a_digit", no digit, the 3 digits it resembles most (their probabilities as the model gave them, so
    small) named in that order in the message; counted apart from the digits, and logged."""
    url, log, _ = served

    def counted() -> tuple[float, float]:
        samples = metric_samples(url)
        return (samples.get(("digits_not_a_digit_total", ()), 0.0),
                sum(value for (name, _), value in samples.items() if name == "digits_predictions_total"))

    before = counted()
    answer = post(url, browser_png(paint(strokes)))
    assert answer["outcome"] == "not_a_digit" and answer["digit"] is None, answer
    top = [guess["digit"] for guess in answer["top"]]
    probabilities = [guess["probability"] for guess in answer["top"]]
    assert len(top) == 3 and set(top) <= set(DIGITS)
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) < 0.5
    assert answer["message"] == NOT_A_DIGIT_SAID + ", then ".join(top) + "."
    assert counted() == (before[0] + 1, before[1])
    assert log_line(log, message="not a digit")["digit"] is None


def test_rest_tells_the_three_outcomes_apart(served, mnist_slice):
    url, _, _ = served
    digit = post(url, browser_png(draw_digit(mnist_slice.x_test[0], np.random.default_rng(3))))
    assert (digit["outcome"], digit["digit"]) == ("digit", str(mnist_slice.y_test[0]))
    assert post(url, browser_png(paint(STAR)))["outcome"] == "not_a_digit"
    blank = post(url, browser_png(Image.new("RGBA", (800, 800), "white")))
    assert (blank["outcome"], blank["digit"], blank["top"]) == ("nothing_drawn", None, [])


def test_a_program_tells_a_digit_not_a_digit_and_nothing_drawn_apart(served, mnist_slice, tmp_path):
    """gradio_client: the Label's value names a digit or "not a digit", and is empty for a blank canvas."""
    url, _, _ = served
    client = Client(url, verbose=False, analytics_enabled=False)
    digit, star, blank = tmp_path / "digit.png", tmp_path / "star.png", tmp_path / "blank.png"
    digit.write_bytes(browser_png(draw_digit(mnist_slice.x_test[0], np.random.default_rng(3))))
    star.write_bytes(browser_png(paint(STAR)))
    Image.new("RGB", (800, 800), "white").save(blank)
    read, refused = (client.predict(sketch(path), api_name="/predict") for path in (digit, star))
    assert read["label"] == str(mnist_slice.y_test[0])
    assert refused["label"] == NOT_A_DIGIT_NAME, refused
    assert [c["label"] for c in refused["confidences"]][0] == NOT_A_DIGIT_NAME and len(refused["confidences"]) == 3
    assert {c["label"] for c in refused["confidences"][1:]} <= set(DIGITS)
    assert client.predict(sketch(blank), api_name="/predict") == {}


def test_the_ui_tops_the_label_with_not_a_digit_and_says_so():
    reader = Reader.load(Settings(model_dir=MODEL_DIR, feedback_dir=None))
    label, seen, message = predict(reader, sketchpad_value(browser_png(paint(STAR))))
    assert max(label, key=label.get) == NOT_A_DIGIT_NAME and seen.shape == (28, 28)
    assert message.startswith(NOT_A_DIGIT_SAID)


def test_a_not_a_digit_answer_is_corrected_and_kept_with_what_was_answered(served):
    """The person says the star is a 3 (wrong, but theirs to say): kept, `answered` NOT_A_DIGIT, thanks saying
    what the model said, counted."""
    url, _, folder = served
    before = metric_samples(url)
    response = httpx.post(f"{url}/feedback", params={"digit": 3}, timeout=30,
                          files={"file": ("star.png", browser_png(paint(STAR)), "image/png")})
    assert response.status_code == 201, response.text
    told = response.json()
    assert (told["meant"], told["answered"], told["verdict"]) == ("3", NOT_A_DIGIT_NAME, "wrong")
    assert told["message"] == ("Thank you: kept as a 3 (the model said it was not a digit). "
                               "It will help the next training.")
    record = read_correction(next(path for path in correction_paths(folder) if path.name == told["record"]))
    assert (record.meant, record.answered) == (3, NOT_A_DIGIT)
    key = ("digits_feedback_total", (("answered", NOT_A_DIGIT_NAME), ("meant", "3"), ("verdict", "wrong")))
    assert metric_samples(url)[key] - before.get(key, 0) == 1


def test_a_star_drawn_in_the_browser_is_not_a_digit_and_can_be_corrected(browser, served):
    """A star drawn with the mouse shows "not a digit" as the label's top class, says so in words, and still
    offers "Wrong? It was…" (0-9 only); a click keeps it with the digit meant, answered NOT_A_DIGIT."""
    url, _, folder = served
    with open_app(browser, url) as page:
        meant = page.locator("#meant")
        kept_before = correction_paths(folder)
        draw(page, STAR)
        expect_reads(page, NOT_A_DIGIT_NAME)
        expect(page.get_by_text(NOT_A_DIGIT_SAID)).to_be_visible()
        expect(meant.get_by_role("button")).to_have_text(DIGITS)
        meant.get_by_role("button", name="3", exact=True).click()
        expect(page.get_by_text("Thank you: kept as a 3 (the model said it was not a digit)")).to_be_visible()
        [new] = [path for path in correction_paths(folder) if path not in kept_before]
        assert (read_correction(new).meant, read_correction(new).answered) == (3, NOT_A_DIGIT)
        clear_canvas(page)
        expect_empty(page)
