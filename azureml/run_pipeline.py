"""Train the digit model on Azure ML and put the registered model where the Docker build takes it.

    python azureml/run_pipeline.py                  # train, gate, compare, register, fetch
    python azureml/run_pipeline.py --reuse-latest   # fetch the latest registered model, no training
    python azureml/run_pipeline.py --dry-run        # offline: load and validate the YAML, print the pipeline
    FEEDBACK_DIR=feedback python azureml/run_pipeline.py   # with the app's corrections (train and gate)

Training: makes sure the compute cluster, the environment and the MNIST data asset exist (uploading the
local IDX folder, $MNIST_DIR, as a new data asset version when the workspace lacks it), and with
$FEEDBACK_DIR the corrections data asset too (the app's corrections folder, its records checked with
app.feedback, uploaded the same way); submits azureml/pipeline.yml (with corrections, the train step mixes
them in, and the evaluate step's gate also refuses a model worse than the model in service on the kept-out
ones), streams it, and requires the final status `Completed`; reads the new model's metadata.json from the
job's output and refuses it when it is worse than the latest registered version on MNIST or on the style
set (the first model is registered on the evaluate step's gates alone); registers the trained model folder
as a `custom_model` tagged with its data asset versions and git commit. Then, in both modes, it downloads
the model by name and version (see azureml/README.md), checks the files against metadata.json with the
app's own loader and the accuracy against --min-accuracy, tags the newly registered version with its
accuracy and style set accuracy, and copies the files into app/model/ (--model-dir).

The workspace comes from AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and AZUREML_WORKSPACE (or the
arguments), the credential from azure-identity's DefaultAzureCredential (az login, a workflow's OIDC
login, a managed identity). Any failure stops the run with a message naming the step and exit status 1;
a bad argument, 2.

This is a script run by its path, not a module: `azureml` is also Microsoft's package name (the v1 SDK,
azureml-mlflow), so nothing here is importable as `azureml.*` (the folder has no __init__.py) and the
script puts the repository root on sys.path itself to import `app` and `training`.
"""

import argparse
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from azure.ai.ml import Input, MLClient, load_compute, load_environment, load_job  # noqa: E402
from azure.ai.ml.constants import AssetTypes, InputOutputModes  # noqa: E402
from azure.ai.ml.entities import AmlCompute, Data, Environment, Job, Model, PipelineJob  # noqa: E402
from azure.core.exceptions import ResourceNotFoundError  # noqa: E402

from app.classifier import ModelError, load_classifier  # noqa: E402
from app.config import DEFAULT_MODEL_DIR  # noqa: E402
from app.contract import METADATA_FILE  # noqa: E402
from app.feedback import RecordError, read_record, record_paths  # noqa: E402
from training.data import MnistError, load_mnist  # noqa: E402

COMPUTE_YAML = HERE / "compute" / "cpu-cluster.yml"
ENVIRONMENT_YAML = HERE / "environment" / "environment.yml"
PIPELINE_YAML = HERE / "pipeline.yml"
MODEL_OUTPUT = "trained_model"  # the pipeline output that holds the model folder
# The pipeline input pipeline.yml binds to the train and evaluate steps' optional `feedback`. It is not declared
# there: a pipeline job's input cannot be optional, and the SDK refuses one without a path ("Input path can't
# be empty for jobs"). Left out, the steps run without --feedback; a run with corrections adds it.
CORRECTIONS_INPUT = "corrections"
MODEL_DATASTORE = "workspaceblobstore"  # the workspace's default datastore, where outputs go unless told otherwise
# The registered version's figures are tags rounded to 4 decimals, so a model exactly as good can read up to
# half a unit of the 4th decimal below them. Below that, one image of a set of up to 10,000 is worth more.
TAG_ROUNDING = 0.00005
FIGURES = {"accuracy": "MNIST test accuracy", "style_accuracy": "style set accuracy"}  # the tags compared

# Notices that some of the SDK's own schema classes are experimental: about the SDK, not these files.
logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)


