"""Digits rendered from the vendored handwriting fonts: every font renders, splits are disjoint, renders repeat."""

import re

import numpy as np
import pytest

from app.contract import check_input
from app.preprocess import preprocess
from training.fonts import FONT_DIR, FONTS, HELD_OUT, families, font_digits, render_digit, split

SOURCES = FONT_DIR / "SOURCES.md"
ROW = re.compile(r"^\|\s*(\S+\.woff)\s*\|\s*(@fontsource/\S+@\d\S*)\s*\|\s*(\S+)\s*\|\s*(\S+)\s*\|$")


def sources() -> dict[str, tuple[str, str, str]]:
    """SOURCES.md's table: font file -> (package@version, licence, licence file)."""
    rows = [ROW.match(line.strip()) for line in SOURCES.read_text().splitlines()]
    return {row[1]: (row[2], row[3], row[4]) for row in rows if row}


def test_fonts_are_vendored():
    assert 12 <= len(FONTS) <= 24
    assert sum(path.stat().st_size for path in FONT_DIR.iterdir()) < 3_000_000


@pytest.mark.parametrize("name", sorted(FONTS))
def test_every_digit_renders_and_reads(name):
    rng = np.random.default_rng(0)
    for digit in range(10):
        canvas = render_digit(FONTS[name], digit, rng)
        assert canvas.mode == "RGBA" and canvas.size == (800, 800)
        pixels = np.asarray(canvas)
        assert (pixels[..., 3] == 255).all(), "the canvas is opaque, like the Sketchpad's composite"
        ink = (pixels[..., 0] < 128).mean()
        assert 0.002 < ink < 0.5, f"{name} {digit}: {ink:.1%} of the canvas is ink"
        frame = preprocess(canvas)  # raises NothingToRead for a blank or near-blank canvas
        check_input(frame[np.newaxis])
        assert frame.max() > 0.9


def test_held_out_families_are_a_disjoint_third():
    validation, training = families("validation"), families("training")
    assert set(HELD_OUT) == set(validation), "every held-out family is vendored"
    assert validation and training and not set(validation) & set(training)
    assert set(validation) | set(training) == set(FONTS)
    assert 0.25 <= len(validation) / len(FONTS) <= 0.4
    assert sum(name.startswith("playwrite-") for name in validation) >= 2
    assert all(split(name) == "validation" for name in HELD_OUT)
    assert split("kalam") == "training"


def test_same_seed_same_images():
    first = font_digits("validation", count_per_digit=1, seed=3)
    again = font_digits("validation", count_per_digit=1, seed=3)
    other = font_digits("validation", count_per_digit=1, seed=4)
    images, labels, names = first
    assert images.dtype == np.uint8 and images.shape == (10 * len(HELD_OUT), 28, 28)
    assert labels.tolist() == list(range(10)) * len(HELD_OUT)
    assert set(names) == set(HELD_OUT)
    for array, same in zip(first, again, strict=True):
        np.testing.assert_array_equal(array, same)
    assert not np.array_equal(images, other[0])


def test_every_font_has_its_source_and_licence():
    listed = sources()
    for name, path in FONTS.items():
        assert path.name in listed, f"{path.name} is not in SOURCES.md"
        package, licence, licence_file = listed[path.name]
        assert package.startswith(f"@fontsource/{name}@")
        assert licence in ("OFL-1.1", "Apache-2.0", "GPL-2.0", "GPL-3.0")
        assert (FONT_DIR / licence_file).is_file() and (FONT_DIR / licence_file).stat().st_size > 1000
    assert set(listed) == {path.name for path in FONTS.values()}, "SOURCES.md lists only vendored fonts"
