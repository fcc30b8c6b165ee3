"""Digits drawn from stroke templates in the school styles of many countries, on the app's canvas.

MNIST's writers are US Census staff and US students. Many people elsewhere write a 1 with a long flag
(sometimes with a base), a crossed 7, an open 4, a 9 with a curved or hooked tail, a looped 2. Each
template below is one way to write a digit, as pen strokes in a unit box (x to the right, y down, the
digit about 0.6 wide and 1 tall). `draw` jitters its points, retraces its strokes as a hurried hand and a
fast mouse do, slants, rotates and stretches it, and draws it with the app's brush on an 800x800 canvas;
`style_digits` passes the canvases through the app's own preprocessing. Whole templates are held out for
validation (VALIDATION): never drawn for training.

    python -m training.styles --out style_set.npz                        # build the set
    python -m training.styles --slice tests/data/style_slice.npz         # the tests' slice of it
    python -m training.styles --picture docs/style_set.png               # what it looks like

The style set is the stroke templates here and the handwriting fonts of training/fonts.py, each split
drawn with fixed seeds (SEEDS): the same command always builds the same set.
"""

import argparse
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from app.contract import BRUSH_RADIUS, CANVAS_SIZE  # the app's Sketchpad and its brush
from app.preprocess import preprocess
from training.strokes import draw_lines, every, read_splits, save_splits


def arc(centre_x, centre_y, radius_x, radius_y, start_degrees, end_degrees, points=16):
    """Points along an ellipse (y down, 0 degrees pointing right, 90 down)."""
    return [(centre_x + radius_x * math.cos(math.radians(a)), centre_y + radius_y * math.sin(math.radians(a)))
            for a in np.linspace(start_degrees, end_degrees, points)]


