"""Digits "drawn" the way the Sketchpad sends them, for the tests and the benchmarks.

A real MNIST digit is scaled up to a random size, placed at a random spot on a large white canvas
and painted in black, anti-aliased, like a brush stroke: the preprocessing must undo all of that.
The canvas is what Chromium's Sketchpad uploads (tests/data/browser_composite.png is one): an
opaque 800x800 RGBA image, which browser_png encodes the way the browser does. drawn_canvases gives a
set of them with the digit each shows, to check the answers.

And drawings that are no digit (STAR, HASH), as strokes of canvas points: painted with the Sketchpad's brush
by `paint`, or drawn with the mouse by tests/support/browser.py's `draw`.
"""

import io
import math
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw

from app.contract import BRUSH_RADIUS, CANVAS_SIZE
from app.preprocess import MAX_PIXELS
from tests.support.paths import MNIST_SLICE
from training.data import Mnist, load_mnist

# A five-pointed star in one stroke, its points 250 px from the centre; and a hash (#) of two strokes
# across and two down. Strokes of points on the 800x800 canvas, as the Sketchpad's brush draws them.
STAR = [[(400 + 250 * math.cos(math.radians(-90 + 144 * i)), 400 + 250 * math.sin(math.radians(-90 + 144 * i)))
         for i in range(6)]]
HASH = [[(200, 320), (600, 300)], [(200, 500), (600, 480)], [(330, 160), (310, 640)], [(490, 160), (470, 640)]]


def paint(strokes, canvas: int = CANVAS_SIZE, radius: int = BRUSH_RADIUS) -> Image.Image:
    """Strokes of canvas points painted as the Sketchpad's brush paints them: black, round, on opaque white."""
    image = Image.new("RGBA", (canvas, canvas), "white")
    pen = ImageDraw.Draw(image)
    for stroke in strokes:
        pen.line(stroke, fill="black", width=2 * radius, joint="curve")
        for x, y in (stroke[0], stroke[-1]):  # round ends
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill="black")
    return image


def draw_digit(digit: np.ndarray, rng: np.random.Generator, canvas: int = 800,
               smallest: float = 0.15, largest: float = 0.95) -> Image.Image:
    """An opaque RGBA canvas x canvas white image with the 28x28 uint8 `digit` painted on it in black."""
    size = int(rng.uniform(smallest, largest) * canvas)
    stroke = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    x, y = (int(rng.integers(0, canvas - size + 1)) for _ in range(2))
    image = Image.new("RGBA", (canvas, canvas), "white")
    image.paste((0, 0, 0, 255), (x, y), stroke)  # the digit's grey levels as the brush's opacity
    return image


def drawn_canvases(count: int, seed: int = 0, mnist: Mnist | None = None) -> list[tuple[bytes, str]]:
    """`count` (PNG, digit) pairs: the test digits of `mnist` (default: the repository's slice) in order,
    round again if need be, each drawn with draw_digit (one generator, seeded `seed`) and encoded by browser_png."""
    mnist = load_mnist(MNIST_SLICE) if mnist is None else mnist
    rng = np.random.default_rng(seed)
    digits = [i % len(mnist.x_test) for i in range(count)]
    return [(browser_png(draw_digit(mnist.x_test[i], rng)), str(mnist.y_test[i])) for i in digits]


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def browser_png(image: Image.Image) -> bytes:
    """An RGBA image encoded as Chromium encodes the Sketchpad's canvas: every row "Up"-filtered, zlib level 1.

    Pillow cannot choose PNG filters, and its files are larger and slower to take in.
    """
    pixels = np.asarray(image.convert("RGBA"), np.uint8)
    height, width = pixels.shape[:2]
    flat = pixels.reshape(height, -1)
    up = np.diff(flat, axis=0, prepend=np.zeros_like(flat[:1]))  # uint8 wraps around, as PNG's filter does
    rows = np.hstack([np.full((height, 1), 2, np.uint8), up])  # filter type 2 (Up) before each row
    return png_file(width, height, color_type=6, idat=zlib.compress(rows.tobytes(), 1))


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (a decompression bomb's first bytes)."""
    assert width * height > MAX_PIXELS
    return png_file(width, height)


def png_file(width: int, height: int, color_type: int = 0, idat: bytes = zlib.compress(b"\x00" * 100)) -> bytes:
    """A PNG file declaring width x height (8 bits, 0 grey or 6 RGBA) around compressed pixel rows `idat`:
    files Pillow would not write, such as the browser's encoding or a header that lies about the size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
