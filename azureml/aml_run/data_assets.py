"""The data the pipeline reads: the MNIST, handwriting (the real writers' digits, and the letters and symbols
learnt as "not a digit") and corrections data assets, each checked
on this machine with the code that reads it, versioned by its content, and uploaded when the workspace lacks
that version."""

import hashlib
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from azure.ai.ml import MLClient
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Data
from azure.core.exceptions import ResourceNotFoundError

from aml_run.settings import Settings
from aml_run.steps import StepFailed, step
from app.corrections import ACCEPTED, count_corrections
from training.data import CorrectionsError, MnistError, load_mnist, read_corrections
from training.negatives import CHARACTER_FILES, read_characters
from training.negatives import CREDIT as CHARACTERS_CREDIT
from training.strokes import CREDIT, DIGIT_FILES, read_digits

HANDWRITING_SETTING = "set HANDWRITING_DIR (or --handwriting-dir)"
# The handwriting folder's files the train and evaluate steps read: the real writers' digits (training/strokes.py)
# and UNIPEN's letters and symbols (training/negatives.py, the negatives), exactly what its data asset holds.
HANDWRITING_FILES = (*DIGIT_FILES.values(), *CHARACTER_FILES.values())
RECORD_KEYS = {"label", "source", "writer", "strokes"}  # what training/strokes.py reads of a recorded digit
CHARACTER_KEYS = {"source", "writer", "strokes"}  # and training/negatives.py of a letter or symbol, beside its label
DIGITS = {str(digit) for digit in range(10)}


def content_version(checksums: dict[str, str]) -> str:
    """A data asset version named by its content, a digest of its files' names and SHA-256s: the same files
    always make the same version, so a version already in the workspace is never uploaded again."""
    listing = "".join(f"{name} {digest}\n" for name, digest in sorted(checksums.items()))
    return hashlib.sha256(listing.encode()).hexdigest()[:12]


def asset_path(data: Data) -> str:
    """A pipeline input's path to exactly this data asset version."""
    return f"azureml:{data.name}:{data.version}"


def local_data_version(data_dir: Path) -> str:
    """Check the local IDX folder with the one loader; its version is a digest of its files' SHA-256s."""
    try:
        mnist = load_mnist(data_dir)
    except MnistError as error:
        raise StepFailed(f"local MNIST folder: {error}") from None
    return content_version(mnist.checksums)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Handwriting:
    """The handwriting folder, checked as training reads it: its HANDWRITING_FILES, exactly what its data asset
    version holds (any other file in the folder is neither counted nor uploaded)."""
    folder: Path
    checksums: dict[str, str]  # file name (one of HANDWRITING_FILES) -> SHA-256
    digits: int  # the recorded digits in them
    writers: int  # the people who wrote them
    characters: int  # the recorded letters and symbols, those written like a digit included (not negatives)

    @property
    def version(self) -> str:
        return content_version(self.checksums)

    def describe(self) -> str:
        return f"{self.digits} recorded digits by {self.writers} writers, {self.characters} letters and symbols"


def local_handwriting(folder: Path) -> Handwriting:
    """Check the handwriting folder with training's own readers (training.strokes.read_digits,
    training.negatives.read_characters) before anything is uploaded; its version is a digest of the SHA-256s of
    its HANDWRITING_FILES."""
    digit_files, character_files = " and ".join(DIGIT_FILES.values()), ", ".join(CHARACTER_FILES.values())
    fix = (f"{HANDWRITING_SETTING} to the folder holding the real writers' {digit_files} and the letters and symbols' "
           f"{character_files}")
    with step(f"checking the handwriting folder's pen strokes in {folder}"):
        if not folder.is_dir():
            raise StepFailed(f"handwriting folder {folder}: {'not a folder' if folder.exists() else 'not found'}: "
                             f"{fix}")
        missing = [name for name in HANDWRITING_FILES if not (folder / name).is_file()]
        if missing:
            raise StepFailed(f"handwriting folder {folder} has no {' and no '.join(missing)}: {fix}")
        checksums = {name: sha256_file(folder / name) for name in HANDWRITING_FILES}
        try:
            samples, characters = read_digits(folder), read_characters(folder, like_digits=True)
        except ValueError as error:
            raise StepFailed(f"handwriting folder {error}: {fix}") from None
        except KeyError:  # read_characters names each record's kind by its label
            raise StepFailed(f"handwriting folder {folder}: a recorded letter or symbol in its {character_files} has "
                             f"no label, as training/negatives.py reads them: {fix}") from None
        if not samples:
            raise StepFailed(f"handwriting folder {folder}: its {digit_files} hold no recorded digit: {fix}")
        if not characters:
            raise StepFailed(f"handwriting folder {folder}: its {character_files} hold no recorded letter or symbol: "
                             f"{fix}")
        unlike = sum(not RECORD_KEYS <= sample.keys() or str(sample["label"]) not in DIGITS for sample in samples)
        if unlike:
            raise StepFailed(f"handwriting folder {folder}: {unlike} of its {len(samples)} recorded digits have no "
                             f"label 0-9, source, writer or strokes, as training/strokes.py reads them: {fix}")
        unlike = sum(not CHARACTER_KEYS <= character.keys() for character in characters)
        if unlike:
            raise StepFailed(f"handwriting folder {folder}: {unlike} of its {len(characters)} recorded letters and "
                             "symbols have no source, writer or strokes, as training/negatives.py reads them: "
                             f"{fix}")
    return Handwriting(folder, checksums, len(samples), len({sample["writer"] for sample in samples}),
                       len(characters))