# name -> (digit, strokes). The US forms MNIST knows, and the others.
TEMPLATES = {
    "0-oval": (0, [arc(0.3, 0.5, 0.28, 0.48, -90, 270, 24)]),
    "0-narrow": (0, [arc(0.3, 0.5, 0.2, 0.48, -100, 265, 24)]),
    "1-stick": (1, [[(0.32, 0.0), (0.3, 1.0)]]),
    "1-flag": (1, [[(0.05, 0.3), (0.4, 0.0), (0.38, 1.0)]]),
    "1-flag-base": (1, [[(0.08, 0.28), (0.38, 0.0), (0.38, 1.0)], [(0.12, 1.0), (0.62, 1.0)]]),
    "1-long-flag": (1, [[(0.0, 0.45), (0.42, 0.0), (0.42, 1.0)]]),
    "1-steep-flag": (1, [[(0.2, 0.25), (0.4, 0.0), (0.38, 1.0)]]),
    "2-plain": (2, [arc(0.3, 0.27, 0.27, 0.27, 200, 360, 10) + [(0.52, 0.45), (0.02, 1.0), (0.62, 1.0)]]),
    "2-loop": (2, [arc(0.3, 0.27, 0.27, 0.27, 200, 360, 10) + [(0.5, 0.48), (0.12, 0.9)]
                   + arc(0.14, 0.93, 0.08, 0.07, -60, 250, 8) + [(0.3, 0.98), (0.62, 0.98)]]),
    "2-curly": (2, [arc(0.3, 0.27, 0.27, 0.27, 190, 360, 10) + [(0.45, 0.55), (0.1, 0.92)]
                    + arc(0.16, 0.88, 0.1, 0.1, 120, 420, 10) + [(0.62, 1.0)]]),
    "3-round": (3, [arc(0.28, 0.26, 0.26, 0.25, 200, 450, 14) + arc(0.28, 0.74, 0.3, 0.26, -90, 160, 14)]),
    "3-flat-top": (3, [[(0.02, 0.02), (0.56, 0.02), (0.25, 0.45)] + arc(0.28, 0.72, 0.3, 0.28, -100, 160, 14)]),
    "4-closed": (4, [[(0.45, 1.0), (0.45, 0.0), (0.0, 0.68), (0.62, 0.68)]]),
    "4-open": (4, [[(0.12, 0.0), (0.02, 0.62), (0.62, 0.62)], [(0.46, 0.25), (0.46, 1.0)]]),
    "4-open-one-stroke": (4, [[(0.15, 0.0), (0.05, 0.6), (0.6, 0.6)], [(0.42, 0.05), (0.44, 1.0)]]),
    "5-plain": (5, [[(0.55, 0.0), (0.1, 0.0), (0.06, 0.42)] + arc(0.28, 0.68, 0.29, 0.3, -120, 150, 14)]),
    "5-two-strokes": (5, [[(0.08, 0.0), (0.04, 0.44)] + arc(0.28, 0.7, 0.29, 0.28, -125, 155, 14),
                          [(0.08, 0.0), (0.6, 0.0)]]),
    "6-plain": (6, [[(0.5, 0.0)] + arc(0.55, 0.62, 0.5, 0.62, 225, 180, 4)
                    + arc(0.3, 0.72, 0.26, 0.27, 180, 540, 16)]),
    "6-straight": (6, [[(0.5, 0.0), (0.08, 0.6)] + arc(0.3, 0.74, 0.25, 0.25, 200, 555, 16)]),
    "7-plain": (7, [[(0.0, 0.0), (0.6, 0.0), (0.2, 1.0)]]),
    "7-crossed": (7, [[(0.0, 0.0), (0.6, 0.0), (0.22, 1.0)], [(0.12, 0.52), (0.55, 0.5)]]),
    "7-hook-crossed": (7, [[(0.0, 0.12), (0.04, 0.0), (0.6, 0.02), (0.25, 1.0)], [(0.15, 0.5), (0.58, 0.48)]]),
    "8-loops": (8, [arc(0.3, 0.25, 0.22, 0.24, 90, 450, 16) + arc(0.3, 0.73, 0.28, 0.26, -90, 270, 16)]),
    "8-figure": (8, [arc(0.3, 0.25, 0.22, 0.24, 0, 360, 16)[::-1] + arc(0.3, 0.74, 0.27, 0.25, -90, 270, 16)]),
    "9-straight": (9, [arc(0.3, 0.28, 0.26, 0.27, 0, 360, 16) + [(0.56, 0.28), (0.5, 1.0)]]),
    "9-curved": (9, [arc(0.3, 0.28, 0.26, 0.27, 0, 360, 16) + [(0.56, 0.3), (0.54, 0.75)]
                     + arc(0.34, 0.78, 0.2, 0.22, 0, 150, 8)]),
    "9-hooked": (9, [arc(0.3, 0.28, 0.26, 0.27, 0, 360, 16) + [(0.56, 0.3), (0.5, 0.95), (0.3, 1.0)]]),
    "9-curly": (9, [arc(0.32, 0.26, 0.25, 0.25, 10, 370, 16) + [(0.57, 0.3), (0.55, 0.7)]
                    + arc(0.3, 0.7, 0.25, 0.28, 0, 165, 10)]),
    "1-curved-flag": (1, [arc(0.42, 0.6, 0.28, 0.6, 212, 270, 6) + [(0.42, 1.0)]]),
    "4-open-slanted": (4, [[(0.28, 0.0), (0.0, 0.64), (0.62, 0.62)], [(0.5, 0.2), (0.42, 1.0)]]),
    "7-crossed-serif": (7, [[(0.02, 0.14), (0.0, 0.0), (0.6, 0.0), (0.3, 0.55), (0.22, 1.0)],
                            [(0.1, 0.55), (0.52, 0.53)]]),
}
# Whole templates held out for validation: each has a sibling of the same school style in training.
VALIDATION = ("0-narrow", "1-flag-base", "1-curved-flag", "2-curly", "3-flat-top", "4-open-one-stroke",
              "5-two-strokes", "6-straight", "7-hook-crossed", "8-figure", "9-hooked", "9-curly")


