"""The registered model: the new model's figures against the latest registered version's, registration, tags."""

import json
import sys
import tempfile
from pathlib import Path

from azure.ai.ml import MLClient
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Data, Job, Model
from azure.core.exceptions import ResourceNotFoundError

from aml_run.definitions import MODEL_OUTPUT
from aml_run.install import find_model_folder
from aml_run.settings import Settings
from aml_run.steps import StepFailed, step
from app.contract import METADATA_FILE
from training.negatives import CREDIT as CHARACTERS_CREDIT
from training.strokes import CREDIT

# The registered version's figures are tags rounded to 4 decimals, so a model exactly as good can read up to
# half a unit of the 4th decimal below them. Below that, one image of a set of up to 10,000 is worth more (the
# real writers kept out are about 4,200 images, the negatives kept out at most 6,600).
TAG_ROUNDING = 0.00005
# The tags compared, each a share where higher is better: a new model lower on any is not registered.
FIGURES = {"accuracy": "MNIST test accuracy", "style_accuracy": "style set accuracy",
           "writer_accuracy": "real writers accuracy", "refused": "negatives kept out refused"}
# The tags a version gets, where metadata.json holds each: FIGURES, and digits_refused, which is not compared.
# The real writers' accuracy already counts a digit answered "not a digit" as an error, and the evaluate step's
# max_digits_refused bounds the share; a model that refuses a digit it used to misread is no worse.
METADATA_FIGURES = {"accuracy": ("test_accuracy",), "style_accuracy": ("style_validation", "accuracy"),
                    "writer_accuracy": ("writers_validation", "accuracy"),
                    "refused": ("negatives_validation", "refused"), "digits_refused": ("writers_validation", "refused")}


def metadata_figures(metadata: dict) -> dict[str, float]:
    """METADATA_FIGURES from a model's metadata.json: a KeyError names the one missing
    ("style_validation.accuracy")."""
    figures = {}
    for tag, keys in METADATA_FIGURES.items():
        value = metadata
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(".".join(keys))
            value = value[key]
        figures[tag] = float(value)
    return figures


def job_figures(ml_client: MLClient, job: Job) -> dict[str, float]:
    """The new model's METADATA_FIGURES, from metadata.json in the job's output (the evaluate step's metrics.json
    holds the same figures: the same model.tflite on the same sets)."""
    label = f"output {MODEL_OUTPUT} of job {job.name}"
    with tempfile.TemporaryDirectory(prefix="job-output-") as download_dir:
        with step(f"downloading {label}"):
            ml_client.jobs.download(name=job.name, output_name=MODEL_OUTPUT, download_path=download_dir)
        folder = find_model_folder(Path(download_dir), label)
        with step(f"reading {METADATA_FILE} of {label}"):
            return metadata_figures(json.loads((folder / METADATA_FILE).read_text()))


def registered_model(ml_client: MLClient, settings: Settings) -> Model | None:
    """The latest registered version of the model, or None before the first one."""
    with step(f"finding the registered model {settings.model_name}"):
        try:
            return ml_client.models.get(settings.model_name, label="latest")
        except ResourceNotFoundError:
            return None


def refuse_if_worse(new: dict[str, float], registered: Model | None, job: Job) -> None:
    """Stop the run, before anything is registered, when the new model is worse than the registered version on
    any of FIGURES. With no registered version, the evaluate step's gates alone decided."""
    if registered is None:
        print(f"   no registered version yet: the evaluate step's gates decided; the model of job {job.name} "
              "becomes the first", file=sys.stderr)
        return
    label = f"{registered.name}:{registered.version}"
    tags = registered.tags or {}
    missing = [tag for tag in FIGURES if tag not in tags]
    if missing:
        raise StepFailed(f"{label}, the latest registered version, has no {', '.join(missing)} tag: it was "
                         f"registered but never checked; archive it (az ml model archive --name {registered.name} "
                         f"--version {registered.version}) so that the latest checked version is compared, and run "
                         "again")
    with step(f"comparing with the registered model {label}"):
        worse = [f"{FIGURES[tag]} {new[tag]:.4f} < {tags[tag]}" for tag in FIGURES
                 if new[tag] < float(tags[tag]) - TAG_ROUNDING]
    if worse:
        raise StepFailed(f"the model of job {job.name} is worse than the registered {label} "
                         f"({'; '.join(worse)}): not registered")


def register_model(ml_client: MLClient, job: Job, data: Data, handwriting: Data, corrections: Data | None,
                   settings: Settings) -> Model:
    """Register the job's model folder as a new version (accuracies are tagged once its files are checked),
    tagged with what it was trained on: no feedback_* tags, no corrections. Its description credits the real
    writers' data (CC BY 4.0 asks for it)."""
    tags = {"data_asset": data.name, "data_version": str(data.version), "handwriting_asset": handwriting.name,
            "handwriting_version": str(handwriting.version), "git_commit": settings.git_commit,
            "pipeline_job": job.name}
    if corrections is not None:
        tags.update(feedback_asset=corrections.name, feedback_version=str(corrections.version))
    files = "model.keras, model.tflite (served), metadata.json, plots."
    model = Model(
        name=settings.model_name, type=AssetTypes.CUSTOM_MODEL,
        path=f"azureml://jobs/{job.name}/outputs/{MODEL_OUTPUT}",
        description=(f"MNIST digit CNN, the digits and \"not a digit\": {files} Trained on MNIST, the style set, real "
                     "writers' pen strokes and, as \"not a digit\", their letters and symbols and generated shapes: "
                     f"{CREDIT}; {CHARACTERS_CREDIT}"),
        tags=tags)
    with step(f"registering model {settings.model_name} from job {job.name}"):
        return ml_client.models.create_or_update(model)


def latest_model(ml_client: MLClient, settings: Settings) -> Model:
    """The latest registered version of the model, for a run that reuses it instead of training."""
    with step(f"finding the latest version of model {settings.model_name}"):
        return ml_client.models.get(settings.model_name, label="latest")


def tag_figures(ml_client: MLClient, model: Model, metadata: dict) -> Model:
    """Add the checked METADATA_FIGURES to the new version's tags (tags are the mutable part of a version; the
    next run compares its model with them)."""
    with step(f"tagging model {model.name}:{model.version} with its figures"):
        figures = {tag: f"{figure:.4f}" for tag, figure in metadata_figures(metadata).items()}
        model.tags = {**(model.tags or {}), **figures}
        return ml_client.models.create_or_update(model)
