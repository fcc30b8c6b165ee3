"""Corrections: a user says which digit they meant, and the picture the model saw is kept for training.

One correction is one file in FEEDBACK_DIR: the 28x28 picture the model read, stored as MNIST stores its
images (uint8, 0 = background, 255 = ink) in a greyscale PNG that anyone can open, with what is known about
it as JSON in the PNG's `feedback` text chunk:

    {"meant": 7, "answered": 1, "probability": 0.93, "model_sha256": "…", "time": "2026-11-30T01:23:45.678Z"}

`meant` is a digit 0-9; `answered` is the class the model answered: a digit, or NOT_A_DIGIT (10) when it said
the drawing was not a digit.

No client address, no request header. The name is the time, the digit meant and a random id
(20261130T012345678901Z-7-<32 hex>.png): replicas sharing the folder never pick the same name. Each correction
is written to a hidden temporary name and renamed once complete, so a crash mid-write leaves no half
correction (readers skip hidden files). Writing, reading and checking a correction happen here only: the app
writes them, training.data reads them.

The folder's layout is written here once. New corrections wait for review in FEEDBACK_DIR itself, the only place
the app writes; a person's decision (python -m training.review) moves each one, under the same name, into
FEEDBACK_DIR/accepted/ (what training reads) or FEEDBACK_DIR/rejected/ (kept aside, never trained on, never
deleted). The cap, max_waiting, counts the top level only: it bounds the corrections waiting for review.
"""

import errno
import io
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin, UnidentifiedImageError

from app.contract import CLASS_NAMES, IMAGE_SIZE, NOT_A_DIGIT, NUM_CLASSES, NUM_DIGITS

SUFFIX = ".png"
ACCEPTED = "accepted"  # FEEDBACK_DIR/accepted/: corrections a person accepted, the ones training reads
REJECTED = "rejected"  # FEEDBACK_DIR/rejected/: corrections a person rejected, kept aside and never trained on
TEXT_KEY = "feedback"
FIELDS = ("meant", "answered", "probability", "model_sha256", "time")


class NotKept(Exception):
    """A correction that cannot be kept: `reason` is the metric's label, the message says why to a user."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class UnreadableCorrection(ValueError):
    """A file in the corrections folder is not a readable correction; the message says what is wrong."""


@dataclass(frozen=True)
class Correction:
    picture: np.ndarray  # uint8 [28, 28], MNIST's format: 0 = background, 255 = ink
    meant: int  # the digit the user meant
    answered: int  # the class the model answered: a digit, or NOT_A_DIGIT
    probability: float  # the model's probability for its answer
    model_sha256: str  # the model.tflite that answered
    time: str  # ISO 8601, UTC

    @property
    def verdict(self) -> str:
        """"right" for a confirmation (the user meant the digit answered), "wrong" for a correction."""
        return "right" if self.meant == self.answered else "wrong"


def check_digit(value) -> int:
    """The digit a user meant, as an int 0-9 (a string or a whole float is accepted); ValueError otherwise."""
    return whole_number(value, NUM_DIGITS, "the digit meant must be one of 0-9")


def check_answered(value) -> int:
    """The class a model answered, as an int: a digit 0-9 or NOT_A_DIGIT (10); ValueError otherwise."""
    return whole_number(value, NUM_CLASSES, f"the class answered must be a digit 0-9 or {NOT_A_DIGIT} (not a digit)")


def whole_number(value, below: int, answer: str) -> int:
    """`value` as an int from 0 to below - 1 (a string or a whole float is accepted); ValueError(answer) otherwise."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < below:
        raise ValueError(f"{answer}, not {value!r}")
    return int(value)


def encode(correction: Correction) -> bytes:
    """The correction as PNG bytes."""
    text = PngImagePlugin.PngInfo()
    text.add_text(TEXT_KEY, json.dumps({name: getattr(correction, name) for name in FIELDS}))
    buffer = io.BytesIO()
    Image.fromarray(correction.picture, mode="L").save(buffer, format="PNG", pnginfo=text)
    return buffer.getvalue()


