"""The one preprocessing function: any picture of one digit -> the model contract, the way MNIST was made.

MNIST's recipe: find the ink, crop to it, scale it to fit a 20x20 box keeping its aspect ratio
(anti-aliased), and place it in a 28x28 frame so that its centre of mass is at the centre. The same
steps here make a digit drawn small in a corner, or huge across the canvas, look like one drawn in
the middle. Accepted, as they come: the bytes of an image file (POST /predict), a file path, a Sketchpad value
(composite, or layers over a background), a PIL image or an array; in any size and mode, dark-on-light or
light-on-dark.

Decoding is the costly step, so each image is decoded once (PNG by libspng), shrunk early when large,
and the ink is looked for on a reduced copy; every MNIST step after the crop works on at most 20x20.
"""

import io
import threading
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pyspng
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from app.contract import IMAGE_SIZE, check_input

DIGIT_BOX = 20  # MNIST fits each digit into 20x20 ...
MAX_PIXELS = 16_000_000  # larger images are turned away before decoding, whatever their format (64 MB in RGBA)
LARGE_PIXELS = 4_000_000  # images above this are decoded one at a time, to bound the server's memory
LARGE_DECODE = threading.Lock()
WORKING_SIZE = 1024  # larger images are shrunk to this before looking for ink
SEARCH_SIZE = 200  # the ink is looked for on the picture shrunk by an integer factor to about this size
SPNG_MODES = ("L", "RGB", "RGBA")  # 8-bit PNGs that libspng decodes as Pillow does (pyspng 0.1.4 cannot do LA)
MIN_CONTRAST = 32  # ink must differ from the background by this much (of 255)
INK_LEVEL = 0.1  # a pixel is ink at 10 % of the way from the background to the darkest stroke
MIN_DIGIT_FRACTION = 0.08  # ink spanning less than 8 % of the picture is a stray mark, not a digit
MIN_INK_PIXELS = 12
STRAY_INK = 0.01  # marks far from the digit holding under 1 % of the ink are left out of the crop
STROKE_SCALE = 96  # the digit's longer side, in pixels, where its stroke width is measured and mended
STROKE_WIDTH = (0.10, 0.14)  # stroke width relative to the digit's longer side: about MNIST's middle half
# (its 25th-75th percentile, 0.107-0.149). The app's 22-px brush gives 0.11 on a digit half the canvas high,
# 0.30 on one 15 % high; a thin pen on a photo, 0.03.


class NothingToRead(Exception):
    """The picture holds no digit to read (blank, all white, a few stray marks)."""


class NothingDrawn(NothingToRead):
    """No picture at all: an untouched or cleared Sketchpad."""


class UnreadableImage(ValueError):
    """The upload is not an image we can decode."""


