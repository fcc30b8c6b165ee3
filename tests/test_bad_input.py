"""Bad input to the predict API and the upload endpoint: a clear error every time, never a 500 or a hang.

A real server (python -m app, MAX_UPLOAD_MB=1) is driven over plain HTTP, as any client can:
POST /gradio_api/upload; POST /gradio_api/call/predict, then its event stream (GET); the browser's
queue (POST /gradio_api/queue/join, GET /gradio_api/queue/data); and Gradio's direct POST
/gradio_api/run/predict. Proved, each within a timeout:
- wrong types and shapes, malformed JSON, a non-JSON content type, unknown endpoints: HTTP 4xx with a
  message, or an `event: error` whose message says what is wrong; "nothing drawn" values give the
  empty label, never a digit;
- file paths the client did not upload (/etc/passwd, the model, a real PNG of a digit in the
  repository, /dev/zero, a path climbing out of the upload folder) are turned away and never read or
  copied: the API must not read server files (a security property);
- an empty file, empty or enormous declared dimensions, non-image bytes, a truncated browser canvas
  get "Could not read the image: ..."; uploads over MAX_UPLOAD_MB get 413;
  a file name cannot climb out of the upload folder;
- the largest images the app accepts, sent CONCURRENCY at a time, keep the server within the
  Deployment's memory limit;
- afterwards /health answers 200 and a drawn digit is read right.
tests/test_server.py covers the junk, truncated, bomb and oversized cases through gradio_client.

    python -m pytest tests/test_bad_input.py
"""

import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest

from app.config import Settings
from app.preprocess import MAX_PIXELS
from tests.support.drawing import browser_png, draw_digit
from tests.support.drawing import png_file as png
from tests.support.gradio_api import call_predict, read_events, sketchpad_value, upload, uploaded_sketch
from tests.support.manifests import base, container
from tests.support.paths import BROWSER_COMPOSITE, MODEL_DIR
from tests.support.process import peak_resident_mb
from tests.support.server import run_app

TIMEOUT = 30  # seconds for any one request or event stream: a hang fails the test, it does not stall CI
NOT_UPLOADED = "not uploaded by a user"  # Gradio's error for a path outside its upload folder
PYDANTIC_NOT_A_SKETCH = "Input should be a valid dictionary or instance of EditorData"
NEEDS_META = "The 'meta' field must be explicitly provided"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with 1 MB uploads: its url, pid and upload folder (GRADIO_TEMP_DIR)."""
    tmp_path = tmp_path_factory.mktemp("bad_input")
    process, url = run_app(tmp_path, MAX_UPLOAD_MB="1")
    yield SimpleNamespace(url=url, pid=process.pid, uploads=tmp_path / "gradio")
    died = process.poll() is not None
    process.kill()
    process.wait(timeout=30)
    assert not died, f"the server died ({process.returncode}): {process.log.read_text()[-3000:]}"


def error_message(url: str, data: list) -> str:
    event, payload = call_predict(url, data)
    assert event == "error", f"expected an error, got {event}: {payload}"
    return payload["error"]


def predict_fn_index(url: str) -> int:
    config = httpx.get(f"{url}/config", timeout=TIMEOUT).json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == "predict")


def join_queue(url: str, data: list, fn_index: int, session: str = "") -> httpx.Response:
    return httpx.post(f"{url}/gradio_api/queue/join", timeout=TIMEOUT,
                      json={"data": data, "fn_index": fn_index, "session_hash": session or uuid.uuid4().hex})


def queue_result(url: str, data: list) -> dict:
    """The browser's way: join the queue, then read the session's stream until process_completed."""
    session = uuid.uuid4().hex
    response = join_queue(url, data, predict_fn_index(url), session)
    assert response.status_code == 200, response.text
    stream = httpx.get(f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=TIMEOUT)
    done = [message for _, message in read_events(stream.text) if message.get("msg") == "process_completed"]
    assert done, stream.text
    return done[0]


def largest_accepted_png() -> bytes:
    """A white opaque RGBA canvas of just under MAX_PIXELS (PNGs decode at full size) with a black
    square: a small file that takes the most memory the app lets a picture take."""
    side = int(MAX_PIXELS ** 0.5) - 1
    third = side // 3
    white = b"\x00" + b"\xff" * (4 * side)  # each row: filter type 0, then RGBA pixels
    ink = b"\x00" + b"\xff" * (4 * third) + b"\x00\x00\x00\xff" * third + b"\xff" * (4 * (side - 2 * third))
    rows = zlib.compressobj(9)
    idat = b"".join(rows.compress(ink if third <= y < 2 * third else white) for y in range(side)) + rows.flush()
    return png(side, side, color_type=6, idat=idat)


def memory_limit_mb() -> float:
    """The app container's memory limit in kustomize/base/deployment.yaml, in MB."""
    limit = container(base())["resources"]["limits"]["memory"]
    units = {"Mi": 2**20, "Gi": 2**30, "M": 10**6, "G": 10**9}
    suffix = next(s for s in units if limit.endswith(s))
    return float(limit[: -len(suffix)]) * units[suffix] / 2**20


