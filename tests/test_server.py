"""A real server (python -m app on a free port) driven with gradio_client and plain HTTP."""

import json
import os
import shutil
import subprocess
import sys

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from app.contract import METADATA_FILE
from app.gradio_overrides import STUB_REWRITING_GRADIO
from tests.support.drawing import browser_png, draw_digit, huge_png_header
from tests.support.gradio_api import sketch, sketchpad_value
from tests.support.paths import MODEL_DIR, REPO
from tests.support.server import free_port


@pytest.fixture(scope="module")
def client(server):
    return Client(server, verbose=False, analytics_enabled=False)


def test_health_names_the_served_model(server):
    metadata = json.loads((MODEL_DIR / METADATA_FILE).read_text())
    ready = httpx.get(f"{server}/health").json()
    assert ready["status"] == "ready"
    assert ready["model"]["sha256"] == metadata["files"]["model.tflite"]["sha256"]
    assert ready["model"]["test_accuracy"] == metadata["test_accuracy"]
    assert ready["model"]["refuses_non_digits"] is True  # the shipped model says "not a digit"
    assert httpx.get(f"{server}/health/live").json() == {"status": "alive"}


def test_ui_and_api_are_served(server, client):
    page = httpx.get(server + "/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/predict", "/feedback"]  # the UI's own events (stroke, clear, 0-9) stay private


def test_reads_mnist_digits_drawn_on_a_large_canvas(client, mnist_slice, tmp_path):
    """300 real MNIST digits painted black on 800x800 white canvases, at random sizes and places."""
    rng = np.random.default_rng(7)
    digits = np.concatenate([mnist_slice.x_test, mnist_slice.x_train[:100]])
    labels = np.concatenate([mnist_slice.y_test, mnist_slice.y_train[:100]])
    right = 0
    for index, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        path = tmp_path / f"canvas{index}.png"
        path.write_bytes(browser_png(draw_digit(digit, rng)))
        result = client.predict(sketch(path), api_name="/predict")
        assert len(result["confidences"]) == 3
        assert sum(c["confidence"] for c in result["confidences"]) <= 1.0 + 1e-6
        right += result["label"] == str(label)
    assert right / len(labels) >= 0.98, f"{right} of {len(labels)} read right"


def test_nothing_to_read_gives_an_empty_label(client, tmp_path):
    white = tmp_path / "white.png"
    Image.new("RGB", (800, 800), "white").save(white)
    assert client.predict(sketch(white), api_name="/predict") == {}
    assert client.predict(sketchpad_value(), api_name="/predict") == {}


def test_a_plain_photo_of_a_digit_in_any_size(client, mnist_slice, tmp_path):
    """Light-on-dark, small, as MNIST itself: a 56x56 JPEG of a test digit."""
    path = tmp_path / "digit.jpg"
    Image.fromarray(mnist_slice.x_test[0]).resize((56, 56)).save(path, quality=90)
    assert client.predict(sketch(path), api_name="/predict")["label"] == str(mnist_slice.y_test[0])


