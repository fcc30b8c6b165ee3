"""The one preprocessing function: any canvas, place, size, stroke and colour mode -> the MNIST frame."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.contract import check_input
from app.preprocess import NothingToRead, UnreadableImage, preprocess
from tests.support.drawing import browser_png, draw_digit, huge_png_header, png_bytes
from tests.support.gradio_api import sketchpad_value
from tests.support.paths import BROWSER_COMPOSITE, MNIST_SLICE
from training.data import load_mnist

SEVEN = [(0.1, 0.05), (0.9, 0.05), (0.45, 0.95)]  # a "7" as a polyline in a unit box
# Frames of drawn canvases made by the preprocessing before the ink was searched at low resolution (commit
# 1d49aa0): MNIST's slice, drawn at random sizes and places with seed 0.
REFERENCE_FRAMES = MNIST_SLICE.parent / "reference_frames.npz"


def draw_shape(canvas=(800, 800), box=(200, 200, 500), width=None, ink="black", paper="white", mode="RGB"):
    """The "7" drawn in a square box (left, top, size) with a round brush; width defaults to size/10."""
    left, top, size = box
    image = Image.new(mode, canvas, paper)
    points = [(left + x * size, top + y * size) for x, y in SEVEN]
    ImageDraw.Draw(image).line(points, fill=ink, width=width or max(1, size // 10), joint="curve")
    return image


def centre_of_mass(frame):
    frame = frame[..., 0]
    rows, cols = np.indices(frame.shape)
    return (rows * frame).sum() / frame.sum(), (cols * frame).sum() / frame.sum()


def difference(frame, reference):
    """Mean absolute difference, allowing the frame to sit a pixel off in either direction."""
    return min(np.abs(np.roll(frame, (dy, dx), axis=(0, 1)) - reference).mean()
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def extent(frame):
    rows, cols = np.nonzero(frame[..., 0] > 0.05)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


def test_meets_the_contract():
    frame = preprocess(draw_shape())
    assert frame.shape == (28, 28, 1) and frame.dtype == np.float32
    check_input(frame[np.newaxis])
    assert frame.max() == pytest.approx(1.0)
    assert frame[0].max() == 0 and frame[:, 0].max() == 0 and frame[:, -1].max() == 0  # white on black, like MNIST


def test_the_test_canvases_are_what_the_browser_sends():
    browser = Image.open(BROWSER_COMPOSITE)
    drawn = Image.open(io.BytesIO(browser_png(draw_digit(np.eye(28, dtype=np.uint8) * 255, np.random.default_rng(0)))))
    assert (drawn.mode, drawn.size) == (browser.mode, browser.size) == ("RGBA", (800, 800))
    assert drawn.getchannel("A").getextrema() == browser.getchannel("A").getextrema() == (255, 255)  # opaque
    reencoded = browser_png(browser)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(reencoded))), np.asarray(browser))
    assert 0.75 < len(reencoded) / BROWSER_COMPOSITE.stat().st_size < 1.25  # as compact as the browser's file


def test_reads_a_composite_drawn_in_the_browser():
    frame = preprocess(BROWSER_COMPOSITE.read_bytes())
    centre_y, centre_x = centre_of_mass(frame)
    assert abs(centre_y - 13.5) <= 0.75 and abs(centre_x - 13.5) <= 0.75
    assert max(extent(frame)) in (20, 21)


@pytest.mark.parametrize("box", [(10, 10, 120), (600, 640, 150), (20, 380, 400), (0, 0, 800), (90, 50, 700)])
def test_any_size_and_place_gives_the_same_centred_digit(box):
    reference = preprocess(draw_shape(box=(200, 200, 400)))
    frame = preprocess(draw_shape(box=box))
    centre_y, centre_x = centre_of_mass(frame)
    assert abs(centre_y - 13.5) <= 0.75 and abs(centre_x - 13.5) <= 0.75
    assert max(extent(frame)) in (20, 21)  # fitted into 20x20, as MNIST is
    assert np.abs(frame - reference).mean() < 0.04


@pytest.mark.parametrize("width", [6, 20, 45])
def test_stroke_width_changes_thickness_not_place(width):
    frame = preprocess(draw_shape(box=(100, 150, 450), width=width))
    centre_y, centre_x = centre_of_mass(frame)
    assert abs(centre_y - 13.5) <= 0.75 and abs(centre_x - 13.5) <= 0.75
    assert max(extent(frame)) in (20, 21)


def test_polarity_and_colour_modes_agree():
    reference = preprocess(draw_shape())
    variants = {
        "L": draw_shape(mode="L", ink=0, paper=255),
        "light on dark": draw_shape(ink="white", paper="black"),
        "RGBA opaque": draw_shape(mode="RGBA", ink=(0, 0, 0, 255), paper=(255, 255, 255, 255)),
        "RGBA transparent layer": draw_shape(mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0)),
        "coloured ink on grey paper": draw_shape(ink=(30, 60, 160), paper=(200, 200, 190)),
        "PNG bytes": png_bytes(draw_shape()),
    }
    for name, image in variants.items():
        assert np.abs(preprocess(image) - reference).mean() < 0.03, name


@pytest.mark.parametrize("mode, options", [
    ("RGBA", {}), ("RGB", {}), ("L", {}), ("LA", {}), ("P", {}), ("1", {}), ("I;16", {}),
    ("RGB", {"transparency": (255, 255, 255)}), ("RGBA", {"optimize": True}), ("L", {"compress_level": 0}),
    ("RGBA transparent around the digit", {}), ("RGBA half transparent", {}),
])
def test_every_kind_of_png_reads_as_pillow_decodes_it(mode, options):
    """PNGs are decoded by libspng when it gives Pillow's pixels (8 bits per channel), else by Pillow."""
    image = draw_shape(mode="RGB")
    if mode == "RGBA transparent around the digit":
        image = draw_shape(mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0))
    elif mode == "RGBA half transparent":
        image = draw_shape(mode="RGBA", ink=(0, 0, 0, 255), paper=(255, 255, 255, 128))
    else:
        image = image.convert(mode) if mode != "I;16" else image.convert("L").convert("I;16")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    decoded_by_pillow = Image.open(io.BytesIO(buffer.getvalue()))
    decoded_by_pillow.load()
    assert np.abs(preprocess(buffer.getvalue()) - preprocess(decoded_by_pillow)).max() == 0, mode


