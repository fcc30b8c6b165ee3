"""Pen strokes drawn on the app's canvas: the one way this project draws, and real people's digits replayed.

`draw_lines` puts strokes on an 800x800 opaque white canvas with the Sketchpad's round brush, as the
browser sends it; the style set's templates (training/styles.py) and the real writers below both use it.

The real writers are recorded pen strokes (the handwriting folder, $HANDWRITING_DIR, from
`python -m training.fetch_handwriting --out DIR`; CC BY 4.0):
- UNIPEN train_r01_v07, isolated digits: about 200 writers from 13 labs (Guyon et al., ICPR 1994;
  Unipen Consortium 1999, doi:10.5281/zenodo.1195803);
- UCI's Pen-Based Recognition of Handwritten Digits: 44 writers in Turkey (Alpaydin & Alimoglu, 1998).
Each recorded digit is replayed at a random size and place with the app's brush and read by the app's own
preprocessing, so its 28x28 image is what the model would see had that person drawn in the browser. Whole
writers are kept out for validation, chosen by a hash of the writer id (`writer_split`): a writer's other
digits in training would flatter the figure.

    python -m training.strokes --data $HANDWRITING_DIR --out writers.npz   # both splits, ~2 min
    python -m training.strokes --data $HANDWRITING_DIR --slice tests/data/writers_slice.npz
"""

import argparse
import gzip
import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from app.contract import BRUSH_RADIUS, CANVAS_SIZE, NUM_DIGITS
from app.preprocess import NothingToRead, preprocess

DIGIT_FILES = {"unipen": "unipen-digits.json.gz", "pendigits": "pendigits-digits.json.gz"}  # dataset -> file
CREDIT = ("UNIPEN train_r01_v07 isolated digits (Guyon et al., ICPR 1994; Unipen Consortium 1999, "
          "doi:10.5281/zenodo.1195803) and UCI Pen-Based Recognition of Handwritten Digits (Alpaydin & "
          "Alimoglu 1998), both CC BY 4.0")
KEPT_OUT_ONE_IN = 5  # 1 writer in 5, by the hash of the writer id, is kept out for validation
HEIGHTS = {"training": (0.15, 0.9), "validation": (0.25, 0.85)}  # ink height, as a fraction of the canvas
SEEDS = {"training": 3, "validation": 4}  # fixed: the validation set is frozen
WRITERS_FILE = "writers.npz"
WRITERS_SLICE_FILE, SLICE_STEP = "writers_slice.npz", 10


def draw_lines(lines: list[np.ndarray], height: float, rng: np.random.Generator, canvas: int = CANVAS_SIZE,
               brush_radius: float = BRUSH_RADIUS) -> Image.Image:
    """Strokes ([n, 2] points each, x right, y down, any units) drawn `height` x the canvas tall (or as large
    as fits), at a random place, in black with a round brush on an opaque white RGBA canvas: what the
    Sketchpad sends."""
    low = np.min([line.min(axis=0) for line in lines], axis=0)
    extent = np.maximum(np.max([line.max(axis=0) for line in lines], axis=0) - low, 1e-9)
    room = canvas - 2 * brush_radius
    scale = min(height * canvas / extent[1], room / extent.max())
    corner = brush_radius + rng.uniform(0, 1, 2) * (room - extent * scale)
    image = Image.new("RGBA", (canvas, canvas), "white")
    pen = ImageDraw.Draw(image)
    for line in lines:
        on_canvas = [tuple(point) for point in corner + (line - low) * scale]
        if len(on_canvas) > 1:
            pen.line(on_canvas, fill="black", width=round(2 * brush_radius), joint="curve")
        for x, y in (on_canvas[0], on_canvas[-1]):  # round ends, like a brush
            pen.ellipse((x - brush_radius, y - brush_radius, x + brush_radius, y + brush_radius), fill="black")
    return image


def screen_lines(strokes: list) -> list[np.ndarray]:
    """A recorded character's strokes (tablet units, y up) as [n, 2] float arrays with y down; empty strokes
    dropped."""
    return [np.asarray(stroke, float).reshape(-1, 2) * (1.0, -1.0) for stroke in strokes if len(stroke)]


def writer_split(writer: str) -> str:
    """"validation" for 1 writer in KEPT_OUT_ONE_IN, else "training": by a hash of the writer id, so that all
    of a person's digits fall on one side, whatever the order or the number of files."""
    number = int.from_bytes(hashlib.sha256(writer.encode()).digest()[:8], "big")
    return "validation" if number % KEPT_OUT_ONE_IN == 0 else "training"