def too_large(size: str = "") -> UnreadableImage:
    """The one error for a picture over MAX_PIXELS, with its size when known."""
    return UnreadableImage(f"image is larger than {MAX_PIXELS // 1_000_000} megapixels{f' ({size})' if size else ''}")


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
            raise too_large() from None
        except FileNotFoundError:  # e.g. an upload another replica took, or one deleted after 10 minutes
            raise UnreadableImage("the file is not on this server: upload it again") from None
        except (OSError, ValueError) as error:
            raise UnreadableImage(f"cannot open the image ({type(error).__name__})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise too_large(f"{width}x{height}")
    if width == 0 or height == 0:
        raise UnreadableImage("image is empty (0 pixels)")
    return image


def grey(image: Image.Image) -> Image.Image:
    """The picture decoded once, as one grey channel ("L") where the strokes differ from the background.

    PNG (every browser canvas) is decoded by libspng, much faster than Pillow (bench/bench_preprocess.py);
    other formats by Pillow.
    For a picture transparent around the digit, the channel is the opacity: the strokes are the opaque part.
    """
    image.draft("L", (WORKING_SIZE, WORKING_SIZE))  # JPEG decodes at a reduced size; others ignore it
    pixels = image.width * image.height
    with LARGE_DECODE if pixels > LARGE_PIXELS else nullcontext():
        image = decoded(image)
        if max(image.size) > WORKING_SIZE:  # shrink early: grey (with alpha, if any), by an integer box filter
            alpha = "A" in image.getbands() or "transparency" in image.info
            if image.mode == "P":
                image = image.convert("RGBA" if alpha else "RGB")  # a palette's colours, then grey
            grey_mode = "LA" if alpha else "L"
            image = (image if image.mode == grey_mode else image.convert(grey_mode)).reduce(
                -(-max(image.size) // WORKING_SIZE))
    if "A" in image.getbands() or "transparency" in image.info:
        image = image if image.mode in ("RGBA", "LA") else image.convert("RGBA")
        alpha = image.getchannel("A")
        if np.asarray(alpha).min() < 255:  # some of it is transparent (else: skip the costly part)
            if np.median(border(np.asarray(alpha))) < 128:  # transparent around the digit
                return alpha
            image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return image if image.mode == "L" else image.convert("L")


def decoded(image: Image.Image) -> Image.Image:
    """The image's pixels loaded: through libspng for an 8-bit PNG, else through Pillow."""
    if (image.format == "PNG" and image.fp is not None and "transparency" not in image.info
            and len(image.tile) == 1 and image.tile[0].args == image.mode in SPNG_MODES):  # 8 bits per channel
        image.fp.seek(0)
        try:
            pixels = pyspng.load(image.fp.read())
        except RuntimeError as error:
            raise UnreadableImage(f"image data is corrupt or truncated ({error})") from None
        if pixels.dtype == np.uint8 and pixels.shape[:2] == (image.height, image.width):
            if pixels.ndim == 3 and pixels.shape[2] == 4 and opaque(pixels):  # every browser canvas
                return Image.fromarray(pixels).convert("L")  # its alpha says nothing
            return Image.fromarray(pixels)
    try:
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableImage(f"image data is corrupt or truncated ({error})") from None
    return image


def opaque(rgba: np.ndarray) -> bool:
    """No pixel of a C-ordered uint8 RGBA array is transparent: as little-endian 32-bit words, alpha is the top
    byte (faster than taking the alpha channel out)."""
    return rgba.flags.c_contiguous and int(rgba.view("<u4").min()) >= 0xFF000000


def ink_map(gray: np.ndarray, edge: np.ndarray) -> np.ndarray:
    """uint8 [H, W] from a grey picture: 0 where the background is, up to 255 where the ink is darkest (or
    brightest, on a dark background). `edge` is the full picture's border, which tells the background: on a
    reduced copy, strokes near the edge blur into it."""
    if np.median(edge) >= 128:  # dark ink on light paper or canvas: turn it into MNIST's light on dark
        gray, edge = 255 - gray, 255 - edge
    low, high = np.percentile(edge, [10, 90])
    if high - low <= MIN_CONTRAST / 4:  # an even background, like the Sketchpad's: one level, in uint8
        paper = np.uint8(np.median(edge))
        return np.maximum(gray, paper) - paper
    return np.clip(gray.astype(np.int16) - uneven_paper(gray), 0, 255).astype(np.uint8)  # a photo's uneven light


def uneven_paper(gray: np.ndarray) -> np.ndarray:
    """The background's brightness under a photo's uneven light, pixel by pixel: the local minimum over a
    coarse grid skips the strokes and follows the light across the page."""
    coarse = Image.fromarray(gray).reduce(max(1, max(gray.shape) // 32)).filter(ImageFilter.MinFilter(5))
    return np.asarray(coarse.resize(gray.shape[::-1], Image.Resampling.BILINEAR), np.int16)


def border(pixels: np.ndarray) -> np.ndarray:
    """The outermost rows and columns of a 2-D array."""
    return np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])


def ink_box(ink: np.ndarray, scale: int = 1) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the digit's ink; NothingToRead if there is none, or too little.

    `scale` says how much larger the original picture is than `ink`, for the count of ink pixels.
    """
    if int(ink.max()) < MIN_CONTRAST:
        raise NothingToRead("nothing drawn: the picture is blank")
    top, bottom, left, right = ink_spans(ink)
    if (max(bottom - top, right - left) < MIN_DIGIT_FRACTION * max(ink.shape)
            or np.count_nonzero(ink >= INK_LEVEL * int(ink.max())) * scale * scale < MIN_INK_PIXELS):
        raise NothingToRead("too little to read: draw one digit, larger")
    return top, bottom, left, right


def ink_spans(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the ink, leaving out stray marks."""
    mask = ink >= INK_LEVEL * int(ink.max())
    counts = mask.view(np.uint8)  # summed as bytes: faster than as booleans
    return (*trimmed_span(counts.sum(axis=1, dtype=np.int32)), *trimmed_span(counts.sum(axis=0, dtype=np.int32)))


def fit_mnist(ink: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop to the box, fit it into 20x20 keeping the aspect ratio, centre it by mass in 28x28."""
    top, bottom, left, right = box
    crop = even_strokes(Image.fromarray(ink[top:bottom, left:right]))
    scale = DIGIT_BOX / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    digit = np.asarray(crop.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0), np.float32)
    digit = np.clip(digit / max(float(digit.max()), 1.0), 0.0, 1.0)  # strokes as bright as MNIST's
    return place_by_centre_of_mass(digit)


def even_strokes(crop: Image.Image) -> Image.Image:
    """The digit with its strokes made as wide as MNIST's, relative to its size, if they are not: a digit
    drawn small with the fixed brush, with a thick marker or with a thin pen reaches the model alike.

    The width is the ink's area over half its outline, on a copy STROKE_SCALE pixels long; outside
    STROKE_WIDTH, that copy is eroded or dilated (3x3, a pixel off or on each side per step) towards the
    range and returned. Inside it, the crop itself is returned: MNIST-like drawings are left as they are.
    """
    scale = STROKE_SCALE / max(crop.size)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    copy = crop.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    pixels = np.asarray(copy)
    width = stroke_width(pixels >= max(int(pixels.max()), 1) // 2) / STROKE_SCALE
    low, high = STROKE_WIDTH
    target = min(max(width, low), high)
    # > 0: thin it, < 0: thicken it; each step moves the outline by a pixel, the ink's box by two
    steps = round((width - target) * STROKE_SCALE / (2 * (1 - target)))
    if steps == 0:
        return crop
    pixels = np.pad(np.asarray(copy), max(0, -steps))  # room to grow at the edges
    for step in range(abs(steps)):
        pixels = mend(pixels, thin=steps > 0, square=step % 2 == 1)
    copy = Image.fromarray(pixels)
    mask = np.asarray(copy) >= max(INK_LEVEL * np.asarray(copy).max(), 1)
    rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if not len(rows):  # eroded away: a digit of thin and thick parts; keep it as drawn
        return crop
    return copy.crop((columns[0], rows[0], columns[-1] + 1, rows[-1] + 1))  # the ink's box again


def mend(pixels: np.ndarray, thin: bool, square: bool) -> np.ndarray:
    """One step of grey erosion (thin) or dilation of uint8 [h, w] ink: the darkest (or brightest) of each pixel
    and its 4 neighbours, or its 8 with `square`. Alternating the two grows a near-round pen, not a square one."""
    padded = np.pad(pixels, 1)
    height, width = pixels.shape
    shifts = [(1, 0), (1, 2), (0, 1), (2, 1)] + ([(0, 0), (0, 2), (2, 0), (2, 2)] if square else [])
    pick = np.minimum if thin else np.maximum
    result = pixels.copy()
    for row, column in shifts:
        result = pick(result, padded[row:row + height, column:column + width])
    return result


def stroke_width(mask: np.ndarray) -> float:
    """The mean width of the strokes of a boolean [h, w] ink mask, in pixels: its area over half its outline
    (ink pixels with a 4-neighbour outside it)."""
    padded = np.pad(mask, 1)
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    outline = np.count_nonzero(mask & ~inside)
    return 2 * np.count_nonzero(mask) / max(outline, 1)


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
    """One picture of a digit (bytes, a path, a Sketchpad value...) -> float32 [28, 28, 1] meeting the model
    contract (app/contract.py).

    The ink is found on the picture shrunk to about 200x200, then measured on the full picture in that
    region only: the same frame as a search of the whole picture, for much less work.
    Raises NothingToRead for a blank or near-blank picture (NothingDrawn for an untouched Sketchpad),
    UnreadableImage for a bad file.
    """
    picture = grey(open_image(sketch_picture(source)))
    factor = max(1, max(picture.size) // SEARCH_SIZE)
    full = np.asarray(picture)
    edge = border(full)
    ink = ink_map(np.asarray(picture.reduce(factor)) if factor > 1 else full, edge)
    box = ink_box(ink, factor)
    if factor > 1:  # measure the box again on the full picture, around all the ink found
        mask = ink >= INK_LEVEL * int(ink.max())
        rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        top, left = max(0, rows[0] - 1) * factor, max(0, columns[0] - 1) * factor
        ink = ink_map(full[top:(rows[-1] + 2) * factor, left:(columns[-1] + 2) * factor], edge)
        box = ink_spans(ink)
    frame = fit_mnist(ink, box)[..., np.newaxis]
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