def stage_handwriting(handwriting: Handwriting, staging: Path) -> None:
    """Copy the checked files, and nothing else of their folder, into the folder that is uploaded; the version
    names this content."""
    for name, digest in handwriting.checksums.items():
        copy = Path(shutil.copy2(handwriting.folder / name, staging / name))
        if sha256_file(copy) != digest:
            raise StepFailed(f"{handwriting.folder / name} changed while it was being uploaded: run again")


@dataclass(frozen=True)
class Corrections:
    """The corrections folder's readable records that training reads, checked: exactly what its data asset
    version holds, each under accepted/ (the train and evaluate steps read the asset as training.data reads
    FEEDBACK_DIR, without --feedback-unreviewed: the choice to include records not reviewed is made here)."""
    folder: Path
    records: dict[str, tuple[Path, str]]  # path in the data asset (accepted/NAME) -> (the record file, SHA-256)
    unreadable: int  # records app.corrections cannot read: left out, as training would skip them
    unreviewed: int  # of the records, those still waiting for review (only with --feedback-unreviewed)

    @property
    def checksums(self) -> dict[str, str]:
        return {path: digest for path, (_, digest) in self.records.items()}

    @property
    def version(self) -> str:
        return content_version(self.checksums)

    def describe(self) -> str:
        """How many records of which kind, for the log."""
        kinds = f"{len(self.records) - self.unreviewed} accepted" + (
            f", {self.unreviewed} not reviewed" if self.unreviewed else "")
        return f"{len(self.records)} records: {kinds}; {self.unreadable} unreadable left out"


def local_corrections(folder: Path, include_unreviewed: bool = False) -> Corrections:
    """Check the corrections folder as training reads it (the records accepted in review, and with
    include_unreviewed those waiting too), before anything is made in the workspace."""
    with step(f"checking the corrections in {folder}"):  # with training's own reader
        try:
            readable, unreadable = read_corrections(folder, include_unreviewed)
        except CorrectionsError as error:
            raise StepFailed(f"corrections folder {error}: set FEEDBACK_DIR (or --feedback-dir) to the app's "
                             "corrections folder, or unset it to train without corrections") from None
        records = {f"{ACCEPTED}/{path.name}": (path, hashlib.sha256(path.read_bytes()).hexdigest())
                   for path, _ in readable}
    if unreadable:
        print(f"   {len(unreadable)} of the {len(unreadable) + len(records)} records read in {folder} are "
              f"unreadable and left out, as training would skip them (first: {unreadable[0]})", file=sys.stderr)
    if not records:
        kind, waiting = (f"{ACCEPTED} or waiting", "") if include_unreviewed else (
            ACCEPTED, f"; {count_corrections(folder)} waiting for review: python -m training.review {folder}")
        raise StepFailed(f"corrections folder {folder} holds no readable {kind} record ({len(unreadable)} "
                         f"unreadable{waiting}): nothing to train or gate on; unset FEEDBACK_DIR to train "
                         "without corrections")
    unreviewed = sum(path.parent != folder / ACCEPTED for path, _ in readable)
    return Corrections(folder, records, len(unreadable), unreviewed)


def stage_records(corrections: Corrections, staging: Path) -> None:
    """Copy the checked records, and nothing else, into the folder that is uploaded: the app may be writing
    new records (and its temporary files) into its folder meanwhile, a reviewer moving them, and the version
    names this content."""
    (staging / ACCEPTED).mkdir()
    for relative, (source, digest) in corrections.records.items():
        try:
            copy = Path(shutil.copy2(source, staging / relative))
        except FileNotFoundError:
            raise StepFailed(f"{source} was moved while it was being uploaded: run again") from None
        if hashlib.sha256(copy.read_bytes()).hexdigest() != digest:
            raise StepFailed(f"{source} changed while it was being uploaded: run again")


