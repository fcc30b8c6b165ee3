"""POST /predict on a real server (python -m app), as curl and httpx send it, and /docs in the real browser offline.

Proved: MNIST test digits drawn on 800x800 canvases are read right as multipart uploads (what `curl -F
file=@digit.png` sends) and as raw image bodies alike; a blank picture is "nothing to read", never a digit; a
star and a hash (#) are "not a digit", with the digits they resemble, counted apart from the digits;
a phone's photo (12 MP, a 4-5 MB JPEG) is read, while Gradio's uploads stay at MAX_UPLOAD_MB; junk, truncated,
enormous (17 MP) and oversized (past MAX_PHOTO_MB) pictures, other content types and a missing field get a 4xx
with the reason, and the server goes on; GET /predict is 405 with `Allow: POST`; the answers are counted in
/metrics like the Gradio path's; and /docs shows the endpoint with every request off this server blocked.
(Two replicas without affinity: tests/test_replicas.py.)

    python -m pytest tests/test_rest.py
"""

import io
import json
import os
import socket
import time

import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from app.contract import METADATA_FILE
from tests.support.browser import VIEWPORT
from tests.support.drawing import browser_png, draw_digit, huge_png_header, png_bytes
from tests.support.paths import BROWSER_COMPOSITE, MODEL_DIR
from tests.support.server import metric_samples, run_app, stop_app


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
             (os.urandom(21 * 2**20), 413, "larger than 20 MB")]  # MAX_PHOTO_MB's default
    for content, status, reason in cases:
        response = send(server, content)
        assert response.status_code == status and reason in response.json()["detail"], response.text
    assert httpx.get(f"{server}/health").status_code == 200
    good = browser_png(draw_digit(mnist_slice.x_test[2], np.random.default_rng(1)))
    assert send(server, good).json()["digit"] == str(mnist_slice.y_test[2])


def phone_photo(size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A phone's photo of a 7 on grey paper, as a JPEG: the paper's grain makes it 4-5 MB at 12 MP."""
    width, height = size
    grain = np.random.default_rng(3).normal(190, 12, (height, width))
    photo = Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8)).convert("RGB")
    ImageDraw.Draw(photo).line([(width * 0.37, height * 0.3), (width * 0.62, height * 0.3),
                                (width * 0.45, height * 0.73)], fill=(40, 40, 50), width=height // 25, joint="curve")
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_a_phone_photo_is_read_while_gradio_uploads_stay_small(server, tmp_path):
    """POST /predict takes a 12 MP photo of several MB (MAX_PHOTO_MB), though the server's Gradio uploads stop at
    1 MB (MAX_UPLOAD_MB, within UPLOAD_BUDGET_MB); a 17 MP picture gets a 400 saying the 16-megapixel rule."""
    photo = phone_photo()
    assert 4 * 2**20 < len(photo) < 6 * 2**20
    for send in (post_file, post_body):
        response = send(server, photo, **({"kind": "image/jpeg"} if send is post_body else {}))
        assert response.status_code == 200 and response.json()["digit"] == "7", response.text[:300]
    upload = httpx.post(f"{server}/gradio_api/upload", files={"files": ("photo.jpg", photo, "image/jpeg")})
    assert upload.status_code == 413 and "MAX_UPLOAD_MB" in upload.json()["detail"]
    too_many = post_body(server, png_bytes(Image.new("L", (4900, 3500), 255)))  # 17.15 MP, a small file
    assert too_many.status_code == 400, too_many.text
    assert too_many.json()["detail"] == "Could not read the image: image is larger than 16 megapixels (4900x3500)"


def test_pictures_held_in_memory_stay_within_four_photos(tmp_path):
    """Each picture being received holds its declared length until answered: four photos of MAX_PHOTO_MB at
    most, then 503 with Retry-After (counted), until one is done."""
    process, url = run_app(tmp_path, MAX_PHOTO_MB="0.25")
    slow = []
    try:
        for _ in range(4):  # four clients that declare a whole photo and send nothing yet
            client = socket.create_connection(("127.0.0.1", process.port))
            client.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                           b"Content-Length: 262144\r\n\r\n")
            slow.append(client)
        time.sleep(1)
        drawing = BROWSER_COMPOSITE.read_bytes()
        busy = post_body(url, drawing)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1", busy.text
        assert metric_samples(url)[("digits_refused_total", (("reason", "photo_space"),))] == 1
        slow.pop().close()
        time.sleep(1)
        assert post_body(url, drawing).json()["digit"] == "7"
    finally:
        for client in slow:
            client.close()
        assert stop_app(process) is None


def test_other_methods_are_405_saying_post(server):
    for path in ("/predict", "/feedback"):
        for method in ("GET", "PUT", "DELETE"):
            response = httpx.request(method, f"{server}{path}")
            assert response.status_code == 405 and response.headers["allow"] == "POST", (method, path)
    assert httpx.get(f"{server}/").status_code == 200  # the UI is still at /


def test_wrong_content_types_and_a_missing_field_are_turned_away_saying_how_to_send(server):
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