# --- wrong types and shapes -------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "message"), [
    ([42], PYDANTIC_NOT_A_SKETCH),
    (["text"], PYDANTIC_NOT_A_SKETCH),
    ([[1, 2, 3]], PYDANTIC_NOT_A_SKETCH),
    ([], "didn't receive enough input values (needed: 1, got: 0)"),
    ([{"composite": 42}], NEEDS_META),
    ([{"composite": "/etc/passwd"}], NEEDS_META),
    ([{"composite": {"path": "/etc/passwd"}}], NEEDS_META),
    ([{"composite": {"path": None, "meta": {"_type": "gradio.FileData"}}}], NEEDS_META),
    ([{"background": 42}], NEEDS_META),
    ([{"layers": 5}], "Input should be a valid list"),
], ids=["number", "text", "list", "no-input", "composite-number", "composite-string", "path-without-meta",
        "null-path", "background-number", "layers-number"])
def test_wrong_types_and_shapes_get_an_error_event_saying_what_is_wrong(server, data, message):
    url = server.url
    assert message in error_message(url, data)


@pytest.mark.parametrize("value", [None, {}, {"composite": None},
                                   sketchpad_value(), {"id": "no-such-blob"}],
                         ids=["null", "empty-dict", "null-composite", "cleared-canvas", "unknown-blob-id"])
def test_nothing_drawn_gives_the_empty_label_never_a_digit(server, value):
    url = server.url
    assert call_predict(url, [value]) == ("complete", [{}])


@pytest.mark.parametrize(("body", "headers", "message"), [
    (b'{"data": [', {"content-type": "application/json"}, "JSON decode error"),
    (b"not json at all", {"content-type": "application/json"}, "JSON decode error"),
    (b'{"data": [null]}', {"content-type": "text/plain"}, "Input should be a valid dictionary"),
    (b"data=1", {"content-type": "application/x-www-form-urlencoded"}, "Input should be a valid dictionary"),
    (b'{"nodata": 1}', {"content-type": "application/json"}, "Field required"),
    (b'{"data": "x"}', {"content-type": "application/json"}, "Input should be a valid list"),
    (b"[1, 2]", {"content-type": "application/json"}, "Input should be a valid dictionary"),
], ids=["cut-short", "not-json", "text-plain", "form", "no-data", "data-not-a-list", "array"])
def test_malformed_json_and_wrong_content_types_get_422(server, body, headers, message):
    url = server.url
    response = httpx.post(f"{url}/gradio_api/call/predict", content=body, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 422 and message in response.text


def test_an_unknown_event_id_gets_an_error_event(server):
    """The error event arrives; Gradio 6.31 then raises inside the streaming response, so the stream is cut
    (the client sees an incomplete chunked body, the log an "Exception in ASGI application"): tolerated."""
    url = server.url
    lines = []
    with httpx.stream("GET", f"{url}/gradio_api/call/predict/no-such-event", timeout=TIMEOUT) as stream:
        try:
            lines.extend(stream.iter_lines())
        except httpx.RemoteProtocolError:
            pass
    assert read_events("\n".join(lines)) == [("error", "404: Not Found")]


def test_an_unknown_endpoint_gets_404_not_500(server):
    url = server.url
    response = httpx.post(f"{url}/gradio_api/call/nothere", json={"data": [None]}, timeout=TIMEOUT)
    assert response.status_code == 404, f"{response.status_code}: {response.text}"


def test_an_unknown_function_index_in_the_queue_gets_4xx_not_500(server):
    url = server.url
    response = join_queue(url, [None], fn_index=9999)
    assert response.status_code == 400 and "no such function: fn_index 9999" in response.text, response.text


def test_the_direct_run_route_gives_no_500_for_bad_input(server):
    """/gradio_api/run/predict skips the queue; bad input there must not be a server error either."""
    url = server.url
    junk = upload(url, b"this is not an image")
    for data in ([42], [uploaded_sketch(junk)]):
        response = httpx.post(f"{url}/gradio_api/run/predict", json={"data": data}, timeout=TIMEOUT)
        assert 400 <= response.status_code < 500, f"{data}: {response.status_code}: {response.text}"


def test_the_queue_path_the_browser_uses_reports_errors_too(server):
    url = server.url
    wrong_type = queue_result(url, [42])
    assert not wrong_type["success"] and PYDANTIC_NOT_A_SKETCH in wrong_type["output"]["error"]
    junk = queue_result(url, [uploaded_sketch(upload(url, b"this is not an image"))])
    assert not junk["success"] and "Could not read the image" in junk["output"]["error"]
    server_file = queue_result(url, [uploaded_sketch("/etc/passwd")])
    assert not server_file["success"] and NOT_UPLOADED in server_file["output"]["error"]


# --- files the client did not upload ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/etc/passwd", str(MODEL_DIR / "model.tflite"), str(BROWSER_COMPOSITE),
                                  "/nonexistent/no-such-canvas.png"],
                         ids=["etc-passwd", "the-model", "a-png-of-a-7-in-the-repo", "nonexistent"])
