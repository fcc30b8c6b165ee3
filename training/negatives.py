"""Drawings that are no digit, for the model's 11th class ("not a digit", app/contract.py): real people's
letters and symbols replayed with the app's brush, and generated shapes, scribbles, words and numbers.

The letters and symbols are UNIPEN's isolated upper-case, lower-case and symbols sections (CC BY 4.0, CREDIT),
drawn like the real writers' digits (training.strokes.draw_samples). What people write like
a digit is left out (LIKE_DIGITS): neither the model nor a user can tell an O from a 0. The list is checked by
measuring it (`--measure`, docs/model.md).

Validation keeps out whole writers (training.strokes.writer_split) and whole kinds: 1 character in 5 of each
section, by a hash of the character (`kept_out_kinds`), and the generated kinds in KEPT_OUT_SHAPES, are never
trained on. The
refusal figure is given per group: unseen writers (known kinds), unseen characters, generated (known kinds,
new drawings), unseen shapes.

    python -m training.negatives --data $HANDWRITING_DIR --out negatives.npz  # both splits, ~3 min
    python -m training.negatives --data $HANDWRITING_DIR --measure  # which look like digits
"""

import argparse
import hashlib
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from app.contract import NOT_A_DIGIT
from training.strokes import (
    HEIGHTS,
    KEPT_OUT_ONE_IN,
    add_split_options,
    draw_samples,
    draw_shares,
    load_splits,
    read_digits,
    read_records,
    write_splits,
    writer_split,
)

CREDIT = ("UNIPEN train_r01_v07 isolated upper-case letters, lower-case letters and symbols (Guyon et al., ICPR "
          "1994; Unipen Consortium 1999, doi:10.5281/zenodo.1195803), CC BY 4.0")
CHARACTER_FILES = {"uppercase": "unipen-uppercase.json.gz", "lowercase": "unipen-lowercase.json.gz",
                   "symbols": "unipen-symbols.json.gz"}
# Written like a digit by many people, never negatives: the data's README list; what `--measure` finds at or
# above LIKENESS_LINE (docs/model.md has the table); and the other one-stroke brackets, quotes and the comma,
# which the preprocessing scales into a slanted or curved 1.
README_LIKE_DIGITS = set("ODQUoIlij|ZzSsGbBgqT")
MEASURED_LIKE_DIGITS = set("yYtfJ!$@?&%]}{/'")
ONE_STROKE_LIKE_DIGITS = set("()[`,")  # below the line, but drawn as one stroke as / ' { ] } are
LIKE_DIGITS = README_LIKE_DIGITS | MEASURED_LIKE_DIGITS | ONE_STROKE_LIKE_DIGITS
LIKENESS_LINE = 0.5  # a drawing's nearest drawings as often digits as not
GENERATED = ("star", "polygon", "smiley", "hatching", "grid", "scribble", "zigzag", "spiral", "word", "number",
             "flower", "sun", "house", "cloud", "heart", "arrow")
KEPT_OUT_SHAPES = ("heart", "arrow")  # generated kinds drawn for validation only
SIZES = {"training": (20_000, 800), "validation": (1_500, 300)}  # letters and symbols drawn; each generated kind
SEEDS = {"training": 5, "validation": 6}  # fixed: the validation set is frozen
NEGATIVES_FILE = "negatives.npz"
NEGATIVES_SLICE_FILE, SLICE_STEP = "negatives_slice.npz", 40
CARRIED = ("dataset", "source", "writer", "kind", "group")  # what each drawing keeps of its sample
KEYS = tuple(f"{field}s" for field in CARRIED)


def kept_out_kinds(kinds) -> set[str]:
    """The kinds never trained on: 1 in KEPT_OUT_ONE_IN of each section's characters ("uppercase:A"), the first by
    a hash of their name, so that letters of both cases and symbols are all among them; and KEPT_OUT_SHAPES."""
    kinds, kept_out = set(kinds), {f"generated:{shape}" for shape in KEPT_OUT_SHAPES}
    for section in CHARACTER_FILES:
        names = sorted((kind for kind in kinds if kind.startswith(f"{section}:")),
                       key=lambda kind: hashlib.sha256(kind.encode()).digest())
        kept_out |= set(names[:round(len(names) / KEPT_OUT_ONE_IN)])
    return kept_out


def read_characters(folder: str | Path, like_digits: bool = False) -> list[dict]:
    """UNIPEN's letters and symbols, each with "kind" ("lowercase:a") and "dataset" added and the label
    NOT_A_DIGIT; those in LIKE_DIGITS only when `like_digits`."""
    return [{**record, "label": NOT_A_DIGIT, "character": record["label"], "dataset": f"unipen-{section}",
             "kind": f"{section}:{record['label']}"}
            for section, name in CHARACTER_FILES.items() for record in read_records(Path(folder) / name)
            if like_digits or record["label"] not in LIKE_DIGITS]


