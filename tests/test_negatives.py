"""Drawings that are no digit (training/negatives.py): none is written like a digit, the split keeps out whole
writers and whole kinds, every generated kind draws something the app reads, the kept-out negatives are the
ones the shipped model was measured on, and the gate fails a model that never says "not a digit"."""

import numpy as np
import pytest

from app.contract import NOT_A_DIGIT
from app.preprocess import preprocess
from tests.support.paths import HANDWRITING_SLICE, MNIST_SLICE, MODEL_DIR, NEGATIVES_SLICE, STYLE_SLICE, WRITERS_SLICE
from tests.support.training import evaluate_on_slices, train_on_slices
from training.negatives import (
    CHARACTER_FILES,
    GENERATED,
    KEPT_OUT_SHAPES,
    LIKE_DIGITS,
    LIKENESS_LINE,
    MEASURED_LIKE_DIGITS,
    ONE_STROKE_LIKE_DIGITS,
    README_LIKE_DIGITS,
    SIZES,
    SLICE_STEP,
    kept_out_kinds,
    load_negatives,
    measure_likeness,
    negatives_set,
    read_characters,
    shape_strokes,
)
from training.strokes import draw_lines, read_digits, screen_lines, writer_split

SMALL = {"training": (300, 3), "validation": (40, 3)}  # letters and symbols; drawings of each generated kind


@pytest.fixture(scope="module")
def small_set():
    """The negatives of the repository's slice of pen strokes (every 100th), a few of each generated kind."""
    return negatives_set(HANDWRITING_SLICE, sizes=SMALL)


def test_what_people_write_like_a_digit_is_no_negative():
    every_character = read_characters(HANDWRITING_SLICE, like_digits=True)
    negatives = read_characters(HANDWRITING_SLICE)
    assert LIKE_DIGITS == set("ODQUoIlij|ZzSsGbBgqTyYtfJ!$@?&%()[]{}/'`,")
    assert len({s["character"] for s in every_character} & LIKE_DIGITS) > 20  # most of them are in the slice
    assert not {s["character"] for s in negatives} & LIKE_DIGITS
    assert len(negatives) < len(every_character) and all(s["label"] == NOT_A_DIGIT for s in negatives)


def test_the_list_is_what_the_measure_finds(handwriting_dir):
    """On the full data, `--measure` puts exactly MEASURED_LIKE_DIGITS at or above the line, beside the data's own
    list, and the one-stroke characters it adds by rule below it; a change to the drawing or the data that moves a
    character across the line fails here, not silently in the negatives."""
    shares = {kind.split(":", 1)[1]: share for kind, _, _, share in measure_likeness(handwriting_dir)}
    at_or_above = {name for name, share in shares.items() if share >= LIKENESS_LINE}
    assert at_or_above - README_LIKE_DIGITS == MEASURED_LIKE_DIGITS, {
        name: f"{shares[name]:.0%}" for name in (at_or_above - README_LIKE_DIGITS) ^ MEASURED_LIKE_DIGITS}
    assert not ONE_STROKE_LIKE_DIGITS & at_or_above


def test_the_split_keeps_out_whole_writers_and_whole_kinds(small_set):
    kept_out = kept_out_kinds(s["kind"] for s in read_characters(HANDWRITING_SLICE))
    for section in CHARACTER_FILES:  # letters of both cases and symbols among the unseen kinds
        assert any(kind.startswith(f"{section}:") for kind in kept_out), section
    training, validation = small_set["training"], small_set["validation"]
    assert not set(training["kinds"]) & kept_out, "a kept-out kind was trained on"
    real = training["datasets"] != "generated"
    assert {writer_split(w) for w in training["writers"][real]} == {"training"}, "a kept-out writer was trained on"
    groups = validation["groups"]
    assert set(groups) == {"unseen writers", "unseen characters", "generated", "unseen shapes"}
    unseen_writers = validation["writers"][groups == "unseen writers"]
    assert {writer_split(w) for w in unseen_writers} == {"validation"}
    assert set(validation["kinds"][groups == "unseen characters"]) <= kept_out
    assert set(validation["kinds"][groups == "unseen shapes"]) == {f"generated:{s}" for s in KEPT_OUT_SHAPES}
    assert set(training["labels"]) == set(validation["labels"]) == {NOT_A_DIGIT}


