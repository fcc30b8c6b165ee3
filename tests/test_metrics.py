"""Metrics and logs for operators, from a real server: /metrics counts what happened, and every log
line is JSON carrying the request id that the response returns."""

import json
import time

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from app.contract import METADATA_FILE
from tests.support.drawing import browser_png, draw_digit
from tests.support.gradio_api import call_predict, sketch, upload, uploaded_sketch
from tests.support.paths import MODEL_DIR
from tests.support.server import metric_samples, run_app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process, url = run_app(tmp_path_factory.mktemp("metrics"), LOG_LEVEL="info", MAX_UPLOAD_MB="1")
    yield url, process.log
    process.terminate()
    process.wait(timeout=30)


NATIVE_NOTICE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."  # LiteRT's C++ writes it at start-up


def log_lines(log) -> list[dict]:
    """The server's log as JSON objects; any line that is not JSON fails, but LiteRT's own start-up notice.
    A last line still being written (no newline yet) is left for the next read."""
    complete = log.read_text().rpartition("\n")[0]
    return [json.loads(line) for line in complete.splitlines() if line.strip() and line != NATIVE_NOTICE]


def wait_for_log_line(log, **fields) -> dict:
    """The first log line holding these fields, waiting a little for the server to write it."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for line in log_lines(log):
            if fields.items() <= line.items():
                return line
        time.sleep(0.1)
    raise AssertionError(f"no log line with {fields}")


def test_counts_predictions_by_digit_nothing_to_read_and_errors(server, mnist_slice, tmp_path):
    url, _ = server
    client = Client(url, verbose=False, analytics_enabled=False)
    before = metric_samples(url)
    digit, label = mnist_slice.x_test[4], str(mnist_slice.y_test[4])
    drawn = tmp_path / "digit.png"
    drawn.write_bytes(browser_png(draw_digit(digit, np.random.default_rng(4))))
    for _ in range(3):
        assert client.predict(sketch(drawn), api_name="/predict")["label"] == label
    blank = tmp_path / "blank.png"
    Image.new("RGB", (800, 800), "white").save(blank)
    assert client.predict(sketch(blank), api_name="/predict") == {}
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(AppError):
        client.predict(sketch(junk), api_name="/predict")
    too_big = httpx.post(f"{url}/gradio_api/upload", files={"files": ("big.png", b"0" * 2 * 1024 * 1024)})
    assert too_big.status_code == 413

    after = metric_samples(url)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("digits_predictions_total", digit=label) == 3
    assert sum(after.get(key, 0) - before.get(key, 0) for key in after if key[0] == "digits_predictions_total") == 3
    assert grew("digits_not_a_digit_total") == 0
    assert grew("digits_prediction_seconds_count") == 3  # every picture answered
    assert grew("digits_nothing_to_read_total") == 1
    assert grew("digits_prediction_errors_total", reason="unreadable_image") == 1
    assert grew("digits_http_responses_total", status="413") == 1


def test_names_the_model_served(server):
    url, _ = server
    metadata = json.loads((MODEL_DIR / METADATA_FILE).read_text())
    [(key, value)] = [(key, value) for key, value in metric_samples(url).items() if key[0] == "digits_model_info"]
    labels = dict(key[1])
    assert value == 1 and labels["sha256"] == metadata["files"]["model.tflite"]["sha256"]
    assert float(labels["test_accuracy"]) == metadata["test_accuracy"]


def test_every_request_gets_an_id_returned_and_logged(server):
    url, log = server
    given = httpx.get(f"{url}/health", headers={"X-Request-ID": "probe-1234"})
    assert given.headers["x-request-id"] == "probe-1234"
    made = httpx.get(f"{url}/health/live")
    assert len(made.headers["x-request-id"]) == 32  # made here when the caller sent none
    odd = httpx.get(f"{url}/health", headers={"X-Request-ID": "no spaces or {braces}"})
    assert odd.headers["x-request-id"] != "no spaces or {braces}"  # not echoed into logs as given
    probe = wait_for_log_line(log, message="request", request_id="probe-1234")
    assert probe["path"] == "/health" and probe["status"] == 200
    wait_for_log_line(log, message="request", request_id=made.headers["x-request-id"])
    assert all("request_id" in line for line in log_lines(log) if line["message"] == "request")  # all JSON


def test_a_predictions_log_line_carries_the_callers_request_id(server, mnist_slice, tmp_path):
    url, log = server
    png = browser_png(draw_digit(mnist_slice.x_test[5], np.random.default_rng(5)))
    event, _ = call_predict(url, [uploaded_sketch(upload(url, png))], headers={"X-Request-ID": "draw-5"})
    assert event == "complete"
    prediction = wait_for_log_line(log, message="prediction", request_id="draw-5")
    assert prediction["digit"] == str(mnist_slice.y_test[5]) and 0 < prediction["confidence"] <= 1


def test_the_api_still_takes_one_input(server):
    url, _ = server
    info = httpx.get(f"{url}/gradio_api/info").json()
    assert len(info["named_endpoints"]["/predict"]["parameters"]) == 1  # gr.Request is not an input