def polyline(points, rng: np.random.Generator, jitter: float = 0.02) -> np.ndarray:
    return np.asarray(points, float) + rng.normal(0, jitter, (len(points), 2))


def shape_strokes(kind: str, rng: np.random.Generator, letters: list[dict], digits: list[dict]) -> list[np.ndarray]:
    """One generated drawing of `kind`, as strokes in a unit box with y up (as the recordings are)."""
    turn = rng.uniform(0, 2 * math.pi)
    if kind == "star":
        points = rng.choice([5, 6, 7])
        angles = turn + np.arange(2 * points + 1) * math.pi / points
        radii = np.where(np.arange(2 * points + 1) % 2, rng.uniform(0.3, 0.5), 1.0)
        return [polyline(np.c_[radii * np.cos(angles), radii * np.sin(angles)], rng)]
    if kind == "polygon":
        sides = rng.choice([3, 4, 5])
        angles = turn + np.arange(sides + 1) * 2 * math.pi / sides
        return [polyline(np.c_[np.cos(angles), rng.uniform(0.6, 1.4) * np.sin(angles)], rng)]
    if kind == "smiley":
        face = np.linspace(0, 2 * math.pi, 30)
        mouth = np.linspace(1.15 * math.pi, 1.85 * math.pi, 10)
        eyes = [polyline([(x, 0.3), (x, 0.42)], rng) for x in (-0.35, 0.35)]
        return [polyline(np.c_[np.cos(face), np.sin(face)], rng), *eyes,
                polyline(np.c_[0.55 * np.cos(mouth), 0.55 * np.sin(mouth)], rng)]
    if kind == "hatching":
        count, angle = rng.integers(3, 8), rng.uniform(0, math.pi)
        along, across = np.array([math.cos(angle), math.sin(angle)]), np.array([-math.sin(angle), math.cos(angle)])
        return [polyline([across * offset - along, across * offset + along], rng)
                for offset in np.linspace(-0.8, 0.8, count)]
    if kind == "grid":
        offsets = (-0.35, 0.35)
        return ([polyline([(-1, y), (1, y)], rng, 0.06) for y in offsets]
                + [polyline([(x, -1), (x, 1)], rng, 0.06) for x in offsets])
    if kind == "scribble":
        steps = rng.normal(0, 1, (rng.integers(12, 40), 2))
        return [np.cumsum(steps + 0.6 * np.roll(steps, 1, axis=0), axis=0)]
    if kind == "zigzag":
        count = rng.integers(4, 10)
        return [polyline(np.c_[np.arange(count), np.arange(count) % 2 * rng.uniform(0.5, 3)], rng, 0.1)]
    if kind == "spiral":
        angles = np.linspace(0, rng.uniform(2.5, 4) * 2 * math.pi, 80)
        return [np.c_[angles * np.cos(angles + turn), angles * np.sin(angles + turn)] * rng.choice([-1, 1], 2)]
    if kind == "flower":  # a closed curve with 5-8 petals
        angles = np.linspace(0, 2 * math.pi, 120)
        radii = 1 + rng.uniform(0.25, 0.45) * np.abs(np.sin(rng.integers(5, 9) * angles / 2 + turn))
        return [polyline(np.c_[radii * np.cos(angles), radii * np.sin(angles)], rng)]
    if kind == "sun":  # a circle and 6-10 rays around it
        rays = rng.integers(6, 11)
        circle = np.linspace(0, 2 * math.pi, 30)
        return [polyline(np.c_[0.5 * np.cos(circle), 0.5 * np.sin(circle)], rng),
                *(polyline([(0.65 * math.cos(a), 0.65 * math.sin(a)), (math.cos(a), math.sin(a))], rng)
                  for a in turn + np.arange(rays) * 2 * math.pi / rays)]
    if kind == "house":  # walls, a roof, sometimes a door
        roof = rng.uniform(0.4, 0.9)
        strokes = [polyline([(-0.6, 0), (-0.6, -1), (0.6, -1), (0.6, 0), (-0.6, 0), (0, roof), (0.6, 0)], rng)]
        if rng.random() < 0.5:
            strokes.append(polyline([(-0.15, -1), (-0.15, -0.5), (0.15, -0.5), (0.15, -1)], rng))
        return strokes
    if kind == "cloud":  # round bumps on a flat base
        bumps = rng.integers(3, 6)
        angles = np.linspace(math.pi, 0, 12)
        top = np.concatenate([np.c_[-1 + (2 * i + 1 + np.cos(angles)) / bumps,
                                    0.2 + rng.uniform(1.2, 1.8) * np.sin(angles) / bumps] for i in range(bumps)])
        return [polyline(np.concatenate([top, [(1, -0.5), (-1, -0.5), (-1, 0.2)]]), rng)]
    if kind == "heart":
        t = np.linspace(0, 2 * math.pi, 40)
        x, y = 16 * np.sin(t) ** 3, 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return [polyline(np.c_[x, y] / 16, rng)]
    if kind == "arrow":
        head = rng.uniform(0.2, 0.4)
        points = [(-1, 0), (1, 0)]
        return [polyline(points, rng), polyline([(1 - head, head), (1, 0), (1 - head, -head)], rng)]
    if kind in ("word", "number"):
        pool = letters if kind == "word" else digits
        return side_by_side([pool[i] for i in rng.integers(0, len(pool), rng.integers(2, 5))], rng)
    raise ValueError(f"no generated kind {kind!r}")