def test_bad_uploads_get_clear_errors_and_the_server_goes_on(server, client, mnist_slice, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not an image")
    with pytest.raises(AppError, match="Could not read the image: not an image file"):
        client.predict(sketch(junk), api_name="/predict")

    truncated = tmp_path / "truncated.png"
    draw_digit(mnist_slice.x_test[1], np.random.default_rng(0)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(AppError, match="Could not read the image: image data is corrupt or truncated"):
        client.predict(sketch(truncated), api_name="/predict")

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(huge_png_header(30_000, 30_000))
    with pytest.raises(AppError, match="image is larger than 16 megapixels"):
        client.predict(sketch(bomb), api_name="/predict")

    oversized = tmp_path / "oversized.png"  # over the server's MAX_UPLOAD_MB=1
    oversized.write_bytes(os.urandom(2 * 1024 * 1024))
    response = httpx.post(f"{server}/gradio_api/upload", files={"files": ("big.png", oversized.read_bytes())})
    assert response.status_code == 413 and "larger than 1 MB" in response.json()["detail"]
    with pytest.raises(ValueError, match="exceeds the maximum file size") as raised:  # gradio_client checks first
        client.predict(sketch(oversized), api_name="/predict")
    assert not isinstance(raised.value, AppError) and issubclass(AppError, ValueError)  # docs/api.md: ValueError

    assert httpx.get(f"{server}/health").status_code == 200
    good = tmp_path / "good.png"
    draw_digit(mnist_slice.x_test[2], np.random.default_rng(1)).save(good)
    assert client.predict(sketch(good), api_name="/predict")["label"] == str(mnist_slice.y_test[2])


def test_wrong_json_gets_a_clear_error(server):
    response = httpx.post(f"{server}/gradio_api/call/predict", json={"data": [{"composite": 42}]})
    if response.status_code == 200:  # accepted into the queue: the error arrives on the event stream
        stream = httpx.get(f"{server}/gradio_api/call/predict/{response.json()['event_id']}").text
        assert "event: error" in stream
    else:
        assert response.status_code in (400, 422)
    assert httpx.get(f"{server}/health").status_code == 200


def start_and_fail(tmp_path, **env) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PORT": str(free_port()), "LOG_LEVEL": "warning", **env}
    return subprocess.run([sys.executable, "-m", "app"], cwd=REPO, env=environment, capture_output=True,
                          text=True, timeout=60)


def test_missing_model_stops_start_up(tmp_path):
    result = start_and_fail(tmp_path, MODEL_DIR=str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert "cannot serve" in result.stderr and "metadata.json is missing" in result.stderr


def test_corrupt_model_stops_start_up(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(MODEL_DIR, model)
    data = bytearray((model / "model.tflite").read_bytes())
    data[5000:5100] = bytes(100)
    (model / "model.tflite").write_bytes(bytes(data))
    result = start_and_fail(tmp_path, MODEL_DIR=str(model))
    assert result.returncode == 1
    assert "model.tflite is corrupt or not the model metadata.json describes" in result.stderr


def test_bad_setting_stops_start_up(tmp_path):
    result = start_and_fail(tmp_path, PORT="eighty")
    assert result.returncode == 2 and "PORT='eighty' is not a number" in result.stderr


SET_BY_THE_APP = {"GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY", "GRADIO_ANALYTICS_MAX_EVENTS",
                  "GRADIO_ANALYTICS_CACHE_FREQUENCY"}  # which this process has too, once it imported the app


def in_a_fresh_python(code: str, **env: str) -> str:
    """Run `code` in a new Python with none of the app's Gradio settings in its environment, but `env`."""
    environment = {name: value for name, value in os.environ.items() if name not in SET_BY_THE_APP} | env
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment, capture_output=True, text=True,
                          timeout=120, check=True).stdout.strip()


def test_telemetry_is_off_before_gradio_loads():
    """Gradio and huggingface_hub read their telemetry settings when first imported: app.gradio_overrides must
    set them first, whatever the app imports before it. Analytics stay off even if the environment says on."""
    assert in_a_fresh_python("import app.server, huggingface_hub.constants as hub, gradio.utils; "
                             "print(hub.HF_HUB_DISABLE_TELEMETRY, gradio.utils.get_space() is None)") == "True True"
    analytics = "import app.server, gradio.analytics; print(gradio.analytics.analytics_enabled())"
    assert in_a_fresh_python(analytics) == "False"
    assert in_a_fresh_python(analytics, GRADIO_ANALYTICS_ENABLED="True") == "False"


def test_gradio_loads_without_rewriting_its_stubs_and_works():
    """app.gradio_overrides: the version it knows is the one pinned, and Gradio imported from it loads without
    its stub rewriting and works; Gradio imported alone still rewrites them, and once loaded it is too late."""
    pinned = next(line.split("==")[1] for line in (REPO / "requirements.txt").read_text().splitlines()
                  if line.startswith("gradio=="))
    assert pinned.startswith(STUB_REWRITING_GRADIO), "a new Gradio: check app/gradio_overrides.py still applies"
    loaded = "import gradio, gradio.component_meta as meta; print(meta.create_or_modify_pyi.__name__)"
    assert in_a_fresh_python(loaded) == "create_or_modify_pyi"
    assert in_a_fresh_python(f"from app.gradio_overrides import gr, skip_stub_rewriting; {loaded}; "
                             "print(gr.Sketchpad().get_block_name(), skip_stub_rewriting())"
                             ) == "<lambda>\nimageeditor False"
