"""training/styles.py: digits drawn from stroke templates of many school styles, through the app's preprocessing."""

import numpy as np

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


def test_the_canvas_and_brush_are_the_apps():
    from app import ui

    assert ui.CANVAS == (styles.CANVAS, styles.CANVAS) and ui.BRUSH_RADIUS == styles.BRUSH_RADIUS


def test_the_style_set_holds_templates_and_fonts_of_one_split():
    validation = styles.style_set("validation", per_template=1, per_font_digit=1)
    kinds = {style.split(" ")[0] for style in validation["styles"]}
    assert kinds == {"template", "font"}
    assert len(validation["images"]) == len(validation["labels"]) == len(validation["styles"])
    templates = [style.split(" ")[1] for style in validation["styles"] if style.startswith("template")]
    assert templates and all(split(name) == "validation" for name in templates)
