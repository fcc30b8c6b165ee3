"""The model card (app/model/README.md) is training/card.py's rendering of the model's metadata.json, so its
figures cannot drift from the model it describes."""

import json

from app.contract import METADATA_FILE
from tests.support.paths import MODEL_DIR
from training import card


def test_the_shipped_card_is_the_rendering_of_the_shipped_metadata():
    """Rewrite it with `python -m training.card app/model` when metadata.json changes."""
    assert (MODEL_DIR / card.CARD_FILE).read_text() == card.render(json.loads((MODEL_DIR / METADATA_FILE).read_text()))


def test_the_card_gives_the_figures_a_user_asks_for():
    metadata = json.loads((MODEL_DIR / METADATA_FILE).read_text())
    shown = card.render(metadata)
    for section in ("## Intended use", "## Data", "## Figures", "## Limitations", "## How to reproduce"):
        assert section in shown
    assert metadata["files"]["model.tflite"]["sha256"] in shown
    assert "99.61 %" in shown and "writers kept out" in shown and "unseen shapes | 69.5 %" in shown
    assert "CC BY 4.0" in shown and "MNIST" in shown and "UCI" in shown
    assert "python -m training.train digits" in shown and "python -m training.train detector --digits" in shown
    assert "../shared" not in shown


def test_a_card_renders_for_a_model_trained_on_the_slices(tmp_path):
    """Training writes the card beside metadata.json: here a detector trained on the slices for the shipped digits
    network, and the card of a digits network alone, which never refuses."""
    from tests.support.paths import HANDWRITING_SLICE, MNIST_SLICE, STYLE_SLICE
    from tests.support.training import train_on_slices

    out = tmp_path / "model"
    assert train_on_slices("detector", "--digits", MODEL_DIR, "--data", MNIST_SLICE, "--styles", STYLE_SLICE,
                           "--handwriting", HANDWRITING_SLICE, "--epochs", "1", "--out", out) == 0
    written = (out / card.CARD_FILE).read_text()
    assert "negatives kept out" in written and "most often as" in written and "| MNIST test | 200 |" in written
    (out / card.CARD_FILE).unlink()
    assert card.main([str(out)]) == 0
    assert (out / card.CARD_FILE).read_text() == written
    metadata = json.loads((out / METADATA_FILE).read_text())
    del metadata["negatives_validation"], metadata["hyperparameters"]["max_refused"]
    digits = card.render({**metadata, "data": {**metadata["data"], "negatives": None}})
    assert "never answers \"not a digit\"" in digits and "negatives kept out" not in digits
    assert "python -m training.train detector" not in digits