def latest_asset(ml_client: MLClient, name: str, upload: str) -> Data:
    """The data asset `name`'s latest version; StepFailed saying `upload` (how to upload one) when there is none."""
    with step(f"data asset {name} (latest version)"):
        try:
            return ml_client.data.get(name, label="latest")
        except ResourceNotFoundError:
            raise StepFailed(f"the workspace has no data asset {name}: {upload}") from None


def asset_or_upload(ml_client: MLClient, asset: Data, what: str, source, stage=None) -> Data:
    """The data asset `asset` names (name, version), or, when the workspace lacks that version, `asset` uploaded
    from the folder `source` (or from a temporary folder that `stage(folder)` fills); `what` says what for the log."""
    with step(f"data asset {asset.name}:{asset.version} ({what})"):
        try:
            return ml_client.data.get(asset.name, version=asset.version)
        except ResourceNotFoundError:
            pass
        print(f"   uploading {what} of {source}", file=sys.stderr)
        if stage is None:
            asset.path = str(source)
            return ml_client.data.create_or_update(asset)
        with tempfile.TemporaryDirectory(prefix=f"{asset.name}-") as staging:
            stage(Path(staging))
            asset.path = staging
            return ml_client.data.create_or_update(asset)


def ensure_data(ml_client: MLClient, settings: Settings) -> Data:
    """The MNIST data asset: the local folder's version (uploaded when missing), else the latest version."""
    if settings.data_dir is None:
        return latest_asset(ml_client, settings.data_name, "set MNIST_DIR (or pass --data-dir) to a local MNIST IDX "
                            "folder to upload it")
    return asset_or_upload(ml_client, Data(
        name=settings.data_name, version=local_data_version(settings.data_dir), type=AssetTypes.URI_FOLDER,
        description="MNIST: the four IDX files (train 60,000, test 10,000 images)"), "the IDX files", settings.data_dir)


def ensure_handwriting(ml_client: MLClient, settings: Settings) -> Data:
    """The handwriting data asset: the local handwriting folder's version (only its HANDWRITING_FILES, uploaded
    when missing), else the latest version."""
    if settings.handwriting_dir is None:
        return latest_asset(ml_client, settings.handwriting_name, f"{HANDWRITING_SETTING} to a local handwriting "
                            f"folder ({', '.join(HANDWRITING_FILES)}) to upload it")
    handwriting = local_handwriting(settings.handwriting_dir)
    return asset_or_upload(ml_client, Data(
        name=settings.handwriting_name, version=handwriting.version, type=AssetTypes.URI_FOLDER,
        tags={"digits": str(handwriting.digits), "writers": str(handwriting.writers),
              "characters": str(handwriting.characters)},
        description="Real writers' pen strokes, each its label, writer and strokes: isolated digits "
                    f"({', '.join(DIGIT_FILES.values())}), drawn with the app's brush and split by writer "
                    "by training/strokes.py; and UNIPEN's isolated letters and symbols (sections 1b, 1c, "
                    f"1d: {', '.join(CHARACTER_FILES.values())}), drawn the same way by "
                    "training/negatives.py as negatives, the model's class \"not a digit\" (those written "
                    f"like a digit left out). Sources and licence: {CREDIT}; {CHARACTERS_CREDIT}"),
        handwriting.describe(), handwriting.folder, lambda folder: stage_handwriting(handwriting, folder))


def ensure_corrections(ml_client: MLClient, settings: Settings, corrections: Corrections) -> Data:
    """The corrections data asset at the folder's version, uploaded when the workspace lacks it."""
    return asset_or_upload(ml_client, Data(
        name=settings.feedback_name, version=corrections.version, type=AssetTypes.URI_FOLDER,
        tags={"accepted": str(len(corrections.records) - corrections.unreviewed),
              "unreviewed": str(corrections.unreviewed)},
        description=f"The app's corrections to train on, in {ACCEPTED}/: one 28x28 PNG per correction, what is "
                    "known about it as JSON in its `feedback` text chunk (app/corrections.py). Accepted in "
                    "review (python -m training.review) but for the `unreviewed` tag's count, included "
                    "by run_pipeline.py --feedback-unreviewed"),
        corrections.describe(), corrections.folder, lambda folder: stage_records(corrections, folder))