def test_paths_outside_the_upload_folder_are_turned_away_and_never_read(server, path):
    """Only files uploaded through /gradio_api/upload may be read. A server file must get Gradio's error:
    not "not an image" (it was read), not a FileNotFoundError (an oracle for what exists), not a digit."""
    url, uploads = server.url, server.uploads
    event, payload = call_predict(url, [uploaded_sketch(path)])
    assert event == "error" and NOT_UPLOADED in payload["error"], f"{path}: {event} {payload}"
    assert not list(uploads.rglob(Path(path).name)), f"{path} was copied into the upload folder"


def test_an_upload_this_server_does_not_have_gets_a_clear_error(server):
    """Every pod has the same upload folder path, so a path another replica (or an expired upload) handed
    out passes Gradio's check: the answer must say what to do, not name an exception."""
    missing = server.uploads / ("0" * 64) / "canvas.png"
    message = error_message(server.url, [uploaded_sketch(str(missing))])
    assert message == "Could not read the image: the file is not on this server: upload it again", message


def test_a_path_climbing_out_of_the_upload_folder_is_turned_away(server, mnist_slice):
    url, uploads = server.url, server.uploads
    uploaded = upload(url, browser_png(draw_digit(mnist_slice.x_test[0], np.random.default_rng(0))))
    climbing = "/".join([uploaded, *[".."] * len(Path(uploaded).parts), "etc", "passwd"])
    assert NOT_UPLOADED in error_message(url, [uploaded_sketch(climbing)])
    assert not list(uploads.rglob("passwd"))


def test_a_device_path_is_turned_away_and_the_server_goes_on(tmp_path):
    """/dev/zero never ends: reading it would hang the server's event loop (and its SIGTERM) for good.
    Its own server, killed at the end, so that a hang here cannot take the other tests with it."""
    process, url = run_app(tmp_path)
    try:
        try:
            message = error_message(url, [uploaded_sketch("/dev/zero")])
        except httpx.TimeoutException:
            pytest.fail("a request naming /dev/zero hung the server")
        assert NOT_UPLOADED in message
        assert httpx.get(f"{url}/health", timeout=TIMEOUT).status_code == 200
    finally:
        process.kill()
        process.wait(timeout=30)


# --- image files that are not what they claim ---------------------------------------------------------

