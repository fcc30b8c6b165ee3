"""The one preprocessing function: any picture of one digit -> the model contract, the way MNIST was made.

MNIST's recipe: find the ink, crop to it, scale it to fit a 20x20 box keeping its aspect ratio
(anti-aliased), and place it in a 28x28 frame so that its centre of mass is at the centre. The same
steps here make a digit drawn small in a corner, or huge across the canvas, look like one drawn in
the middle. Accepted: a Sketchpad value (composite, or layers over a background) or a plain image
(file path, bytes, PIL image or array) in any size and mode, dark-on-light or light-on-dark.

Decoding is the costly step, so each image is decoded once, shrunk early when large, and every MNIST
step after the crop works on an array of at most 20x20.
"""

import io
import threading
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from app.contract import IMAGE_SIZE, check_input

DIGIT_BOX = 20  # MNIST fits each digit into 20x20 ...
MAX_PIXELS = 40_000_000  # refuse larger images before decoding them (a 40-megapixel photo is plenty)
MAX_FULL_DECODE_PIXELS = 16_000_000  # JPEG decodes at a reduced size; other formats up to this (64 MB in RGBA)
LARGE_PIXELS = 4_000_000  # images above this are decoded one at a time, to bound the server's memory
LARGE_DECODE = threading.Lock()
WORKING_SIZE = 1024  # larger images are shrunk to this before looking for ink
MIN_CONTRAST = 32  # ink must differ from the background by this much (of 255)
INK_LEVEL = 0.1  # a pixel is ink at 10 % of the way from the background to the darkest stroke
MIN_DIGIT_FRACTION = 0.08  # ink spanning less than 8 % of the picture is a stray mark, not a digit
MIN_INK_PIXELS = 12
STRAY_INK = 0.01  # marks far from the digit holding under 1 % of the ink are left out of the crop


class NothingToRead(Exception):
    """The picture holds no digit to read (blank, all white, a few stray marks)."""


class NothingDrawn(NothingToRead):
    """No picture at all: an untouched or cleared Sketchpad."""


class UnreadableImage(ValueError):
    """The upload is not an image we can decode."""


