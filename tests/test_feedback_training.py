"""Users' corrections into training: training.data.load_corrections splits the records for good, training
--feedback trains on one split and measures the other, and evaluate --feedback gates on it."""

import contextlib
import io
import json
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from app.classifier import Classifier
from app.contract import METADATA_FILE, TFLITE_FILE
from app.feedback import FeedbackStore, new_record
from tests.support.paths import MNIST_SLICE, MODEL_DIR, STYLE_SLICE
from training import evaluate, train
from training.data import CorrectionsError, corrections_split, load_corrections, to_model_input

SERVED_MODEL = "0" * 64  # the model_sha256 of the records: which model answered does not matter here


def keep(folder, picture, meant: int, answered: int) -> str:
    """One record kept the way the app keeps it; its file name."""
    return FeedbackStore(folder, max_records=10_000).keep(new_record(picture, meant, answered, 0.9, SERVED_MODEL))


def keep_until(folder, pictures, meant, answered, split: str, count: int) -> list[str]:
    """Keep records of pictures[i], meant[i], answered[i] in turn (round and round) until `count` of them
    fall in `split`; the names of all kept. Names are random, so how many it takes is not known in advance."""
    names, in_split = [], 0
    while in_split < count:
        assert len(names) < 50 * count, f"{len(names)} records kept, only {in_split} of them in {split}"
        i = len(names) % len(pictures)
        names.append(keep(folder, pictures[i], int(meant[i]), int(answered[i])))
        in_split += corrections_split(names[-1]) == split
    return names


@pytest.fixture(scope="module")
def shipped_reading(mnist_slice):
    """The digits the shipped model reads in the slice's test images."""
    return Classifier(MODEL_DIR / TFLITE_FILE).predict(to_model_input(mnist_slice.x_test)).argmax(1)


def run_evaluate(model, folder, capsys) -> tuple[int, dict, str]:
    """evaluate --feedback: its exit status, its feedback figures and what it said on stderr."""
    status = evaluate.main(["--model", str(model), "--data", str(MNIST_SLICE), "--feedback", str(folder)])
    out, err = capsys.readouterr()
    return status, json.loads(out)["feedback_validation"], err


# --- the split and the loader ---

def test_one_name_in_five_is_kept_out():
    names = [f"20261130T0123{i:08d}Z-{i % 10}-{i * 7919:032x}.png" for i in range(5000)]
    kept_out = sum(corrections_split(name) == "validation" for name in names)
    assert 0.18 < kept_out / len(names) < 0.22


def test_records_keep_their_split_as_the_folder_grows(tmp_path, mnist_slice):
    folder = tmp_path / "feedback"
    x, y = mnist_slice.x_test, mnist_slice.y_test
    first = [keep(folder, x[i], int(y[i]), (int(y[i]) + i) % 10) for i in range(30)]
    before = load_corrections(folder)
    for i in range(30, 60):
        keep(folder, x[i], int(y[i]), int(y[i]))
    after = load_corrections(folder)
    for which in ("training", "validation"):
        old = [name for name in after[which]["names"] if name in first]
        assert old == list(before[which]["names"])
    assert not set(after["training"]["names"]) & set(after["validation"]["names"])
    assert len(after["training"]["names"]) + len(after["validation"]["names"]) == 60
    kept = {name: i for i, name in enumerate(first)}  # what each record holds, read back as written
    for which, data in before.items():
        assert data["images"].dtype == data["labels"].dtype == data["answered"].dtype == np.uint8
        for name, image, label, answered in zip(data["names"], data["images"], data["labels"], data["answered"],
                                                strict=True):
            i = kept[name]
            assert corrections_split(name) == which
            np.testing.assert_array_equal(image, x[i])
            assert (label, answered) == (y[i], (int(y[i]) + i) % 10)


