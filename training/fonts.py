"""Digits rendered from handwriting fonts: a style set that owes nothing to MNIST's writers.

    images, labels, names = font_digits("validation", count_per_digit=20, seed=0)

Each digit is drawn the way a person draws on the app's 800x800 Sketchpad (black on opaque white, at a
random size, place, slant and width, its strokes thickened towards the app's brush) and read by the app's
own preprocessing, so the 28x28 images are what the model would see. The fonts are vendored in
training/fonts/ (sources and licences in SOURCES.md); whole families in HELD_OUT are for validation only.
"""

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from app.contract import BRUSH_RADIUS, CANVAS_SIZE
from app.preprocess import preprocess

FONT_DIR = Path(__file__).with_name("fonts")
FONTS = {path.stem: path for path in sorted(FONT_DIR.glob("*.woff"))}  # family name -> font file
HELD_OUT = (  # families never trained on: a third of them, in styles the others also cover
    "caveat",  # crossed 7
    "homemade-apple",  # joined, slanted script
    "indie-flower",  # open 4
    "reenie-beanie",  # thin, scratchy
    "playwrite-de-grund",  # German primary-school print
    "playwrite-dk-loopet",  # Danish looped school hand
    "playwrite-fr-moderne",  # French school hand
)

WORK = 4  # glyphs are drawn at 1/4 of the canvas size, then scaled up: 16 times less work for the filters
FONT_PX = 256  # glyphs are rasterised at this size, then scaled to their place
HEIGHT = (0.30, 0.90)  # ink height, as a fraction of the canvas
SLANT_DEGREES = 15  # shear, either way
ROTATION_DEGREES = 8  # rotation, either way
ASPECT = 0.15  # width changed by up to 15 % either way
MARGIN = 0.03  # ink stays this far (of the canvas) from its edges
THICKEN = 0.7  # probability of thickening the strokes towards the brush's width
DIGITS = "0123456789"


def split(name: str) -> str:
    """The set a font family belongs to: "validation" (held out) or "training"."""
    return "validation" if name in HELD_OUT else "training"


def families(which: str) -> list[str]:
    """The vendored font families of one split, sorted."""
    return [name for name in FONTS if split(name) == which]


@lru_cache(maxsize=64)
def load_font(font_path: str | Path) -> ImageFont.FreeTypeFont:
    """The font at FONT_PX, loaded once."""
    return ImageFont.truetype(str(font_path), FONT_PX)


def glyph_mask(font_path: str | Path, digit: int) -> Image.Image:
    """The digit's glyph as an "L" mask (255 = ink), cropped to its ink."""
    font = load_font(font_path)
    left, top, right, bottom = font.getbbox(str(digit))
    mask = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(mask).text((2 - left, 2 - top), str(digit), fill=255, font=font)
    box = mask.getbbox()
    if box is None:
        raise ValueError(f"{Path(font_path).name} draws no ink for {digit}")
    return mask.crop(box)


def random_pose(rng: np.random.Generator, glyph: tuple[int, int], size: int) -> tuple[float, ...]:
    """Pillow's AFFINE coefficients (output -> glyph) placing the glyph on a size x size canvas.

    The glyph is slanted, rotated and stretched at random, scaled to a random height and put at a random
    place where all of it fits inside the margin.
    """
    width, height = glyph
    slant = np.tan(np.radians(rng.uniform(-SLANT_DEGREES, SLANT_DEGREES)))
    angle = np.radians(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES))
    aspect = rng.uniform(1 - ASPECT, 1 + ASPECT)
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = rotate @ np.array([[1.0, -slant], [0.0, 1.0]]) @ np.diag([aspect, 1.0])  # y points down
    corners = linear @ np.array([[0, width, 0, width], [0, 0, height, height]], dtype=float)
    extent = corners.max(axis=1) - corners.min(axis=1)
    room = size * (1 - 2 * MARGIN)
    scale = min(rng.uniform(*HEIGHT) * size / extent[1], room / extent[0], room / extent[1])
    linear, corners, extent = linear * scale, corners * scale, extent * scale
    low = size * MARGIN - corners.min(axis=1)  # shift putting the ink at the margin's top-left corner
    shift = low + rng.uniform(0, 1, 2) * (room - extent)
    inverse = np.linalg.inv(linear)
    offset = -inverse @ shift
    return (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])


def stroke_width(mask: Image.Image) -> float:
    """The strokes' mean width in pixels: twice the ink's area over its outline's length."""
    ink = mask.point(lambda value: 255 if value >= 128 else 0)
    area = np.count_nonzero(np.asarray(ink))
    inner = np.count_nonzero(np.asarray(ink.filter(ImageFilter.MinFilter(3))))
    return 2 * area / max(area - inner, 1)


def thicken(mask: Image.Image, rng: np.random.Generator, scale: float) -> Image.Image:
    """The strokes widened towards a random width up to the brush's (2 * BRUSH_RADIUS at canvas scale).

    The mask is ink-white, so the MaxFilter here is a MinFilter on the black-on-white glyph.
    """
    target = rng.uniform(0.5, 1.0) * 2 * BRUSH_RADIUS * scale
    radius = int(round((target - stroke_width(mask)) / 2))
    return mask.filter(ImageFilter.MaxFilter(2 * radius + 1)) if radius > 0 else mask


def render_digit(font_path: str | Path, digit: int, rng: np.random.Generator, canvas: int = CANVAS_SIZE) -> Image.Image:
    """The digit in this font, drawn black on an opaque white RGBA canvas x canvas, like a Sketchpad composite.

    Random: height (30-90 % of the canvas), place, slant (+-15 degrees), rotation, width (+-15 %) and,
    with probability THICKEN, strokes widened towards the app's brush.
    """
    glyph = glyph_mask(font_path, digit)
    small = max(1, canvas // WORK)
    mask = glyph.transform((small, small), Image.Transform.AFFINE, random_pose(rng, glyph.size, small),
                           resample=Image.Resampling.BILINEAR)
    if rng.random() < THICKEN:
        mask = thicken(mask, rng, small / CANVAS_SIZE)
    mask = mask.resize((canvas, canvas), Image.Resampling.BILINEAR)
    image = Image.new("RGBA", (canvas, canvas), "white")
    image.paste((0, 0, 0, 255), mask=mask)
    return image


def font_digits(which: str, count_per_digit: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renders of every digit in every font of a split, read by the app's preprocessing.

    Returns images uint8 [N, 28, 28] (0 = background, like MNIST), labels int64 [N] and each image's font
    family [N]; ordered by font, digit, then render. The same seed gives the same images.
    """
    if which not in ("training", "validation"):
        raise ValueError(f"split is 'training' or 'validation', not {which!r}")
    rng = np.random.default_rng(seed)
    images, labels, names = [], [], []
    for name in families(which):
        for digit in range(10):
            for _ in range(count_per_digit):
                frame = preprocess(render_digit(FONTS[name], digit, rng))[..., 0]
                images.append(np.round(frame * 255).astype(np.uint8))
                labels.append(digit)
                names.append(name)
    return (np.stack(images) if images else np.zeros((0, 28, 28), np.uint8),
            np.array(labels, dtype=np.int64), np.array(names, dtype=str))