def test_a_browser_canvas_gives_the_frame_it_gave_before_the_ink_was_searched_at_low_resolution():
    """The ink is found on a reduced copy, then measured again at full resolution: the same 28x28 frame."""
    expected = np.load(REFERENCE_FRAMES)["frames"]
    rng = np.random.default_rng(0)
    mnist = load_mnist(MNIST_SLICE)
    frames = [preprocess(browser_png(draw_digit(digit, rng))) for digit in mnist.x_test[:len(expected)]]
    assert np.abs(np.stack(frames) - expected).max() < 1e-6


def test_sketchpad_composite_layers_and_background():
    composite = png_bytes(draw_shape())
    layer = png_bytes(draw_shape(mode="RGBA", ink=(0, 0, 0, 255), paper=(0, 0, 0, 0)))
    white = png_bytes(Image.new("RGB", (800, 800), "white"))
    reference = preprocess(composite)
    for value in (sketchpad_value(composite),
                  {"background": None, "layers": [layer], "composite": None},
                  {"background": white, "layers": [layer], "composite": None}):
        assert np.abs(preprocess(value) - reference).mean() < 0.03


def test_a_photo_of_a_digit_on_paper():
    rng = np.random.default_rng(0)
    paper = np.clip(rng.normal(185, 8, (1200, 1600)) + np.linspace(0, 40, 1600), 0, 255).astype(np.uint8)
    photo = Image.fromarray(paper).convert("RGB")
    ImageDraw.Draw(photo).line([(500 + x * 500, 300 + y * 500) for x, y in SEVEN], fill=(40, 40, 50), width=45,
                               joint="curve")
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=85)
    assert difference(preprocess(buffer.getvalue()), preprocess(draw_shape())) < 0.03


def test_large_images_are_shrunk_first():
    frame = preprocess(draw_shape(canvas=(3000, 2400), box=(900, 600, 1500), width=150))
    assert np.abs(frame - preprocess(draw_shape())).mean() < 0.03


@pytest.mark.parametrize("value", [
    None,
    sketchpad_value(),  # untouched or cleared canvas
    sketchpad_value(png_bytes(Image.new("RGB", (800, 800), "white"))),
    sketchpad_value(png_bytes(Image.new("RGBA", (800, 800), (0, 0, 0, 0)))),
    png_bytes(Image.new("L", (800, 800), 0)),  # all black
])
def test_blank_canvases_have_nothing_to_read(value):
    with pytest.raises(NothingToRead):
        preprocess(value)


def test_a_few_stray_marks_are_not_a_digit():
    image = Image.new("RGB", (800, 800), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((100, 100, 120, 120), fill="black")  # a tap of the brush
    draw.point([(700, 50), (400, 400), (20, 780)], fill="black")
    with pytest.raises(NothingToRead, match="too little to read"):
        preprocess(image)


def test_faint_smudges_are_not_a_digit():
    image = Image.new("L", (800, 800), 255)
    ImageDraw.Draw(image).line([(100, 100), (600, 600)], fill=240, width=30)  # 15 grey levels: paper texture
    with pytest.raises(NothingToRead, match="blank"):
        preprocess(image)


def test_unreadable_files_get_a_clear_error():
    with pytest.raises(UnreadableImage, match="not an image file"):
        preprocess(b"this is not an image")
    truncated = png_bytes(draw_shape())[:3000]
    with pytest.raises(UnreadableImage, match="corrupt or truncated"):
        preprocess(truncated)
    with pytest.raises(UnreadableImage, match="image is larger than 16 megapixels"):
        preprocess(huge_png_header(20_000, 20_000))
    with pytest.raises(UnreadableImage, match="cannot read an array"):
        preprocess(np.zeros((10, 10, 7), np.float64))