def test_corrupt_records_are_skipped_with_a_warning_naming_them(tmp_path, mnist_slice):
    folder = tmp_path / "feedback"
    good = [keep(folder, mnist_slice.x_test[i], int(mnist_slice.y_test[i]), 3) for i in range(3)]
    record = (folder / good[0]).read_bytes()
    (folder / "truncated.png").write_bytes(record[:len(record) // 2])
    Image.fromarray(mnist_slice.x_test[0]).save(folder / "no-text-chunk.png")
    (folder / "not-a-png.png").write_text("a note, not a picture")
    (folder / ".half-written.png.tmp").write_bytes(record[:100])  # a crash mid-write: not a record at all
    with pytest.warns(UserWarning) as caught:
        corrections = load_corrections(folder)
    messages = sorted(str(warning.message) for warning in caught)
    assert len(messages) == 3
    assert re.search(r"no-text-chunk\.png: no `feedback` text chunk", messages[0])
    assert re.search(r"not-a-png\.png: not a readable PNG", messages[1])
    assert re.search(r"truncated\.png: not a readable PNG", messages[2])
    loaded = [*corrections["training"]["names"], *corrections["validation"]["names"]]
    assert sorted(loaded) == sorted(good)


def test_empty_folder_has_no_records(tmp_path):
    corrections = load_corrections(tmp_path)
    assert [len(corrections[which]["labels"]) for which in ("training", "validation")] == [0, 0]
    assert corrections["training"]["images"].shape == (0, 28, 28)


def test_missing_folder_or_a_file_is_a_clear_error(tmp_path):
    with pytest.raises(CorrectionsError, match=re.escape(f"{tmp_path / 'nowhere'}: folder not found")):
        load_corrections(tmp_path / "nowhere")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CorrectionsError, match=re.escape(f"{tmp_path / 'a-file'}: not a folder")):
        load_corrections(tmp_path / "a-file")


def test_training_with_a_missing_folder_fails_before_training(tmp_path):
    with pytest.raises(CorrectionsError, match="folder not found"):
        train.main(["--data", str(MNIST_SLICE), "--styles", str(STYLE_SLICE), "--out", str(tmp_path / "out"),
                    "--feedback", str(tmp_path / "nowhere"), "--epochs", "1"])
    assert not (tmp_path / "out").exists()


# --- evaluate --feedback: the figures and the gate, on the shipped model ---

def test_evaluate_passes_a_model_that_reads_the_corrections(tmp_path, mnist_slice, shipped_reading, capsys):
    read = np.flatnonzero(shipped_reading == mnist_slice.y_test)[:20]
    pictures, meant = mnist_slice.x_test[read], mnist_slice.y_test[read]
    keep_until(tmp_path, pictures, meant, (meant + 1) % 10, "validation", 3)  # 3 kept-out corrections
    keep_until(tmp_path, pictures, meant, meant, "validation", 3)  # and 3 kept-out confirmations
    status, figures, err = run_evaluate(MODEL_DIR, tmp_path, capsys)
    assert status == 0, err
    assert figures == {"records": 6, "accuracy": 1.0, "served_accuracy": 0.5, "corrections": 3,
                       "corrections_accuracy": 1.0}


def test_evaluate_fails_a_model_worse_than_the_model_in_service(tmp_path, mnist_slice, shipped_reading, capsys):
    misread = (shipped_reading[:20] + 1) % 10  # digits the shipped model does not read in those pictures
    keep_until(tmp_path, mnist_slice.x_test[:20], misread, misread, "validation", 4)  # served: all right
    out = tmp_path / "report"
    status = evaluate.main(["--model", str(MODEL_DIR), "--data", str(MNIST_SLICE), "--feedback", str(tmp_path),
                            "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    figures = json.loads((out / "metrics.json").read_text())["feedback_validation"]
    assert figures == {"records": 4, "accuracy": 0.0, "served_accuracy": 1.0, "corrections": 0,
                       "corrections_accuracy": None}
    assert f"accuracy 0.0000 on the 4 kept-out records of {tmp_path} is below 1.0000, the model in service's" in err


def test_evaluate_without_kept_out_records_says_so_and_passes(tmp_path, mnist_slice, shipped_reading, capsys):
    misread = (shipped_reading[:5] + 1) % 10
    for name in keep_until(tmp_path, mnist_slice.x_test[:5], misread, misread, "training", 3):
        if corrections_split(name) == "validation":
            (tmp_path / name).unlink()  # left: records only for training, all of which the model misreads
    status, figures, err = run_evaluate(MODEL_DIR, tmp_path, capsys)
    assert status == 0
    assert figures == {"records": 0, "accuracy": None, "served_accuracy": None, "corrections": 0,
                       "corrections_accuracy": None}
    assert f"no kept-out records in {tmp_path}" in err


# --- train --feedback ---

@pytest.fixture(scope="module")
def trained_with_feedback(tmp_path_factory, mnist_slice):
    """One short run on the slices and a corrections folder holding one broken file: (model folder, corrections
    folder, what training printed)."""
    folder = tmp_path_factory.mktemp("feedback")
    x, y = mnist_slice.x_test, mnist_slice.y_test
    keep_until(folder, x[:40], y[:40], (y[:40] + 1) % 10, "training", 10)  # all corrections
    keep_until(folder, x[40:80], y[40:80], (y[40:80] + 1) % 10, "validation", 3)
    (folder / "broken.png").write_text("not a record")
    out = tmp_path_factory.mktemp("model")
    printed = io.StringIO()
    # not pytest.warns: it would re-raise TensorFlow's warnings past the filters of pyproject.toml
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        assert train.main(["--data", str(MNIST_SLICE), "--styles", str(STYLE_SLICE), "--out", str(out),
                           "--feedback", str(folder), "--epochs", "1", "--validation-images", "100",
                           "--verbose", "0"]) == 0
    assert any(re.search(r"broken\.png: not a readable PNG", str(warning.message)) for warning in caught)
    return out, folder, printed.getvalue()


def test_training_mixes_in_the_training_split_only(trained_with_feedback, style_slice):
    out, folder, _ = trained_with_feedback
    metadata = json.loads((out / METADATA_FILE).read_text())
    with pytest.warns(UserWarning, match=r"broken\.png"):
        corrections = load_corrections(folder)
    trained_on = len(corrections["training"]["labels"])
    assert metadata["feedback_validation"]["training_records"] == trained_on > 0
    assert metadata["training"]["training_images"] == 300 + len(style_slice["training"]["labels"]) + trained_on


def test_metadata_holds_evaluates_feedback_figures(trained_with_feedback, capsys):
    out, folder, printed = trained_with_feedback
    figures = json.loads((out / METADATA_FILE).read_text())["feedback_validation"]
    with pytest.warns(UserWarning, match=r"broken\.png"):
        status, evaluated, _ = run_evaluate(out, folder, capsys)
    assert status in (0, 1)  # a one-epoch model may well fail the gate: the figures are what is checked
    assert figures == {"folder": str(folder), "training_records": figures["training_records"], **evaluated}
    assert figures["records"] >= 3 and figures["corrections"] == figures["records"]  # all were corrections
    assert figures["served_accuracy"] == 0.0
    assert (f"feedback from {folder}: {figures['training_records']} records trained on, {figures['records']} kept "
            f"out: accuracy {figures['accuracy']:.4f} on them, the model in service's 0.0000") in printed