def open_image(source) -> Image.Image:
    """A PIL image from a file path, bytes, PIL image or array; size checked before decoding."""
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        try:
            image = Image.fromarray(source)
        except TypeError as error:
            raise UnreadableImage(f"cannot read an array of {source.dtype} {list(source.shape)} ({error})") from None
    else:
        try:
            image = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source))
        except UnidentifiedImageError:
            raise UnreadableImage("not an image file, or in a format that cannot be read") from None
        except Image.DecompressionBombError:
            raise UnreadableImage(f"image is larger than {MAX_PIXELS // 1_000_000} megapixels") from None
        except FileNotFoundError:  # e.g. an upload another replica took, or one deleted after 10 minutes
            raise UnreadableImage("the file is not on this server: upload it again") from None
        except (OSError, ValueError) as error:
            raise UnreadableImage(f"cannot open the image ({type(error).__name__})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise UnreadableImage(f"image is {width}x{height}: larger than {MAX_PIXELS // 1_000_000} megapixels")
    if width == 0 or height == 0:
        raise UnreadableImage("image is empty (0 pixels)")
    return image


def ink_map(image: Image.Image) -> np.ndarray:
    """uint8 [H, W]: 0 where the background is, up to 255 where the ink is darkest (or brightest)."""
    image.draft("L", (WORKING_SIZE, WORKING_SIZE))  # JPEG decodes at a reduced size; others ignore it
    pixels = image.width * image.height
    if pixels > MAX_FULL_DECODE_PIXELS:
        raise UnreadableImage(f"image is {image.width}x{image.height}: larger than "
                              f"{MAX_FULL_DECODE_PIXELS // 1_000_000} megapixels (JPEG photos up to "
                              f"{MAX_PIXELS // 1_000_000})")
    with LARGE_DECODE if pixels > LARGE_PIXELS else nullcontext():
        try:
            image.load()
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise UnreadableImage(f"image data is corrupt or truncated ({error})") from None
        if max(image.size) > WORKING_SIZE:  # shrink early: grey (with alpha, if any), by an integer box filter
            alpha = "A" in image.getbands() or "transparency" in image.info
            if image.mode == "P":
                image = image.convert("RGBA" if alpha else "RGB")  # a palette's colours, then grey
            grey = "LA" if alpha else "L"
            image = (image if image.mode == grey else image.convert(grey)).reduce(-(-max(image.size) // WORKING_SIZE))
    if "A" in image.getbands() or "transparency" in image.info:
        image = image if image.mode == "RGBA" else image.convert("RGBA")
        if image.getchannel("A").getextrema()[0] < 255:  # some of it is transparent (else: skip the costly part)
            alpha = np.asarray(image.getchannel("A"))
            if np.median(border(alpha)) < 128:  # transparent around the digit: the strokes are the opaque part
                return alpha
            image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
    gray = np.asarray(image.convert("L"))
    if np.median(border(gray)) >= 128:  # dark ink on light paper or canvas: turn it into MNIST's light on dark
        gray = 255 - gray
    return np.clip(gray.astype(np.int16) - paper_level(gray), 0, 255).astype(np.uint8)


def paper_level(gray: np.ndarray) -> np.ndarray | int:
    """The background's brightness: one level for an even canvas, a smooth map for a photo's uneven light."""
    edge = border(gray)
    low, high = np.percentile(edge, [10, 90])
    if high - low <= MIN_CONTRAST / 4:  # an even background, like the Sketchpad's: one number will do
        return int(np.median(edge))
    # The local minimum over a coarse grid skips the strokes and follows the light across the page.
    coarse = Image.fromarray(gray).reduce(max(1, max(gray.shape) // 32)).filter(ImageFilter.MinFilter(5))
    return np.asarray(coarse.resize(gray.shape[::-1], Image.Resampling.BILINEAR), np.int16)


def border(pixels: np.ndarray) -> np.ndarray:
    """The outermost rows and columns of a 2-D array."""
    return np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])


def fit_mnist(ink: np.ndarray) -> np.ndarray:
    """Crop to the ink, fit it into 20x20 keeping the aspect ratio, centre it by mass in 28x28."""
    peak = int(ink.max())
    if peak < MIN_CONTRAST:
        raise NothingToRead("nothing drawn: the picture is blank")
    mask = ink >= INK_LEVEL * peak
    top, bottom = trimmed_span(mask.sum(axis=1))
    left, right = trimmed_span(mask.sum(axis=0))
    if (max(bottom - top, right - left) < MIN_DIGIT_FRACTION * max(ink.shape)
            or np.count_nonzero(mask) < MIN_INK_PIXELS):
        raise NothingToRead("too little to read: draw one digit, larger")
    crop = Image.fromarray(ink[top:bottom, left:right])
    scale = DIGIT_BOX / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    digit = np.asarray(crop.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), np.float32)
    digit = np.clip(digit / max(float(digit.max()), 1.0), 0.0, 1.0)  # strokes as bright as MNIST's
    return place_by_centre_of_mass(digit)


def trimmed_span(ink_per_line: np.ndarray) -> tuple[int, int]:
    """First and past-the-last line holding the ink, ignoring stray marks that hold under 1 % of it."""
    cumulative = np.cumsum(ink_per_line) / ink_per_line.sum()
    first = int(np.searchsorted(cumulative, STRAY_INK, side="right"))
    last = int(np.searchsorted(cumulative, 1.0 - STRAY_INK, side="left"))
    return first, last + 1


def place_by_centre_of_mass(digit: np.ndarray) -> np.ndarray:
    """Put a [h, w] digit (h, w <= 20) into 28x28 with its centre of mass at the centre."""
    height, width = digit.shape
    mass = digit.sum()
    centre_y = (digit.sum(axis=1) @ np.arange(height)) / mass
    centre_x = (digit.sum(axis=0) @ np.arange(width)) / mass
    middle = (IMAGE_SIZE - 1) / 2
    top = int(np.clip(round(middle - centre_y), 0, IMAGE_SIZE - height))
    left = int(np.clip(round(middle - centre_x), 0, IMAGE_SIZE - width))
    frame = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    frame[top:top + height, left:left + width] = digit
    return frame


def preprocess(source) -> np.ndarray:
    """One picture of a digit -> float32 [28, 28, 1] meeting the model contract (app/contract.py).

    Raises NothingToRead for a blank or near-blank picture, UnreadableImage for a bad file.
    """
    frame = fit_mnist(ink_map(open_image(source)))[..., np.newaxis]
    return check_input(frame[np.newaxis])[0]


def sketch_picture(value) -> object:
    """The picture to read from a Sketchpad value: the composite, else the layers over the background.

    Raises NothingDrawn for an untouched or cleared canvas (no composite, no layers).
    """
    if value is None:
        raise NothingDrawn("nothing drawn yet")
    if not isinstance(value, dict):
        return value  # a plain image
    if value.get("composite") is not None:
        return value["composite"]
    parts = [part for part in [value.get("background"), *(value.get("layers") or [])] if part is not None]
    if not parts:
        raise NothingDrawn("nothing drawn yet")
    if len(parts) == 1:
        return parts[0]
    canvas = open_image(parts[0]).convert("RGBA")
    for layer in parts[1:]:
        canvas.alpha_composite(ImageOps.fit(open_image(layer).convert("RGBA"), canvas.size))
    return canvas


def preprocess_sketch(value) -> np.ndarray:
    """A Sketchpad value (or a plain image) -> float32 [28, 28, 1]; see preprocess()."""
    return preprocess(sketch_picture(value))