def side_by_side(samples: list[dict], rng: np.random.Generator) -> list[np.ndarray]:
    """Recorded characters written one after the other on a line, each scaled to the same height."""
    lines, x = [], 0.0
    for sample in samples:
        strokes = [np.asarray(stroke, float).reshape(-1, 2) for stroke in sample["strokes"] if len(stroke)]
        if not strokes:
            continue
        low = np.min([s.min(axis=0) for s in strokes], axis=0)
        high = np.max([s.max(axis=0) for s in strokes], axis=0)
        scale = 1.0 / max(high[1] - low[1], 1e-9)
        lines += [(s - low) * scale + (x, 0) for s in strokes]
        x += (high[0] - low[0]) * scale + rng.uniform(0.15, 0.4)
    return lines


def generated_samples(which: str, per_kind: int, letters: list[dict], digits: list[dict]) -> list[dict]:
    """`per_kind` drawings of each generated kind of this split (all for validation, KEPT_OUT_SHAPES excluded
    for training), as recorded samples."""
    rng = np.random.default_rng(SEEDS[which])
    kinds = [kind for kind in GENERATED if which == "validation" or kind not in KEPT_OUT_SHAPES]
    return [{"label": NOT_A_DIGIT, "dataset": "generated", "source": "generated", "writer": f"generated/{kind}",
             "kind": f"generated:{kind}", "strokes": [line.tolist() for line in shape_strokes(kind, rng, letters,
                                                                                               digits)]}
            for kind in kinds for _ in range(per_kind)]


def group(sample: dict, kept_out: set[str]) -> str:
    """The validation group of a kept-out sample (`kept_out`: kept_out_kinds)."""
    if sample["dataset"] == "generated":
        return "unseen shapes" if sample["kind"] in kept_out else "generated"
    return "unseen characters" if sample["kind"] in kept_out else "unseen writers"


def split_samples(samples: list[dict], which: str, kept_out: set[str]) -> list[dict]:
    """Training: a writer and a kind both trained on. Validation: the rest (a writer or a kind kept out)."""
    trained = [writer_split(s["writer"]) == "training" and s["kind"] not in kept_out for s in samples]
    return [s for s, t in zip(samples, trained, strict=True) if t == (which == "training")]


def negatives_set(folder: str | Path, which=tuple(SEEDS), workers: int = 2,
                  sizes: dict[str, tuple[int, int]] = SIZES) -> dict[str, dict[str, np.ndarray]]:
    """The splits `which` of the negatives, drawn with their fixed seeds, labelled NOT_A_DIGIT, with each
    one's dataset, source, writer, kind and validation group. `sizes`: {split: (letters and symbols at most,
    in validation per group; drawings of each generated kind)}."""
    characters = read_characters(folder)
    kept_out = kept_out_kinds(sample["kind"] for sample in characters)
    digits = [d for d in read_digits(folder) if writer_split(d["writer"]) == "training"]
    splits = {}
    context = multiprocessing.get_context("spawn")  # no fork: TensorFlow may be loaded
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for split in which:
            rng = np.random.default_rng(SEEDS[split])
            chosen = split_samples(characters, split, kept_out)
            real, per_kind = sizes[split]
            if split == "validation":  # up to `real` of each group, so each figure has its own weight
                by_group = {}
                for sample in chosen:
                    by_group.setdefault(group(sample, kept_out), []).append(sample)
                chosen = [s for members in by_group.values()
                          for s in (members if len(members) <= real else
                                    [members[i] for i in rng.choice(len(members), real, replace=False)])]
            elif len(chosen) > real:
                chosen = [chosen[i] for i in rng.choice(len(chosen), real, replace=False)]
            letters = split_samples([s for s in characters if s["dataset"] != "unipen-symbols"], "training", kept_out)
            chosen += generated_samples(split, per_kind, letters, digits)
            chosen = [{**sample, "group": group(sample, kept_out) if split == "validation" else "training"}
                      for sample in chosen]
            splits[split] = draw_shares(pool, workers, chosen, HEIGHTS[split], SEEDS[split], CARRIED)
    return splits


