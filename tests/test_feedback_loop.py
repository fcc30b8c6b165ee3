"""The whole loop, small: people correct the served model through a real server, the training command
takes their folder, and the evaluation reports and gates on the corrections it kept out.

As the README tells it ("Call it"):
    python -m app                                               # corrections go to feedback/
    python -m training.review feedback --accept ID ...          # a person accepts them (the sheet's command)
    python -m training.train digits --out new-model --feedback feedback
    python -m training.evaluate --model new-model --feedback feedback
"""

import io
import json
import os
import subprocess
import sys

import httpx
import numpy as np
from PIL import Image

from app.classifier import Classifier
from app.contract import METADATA_FILE, TFLITE_FILE
from app.corrections import correction_paths, read_correction
from tests.support.drawing import drawn_canvases
from tests.support.paths import MNIST_SLICE, MODEL_DIR, REPO, STYLE_SLICE
from tests.support.server import run_app, stop_app
from training.data import load_corrections, to_model_input
from training.styles import load_style_set


def misread_style_digits(count: int) -> list[tuple[bytes, int]]:
    """Pictures of the style set's held-out styles that the shipped model reads wrong, with their digit:
    what a continental writer would correct. As PNGs, white ink on black like the pictures themselves."""
    validation = load_style_set(STYLE_SLICE)["validation"]
    read = Classifier(MODEL_DIR / TFLITE_FILE).predict_many(to_model_input(validation["images"])).argmax(1)
    wrong = np.flatnonzero(read != validation["labels"])[:count]
    pictures = []
    for index in wrong:
        buffer = io.BytesIO()
        Image.fromarray(validation["images"][index]).resize((280, 280)).save(buffer, "PNG")
        pictures.append((buffer.getvalue(), int(validation["labels"][index])))
    return pictures


def python(*args: str) -> subprocess.CompletedProcess:
    """A command as a user runs it, without $HANDWRITING_DIR: training reads the slices it is given, no more."""
    env = {name: value for name, value in os.environ.items() if name != "HANDWRITING_DIR"}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600, env=env)


def test_corrections_sent_to_the_server_are_trained_on_and_evaluated(tmp_path, mnist_slice):
    drawn = [(png, int(digit)) for png, digit in drawn_canvases(40, seed=5, mnist=mnist_slice)]
    sent = misread_style_digits(5) + drawn  # corrections, and confirmations of right answers
    assert len(sent) >= 42, "the shipped model reads nearly every style slice digit: too few to correct"

    (tmp_path / "server").mkdir()
    # one person sending a batch: the limits on corrections (app.limits) are raised for them
    server, url = run_app(tmp_path / "server", FEEDBACK_PER_CLIENT_PER_MINUTE="0", FEEDBACK_PER_MINUTE="1000")
    try:
        told = [httpx.post(f"{url}/feedback", params={"digit": digit}, timeout=30,
                           files={"file": ("digit.png", picture, "image/png")}) for picture, digit in sent]
    finally:
        assert stop_app(server) is None
    assert [response.status_code for response in told] == [201] * len(sent)
    folder = tmp_path / "server" / "feedback"  # run_app's FEEDBACK_DIR
    records = [read_correction(path) for path in correction_paths(folder)]
    assert sorted(record.meant for record in records) == sorted(digit for _, digit in sent)
    assert sum(record.verdict == "wrong" for record in records) >= 2  # some are real corrections

    waiting = [path.name for path in correction_paths(folder)]
    reviewed = python("-m", "training.review", str(folder), "--accept", *waiting)
    assert reviewed.returncode == 0, reviewed.stderr
    assert f"{len(sent)} corrections accepted" in reviewed.stdout and correction_paths(folder) == []

    split = load_corrections(folder)
    trained = python("-m", "training.train", "digits", "--data", str(MNIST_SLICE), "--styles", str(STYLE_SLICE),
                     "--out", str(tmp_path / "model"), "--epochs", "1", "--feedback", str(folder))
    assert trained.returncode == 0, trained.stderr[-3000:]
    figures = json.loads((tmp_path / "model" / METADATA_FILE).read_text())["feedback_validation"]
    assert figures["training_records"] == len(split["training"]["labels"]) > 0
    assert figures["records"] == len(split["validation"]["labels"]) > 0
    kept_out = split["validation"]
    assert figures["served_accuracy"] == float(np.mean(kept_out["answered"] == kept_out["labels"]))

    evaluated = python("-m", "training.evaluate", "--model", str(tmp_path / "model"), "--data", str(MNIST_SLICE),
                       "--feedback", str(folder))
    reported = json.loads(evaluated.stdout)["feedback_validation"]
    new_model = Classifier(tmp_path / "model" / TFLITE_FILE)
    right = new_model.predict_many(to_model_input(kept_out["images"])).argmax(1) == kept_out["labels"]
    assert reported["records"] == len(kept_out["labels"])
    assert reported["accuracy"] == float(right.mean())
    assert evaluated.returncode == (1 if right.mean() < figures["served_accuracy"] else 0), evaluated.stderr
