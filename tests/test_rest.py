"""POST /predict on a real server (python -m app), as curl and httpx send it, and /docs in the real browser offline.

Proved: MNIST test digits drawn on 800x800 canvases are read right as multipart uploads (what `curl -F
file=@digit.png` sends) and as raw image bodies alike; a blank picture is "nothing to read", never a digit; a
star and a hash (#) are "not a digit", with the digits they resemble, counted apart from the digits;
junk, truncated, enormous and oversized pictures, other content types and a missing field get a 4xx with the
reason, and the server goes on; the answers are counted in /metrics like the Gradio path's; and /docs shows
the endpoint with every request off this server blocked. (Two replicas without affinity: tests/test_replicas.py.)

    python -m pytest tests/test_rest.py
"""

import json
import os

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from app.contract import METADATA_FILE
from tests.support.browser import VIEWPORT
from tests.support.drawing import browser_png, draw_digit, huge_png_header, png_bytes
from tests.support.paths import MODEL_DIR
from tests.support.server import metric_samples


def post_file(url: str, content: bytes, name: str = "digit.png") -> httpx.Response:
    return httpx.post(f"{url}/predict", files={"file": (name, content, "image/png")}, timeout=30)


def post_body(url: str, content: bytes, kind: str = "image/png") -> httpx.Response:
    return httpx.post(f"{url}/predict", content=content, headers={"Content-Type": kind}, timeout=30)


def test_drawn_digits_are_read_as_uploads_and_as_raw_bodies(server, mnist_slice):
    rng = np.random.default_rng(21)
    sha = json.loads((MODEL_DIR / METADATA_FILE).read_text())["files"]["model.tflite"]["sha256"]
    right = 0
    for index, (digit, label) in enumerate(zip(mnist_slice.x_test[:100], mnist_slice.y_test[:100], strict=True)):
        png = browser_png(draw_digit(digit, rng))
        response = post_file(server, png) if index % 2 else post_body(server, png)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["model_sha256"] == sha and answer["message"] == "" and answer["outcome"] == "digit"
        assert [guess["digit"] for guess in answer["top"]][0] == answer["digit"] and len(answer["top"]) == 3
        assert sum(guess["probability"] for guess in answer["top"]) <= 1 + 1e-6
        right += answer["digit"] == str(label)
    assert right >= 98, f"{right} of 100 read right"


def test_a_blank_picture_is_nothing_to_read_never_a_digit(server):
    white = png_bytes(Image.new("RGB", (400, 400), "white"))
    specks = Image.new("L", (800, 800), 255)
    specks.putpixel((100, 100), 0)
    specks.putpixel((700, 600), 0)
    for picture in (white, png_bytes(specks)):
        answer = post_file(server, picture).json()
        assert answer["outcome"] == "nothing_drawn" and answer["digit"] is None and answer["top"] == []
        assert answer["message"].startswith("Nothing to read: ")


@pytest.mark.parametrize("send", [post_file, post_body], ids=["multipart", "raw"])
def test_bad_pictures_get_a_4xx_with_the_reason_and_the_server_goes_on(server, send, mnist_slice):
    truncated = browser_png(draw_digit(mnist_slice.x_test[1], np.random.default_rng(0)))[:2000]
    cases = [(b"this is not an image", 400, "Could not read the image: not an image file"),
             (truncated, 400, "Could not read the image: "),
             (huge_png_header(30_000, 30_000), 400, "image is larger than 16 megapixels"),
             (os.urandom(2 * 1024 * 1024), 413, "larger than 1 MB")]  # the server's MAX_UPLOAD_MB=1
    for content, status, reason in cases:
        response = send(server, content)
        assert response.status_code == status and reason in response.json()["detail"], response.text
    assert httpx.get(f"{server}/health").status_code == 200
    good = browser_png(draw_digit(mnist_slice.x_test[2], np.random.default_rng(1)))
    assert send(server, good).json()["digit"] == str(mnist_slice.y_test[2])


def test_wrong_content_types_and_a_missing_field_are_refused_saying_how_to_send(server):
    response = httpx.post(f"{server}/predict", data={"x": "1"})
    assert response.status_code == 415 and "multipart/form-data with a `file` field" in response.json()["detail"]
    response = httpx.post(f"{server}/predict", json={"file": "digit.png"})
    assert response.status_code == 415
    response = httpx.post(f"{server}/predict", files={"picture": ("digit.png", b"\x89PNG", "image/png")})
    assert response.status_code == 422 and "curl -F file=@digit.png" in response.json()["detail"]


def test_answers_are_counted_in_the_metrics_like_the_gradio_paths(server, mnist_slice):
    def sevens() -> float:
        return metric_samples(server).get(("digits_predictions_total", (("digit", "7"),)), 0.0)

    before = sevens()
    seven = next(digit for digit, label in zip(mnist_slice.x_test, mnist_slice.y_test, strict=True) if label == 7)
    assert post_file(server, browser_png(draw_digit(seven, np.random.default_rng(2)))).json()["digit"] == "7"
    assert sevens() == before + 1


def test_the_schema_documents_both_ways_to_send_with_an_example(server):
    schema = httpx.get(f"{server}/openapi.json").json()
    operation = schema["paths"]["/predict"]["post"]
    assert {"multipart/form-data", "image/png", "image/jpeg"} <= set(operation["requestBody"]["content"])
    assert {"400", "413", "415", "422"} <= set(operation["responses"])  # 422: multipart without `file`
    prediction = schema["components"]["schemas"]["Prediction"]
    assert prediction["examples"][0]["digit"] == "7" and prediction["examples"][0]["outcome"] == "digit"
    assert prediction["properties"]["outcome"]["enum"] == ["digit", "not_a_digit", "nothing_drawn"]


def test_the_docs_page_works_with_no_internet(server, browser):
    """Swagger UI comes from this server: every other request is blocked, and the page still shows /predict."""
    context = browser.new_context(viewport=VIEWPORT)
    elsewhere = []

    def only_this_server(route):
        if route.request.url.startswith(server):
            return route.continue_()
        elsewhere.append(route.request.url)
        return route.abort()

    context.route("**/*", only_this_server)
    page = context.new_page()
    page.goto(f"{server}/docs")
    expect(page.locator(".opblock-summary-path", has_text="/predict")).to_be_visible()
    expect(page.get_by_text("Read the digit in one picture")).to_be_visible()
    context.close()
    assert not elsewhere, elsewhere
