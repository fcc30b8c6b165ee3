"""Users' corrections into training: training.data.load_corrections reads the records a person accepted (and
those waiting for review only when told, never the rejected ones) and splits them for good, training
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
from app.corrections import ACCEPTED, REJECTED, CorrectionsStore, new_correction
from tests.support.paths import MNIST_SLICE, MODEL_DIR, STYLE_SLICE
from tests.support.training import train_on_slices
from training import evaluate, fit, review, train
from training.data import CorrectionsError, corrections_split, load_corrections, to_model_input
from training.gates import GATE
from training.recipe import DigitsConfig

MAX_DIGIT_DROP = GATE["max_digit_drop"].default
SERVED_MODEL = "0" * 64  # the model_sha256 of the records: which model answered does not matter here


def keep(folder, picture, meant: int, answered: int, decision: str | None = ACCEPTED) -> str:
    """One record kept the way the app keeps it, then accepted or rejected the way a reviewer does (None: left
    waiting for review); its file name."""
    correction = new_correction(picture, meant, answered, 0.9, SERVED_MODEL)
    name = CorrectionsStore(folder, max_waiting=10_000).keep(correction)
    if decision:
        moved, problems = review.decide(folder, *(([name], []) if decision == ACCEPTED else ([], [name])))
        assert moved[decision] == 1 and not problems, problems
    return name


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


def run_evaluate(model, folder, capsys, *options: str) -> tuple[int, dict, str]:
    """evaluate --feedback: its exit status, its feedback figures and what it said on stderr."""
    status = evaluate.main(["--model", str(model), "--data", str(MNIST_SLICE), "--feedback", str(folder), *options])
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
    accepted = folder / ACCEPTED
    record = (accepted / good[0]).read_bytes()
    (accepted / "truncated.png").write_bytes(record[:len(record) // 2])
    Image.fromarray(mnist_slice.x_test[0]).save(accepted / "no-text-chunk.png")
    (accepted / "not-a-png.png").write_text("a note, not a picture")
    (accepted / ".half-written.png.tmp").write_bytes(record[:100])  # a crash mid-write: not a record at all
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
    corrections = load_corrections(tmp_path, include_unreviewed=True)  # no accepted/ either: none reviewed yet
    assert [len(corrections[which]["labels"]) for which in ("training", "validation")] == [0, 0]
    assert corrections["training"]["images"].shape == (0, 28, 28)


def names_read(corrections) -> dict[str, bool]:
    """The records load_corrections read, both splits: name -> reviewed."""
    return {name: bool(reviewed) for which in ("training", "validation")
            for name, reviewed in zip(corrections[which]["names"], corrections[which]["reviewed"], strict=True)}


def test_only_accepted_records_are_read_unless_told_and_never_rejected_ones(tmp_path, mnist_slice):
    folder = tmp_path / "feedback"
    x, y = mnist_slice.x_test, mnist_slice.y_test
    kept = {decision: [keep(folder, x[i], int(y[i]), int(y[i]), decision) for i in range(start, start + 12)]
            for start, decision in ((0, ACCEPTED), (12, None), (24, REJECTED))}
    assert names_read(load_corrections(folder)) == dict.fromkeys(kept[ACCEPTED], True)
    assert names_read(load_corrections(folder, include_unreviewed=True)) == {
        **dict.fromkeys(kept[ACCEPTED], True), **dict.fromkeys(kept[None], False)}


def test_reviewing_a_record_keeps_its_split_and_its_place(tmp_path, mnist_slice):
    folder = tmp_path / "feedback"
    names = [keep(folder, mnist_slice.x_test[i], int(mnist_slice.y_test[i]), 3, None) for i in range(40)]
    before = load_corrections(folder, include_unreviewed=True)
    moved, problems = review.decide(folder, names[::2], [])
    assert moved[ACCEPTED] == 20 and not problems
    after = load_corrections(folder, include_unreviewed=True)
    for which in ("training", "validation"):
        for key in ("images", "labels", "answered", "names"):  # the same records, in the same order
            np.testing.assert_array_equal(after[which][key], before[which][key])
        assert list(after[which]["reviewed"]) == [name in names[::2] for name in after[which]["names"]]


def test_a_poisoned_batch_left_unreviewed_changes_nothing_training_learns_from(tmp_path, mnist_slice, style_slice):
    """300 records saying MNIST's 7s are 1s, sent by a script and never reviewed: the training data, every
    array of it, is what it is without a corrections folder, so the next model is the same model."""
    folder = tmp_path / "feedback"
    sevens = mnist_slice.x_train[mnist_slice.y_train == 7]
    store = CorrectionsStore(folder, max_waiting=10_000)
    for index in range(300):
        store.keep(new_correction(sevens[index % len(sevens)], meant=1, answered=7, probability=0.999,
                              model_sha256=SERVED_MODEL))
    config = DigitsConfig(validation_images=100)
    without = fit.training_arrays(mnist_slice, [style_slice["training"]], config)
    poisoned = fit.training_arrays(mnist_slice, [style_slice["training"], load_corrections(folder)["training"]],
                                     config)
    for (x_without, y_without), (x_poisoned, y_poisoned) in zip(without, poisoned, strict=True):
        np.testing.assert_array_equal(x_poisoned, x_without)
        np.testing.assert_array_equal(y_poisoned, y_without)
    told = fit.training_arrays(
        mnist_slice, [style_slice["training"], load_corrections(folder, include_unreviewed=True)["training"]], config)
    assert (told[0][1] == 1).sum() - (without[0][1] == 1).sum() >= 200  # told to, it would learn them


def test_missing_folder_or_a_file_is_a_clear_error(tmp_path):
    with pytest.raises(CorrectionsError, match=re.escape(f"{tmp_path / 'nowhere'}: folder not found")):
        load_corrections(tmp_path / "nowhere")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(CorrectionsError, match=re.escape(f"{tmp_path / 'a-file'}: not a folder")):
        load_corrections(tmp_path / "a-file")


def test_training_with_a_missing_folder_fails_before_training(tmp_path):
    with pytest.raises(CorrectionsError, match="folder not found"):
        train.main(["digits", "--data", str(MNIST_SLICE), "--styles", str(STYLE_SLICE), "--out", str(tmp_path / "out"),
                    "--feedback", str(tmp_path / "nowhere"), "--epochs", "1"])
    assert not (tmp_path / "out").exists()


# --- evaluate --feedback: the figures and the gate, on the shipped model ---

def test_evaluate_passes_a_model_that_reads_the_corrections(tmp_path, mnist_slice, shipped_reading, capsys):
    read = np.flatnonzero(shipped_reading == mnist_slice.y_test)[:20]
    pictures, meant = mnist_slice.x_test[read], mnist_slice.y_test[read]
    names = keep_until(tmp_path, pictures, meant, (meant + 1) % 10, "validation", 3)  # 3 kept-out corrections
    names += keep_until(tmp_path, pictures, meant, meant, "validation", 3)  # and 3 kept-out confirmations
    status, figures, err = run_evaluate(MODEL_DIR, tmp_path, capsys)
    assert status == 0, err
    assert figures == {"accepted_records": len(names), "unreviewed_records": None, "records": 6, "accuracy": 1.0,
                       "served_accuracy": 0.5, "corrections": 3, "corrections_accuracy": 1.0}


def test_evaluate_fails_a_model_worse_than_the_model_in_service(tmp_path, mnist_slice, shipped_reading, capsys):
    misread = (shipped_reading[:20] + 1) % 10  # digits the shipped model does not read in those pictures
    names = keep_until(tmp_path, mnist_slice.x_test[:20], misread, misread, "validation", 4)  # served: all right
    out = tmp_path / "report"
    status = evaluate.main(["--model", str(MODEL_DIR), "--data", str(MNIST_SLICE), "--feedback", str(tmp_path),
                            "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    figures = json.loads((out / "metrics.json").read_text())["feedback_validation"]
    assert figures == {"accepted_records": len(names), "unreviewed_records": None, "records": 4, "accuracy": 0.0,
                       "served_accuracy": 1.0, "corrections": 0, "corrections_accuracy": None}
    assert f"accuracy 0.0000 on the 4 kept-out records of {tmp_path} is below 1.0000, the model in service's" in err


def test_evaluate_without_kept_out_records_says_so_and_passes(tmp_path, mnist_slice, shipped_reading, capsys):
    misread = (shipped_reading[:5] + 1) % 10
    for name in keep_until(tmp_path, mnist_slice.x_test[:5], misread, misread, "training", 3):
        if corrections_split(name) == "validation":
            (tmp_path / ACCEPTED / name).unlink()  # left: records only for training, all of which the model misreads
    status, figures, err = run_evaluate(MODEL_DIR, tmp_path, capsys)
    assert status == 0
    assert figures == {"accepted_records": 3, "unreviewed_records": None, "records": 0, "accuracy": None,
                       "served_accuracy": None, "corrections": 0, "corrections_accuracy": None}
    assert f"no kept-out records in {tmp_path}" in err


# --- train --feedback ---

@pytest.fixture(scope="module")
def trained_with_feedback(tmp_path_factory, mnist_slice):
    """One short run on the slices and a corrections folder holding accepted records and one broken file, and
    records waiting for review and rejected ones, which are not read: (model folder, corrections folder, what
    training printed)."""
    folder = tmp_path_factory.mktemp("feedback")
    x, y = mnist_slice.x_test, mnist_slice.y_test
    keep_until(folder, x[:40], y[:40], (y[:40] + 1) % 10, "training", 10)  # all corrections
    keep_until(folder, x[40:80], y[40:80], (y[40:80] + 1) % 10, "validation", 3)
    (folder / ACCEPTED / "broken.png").write_text("not a record")
    for i in range(80, 90):
        keep(folder, x[i], int(y[i]), int(y[i]), None if i % 2 else REJECTED)
    out = tmp_path_factory.mktemp("model")
    printed = io.StringIO()
    # not pytest.warns: it would re-raise TensorFlow's warnings past the filters of pyproject.toml
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
        assert train_on_slices("digits", "--data", MNIST_SLICE, "--styles", STYLE_SLICE, "--out", out,
                               "--feedback", folder, "--epochs", "1") == 0
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
    assert figures["accepted_records"] == figures["training_records"] + figures["records"]
    assert figures["unreviewed_records"] is None
    assert (f"corrections from {folder}: {figures['accepted_records']} accepted corrections, "
            f"{figures['training_records']} trained on, {figures['records']} kept out: accuracy "
            f"{figures['accuracy']:.4f} on them, the model in service's 0.0000") in printed


def test_evaluate_reads_the_records_waiting_for_review_only_when_told(trained_with_feedback, capsys):
    out, folder, _ = trained_with_feedback
    with pytest.warns(UserWarning, match=r"broken\.png"):
        _, reviewed, _ = run_evaluate(out, folder, capsys)
    with pytest.warns(UserWarning, match=r"broken\.png"):
        _, told, _ = run_evaluate(out, folder, capsys, "--feedback-unreviewed")
    assert (told["accepted_records"], told["unreviewed_records"]) == (reviewed["accepted_records"], 5)
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--model", str(out), "--data", str(MNIST_SLICE), "--feedback-unreviewed"])
    assert exit_info.value.code == 2 and "--feedback-unreviewed needs --feedback" in capsys.readouterr().err


# --- evaluate --served: no digit may fall below the model in service ---

def test_a_digit_read_worse_than_the_model_in_service_is_named():
    labels = np.repeat(np.arange(10), 1000)  # 1,000 test images of each digit
    served = np.eye(10)[labels]  # the model in service reads them all
    poisoned = served.copy()
    poisoned[np.flatnonzero(labels == 7)[:8]] = np.eye(10)[1]  # 8 sevens read as 1s: 0.992
    poisoned[np.flatnonzero(labels == 3)[:4]] = np.eye(10)[5]  # 4 threes read as 5s: 0.996, within the tolerance
    per_class = evaluate.classification_metrics(poisoned, labels)["per_class_accuracy"]
    served_per_class = evaluate.classification_metrics(served, labels)["per_class_accuracy"]
    assert evaluate.digit_drops(per_class, served_per_class, MAX_DIGIT_DROP) == ["7: 0.9920 < 1.0000"]
    assert evaluate.digit_drops(per_class, served_per_class, 0.01) == []
    assert evaluate.digit_drops(served_per_class, per_class, 0.0) == []  # better than the model in service: fine


def test_evaluate_served_fails_a_model_reading_a_digit_worse(trained_with_feedback, capsys):
    out, _, _ = trained_with_feedback
    assert evaluate.main(["--model", str(MODEL_DIR), "--data", str(MNIST_SLICE), "--served", str(MODEL_DIR)]) == 0
    served = json.loads(capsys.readouterr().out)["served_per_class_accuracy"]
    status = evaluate.main(["--model", str(out), "--data", str(MNIST_SLICE), "--served", str(MODEL_DIR)])
    printed = capsys.readouterr()
    assert status == 1  # one epoch on 300 images reads some digits far worse
    drops = evaluate.digit_drops(json.loads(printed.out)["per_class_accuracy"], served, MAX_DIGIT_DROP)
    assert drops and (f"MNIST test accuracy more than {MAX_DIGIT_DROP} below the model in service's "
                      f"({MODEL_DIR}) on digit {'; '.join(drops)}") in printed.err
    assert evaluate.main(["--model", str(out), "--data", str(MNIST_SLICE), "--served", str(MODEL_DIR),
                          "--gate", "max_digit_drop=1", "--gate", "min_accuracy=0"]) == 0