def test_every_generated_kind_draws_a_readable_drawing():
    """Each kind, drawn as the Sketchpad would send it, gives the app a frame with ink in it."""
    rng = np.random.default_rng(0)
    letters, digits = read_characters(HANDWRITING_SLICE), read_digits(HANDWRITING_SLICE)
    for kind in GENERATED:
        for _ in range(5):
            frame = preprocess(draw_lines(screen_lines(shape_strokes(kind, rng, letters, digits)), 0.5, rng))
            assert 0.04 < (frame > 0.5).mean() < 0.6, kind


def test_the_kept_out_negatives_are_frozen(full_negatives_validation):
    """The negatives kept out are what the shipped model was measured on. A deliberate change rebuilds the slice
    with `python -m training.negatives --data DIR --slice tests/data/negatives_slice.npz` and says so."""
    drawn = full_negatives_validation
    frozen = load_negatives(NEGATIVES_SLICE)["validation"]
    assert np.array_equal(drawn["kinds"][::SLICE_STEP], frozen["kinds"])
    assert np.array_equal(drawn["writers"][::SLICE_STEP], frozen["writers"])
    assert np.abs(drawn["images"][::SLICE_STEP].astype(int) - frozen["images"]).max() <= 1
    real_groups = 2  # unseen writers, unseen characters: up to SIZES each; every generated kind, SIZES each
    assert len(drawn["labels"]) >= 0.95 * (real_groups * SIZES["validation"][0]
                                           + len(GENERATED) * SIZES["validation"][1])


def test_a_file_of_digits_is_no_negatives_file(tmp_path):
    """Whatever is not what --out writes is refused, naming the fault: a writers file, digits' labels."""
    from training.negatives import NegativesError
    from training.strokes import save_splits

    with pytest.raises(NegativesError, match="no array 'training_kinds'"):
        load_negatives(WRITERS_SLICE)
    relabelled = {which: {**data, "labels": np.full_like(data["labels"], 3)}
                  for which, data in load_negatives(NEGATIVES_SLICE).items()}
    save_splits(tmp_path / "digits.npz", relabelled)
    with pytest.raises(NegativesError, match="labels among 10 "):
        load_negatives(tmp_path / "digits.npz")


def gate(min_refused: float) -> list[str]:
    """training.evaluate's refusal gate on the slices."""
    return ["--data", MNIST_SLICE, "--handwriting", HANDWRITING_SLICE, "--gate", f"min_refused={min_refused}",
            "--gate", "max_digits_refused=0.01", "--gate", "min_writer_accuracy=0", "--gate",
            "min_writer_digit_accuracy=0"]


def test_the_gate_fails_a_model_that_never_says_not_a_digit(tmp_path, capsys):
    """training.evaluate's refusal gate fails a model trained without negatives, which answers a digit for every
    drawing."""
    assert train_on_slices("digits", "--data", MNIST_SLICE, "--out", tmp_path, "--epochs", "1", "--styles",
                           STYLE_SLICE) == 0
    capsys.readouterr()
    assert evaluate_on_slices("--model", tmp_path, *gate(0.9)) == 1
    assert "negatives_validation.worst_group_refused 0.0000 is below the minimum" in capsys.readouterr().err


def test_the_shipped_model_passes_the_refusal_gate():
    """On the slice, whose groups hold 15-38 drawings, at a floor below the shipped model's worst group (the unseen
    shapes: 7 of 15 refused here, 69.5 % of the full 600)."""
    assert evaluate_on_slices("--model", MODEL_DIR, *gate(0.4)) == 0
