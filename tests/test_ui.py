"""The UI's wiring: the Sketchpad hands its images over undecoded; nothing to read gives an empty label."""

import gradio as gr
from gradio.components.image_editor import EditorData
from gradio.data_classes import FileData
from PIL import Image

from app.classifier import load_classifier
from app.metrics import Metrics
from app.ui import EMPTY_MESSAGE, build_ui, predict
from tests.conftest import MODEL_DIR


def test_the_sketchpad_hands_over_undecoded_files(tmp_path):
    classifier, metadata = load_classifier(MODEL_DIR)
    demo = build_ui(classifier, metadata, Metrics({}), concurrency=1)
    sketchpad = next(block for block in demo.blocks.values() if isinstance(block, gr.Sketchpad))
    path = str(tmp_path / "canvas.png")
    payload = EditorData(background=None, layers=[FileData(path=path)], composite=FileData(path=path))
    assert sketchpad.preprocess(payload) == {"background": None, "layers": [path], "composite": path}
    assert sketchpad.get_block_name() == "imageeditor"  # the browser's own Sketchpad, not a custom one


def test_nothing_to_read_is_an_empty_label_and_a_message():
    classifier, _ = load_classifier(MODEL_DIR)
    label, seen = predict(classifier, Metrics({}), {"background": None, "layers": [], "composite": None})
    assert (label, seen) == (None, {"seen": None, "message": EMPTY_MESSAGE})  # untouched or cleared
    white = Image.new("RGB", (800, 800), "white")
    label, seen = predict(classifier, Metrics({}), {"background": None, "layers": [], "composite": white})
    assert label is None and seen["seen"] is None
    assert seen["message"] == f"Nothing to read: nothing drawn: the picture is blank. {EMPTY_MESSAGE}"