class StepFailed(RuntimeError):
    """A step of the run failed; the message says which step and why."""


@dataclass(frozen=True)
class Settings:
    subscription_id: str | None  # AZURE_SUBSCRIPTION_ID
    resource_group: str | None  # AZURE_RESOURCE_GROUP
    workspace: str | None  # AZUREML_WORKSPACE
    data_dir: Path | None  # MNIST_DIR: the local IDX folder, uploaded when its version is missing
    data_name: str  # the data asset's name
    feedback_dir: Path | None  # FEEDBACK_DIR: the corrections folder, uploaded when its version is missing; None: none
    feedback_name: str  # the corrections data asset's name
    model_name: str  # the registered model's name
    model_dir: Path  # where the model files go: app/model, which the Dockerfile copies
    epochs: int
    min_accuracy: float
    min_style_accuracy: float
    git_commit: str  # GIT_COMMIT or GITHUB_SHA, else the checkout's HEAD
    reuse_latest: bool
    dry_run: bool
    github_oidc: tuple[str, str, str, str] | None = None  # request URL, request token, client id, tenant id
    github_output: Path | None = None  # GITHUB_OUTPUT: the workflow reads the model and its accuracies here


def pipeline_defaults() -> dict:
    """The pipeline's input defaults, kept in pipeline.yml only."""
    return yaml.safe_load(PIPELINE_YAML.read_text())["inputs"]


def git_head() -> str:
    """The checkout's commit, or "unknown" outside a git checkout."""
    try:
        result = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def parse_args(argv: list[str] | None, env: dict[str, str]) -> Settings:
    """All settings, from the arguments and the environment, read here only."""
    defaults = pipeline_defaults()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscription-id", default=env.get("AZURE_SUBSCRIPTION_ID"),
                        help="default: $AZURE_SUBSCRIPTION_ID")
    parser.add_argument("--resource-group", default=env.get("AZURE_RESOURCE_GROUP"),
                        help="default: $AZURE_RESOURCE_GROUP")
    parser.add_argument("--workspace", default=env.get("AZUREML_WORKSPACE"), help="default: $AZUREML_WORKSPACE")
    parser.add_argument("--data-dir", type=Path, default=env.get("MNIST_DIR") or None,
                        help="local MNIST IDX folder: its content picks the data asset version, uploaded when "
                             "missing (default: $MNIST_DIR; none: the latest data asset version)")
    parser.add_argument("--data-name", default="mnist", help="data asset name (default: mnist)")
    parser.add_argument("--feedback-dir", type=Path, default=env.get("FEEDBACK_DIR") or None,
                        help="the app's corrections folder: trained on, and gated on its kept-out records; its "
                             "content picks the data asset version, uploaded when missing (default: "
                             "$FEEDBACK_DIR; none: no corrections)")
    parser.add_argument("--feedback-name", default="digit-feedback",
                        help="corrections data asset name (default: digit-feedback)")
    parser.add_argument("--model-name", default="mnist-cnn", help="registered model name (default: mnist-cnn)")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR,
                        help="where to put the model files (default: app/model, which the Docker build copies)")
    parser.add_argument("--epochs", type=int, default=defaults["epochs"],
                        help=f"training epochs (default: {defaults['epochs']})")
    parser.add_argument("--min-accuracy", type=float, default=defaults["min_accuracy"],
                        help=f"the evaluate step's gate, and the bar for a fetched model "
                             f"(default: {defaults['min_accuracy']})")
    parser.add_argument("--min-style-accuracy", type=float, default=defaults["min_style_accuracy"],
                        help=f"the evaluate step's gate on the style set's held-out fonts and templates "
                             f"(default: {defaults['min_style_accuracy']})")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--reuse-latest", action="store_true",
                      help="skip training: fetch the latest registered version of --model-name")
    mode.add_argument("--dry-run", action="store_true",
                      help="offline: load and validate every definition, print the pipeline YAML")
    args = parser.parse_args(argv)
    if args.epochs < 1 or not 0.0 <= args.min_accuracy <= 1.0 or not 0.0 <= args.min_style_accuracy <= 1.0:
        parser.error("--epochs must be >= 1, and --min-accuracy and --min-style-accuracy between 0 and 1")
    workspace = {"AZURE_SUBSCRIPTION_ID": args.subscription_id, "AZURE_RESOURCE_GROUP": args.resource_group,
                 "AZUREML_WORKSPACE": args.workspace}
    missing = [name for name, value in workspace.items() if not value]
    if missing and not args.dry_run:
        parser.error(f"no workspace: set {', '.join(missing)} (or pass --subscription-id, --resource-group, "
                     "--workspace)")
    return Settings(
        subscription_id=args.subscription_id, resource_group=args.resource_group, workspace=args.workspace,
        data_dir=args.data_dir, data_name=args.data_name, feedback_dir=args.feedback_dir,
        feedback_name=args.feedback_name, model_name=args.model_name, model_dir=args.model_dir,
        epochs=args.epochs, min_accuracy=args.min_accuracy, min_style_accuracy=args.min_style_accuracy,
        git_commit=env.get("GIT_COMMIT") or env.get("GITHUB_SHA") or git_head(),
        reuse_latest=args.reuse_latest, dry_run=args.dry_run,
        github_oidc=github_oidc(env), github_output=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
    )


