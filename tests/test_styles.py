"""training/styles.py: digits drawn from stroke templates of many school styles, through the app's preprocessing."""

import numpy as np
import pytest

from training import styles
from training.styles import TEMPLATES, VALIDATION, draw, split, style_digits


def test_every_template_draws_a_canvas_the_app_reads():
    images, labels, names = style_digits("training", per_template=2)
    held_out = style_digits("validation", per_template=2)
    assert sorted(set(names) | set(held_out[2])) == sorted(TEMPLATES)
    for frames in (images, held_out[0]):
        assert frames.dtype == np.uint8 and frames.shape[1:] == (28, 28)
        assert (frames.reshape(len(frames), -1).max(axis=1) == 255).all()  # a digit, scaled as MNIST's
    assert sorted(set(labels.tolist())) == list(range(10))


def test_the_canvas_is_what_the_sketchpad_sends():
    canvas = draw(TEMPLATES["7-crossed"][1], np.random.default_rng(0))
    assert canvas.mode == "RGBA" and canvas.size == (800, 800)
    assert canvas.getchannel("A").getextrema() == (255, 255)


def test_whole_templates_are_held_out_and_each_has_a_training_sibling():
    assert set(VALIDATION) <= set(TEMPLATES)
    for name in VALIDATION:
        digit = TEMPLATES[name][0]
        assert any(split(other) == "training" and TEMPLATES[other][0] == digit for other in TEMPLATES), name
    assert {TEMPLATES[name][0] for name in VALIDATION} == set(range(10))


def test_the_same_seed_draws_the_same_digits():
    first, second = style_digits("validation", 1, seed=5), style_digits("validation", 1, seed=5)
    assert np.array_equal(first[0], second[0]) and first[2] == second[2]
    assert not np.array_equal(first[0], style_digits("validation", 1, seed=6)[0])


def test_the_style_set_holds_templates_and_fonts_of_one_split():
    validation = styles.style_set("validation", per_template=1, per_font_digit=1)
    kinds = {style.split(" ")[0] for style in validation["styles"]}
    assert kinds == {"template", "font"}
    assert len(validation["images"]) == len(validation["labels"]) == len(validation["styles"])
    templates = [style.split(" ")[1] for style in validation["styles"] if style.startswith("template")]
    assert templates and all(split(name) == "validation" for name in templates)


def test_the_validation_split_is_frozen(style_validation, style_slice):
    """The held-out set is what the shipped model was measured on: the generator, the fonts and the app's
    preprocessing still draw it image for image. A deliberate change rebuilds the slice with
    `python -m training.styles --slice tests/data/style_slice.npz` and says so."""
    validation = styles.every({"validation": style_validation}, styles.SLICE_STEP)["validation"]
    frozen = style_slice["validation"]
    assert np.array_equal(validation["labels"], frozen["labels"])
    assert np.array_equal(validation["styles"], frozen["styles"])
    assert np.abs(validation["images"].astype(int) - frozen["images"]).max() <= 1  # rounding, at most


def test_strokes_stop_short_or_run_on_a_little_and_keep_their_path():
    line = np.array([[0.0, 0.0], [0.0, 0.5], [0.0, 1.0]])
    for seed in range(50):
        redrawn = styles.retrace(line, np.random.default_rng(seed))
        assert np.allclose(redrawn[:, 0], 0.0)  # on the same line
        assert -0.08 - 1e-9 <= redrawn[0, 1] <= 0.08 + 1e-9 and 0.92 - 1e-9 <= redrawn[-1, 1] <= 1.08 + 1e-9
        assert np.all(np.diff(redrawn[:, 1]) > 0)  # in order


def test_every_drawing_stays_on_the_canvas():
    rng = np.random.default_rng(0)
    for _ in range(3):
        for _, strokes in TEMPLATES.values():
            ink = np.asarray(draw(strokes, rng).convert("L")) < 128
            edges = (ink[0], ink[-1], ink[:, 0], ink[:, -1])
            narrowest_brush = 2 * 0.8 * styles.BRUSH_RADIUS  # a stroke cut by an edge leaves this much ink on it
            assert ink.any() and max(edge.sum() for edge in edges) < narrowest_brush  # an end may graze it


@pytest.mark.parametrize("damage, message", [
    ("missing", "not a readable style set"),
    ("not npz", "not a readable style set"),
    ("no validation", "no array 'validation_images'"),
    ("wrong shape", "not uint8 images"),
    ("label 10", "not uint8 images"),
])
def test_a_bad_style_set_file_is_a_clear_error(tmp_path, style_slice, damage, message):
    path = tmp_path / "style_set.npz"
    splits = {which: dict(data) for which, data in style_slice.items()}
    if damage == "not npz":
        path.write_bytes(b"not an npz")
    elif damage != "missing":
        if damage == "no validation":
            del splits["validation"]
        elif damage == "wrong shape":
            splits["training"]["images"] = splits["training"]["images"][:, :20]
        elif damage == "label 10":
            splits["training"]["labels"] = splits["training"]["labels"] + 10
        styles.save_splits(path, splits)
    with pytest.raises(styles.StyleSetError, match=message):
        styles.load_style_set(path)