def read_correction(path: Path) -> Correction:
    """One correction file, checked; UnreadableCorrection saying what is wrong with it otherwise."""
    try:
        with Image.open(path) as image:
            image.load()
            picture = np.asarray(image)
            info = json.loads(image.text[TEXT_KEY])
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise UnreadableCorrection(f"{path.name}: not a readable PNG ({type(error).__name__}: {error})") from None
    except (KeyError, AttributeError):
        raise UnreadableCorrection(f"{path.name}: no `{TEXT_KEY}` text chunk: not a correction") from None
    if picture.dtype != np.uint8 or picture.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise UnreadableCorrection(f"{path.name}: picture is {picture.dtype} {list(picture.shape)}, "
                                   "expected uint8 [28, 28]")
    if not isinstance(info, dict) or any(name not in info for name in FIELDS):
        raise UnreadableCorrection(f"{path.name}: the correction lacks {[n for n in FIELDS if n not in info]}")
    try:
        meant, answered = check_digit(info["meant"]), check_answered(info["answered"])
    except ValueError as error:
        raise UnreadableCorrection(f"{path.name}: {error}") from None
    return Correction(picture, meant, answered, float(info["probability"]), str(info["model_sha256"]),
                      str(info["time"]))


def is_correction_name(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith(".")  # hidden: a temporary file left by a crash


def correction_paths(folder: Path) -> list[Path]:
    """The corrections in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(Path(entry.path) for entry in os.scandir(folder)
                  if is_correction_name(entry.name) and entry.is_file())


def count_corrections(folder: Path) -> int:
    """How many corrections `folder` holds at its top level (in FEEDBACK_DIR: those waiting for review, not the
    accepted/ or rejected/ ones): names only, as cheap as listing it gets (it is counted at every write)."""
    with os.scandir(folder) as entries:
        return sum(is_correction_name(entry.name) for entry in entries)


class CorrectionsStore:
    """The corrections folder, shared by every replica. `folder` None: corrections are off. `max_waiting`: how many
    may wait for review at once (corrections reviewed since, in accepted/ and rejected/, do not count)."""

    def __init__(self, folder: Path | None, max_waiting: int):
        self.folder, self.max_waiting = folder, max_waiting

    @property
    def enabled(self) -> bool:
        return self.folder is not None

    def check_on(self) -> None:
        """NotKept("off") when corrections are off."""
        if self.folder is None:
            raise NotKept("off", "Corrections are not kept on this server (FEEDBACK_DIR is not set).")

    def keep(self, correction: Correction) -> str:
        """Write the correction under a new unique name, atomically; return the name. NotKept when corrections
        are off, max_waiting wait for review already, or the disk turns away the write."""
        self.check_on()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if count_corrections(self.folder) >= self.max_waiting:
                raise NotKept("full", f"The store of corrections is full ({self.max_waiting} corrections) until "
                                      "a person reviews them: this one was not kept. Predictions go on as before.")
            now = datetime.now(UTC)
            name = f"{now:%Y%m%dT%H%M%S%fZ}-{correction.meant}-{uuid.uuid4().hex}{SUFFIX}"
            temporary = self.folder / f".{name}.tmp"
            try:
                with open(temporary, "xb") as file:
                    file.write(encode(correction))
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, self.folder / name)
            finally:
                temporary.unlink(missing_ok=True)
        except OSError as error:
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise NotKept("full", "The disk of the corrections store is full: this one was not kept. "
                                      "Predictions go on as before.") from None
            raise NotKept("storage_error", f"The correction could not be kept ({error.strerror or error}). "
                                  "Predictions go on as before.") from None
        return name


def new_correction(picture: np.ndarray, meant: int, answered: int, probability: float, model_sha256: str) -> Correction:
    """A correction of now, its picture converted from the model's input (float [28, 28, 1] in [0, 1]) if need be."""
    if picture.dtype != np.uint8:
        picture = (np.asarray(picture, np.float32).reshape(IMAGE_SIZE, IMAGE_SIZE) * 255).round().astype(np.uint8)
    time = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return Correction(picture, check_digit(meant), check_answered(answered), float(probability), model_sha256, time)


def article(digit: int) -> str:
    """ "an 8", "a 7": the article a digit takes when said aloud."""
    return "an" if digit == 8 else "a"


def summary(correction: Correction, name: str) -> dict:
    """What the user (page, gradio_client, POST /feedback) is told about a kept correction."""
    if correction.verdict == "right":
        thanks = f"Thank you for confirming the {correction.meant}: it will help the next training."
    else:
        said = "said it was not a digit" if correction.answered == NOT_A_DIGIT else f"read {correction.answered}"
        thanks = (f"Thank you: kept as {article(correction.meant)} {correction.meant} (the model {said}). "
                  "It will help the next training.")
    return {"record": name, "meant": str(correction.meant), "answered": CLASS_NAMES[correction.answered],
            "probability": round(correction.probability, 4), "verdict": correction.verdict, "message": thanks}
