"""Cut the repository's slice of the real writers' pen strokes from the full handwriting folder.

    python -m tests.data.make_handwriting_slice HANDWRITING tests/data/handwriting

Every 100th recorded digit, letter and symbol of each file training/strokes.py and training/negatives.py read,
unchanged, in the same format (CC BY 4.0: UNIPEN and UCI's pen digits, credited in training/strokes.py,
training/negatives.py and docs/model.md). Gzip's timestamp is zeroed,
so a rerun writes the same bytes.
"""

import gzip
import json
import sys
from pathlib import Path

from training.negatives import CHARACTER_FILES
from training.strokes import DIGIT_FILES

STEP = 100


def main(source: str, destination: str) -> None:
    out = Path(destination)
    out.mkdir(parents=True, exist_ok=True)
    for name in [*DIGIT_FILES.values(), *CHARACTER_FILES.values()]:
        with gzip.open(Path(source) / name, "rt", encoding="utf-8") as file:
            samples = json.load(file)[::STEP]
        with open(out / name, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as file:
            file.write(json.dumps(samples, separators=(",", ":")).encode())


if __name__ == "__main__":
    main(*sys.argv[1:])
