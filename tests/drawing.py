"""Digits "drawn" the way the Sketchpad sends them, for the tests and the benchmarks.

A real MNIST digit is scaled up to a random size, placed at a random spot on a large white canvas
and painted in black, anti-aliased, like a brush stroke: the preprocessing must undo all of that.
"""

import io

import numpy as np
from PIL import Image


def draw_digit(digit: np.ndarray, rng: np.random.Generator, canvas: int = 800,
               smallest: float = 0.15, largest: float = 0.95) -> Image.Image:
    """An RGB canvas x canvas white image with the 28x28 uint8 `digit` painted on it in black."""
    size = int(rng.uniform(smallest, largest) * canvas)
    stroke = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    x, y = (int(rng.integers(0, canvas - size + 1)) for _ in range(2))
    image = Image.new("RGB", (canvas, canvas), "white")
    image.paste((0, 0, 0), (x, y), stroke)  # the digit's grey levels as the brush's opacity
    return image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