@pytest.mark.parametrize(("content", "message"), [
    (b"", "not an image file"),
    (b"\x89PNG\r\n\x1a\n", "not an image file"),
    (png(0, 0), "not an image file"),
    (png(1, MAX_PIXELS + 1), "image is larger than 16 megapixels (1x16000001)"),
    (png(5000, 5000, color_type=6), "image is larger than 16 megapixels (5000x5000)"),
    (png(2**31 - 1, 2**31 - 1, color_type=6), "image is larger than 16 megapixels"),
    (b"GIF89a\xff\xff\xff\xff" + bytes(10), "not an image file"),
    ((MODEL_DIR / "model.tflite").read_bytes()[:200_000], "not an image file"),
], ids=["zero-bytes", "signature-only", "zero-by-zero", "one-by-16-million", "five-thousand-square",
        "two-billion-square", "gif-header-only",
        "model-bytes"])
def test_uploads_that_are_not_readable_images_get_a_clear_error(server, content, message):
    url = server.url
    said = error_message(url, [uploaded_sketch(upload(url, content))])
    assert said.startswith("Could not read the image: ") and message in said, said


def test_a_truncated_browser_canvas_gets_a_clear_error(server, mnist_slice):
    url = server.url
    whole = browser_png(draw_digit(mnist_slice.x_test[3], np.random.default_rng(3)))
    message = error_message(url, [uploaded_sketch(upload(url, whole[: len(whole) // 2]))])
    assert "Could not read the image: image data is corrupt or truncated" in message


def test_the_largest_accepted_images_keep_the_server_within_its_memory_limit(server):
    """CONCURRENCY canvases of just under MAX_PIXELS at once (each upload well under MAX_UPLOAD_MB):
    the pod must not be OOM-killed. Memory, not time: the peak resident set (VmHWM) of the server."""
    url = server.url
    path = upload(url, largest_accepted_png())
    concurrency = Settings().concurrency
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: call_predict(url, [uploaded_sketch(path)]), range(concurrency)))
    assert all(event == "complete" for event, _ in results), results
    peak, limit = peak_resident_mb(server.pid), memory_limit_mb()
    assert peak < 0.9 * limit, f"the server peaked at {peak:.0f} MB; the pod's limit is {limit:.0f} MB"


# --- the upload endpoint ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "headers", "status", "message"), [
    (b"", {}, 400, "Invalid content type"),
    (b'{"files": 1}', {"content-type": "application/json"}, 400, "Invalid content type"),
    (b"garbage", {"content-type": "multipart/form-data"}, 400, "Missing boundary in multipart"),
    (b"garbage--xyz", {"content-type": "multipart/form-data; boundary=xyz"}, 400, "Could not parse multipart"),
], ids=["no-body", "json", "no-boundary", "broken-multipart"])
def test_malformed_uploads_get_400_with_a_message(server, body, headers, status, message):
    url = server.url
    response = httpx.post(f"{url}/gradio_api/upload", content=body, headers=headers, timeout=TIMEOUT)
    assert response.status_code == status and message in response.text


def test_an_oversized_upload_gets_413_before_its_body_is_read(server):
    """The declared length is checked up front (an upload without one gets 411: tests/test_abuse.py)."""
    url = server.url
    response = httpx.post(f"{url}/gradio_api/upload", timeout=TIMEOUT,
                          files={"files": ("big.png", bytes(2 * 1024 * 1024), "image/png")})
    assert response.status_code == 413
    assert response.json()["detail"] == "The upload is larger than 1 MB (MAX_UPLOAD_MB)."


def test_an_upload_name_cannot_climb_out_of_the_upload_folder(server):
    url, uploads = server.url, server.uploads
    name = f"escaped-{uuid.uuid4().hex}.png"
    stored = Path(upload(url, b"x", name=f"../../../../../../tmp/{name}"))
    assert stored.resolve().is_relative_to(uploads.resolve()) and stored.name == name
    assert not (Path("/tmp") / name).exists()


def test_afterwards_the_server_is_healthy_and_reads_digits(server, mnist_slice):
    url = server.url
    assert httpx.get(f"{url}/health", timeout=TIMEOUT).status_code == 200
    drawn = browser_png(draw_digit(mnist_slice.x_test[2], np.random.default_rng(1)))
    event, data = call_predict(url, [uploaded_sketch(upload(url, drawn))])
    assert event == "complete" and data[0]["label"] == str(mnist_slice.y_test[2])
