"""A registered model into app/model/: downloaded by name and version, checked with the app's own loader."""

import shutil
from pathlib import Path

from azure.ai.ml import MLClient
from azure.ai.ml.entities import Model

from aml_run.steps import StepFailed, step
from app.classifier import ModelError, load_classifier
from app.contract import METADATA_FILE


def find_model_folder(download_dir: Path, label: str) -> Path:
    """The one folder of the download that holds metadata.json."""
    found = sorted(path.parent for path in download_dir.rglob(METADATA_FILE))
    if len(found) == 1:
        return found[0]
    files = [path for path in download_dir.rglob("*") if path.is_file()]
    if not files:
        raise StepFailed(f"download of {label} is empty")
    raise StepFailed(f"download of {label} holds {len(found)} {METADATA_FILE} files, expected 1 "
                     f"({len(files)} files in all)")


def download_and_check(ml_client: MLClient, model: Model, download_dir: Path, min_accuracy: float) -> tuple[Path, dict]:
    """Download the model by name and version; check its files and its accuracy; return its folder and metadata."""
    label = f"{model.name}:{model.version}"
    with step(f"downloading model {label}"):
        ml_client.models.download(name=model.name, version=model.version, download_path=str(download_dir))
    folder = find_model_folder(download_dir, f"model {label}")
    try:
        _, metadata = load_classifier(folder)
    except ModelError as error:
        raise StepFailed(f"model {label} failed its check: {error}") from None
    accuracy = metadata.get("test_accuracy")
    if not isinstance(accuracy, (int, float)) or accuracy < min_accuracy:
        raise StepFailed(f"model {label} has test accuracy {accuracy}, below the minimum {min_accuracy}")
    return folder, metadata


def install_model(folder: Path, model_dir: Path) -> None:
    """Copy the checked files into model_dir, then check model_dir itself: it is what the image gets."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        if path.is_file():
            shutil.copy2(path, model_dir / path.name)
    try:
        load_classifier(model_dir)
    except ModelError as error:
        raise StepFailed(f"{model_dir} after copying the model: {error}") from None
