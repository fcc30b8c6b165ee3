"""The UI's wiring: the Sketchpad hands its images over undecoded, the last composite of each page is kept
within a memory cap, nothing to read gives an empty label, a drawing that is no digit tops the label as "not a
digit" with a message saying so, and "Wrong? It was…" offers the digits 0-9 only."""

import gradio as gr
from gradio.components.image_editor import EditorData
from gradio.data_classes import DataWithFiles, FileData
from PIL import Image

from app.classifier import load_classifier
from app.config import Settings
from app.contract import DIGITS
from app.corrections import CorrectionsStore
from app.gradio_overrides import Drawings
from app.limits import CorrectionLimits
from app.reading import Reader
from app.ui import EMPTY_MESSAGE, build_ui, predict
from tests.support.gradio_api import sketchpad_value
from tests.support.paths import MODEL_DIR


def plain_reader() -> Reader:
    """The shipped model, corrections off."""
    return Reader.load(Settings(model_dir=MODEL_DIR, feedback_dir=None))


def test_the_sketchpad_hands_over_undecoded_files(tmp_path):
    demo = build_ui(plain_reader(), concurrency=1)
    sketchpad = next(block for block in demo.blocks.values() if isinstance(block, gr.Sketchpad))
    path = str(tmp_path / "canvas.png")
    payload = EditorData(background=None, layers=[FileData(path=path)], composite=FileData(path=path))
    assert sketchpad.preprocess(payload) == {"background": None, "layers": [path], "composite": path}
    assert sketchpad.get_block_name() == "imageeditor"  # the browser's own Sketchpad, not a custom one


def test_nothing_to_read_is_an_empty_label_and_a_message():
    reader = plain_reader()
    assert predict(reader, None) == (None, None, EMPTY_MESSAGE)  # a page that has not drawn yet
    assert predict(reader, sketchpad_value()) == (None, None, EMPTY_MESSAGE)  # untouched or cleared
    white = Image.new("RGB", (800, 800), "white")
    label, seen, message = predict(reader, sketchpad_value(white))
    assert label is None and seen is None
    assert message == f"Nothing to read: nothing drawn: the picture is blank. {EMPTY_MESSAGE}"


def test_wrong_it_was_offers_the_digits_only():
    demo = build_ui(plain_reader(), concurrency=1)
    shown = [block.value for block in demo.blocks.values() if isinstance(block, gr.Button) and block.visible]
    assert shown == DIGITS  # never "not a digit": nobody corrects a drawing to that


def blob(session, kind: str, content: bytes) -> DataWithFiles:
    """What Gradio's component_server route hands to accept_blobs: the form's fields and its one file."""
    return DataWithFiles(data={"session_hash": session, "type": kind, "id": "x1", "index": "null",
                               "fn_name": "accept_blobs", "component_id": "3"},
                         files=[(f"{kind}.png", content)])


def test_drawings_keep_each_pages_last_composite_only():
    drawings = Drawings()
    drawings.accept_blobs(blob("page-a", "composite", b"first"))
    drawings.accept_blobs(blob("page-a", "background", b"background"))
    drawings.accept_blobs(blob("page-a", "layer", b"layer"))
    drawings.accept_blobs(blob("page-b", "composite", b"other page"))
    drawings.accept_blobs(blob("page-a", "composite", b"second"))
    assert drawings.latest("page-a") == b"second" and drawings.latest("page-b") == b"other page"
    assert drawings.latest("page-c") is None
    drawings.forget("page-a")  # cleared, or the page closed
    assert drawings.latest("page-a") is None and drawings.latest("page-b") == b"other page"


def test_drawings_stay_within_their_memory_cap_whatever_is_sent():
    drawings = Drawings(capacity=100_000)
    for page in range(50):  # a client inventing sessions
        drawings.accept_blobs(blob(f"page-{page}", "composite", bytes(30_000)))
    assert sum(map(len, drawings.composites.values())) <= 100_000
    assert drawings.latest("page-49") is not None and drawings.latest("page-0") is None  # the oldest go first
    for junk in (blob(None, "composite", b"x"), blob("page-x", "nonsense", b"x"),
                 DataWithFiles(data={"session_hash": "page-y", "type": "composite"}, files=[])):
        drawings.accept_blobs(junk)  # ignored, no error
    assert drawings.latest("page-x") is None and drawings.latest("page-y") is None


def test_the_page_states_the_figure_on_people_it_never_saw_first():
    """The heading gives the shipped model's accuracy on the real writers kept out, then MNIST's, then the share
    of unseen non-digits it refuses; a model trained before either (no such figure in its metadata) still serves,
    with the figures it has."""
    classifier, metadata = load_classifier(MODEL_DIR)

    def heading(metadata: dict) -> str:
        demo = build_ui(Reader(classifier, metadata, CorrectionsStore(None, 0), CorrectionLimits(60, 10)),
                        concurrency=1)
        return next(block.value for block in demo.blocks.values() if isinstance(block, gr.Markdown))

    writers = metadata["writers_validation"]
    text = heading(metadata)
    assert text.index(f"{writers['accuracy']:.2%}") < text.index(f"{metadata['test_accuracy']:.2%}")
    assert f"{writers['writers']} writers it never saw" in text
    assert f"\"not a digit\" to {metadata['negatives_validation']['refused']:.1%}" in text
    before_negatives = {key: value for key, value in metadata.items() if key != "negatives_validation"}
    assert "not a digit" not in heading(before_negatives) and f"{writers['accuracy']:.2%}" in heading(before_negatives)
    older = {key: value for key, value in before_negatives.items() if key != "writers_validation"}
    assert "writers" not in heading(older) and f"{metadata['test_accuracy']:.2%}" in heading(older)