def github_oidc(env: dict[str, str]) -> tuple[str, str, str, str] | None:
    """What a GitHub Actions job with `id-token: write` needs to get Azure tokens; None elsewhere."""
    names = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "AZURE_CLIENT_ID", "AZURE_TENANT_ID")
    values = tuple(env.get(name) for name in names)
    return values if all(values) else None


def github_id_token(request_url: str, request_token: str) -> str:
    """A fresh GitHub OIDC token for Azure's token exchange (GitHub's tokens expire within minutes)."""
    request = urllib.request.Request(f"{request_url}&audience=api://AzureADTokenExchange",
                                     headers={"Authorization": f"Bearer {request_token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["value"]


def credential(settings: Settings):
    """In a GitHub workflow, a credential that asks GitHub for a new OIDC token whenever Azure needs one:
    `azure/login`'s session cannot renew itself, and a training run outlasts its first token. Elsewhere,
    DefaultAzureCredential (az login, a managed identity, environment variables)."""
    from azure.identity import ClientAssertionCredential, DefaultAzureCredential

    if settings.github_oidc is None:
        return DefaultAzureCredential()
    request_url, request_token, client_id, tenant_id = settings.github_oidc
    return ClientAssertionCredential(tenant_id, client_id, lambda: github_id_token(request_url, request_token))


def connect(settings: Settings) -> MLClient:
    """The one place that reaches Azure: tests pass a fake client instead of calling this."""
    return MLClient(credential(settings), settings.subscription_id, settings.resource_group, settings.workspace)


@contextmanager
def step(what: str):
    """Say what is being done; turn any error inside (the SDK raises many kinds) into StepFailed naming it."""
    print(f"-> {what}", file=sys.stderr, flush=True)
    try:
        yield
    except StepFailed:
        raise
    except Exception as error:
        raise StepFailed(f"{what} failed: {type(error).__name__}: {error}") from error


def content_version(checksums: dict[str, str]) -> str:
    """A data asset version named by its content, a digest of its files' names and SHA-256s: the same files
    always make the same version, so a version already in the workspace is never uploaded again."""
    listing = "".join(f"{name} {digest}\n" for name, digest in sorted(checksums.items()))
    return hashlib.sha256(listing.encode()).hexdigest()[:12]


def local_data_version(data_dir: Path) -> str:
    """Check the local IDX folder with the one loader; its version is a digest of its files' SHA-256s."""
    try:
        mnist = load_mnist(data_dir)
    except MnistError as error:
        raise StepFailed(f"local MNIST folder: {error}") from None
    return content_version(mnist.checksums)


@dataclass(frozen=True)
class Corrections:
    """The corrections folder's readable records, checked: exactly what its data asset version holds."""
    folder: Path
    checksums: dict[str, str]  # record file name -> SHA-256
    unreadable: int  # records app.feedback cannot read: left out, as training would skip them

    @property
    def version(self) -> str:
        return content_version(self.checksums)


def local_corrections(folder: Path) -> Corrections:
    """Check the corrections folder with the app's own reader, before anything is made in the workspace."""
    if not folder.is_dir():
        problem = "not a folder" if folder.exists() else "folder not found"
        raise StepFailed(f"corrections folder {folder}: {problem}; set FEEDBACK_DIR (or --feedback-dir) to the "
                         "app's corrections folder, or unset it to train without corrections")
    checksums, unreadable = {}, []
    with step(f"checking the corrections in {folder}"):
        for path in record_paths(folder):
            try:
                read_record(path)
            except RecordError as error:
                unreadable.append(str(error))
                continue
            checksums[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    if unreadable:
        print(f"   {len(unreadable)} of the {len(unreadable) + len(checksums)} records in {folder} are unreadable "
              f"and left out, as training would skip them (first: {unreadable[0]})", file=sys.stderr)
    if not checksums:
        raise StepFailed(f"corrections folder {folder} holds no readable record ({len(unreadable)} unreadable): "
                         "nothing to train or gate on; unset FEEDBACK_DIR to train without corrections")
    return Corrections(folder, checksums, len(unreadable))


def ensure_compute(ml_client: MLClient, compute: AmlCompute) -> None:
    """Create the cluster when the workspace lacks it; an existing one is used as it is."""
    with step(f"compute {compute.name}"):
        try:
            ml_client.compute.get(compute.name)
            return
        except ResourceNotFoundError:
            pass
        print(f"   creating {compute.size}, {compute.min_instances}-{compute.max_instances} nodes", file=sys.stderr)
        ml_client.compute.begin_create_or_update(compute).result()


def ensure_environment(ml_client: MLClient, environment: Environment) -> None:
    """Register the environment version when missing; refuse a registered one that differs from the files."""
    label = f"{environment.name}:{environment.version}"
    with step(f"environment {label}"):
        try:
            registered = ml_client.environments.get(environment.name, version=environment.version)
        except ResourceNotFoundError:
            ml_client.environments.create_or_update(environment)
            return
    if registered.image != environment.image or registered.conda_file != environment.conda_file:
        raise StepFailed(f"environment {label} in the workspace differs from azureml/environment/: "
                         "registered versions cannot change, so bump the version in environment.yml and in "
                         "the components' `environment:`")


def ensure_data(ml_client: MLClient, settings: Settings) -> Data:
    """The MNIST data asset: the local folder's version (uploaded when missing), else the latest version."""
    if settings.data_dir is None:
        with step(f"data asset {settings.data_name} (latest version)"):
            try:
                return ml_client.data.get(settings.data_name, label="latest")
            except ResourceNotFoundError:
                raise StepFailed(f"the workspace has no data asset {settings.data_name}: set MNIST_DIR "
                                 "(or pass --data-dir) to a local MNIST IDX folder to upload it") from None
    version = local_data_version(settings.data_dir)
    with step(f"data asset {settings.data_name}:{version}"):
        try:
            return ml_client.data.get(settings.data_name, version=version)
        except ResourceNotFoundError:
            pass
        print(f"   uploading {settings.data_dir}", file=sys.stderr)
        return ml_client.data.create_or_update(Data(
            name=settings.data_name, version=version, type=AssetTypes.URI_FOLDER, path=str(settings.data_dir),
            description="MNIST: the four IDX files (train 60,000, test 10,000 images)"))


def ensure_corrections(ml_client: MLClient, settings: Settings, corrections: Corrections) -> Data:
    """The corrections data asset at the folder's version, uploaded when the workspace lacks it."""
    label = f"{settings.feedback_name}:{corrections.version}"
    with step(f"data asset {label} ({len(corrections.checksums)} records)"):
        try:
            return ml_client.data.get(settings.feedback_name, version=corrections.version)
        except ResourceNotFoundError:
            pass
        print(f"   uploading {len(corrections.checksums)} records of {corrections.folder}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="corrections-") as staging:
            stage_records(corrections, Path(staging))
            return ml_client.data.create_or_update(Data(
                name=settings.feedback_name, version=corrections.version, type=AssetTypes.URI_FOLDER, path=staging,
                description="The app's corrections: one 28x28 PNG per record, what is known about it as JSON in "
                            "its `feedback` text chunk (app/feedback.py)"))


def stage_records(corrections: Corrections, staging: Path) -> None:
    """Copy the checked records, and nothing else, into the folder that is uploaded: the app may be writing
    new records (and its temporary files) into its folder meanwhile, and the version names this content."""
    for name, digest in corrections.checksums.items():
        copy = Path(shutil.copy2(corrections.folder / name, staging / name))
        if hashlib.sha256(copy.read_bytes()).hexdigest() != digest:
            raise StepFailed(f"{corrections.folder / name} changed while it was being uploaded: run again")


def load_definitions(corrections: bool = False) -> tuple[AmlCompute, Environment, PipelineJob]:
    """The compute, environment and pipeline as azure-ai-ml entities, from the YAML files. With corrections, the
    pipeline gets the CORRECTIONS_INPUT its steps bind, as `az ml job create --set inputs.corrections...` adds it."""
    override = [{f"inputs.{CORRECTIONS_INPUT}": {"type": AssetTypes.URI_FOLDER}}] if corrections else []
    with step("loading azureml/*.yml"):
        return (load_compute(COMPUTE_YAML), load_environment(ENVIRONMENT_YAML),
                load_job(PIPELINE_YAML, params_override=override))


def asset_path(data: Data) -> str:
    """A pipeline input's path to exactly this data asset version."""
    return f"azureml:{data.name}:{data.version}"


def build_pipeline(pipeline: PipelineJob, settings: Settings, data_path: str,
                   corrections_path: str | None = None) -> PipelineJob:
    """The pipeline with this run's name, data versions, epochs, gates and commit; validated offline.

    The job is named here so that its model output can be put at azureml/<job name>/trained_model/ on the
    default datastore: where jobs.download() looks for an output the service does not list, and it lists no
    uri_folder output of a pipeline (azure-sdk-for-python#48941, see azureml/README.md)."""
    pipeline.name = f"mnist-{settings.git_commit[:7]}-{uuid.uuid4().hex[:8]}"
    pipeline.outputs.trained_model.path = (
        f"azureml://datastores/{MODEL_DATASTORE}/paths/azureml/{pipeline.name}/{MODEL_OUTPUT}/")
    pipeline.inputs.raw_mnist = Input(type=AssetTypes.URI_FOLDER, path=data_path, mode=InputOutputModes.RO_MOUNT)
    if corrections_path:
        setattr(pipeline.inputs, CORRECTIONS_INPUT, Input(type=AssetTypes.URI_FOLDER, path=corrections_path,
                                                          mode=InputOutputModes.RO_MOUNT))
    pipeline.inputs.epochs = settings.epochs
    pipeline.inputs.min_accuracy = settings.min_accuracy
    pipeline.inputs.min_style_accuracy = settings.min_style_accuracy
    pipeline.tags = {"git_commit": settings.git_commit}
    validation = pipeline._validate()  # the SDK's offline check; the tests check what it misses
    if not validation.passed:
        raise StepFailed(f"pipeline.yml is not valid: {validation.error_messages}")
    return pipeline


def run_pipeline(ml_client: MLClient, pipeline: PipelineJob) -> Job:
    """Submit, stream the logs, and require `Completed` (streaming raises on Failed, not on Canceled)."""
    with step("submitting the pipeline"):
        submitted = ml_client.jobs.create_or_update(pipeline)
    print(f"   pipeline job {submitted.name}: {submitted.studio_url}", file=sys.stderr)
    with step(f"pipeline job {submitted.name}"):
        ml_client.jobs.stream(submitted.name)
        finished = ml_client.jobs.get(submitted.name)
    if finished.status != "Completed":
        raise StepFailed(f"pipeline job {submitted.name} ended {finished.status}, not Completed: "
                         f"no model registered (see {submitted.studio_url})")
    return finished


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


def job_figures(ml_client: MLClient, job: Job) -> dict[str, float]:
    """The new model's FIGURES, from metadata.json in the job's output."""
    label = f"output {MODEL_OUTPUT} of job {job.name}"
    with tempfile.TemporaryDirectory(prefix="job-output-") as download_dir:
        with step(f"downloading {label}"):
            ml_client.jobs.download(name=job.name, output_name=MODEL_OUTPUT, download_path=download_dir)
        folder = find_model_folder(Path(download_dir), label)
        with step(f"reading {METADATA_FILE} of {label}"):
            metadata = json.loads((folder / METADATA_FILE).read_text())
            return {"accuracy": float(metadata["test_accuracy"]),
                    "style_accuracy": float(metadata["style_validation"]["accuracy"])}


def registered_model(ml_client: MLClient, settings: Settings) -> Model | None:
    """The latest registered version of the model, or None before the first one."""
    with step(f"finding the registered model {settings.model_name}"):
        try:
            return ml_client.models.get(settings.model_name, label="latest")
        except ResourceNotFoundError:
            return None


def refuse_if_worse(new: dict[str, float], registered: Model | None, job: Job) -> None:
    """Stop the run, before anything is registered, when the new model is worse than the registered version
    on MNIST or on the style set. With no registered version, the evaluate step's gates alone decided; a version
    registered before the style set (no style_accuracy tag) is compared on MNIST only."""
    if registered is None:
        print(f"   no registered version yet: the evaluate step's gates decided; the model of job {job.name} "
              "becomes the first", file=sys.stderr)
        return
    label = f"{registered.name}:{registered.version}"
    tags = registered.tags or {}
    if "accuracy" not in tags:
        raise StepFailed(f"{label}, the latest registered version, has no accuracy tag: it was registered but "
                         f"never checked; archive it (az ml model archive --name {registered.name} --version "
                         f"{registered.version}) so that the latest checked version is compared, and run again")
    if "style_accuracy" not in tags:
        print(f"   {label} has no style_accuracy tag (registered before the style set): compared on MNIST only",
              file=sys.stderr)
    with step(f"comparing with the registered model {label}"):
        worse = [f"{FIGURES[tag]} {new[tag]:.4f} < {tags[tag]}" for tag in FIGURES
                 if tag in tags and new[tag] < float(tags[tag]) - TAG_ROUNDING]
    if worse:
        raise StepFailed(f"the model of job {job.name} is worse than the registered {label} "
                         f"({'; '.join(worse)}): not registered")


def register_model(ml_client: MLClient, job: Job, data: Data, corrections: Data | None, settings: Settings) -> Model:
    """Register the job's model folder as a new version (accuracies are tagged once its files are checked),
    tagged with what it was trained on: no feedback_* tags, no corrections."""
    tags = {"data_asset": data.name, "data_version": str(data.version), "git_commit": settings.git_commit,
            "pipeline_job": job.name}
    if corrections is not None:
        tags.update(feedback_asset=corrections.name, feedback_version=str(corrections.version))
    model = Model(
        name=settings.model_name, type=AssetTypes.CUSTOM_MODEL,
        path=f"azureml://jobs/{job.name}/outputs/{MODEL_OUTPUT}",
        description="MNIST digit CNN: model.keras, model.tflite (served), metadata.json, plots", tags=tags)
    with step(f"registering model {settings.model_name} from job {job.name}"):
        return ml_client.models.create_or_update(model)


def latest_model(ml_client: MLClient, settings: Settings) -> Model:
    """The latest registered version of the model, for a run that reuses it instead of training."""
    with step(f"finding the latest version of model {settings.model_name}"):
        return ml_client.models.get(settings.model_name, label="latest")


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


def tag_accuracy(ml_client: MLClient, model: Model, metadata: dict) -> Model:
    """Add the checked MNIST test accuracy and style set accuracy to the new version's tags (tags are the
    mutable part of a version; the next run compares its model with them)."""
    with step(f"tagging model {model.name}:{model.version} with its accuracies"):
        model.tags = {**(model.tags or {}), "accuracy": f"{metadata['test_accuracy']:.4f}",
                      "style_accuracy": f"{metadata['style_validation']['accuracy']:.4f}"}
        return ml_client.models.create_or_update(model)


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


def dry_run(settings: Settings) -> str:
    """Everything that needs no workspace: check the local folders, load the definitions, build and validate
    the pipeline."""
    corrections = local_corrections(settings.feedback_dir) if settings.feedback_dir else None
    compute, environment, pipeline = load_definitions(corrections=corrections is not None)
    version = local_data_version(settings.data_dir) if settings.data_dir else None
    data_path = f"azureml:{settings.data_name}:{version}" if version else f"azureml:{settings.data_name}@latest"
    corrections_path = f"azureml:{settings.feedback_name}:{corrections.version}" if corrections else None
    pipeline = build_pipeline(pipeline, settings, data_path, corrections_path)
    feedback = (f"corrections {corrections_path} ({len(corrections.checksums)} records, {corrections.unreadable} "
                "unreadable left out)" if corrections else "no corrections")
    print(f"valid: compute {compute.name} ({compute.size}, {compute.min_instances}-{compute.max_instances} nodes), "
          f"environment {environment.name}:{environment.version} ({environment.image}), data {data_path}, "
          f"{feedback}", file=sys.stderr)
    return yaml.safe_dump(pipeline._to_dict(), sort_keys=False)


def train_and_register(ml_client: MLClient, settings: Settings) -> Model:
    """Make sure the workspace has what the pipeline needs, run it, register its model unless it is worse.
    The corrections folder is checked first: a bad one stops the run before anything is made in the workspace."""
    corrections = local_corrections(settings.feedback_dir) if settings.feedback_dir else None
    compute, environment, pipeline = load_definitions(corrections=corrections is not None)
    ensure_compute(ml_client, compute)
    ensure_environment(ml_client, environment)
    data = ensure_data(ml_client, settings)
    feedback = ensure_corrections(ml_client, settings, corrections) if corrections else None
    pipeline = build_pipeline(pipeline, settings, asset_path(data), asset_path(feedback) if feedback else None)
    job = run_pipeline(ml_client, pipeline)
    refuse_if_worse(job_figures(ml_client, job), registered_model(ml_client, settings), job)
    return register_model(ml_client, job, data, feedback, settings)


def main(argv: list[str] | None = None, env: dict[str, str] | None = None, connect_to=connect) -> int:
    settings = parse_args(argv, dict(os.environ) if env is None else env)
    try:
        if settings.dry_run:
            print(dry_run(settings), end="")
            return 0
        with step(f"connecting to workspace {settings.workspace}"):
            ml_client = connect_to(settings)
        model = latest_model(ml_client, settings) if settings.reuse_latest else train_and_register(ml_client, settings)
        with tempfile.TemporaryDirectory(prefix="model-download-") as download_dir:
            folder, metadata = download_and_check(ml_client, model, Path(download_dir), settings.min_accuracy)
            if not settings.reuse_latest:
                model = tag_accuracy(ml_client, model, metadata)
            install_model(folder, settings.model_dir)
    except StepFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    style_accuracy = metadata.get("style_validation", {}).get("accuracy")  # None: trained before the style set
    style = "not measured" if style_accuracy is None else f"{style_accuracy:.4f}"
    print(f"model {model.name}:{model.version} (test accuracy {metadata['test_accuracy']:.4f}, style set {style}) "
          f"is in {settings.model_dir}: build the image to ship it")
    if settings.github_output:
        with settings.github_output.open("a") as outputs:
            outputs.write(f"model={model.name}:{model.version}\naccuracy={metadata['test_accuracy']}\n"
                          f"style_accuracy={'' if style_accuracy is None else style_accuracy}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