def read_records(path: Path) -> list[dict]:
    """One gzipped JSON file of recorded characters (the handwriting folder's format), or a ValueError naming it."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"{path}: not a readable handwriting file ({error})") from None


def read_digits(folder: str | Path) -> list[dict]:
    """The recorded digits of every file in DIGIT_FILES, each with its "dataset" added."""
    return [{**record, "dataset": dataset} for dataset, name in DIGIT_FILES.items()
            for record in read_records(Path(folder) / name)]


def draw_samples(samples: list[dict], heights: tuple[float, float], seed: int,
                 carried: tuple[str, ...] = ("dataset", "source", "writer")) -> dict[str, np.ndarray]:
    """Each sample drawn once at a random height in `heights` and read by the app's preprocessing: uint8 images
    [N, 28, 28], labels, and each one's `carried` fields (dataset, lab, writer: "datasets", "sources",
    "writers"). Samples with nothing to read (a single dot, a stray mark) are left out."""
    rng = np.random.default_rng(seed)
    images, kept = [], []
    for sample in samples:
        lines = screen_lines(sample["strokes"])
        height = rng.uniform(*heights)
        if not lines:
            continue
        try:
            frame = preprocess(draw_lines(lines, height, rng))[..., 0]
        except NothingToRead:
            continue
        images.append(np.round(frame * 255).astype(np.uint8))
        kept.append(sample)
    return {"images": np.stack(images).reshape(-1, 28, 28),
            "labels": np.asarray([int(sample["label"]) for sample in kept], np.uint8),
            **{f"{field}s": np.asarray([sample[field] for sample in kept], str) for field in carried}}


def writers_set(folder: str | Path, which=tuple(SEEDS), workers: int = 2) -> dict[str, dict[str, np.ndarray]]:
    """The splits `which` of the real writers' digits, drawn with their fixed seeds: {"training": ...,
    "validation": ...}. Drawn in `workers` processes, each a fixed share, so the result does not depend on
    timing."""
    samples = read_digits(folder)
    splits = {}
    context = multiprocessing.get_context("spawn")  # no fork: TensorFlow may be loaded
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for split in which:
            chosen = [sample for sample in samples if writer_split(sample["writer"]) == split]
            splits[split] = draw_shares(pool, workers, chosen, HEIGHTS[split], SEEDS[split])
    return splits


def draw_shares(pool: ProcessPoolExecutor, workers: int, samples: list[dict], heights: tuple[float, float],
                seed: int, carried: tuple[str, ...] = ("dataset", "source", "writer")) -> dict[str, np.ndarray]:
    """draw_samples over `pool`'s `workers` processes, each a fixed share with its own seed, joined in a fixed
    order: the result does not depend on timing."""
    parts = list(pool.map(draw_samples, [samples[i::workers] for i in range(workers)], [heights] * workers,
                          [seed * 100 + i for i in range(workers)], [carried] * workers))
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def save_splits(path, splits: dict[str, dict[str, np.ndarray]]) -> None:
    """Splits of drawn digits ({"training": {...}, "validation": {...}}) as one .npz file: `{split}_{key}`."""
    np.savez_compressed(path, **{f"{which}_{key}": value for which, data in splits.items()
                                 for key, value in data.items()})


def read_splits(path, keys: tuple[str, ...], error: type[ValueError], kind: str, rebuild: str,
                allowed: tuple[int, ...] = tuple(range(NUM_DIGITS))) -> dict[str, dict[str, np.ndarray]]:
    """Both splits of drawn pictures from a file written by save_splits, checked: uint8 images [N, 28, 28], N
    labels among `allowed` (default: the digits), and N of each of `keys`. A bad file raises `error`, naming the
    file, the fault and `rebuild`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError) as fault:
        raise error(f"{path}: not a readable {kind} ({fault}); {rebuild}") from None
    splits = {}
    for which in SEEDS:
        try:
            data = {key: arrays[f"{which}_{key}"] for key in ("images", "labels", *keys)}
        except KeyError as missing:
            raise error(f"{path}: no array {missing}; {rebuild}") from None
        images, labels = data["images"], data["labels"]
        if (images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28)
                or any(value.shape != (len(images),) for key, value in data.items() if key != "images")
                or not np.isin(labels, allowed).all()):
            raise error(f"{path}: the {which} split is not uint8 images [N, 28, 28] with N labels among "
                        f"{', '.join(map(str, allowed))} and N of {', '.join(keys)}; {rebuild}")
        splits[which] = data
    return splits


class WritersError(ValueError):
    """A writers file is missing, unreadable or not what `python -m training.strokes --out` writes."""


def load_splits(path, which, draw, **checks) -> dict[str, dict[str, np.ndarray]]:
    """The splits `which`: drawn now by `draw(folder, which)` from a handwriting folder, or read from a file written
    by save_splits and checked (read_splits, given `checks`)."""
    if Path(path).is_dir():
        return draw(path, which)
    return {split: data for split, data in read_splits(path, **checks).items() if split in which}


def load_writers(path, which=tuple(SEEDS)) -> dict[str, dict[str, np.ndarray]]:
    """The splits `which` of the writers' digits, from a handwriting folder or a file of `--out` (load_splits)."""
    return load_splits(path, which, writers_set, keys=("datasets", "sources", "writers"), error=WritersError,
                       kind="writers file", rebuild="rebuild it with python -m training.strokes --out")


def every(splits: dict[str, dict[str, np.ndarray]], step: int) -> dict[str, dict[str, np.ndarray]]:
    """Every `step`-th image of each split: the slice the tests carry."""
    return {which: {key: value[::step] for key, value in data.items()} for which, data in splits.items()}


def add_split_options(parser, out_file: str, slice_file: str, step: int) -> None:
    """--data, --out and --slice (every `step`-th image): what both commands that draw splits (this one,
    training.negatives) take."""
    parser.add_argument("--data", required=True,
                        help="the handwriting folder (from python -m training.fetch_handwriting --out DIR)")
    parser.add_argument("--out", help=f"write both splits to this .npz file ({out_file})")
    parser.add_argument("--slice", help=f"write every {step}th image of each split to this .npz file "
                        f"(the tests' copy: tests/data/{slice_file})")
    parser.set_defaults(slice_step=step)


def write_splits(args, splits: dict[str, dict[str, np.ndarray]]) -> None:
    """The files add_split_options asked for."""
    if args.out:
        save_splits(args.out, splits)
    if args.slice:
        save_splits(args.slice, every(splits, args.slice_step))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_split_options(parser, WRITERS_FILE, WRITERS_SLICE_FILE, SLICE_STEP)
    args = parser.parse_args()
    splits = writers_set(args.data)
    for which, data in splits.items():
        print(f"{which}: {len(data['labels'])} digits by {len(set(data['writers']))} writers")
    write_splits(args, splits)


if __name__ == "__main__":
    main()