def split(name: str) -> str:
    return "validation" if name in VALIDATION else "training"


def wobble(count: int, size: float, rng: np.random.Generator) -> np.ndarray:
    """[count, 2] offsets that drift smoothly along a stroke, as a hand does: 4 random anchors, interpolated."""
    anchors = rng.normal(0, size, (4, 2))
    along = np.linspace(0, 3, count)
    return np.stack([np.interp(along, np.arange(4), anchors[:, axis]) for axis in (0, 1)], axis=1)


def retrace(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The stroke as a hand and a mouse redraw it: its ends stopping short or running on by up to 8 % of
    its length (loops left open, tails too long), and half the time only sparse points joined by
    straight lines, as a fast mouse sends them."""
    lengths = np.linalg.norm(np.diff(points, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(lengths)])
    total = along[-1]
    if total == 0:
        return points[[0, -1]]
    start, end = rng.uniform(-0.08, 0.08, 2) * total
    step = rng.uniform(0.1, 0.3) if rng.random() < 0.5 else 0.02
    at = np.linspace(start, total - end, max(2, int(np.ceil((total - end - start) / step)) + 1))
    position = np.clip(np.searchsorted(along, at) - 1, 0, len(lengths) - 1)  # the segment each point is on
    fraction = (at - along[position]) / np.maximum(lengths[position], 1e-9)  # < 0 or > 1 off the ends
    return points[position] + fraction[:, np.newaxis] * (points[position + 1] - points[position])


def draw(strokes, rng: np.random.Generator, canvas: int = CANVAS_SIZE, brush_radius: int = BRUSH_RADIUS) -> Image.Image:
    """The strokes on an opaque white RGBA canvas, as the Sketchpad sends it, drawn as a hurried hand does:
    points jittered, strokes retraced, each one after the first misplaced a little (crossbars, bases), the digit
    slanted, rotated, stretched, then put at a random size and place, in black with a round brush."""
    jitter = rng.uniform(0.02, 0.07)
    slant = rng.uniform(-0.35, 0.35)  # x shifts by slant * (0.5 - y): forward or backward leaning
    angle = math.radians(rng.uniform(-10, 10))
    rotate = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    aspect = rng.uniform(0.75, 1.3)
    lines = []
    for index, stroke in enumerate(strokes):
        points = retrace(np.asarray(stroke, float) + wobble(len(stroke), jitter, rng), rng)
        if index:
            points += rng.normal(0, 0.04, 2)
        points[:, 0] += slant * (0.5 - points[:, 1])
        lines.append((points * (aspect, 1.0)) @ rotate.T)
    radius = brush_radius * rng.uniform(0.8, 1.2)
    return draw_lines(lines, rng.uniform(0.3, 0.85), rng, canvas, radius)


def style_digits(which: str, per_template: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`per_template` drawings of each template of one split ("training" or "validation") through the app's
    preprocessing: uint8 [N, 28, 28], labels [N], template names [N]."""
    rng = np.random.default_rng(seed)
    images, labels, names = [], [], []
    for name, (digit, strokes) in TEMPLATES.items():
        if split(name) != which:
            continue
        for _ in range(per_template):
            frame = preprocess(draw(strokes, rng))[..., 0]
            images.append(np.round(frame * 255).astype(np.uint8))
            labels.append(digit)
            names.append(name)
    return np.stack(images), np.asarray(labels, np.uint8), names


SMALL_HEIGHTS = (0.15, 0.175, 0.2)  # of the canvas: digits drawn small, whose strokes the fixed brush makes thick


def small_digits(heights: tuple[float, ...] = SMALL_HEIGHTS) -> dict[str, np.ndarray]:
    """Every template drawn as is (no jitter, no slant) at each of `heights` of the canvas with the app's fixed
    brush, through the app's preprocessing: uint8 images [N, 28, 28], labels and a style name each. Drawn
    small, a digit's strokes are two or three times as thick, relative to it, as MNIST's."""
    rng = np.random.default_rng(0)
    images, labels, names = [], [], []
    for height in heights:
        for name, (digit, strokes) in TEMPLATES.items():
            frame = preprocess(draw_lines([np.asarray(stroke, float) for stroke in strokes], height, rng))[..., 0]
            images.append(np.round(frame * 255).astype(np.uint8))
            labels.append(digit)
            names.append(f"template {name}")
    return {"images": np.stack(images), "labels": np.asarray(labels, np.uint8), "styles": np.asarray(names)}


SEEDS = {"training": 1, "validation": 2}  # fixed: the validation set is frozen
SIZES = {"training": (250, 25), "validation": (100, 20)}  # drawings per template, per font and digit
STYLE_SET_FILE = "style_set.npz"
STYLE_SLICE_FILE, SLICE_STEP = "style_slice.npz", 10


def style_set(which: str, per_template: int | None = None, per_font_digit: int | None = None) -> dict[str, np.ndarray]:
    """One split of the style set: templates and fonts, uint8 images [N, 28, 28], labels and a style name each.
    The templates and the fonts are drawn in two processes at once."""
    from training.fonts import font_digits

    per_template = SIZES[which][0] if per_template is None else per_template
    per_font_digit = SIZES[which][1] if per_font_digit is None else per_font_digit
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:  # no fork: TF may be loaded
        templates = pool.submit(style_digits, which, per_template, SEEDS[which])
        fonts = pool.submit(font_digits, which, per_font_digit, SEEDS[which])
        template_images, template_labels, template_names = templates.result()
        font_images, font_labels, font_names = fonts.result()
    return {"images": np.concatenate([template_images, font_images]),
            "labels": np.concatenate([template_labels, font_labels]).astype(np.uint8),
            "styles": np.asarray([f"template {name}" for name in template_names]
                                 + [f"font {name}" for name in font_names])}


def build_style_set() -> dict[str, dict[str, np.ndarray]]:
    """Both splits, drawn now with their fixed seeds and sizes."""
    return {which: style_set(which) for which in SEEDS}


class StyleSetError(ValueError):
    """A style set file is missing, unreadable or not what `python -m training.styles --out` writes."""


def load_style_set(path) -> dict[str, dict[str, np.ndarray]]:
    """Both splits from a file written by save_splits, checked: {"training": {...}, "validation": {...}}."""
    return read_splits(path, ("styles",), StyleSetError, "style set", "rebuild it with python -m training.styles --out")


def picture(data: dict[str, np.ndarray], path, per_digit: int = 20) -> None:
    """A PNG of `per_digit` images of each digit (a row each), spread evenly over its styles, dark on light."""
    rows = []
    for digit in range(10):
        images = data["images"][data["labels"] == digit]
        chosen = images[np.linspace(0, len(images) - 1, per_digit).astype(int)]
        rows.append(np.concatenate(list(np.pad(chosen, ((0, 0), (2, 2), (2, 2)))), axis=1))
    Image.fromarray(255 - np.concatenate(rows)).resize((per_digit * 64, 10 * 64), Image.Resampling.NEAREST).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write both splits to this .npz file")
    parser.add_argument("--slice", help=f"write every {SLICE_STEP}th image of each split to this .npz file "
                        f"(the tests' copy: tests/data/{STYLE_SLICE_FILE})")
    parser.add_argument("--picture", help="write a PNG of validation images, a row per digit (docs/style_set.png)")
    args = parser.parse_args()
    splits = build_style_set()
    if args.out:
        save_splits(args.out, splits)
        print(f"wrote {args.out}: " + ", ".join(f"{len(data['labels'])} {which}" for which, data in splits.items()))
    if args.slice:
        save_splits(args.slice, every(splits, SLICE_STEP))
    if args.picture:
        picture(splits["validation"], args.picture)

if __name__ == "__main__":
    main()