class NegativesError(ValueError):
    """A negatives file is missing, unreadable or not what `python -m training.negatives --out` writes."""


def load_negatives(path, which=tuple(SEEDS)) -> dict[str, dict[str, np.ndarray]]:
    """The splits `which` of the negatives, from a handwriting folder or a file of `--out` (load_splits)."""
    return load_splits(path, which, negatives_set, keys=KEYS, error=NegativesError, kind="negatives file",
                       rebuild="rebuild it with python -m training.negatives --out", allowed=(NOT_A_DIGIT,))


def measure_likeness(folder: str | Path, per_kind: int = 100, neighbours: int = 5) -> list[tuple]:
    """How much each letter and symbol looks like a digit, measured without a model: `per_kind` of its drawings
    (drawn as the negatives are), and for each the share of its `neighbours` nearest drawings (28x28 pixels) that
    are real writers' digits, in a pool of as many digits as other characters. Other characters exclude the kind
    itself, its other case and README_LIKE_DIGITS: not what this measure adds, so its verdicts do not move the
    pool they are measured in, and a rerun finds the same list. Returns (kind, in LIKE_DIGITS, the digit most
    among the neighbours, the share of digit neighbours), the most digit-like first."""
    rng = np.random.default_rng(0)
    by_kind = {}
    for sample in read_characters(folder, like_digits=True):
        by_kind.setdefault(sample["kind"], []).append(sample)
    chosen = [samples[i] for samples in by_kind.values() for i in rng.permutation(len(samples))[:per_kind]]
    characters = draw_samples(chosen, HEIGHTS["validation"], 0, ("kind",))
    digits = read_digits(folder)
    digits = draw_samples([digits[i] for i in rng.permutation(len(digits))[:len(chosen) // 2]],
                          HEIGHTS["validation"], 1, ())
    vectors = characters["images"].reshape(len(characters["images"]), -1).astype(np.float32) / 255
    digit_vectors = digits["images"].reshape(len(digits["images"]), -1).astype(np.float32) / 255
    character = np.char.partition(characters["kinds"], ":")[:, 2]
    rows = []
    for kind in sorted(by_kind):
        own = characters["kinds"] == kind
        name = kind.split(":", 1)[1]
        others = ~np.isin(np.char.lower(character), [name.lower()]) & ~np.isin(character, list(README_LIKE_DIGITS))
        pool = np.concatenate([digit_vectors, vectors[others][:len(digit_vectors)]])
        labels = np.concatenate([digits["labels"], np.full(min(others.sum(), len(digit_vectors)), NOT_A_DIGIT)])
        distances = ((vectors[own] ** 2).sum(1)[:, None] - 2 * vectors[own] @ pool.T + (pool ** 2).sum(1)[None])
        nearest = labels[np.argsort(distances, axis=1)[:, :neighbours]]
        is_digit = nearest < NOT_A_DIGIT
        votes = np.bincount(nearest[is_digit], minlength=NOT_A_DIGIT)
        rows.append((kind, name in LIKE_DIGITS, int(votes.argmax()), float(is_digit.mean())))
    return sorted(rows, key=lambda row: -row[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_split_options(parser, NEGATIVES_FILE, NEGATIVES_SLICE_FILE, SLICE_STEP)
    parser.add_argument("--measure", action="store_true", help="print how much each letter and symbol looks like a "
                        "digit (the share of its nearest drawings that are digits) and which are left out")
    args = parser.parse_args()
    if args.measure:
        print("| kind | left out | nearest digit | digit neighbours |\n| --- | --- | --- | --- |")
        for kind, left_out, digit, share in measure_likeness(args.data):
            print(f"| {kind} | {'yes' if left_out else ''} | {digit} | {share:.0%} |")
        return
    splits = negatives_set(args.data)
    for which, data in splits.items():
        groups = {name: int((data["groups"] == name).sum()) for name in np.unique(data["groups"])}
        print(f"{which}: {len(data['labels'])} drawings, {len(set(data['kinds']))} kinds: {groups}")
    write_splits(args, splits)


if __name__ == "__main__":
    main()
