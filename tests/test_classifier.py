"""The classifier and the width of a model's output: a digits network alone (NUM_DIGITS outputs, no detector)
still loads and serves, saying so at start and in /health, and answers a digit for every drawing; a model of any other
width stops start-up with a clear message. The models are tiny ones made here (one dense layer, untrained):
what matters is the width, not the reading."""

import logging

import httpx
import keras
import numpy as np
import pytest
from gradio_client import Client

from app.classifier import ModelError, load_classifier
from app.contract import DIGITS, INPUT_SHAPE, METADATA_FILE, NOT_A_DIGIT, NUM_CLASSES, NUM_DIGITS
from tests.support.drawing import STAR, browser_png, paint
from tests.support.gradio_api import sketch
from tests.support.server import run_app, stop_app
from training.export import write_metadata, write_model_files


def tiny_model(folder, outputs: int):
    """A model folder (model.tflite and metadata.json) whose model gives `outputs` probabilities per image."""
    inputs = keras.Input(INPUT_SHAPE)
    probabilities = keras.layers.Dense(outputs, activation="softmax")(keras.layers.Flatten()(inputs))
    files = write_model_files(keras.Model(inputs, probabilities), folder)
    write_metadata(folder, {"files": files, "test_accuracy": 0.1})
    return folder


@pytest.fixture(scope="module")
def digits_network(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("digits") / "model", NUM_DIGITS)


def test_a_digits_network_loads_with_a_warning_and_gives_a_zero_not_a_digit_column(digits_network, caplog):
    with caplog.at_level(logging.WARNING, logger="app.classifier"):
        classifier, _ = load_classifier(digits_network)
    assert not classifier.refuses_non_digits
    assert "has no \"not a digit\" output" in caplog.text and "it answers a digit for every drawing" in caplog.text
    probabilities = classifier.predict(np.random.default_rng(0).random((5, *INPUT_SHAPE), dtype=np.float32))
    assert probabilities.shape == (5, NUM_CLASSES) and (probabilities[:, NOT_A_DIGIT] == 0).all()
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


def test_a_digits_network_serves_a_digit_for_every_drawing_and_health_says_it_refuses_none(digits_network, tmp_path):
    process, url = run_app(tmp_path, MODEL_DIR=str(digits_network))
    try:
        assert httpx.get(f"{url}/health").json()["model"]["refuses_non_digits"] is False
        star = browser_png(paint(STAR))
        answer = httpx.post(f"{url}/predict", content=star, headers={"Content-Type": "image/png"}).json()
        assert answer["outcome"] == "digit" and answer["digit"] in DIGITS and answer["message"] == ""
        (tmp_path / "star.png").write_bytes(star)
        label = Client(url, verbose=False).predict(sketch(tmp_path / "star.png"), api_name="/predict")
        assert label["label"] in DIGITS and "not a digit" not in [c["label"] for c in label["confidences"]]
        assert "has no \\\"not a digit\\\" output" in process.log.read_text()  # JSON-escaped in the log line
    finally:
        assert stop_app(process) is None


@pytest.mark.parametrize("outputs", [9, 12])
def test_a_model_of_another_width_stops_start_up_saying_what_is_expected(tmp_path, outputs):
    model = tiny_model(tmp_path / "model", outputs)
    with pytest.raises(ModelError, match=rf"does not meet the model contract: .*output \[-1, {outputs}\], expected "
                                         r"\[N, 11\] \(the digits 0-9 and \"not a digit\"\) or \[N, 10\]"):
        load_classifier(model)
    assert (model / METADATA_FILE).is_file()  # stopped for its width, not for a missing file
