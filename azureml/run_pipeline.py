"""Train the digit model on Azure ML and put the registered model where the Docker build takes it.

    python azureml/run_pipeline.py                  # train, gate, compare, register, fetch
    python azureml/run_pipeline.py --reuse-latest   # fetch the latest registered model, no training (nor corrections)
    python azureml/run_pipeline.py --dry-run        # offline: load and validate the YAML, print the pipeline
    FEEDBACK_DIR=feedback python azureml/run_pipeline.py   # with the corrections accepted in review (train, gate)
    HANDWRITING_DIR=handwriting python azureml/run_pipeline.py   # upload the handwriting if new

Training: makes sure the compute cluster, the environment, the MNIST data asset and the handwriting data asset
exist (uploading the local IDX folder, $MNIST_DIR, and the five files of the handwriting folder, $HANDWRITING_DIR,
python -m training.fetch_handwriting, as new data asset versions when the workspace lacks them; without them,
their latest versions), and with $FEEDBACK_DIR the corrections data asset too (the records accepted in review,
python -m training.review, and with --feedback-unreviewed those waiting too); submits azureml/pipeline.yml (train:
the digits network; detector: "not a digit", joined to it; evaluate: the gates, training/gates.py's table, set by
the options below; with corrections, train and detector mix them in, and evaluate also refuses a model worse
than the model in service on the kept-out ones), streams it, and requires the final status `Completed`; reads
the new model's metadata.json from the job's output and refuses it when it is worse than the latest registered
version on MNIST, on the style set or on the writers kept out, or refuses fewer of the negatives kept out (the
first model is registered on the evaluate step's gates alone); registers the trained model folder as a
`custom_model` tagged with its data asset versions and git commit, its description crediting the handwriting.
Then, in both modes, it downloads the model by name and version (see azureml/README.md), checks the files
against metadata.json with the app's own loader and the accuracy against --min-accuracy, tags the newly
registered version with its figures, and copies the files into app/model/ (--model-dir).

The workspace comes from AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and AZUREML_WORKSPACE (or the
arguments), the credential from azure-identity's DefaultAzureCredential (az login, a managed identity), or
in a GitHub workflow from a fresh OIDC token per Azure token. Any failure stops the run with a message naming
the step and exit status 1; a bad argument, 2.

How it imports: this file is a script, run by its path, and holds only the order of the steps; each job is
a module of the package beside it, azureml/aml_run/ (its __init__.py lists them). Running a script puts its
own folder first on sys.path, so `aml_run` imports by its plain name, and importing `aml_run` puts the
repository root on sys.path for `app` and `training` (in aml_run/__init__.py, the one place that does).
Nothing is importable as `azureml.*`: that name is Microsoft's (azureml-core, azureml-mlflow install a
regular `azureml` package), so azureml/ has no __init__.py and the package has a name of its own, and
neither shadows the other. The tests import this script and the package the same way, azureml/ on sys.path.
"""

import os
import sys
import tempfile
from pathlib import Path

import yaml
from aml_run.connection import connect
from aml_run.data_assets import (
    asset_path,
    ensure_corrections,
    ensure_data,
    ensure_handwriting,
    local_corrections,
    local_data_version,
    local_handwriting,
)
from aml_run.definitions import load_definitions
from aml_run.install import download_and_check, install_model
from aml_run.registry import job_figures, latest_model, refuse_if_worse, register_model, registered_model, tag_figures
from aml_run.report import report
from aml_run.settings import Settings, parse_args
from aml_run.steps import StepFailed, step
from aml_run.submission import build_pipeline, submit
from aml_run.workspace import ensure_compute, ensure_environment
from azure.ai.ml import MLClient
from azure.ai.ml.entities import Model


def dry_run(settings: Settings) -> str:
    """Everything that needs no workspace: check the local folders, load the definitions, build and validate
    the pipeline; its YAML."""
    corrections = (local_corrections(settings.feedback_dir, settings.feedback_unreviewed)
                   if settings.feedback_dir else None)
    compute, environment, pipeline = load_definitions(settings.epochs, settings.detector_epochs,
                                                      corrections=corrections is not None)
    version = local_data_version(settings.data_dir) if settings.data_dir else None
    data_path = f"azureml:{settings.data_name}:{version}" if version else f"azureml:{settings.data_name}@latest"
    handwriting = local_handwriting(settings.handwriting_dir) if settings.handwriting_dir else None
    handwriting_path = (f"azureml:{settings.handwriting_name}:{handwriting.version}" if handwriting
                    else f"azureml:{settings.handwriting_name}@latest")
    corrections_path = f"azureml:{settings.feedback_name}:{corrections.version}" if corrections else None
    pipeline = build_pipeline(pipeline, environment, settings, data_path, handwriting_path, corrections_path)
    described = f"handwriting {handwriting_path}" + (f" ({handwriting.describe()})" if handwriting else "")
    feedback = f"corrections {corrections_path} ({corrections.describe()})" if corrections else "no corrections"
    print(f"valid: compute {compute.name} ({compute.size}, {compute.min_instances}-{compute.max_instances} nodes), "
          f"environment {environment.name}:{environment.version} ({environment.image}), data {data_path}, "
          f"{described}, {feedback}", file=sys.stderr)
    return yaml.safe_dump(pipeline._to_dict(), sort_keys=False)


def train_and_register(ml_client: MLClient, settings: Settings) -> Model:
    """Make sure the workspace has what the pipeline needs, run it, register its model unless it is worse.
    The corrections folder is checked first: a bad one stops the run before anything is made in the workspace."""
    corrections = (local_corrections(settings.feedback_dir, settings.feedback_unreviewed)
                   if settings.feedback_dir else None)
    compute, environment, pipeline = load_definitions(settings.epochs, settings.detector_epochs,
                                                      corrections=corrections is not None)
    ensure_compute(ml_client, compute)
    ensure_environment(ml_client, environment)
    data = ensure_data(ml_client, settings)
    handwriting = ensure_handwriting(ml_client, settings)
    feedback = ensure_corrections(ml_client, settings, corrections) if corrections else None
    pipeline = build_pipeline(pipeline, environment, settings, asset_path(data), asset_path(handwriting),
                              asset_path(feedback) if feedback else None)
    job = submit(ml_client, pipeline)
    refuse_if_worse(job_figures(ml_client, job), registered_model(ml_client, settings), job)
    return register_model(ml_client, job, data, handwriting, feedback, settings)


def main(argv: list[str] | None = None, env: dict[str, str] | None = None, connect_to=connect) -> int:
    settings = parse_args(argv, dict(os.environ) if env is None else env, description=__doc__)
    try:
        if settings.dry_run:
            print(dry_run(settings), end="")
            return 0
        if settings.reuse_latest and settings.feedback_dir:
            print(f"--reuse-latest trains nothing: the corrections in {settings.feedback_dir} are not used (they "
                  "go into the next training)", file=sys.stderr)
        with step(f"connecting to workspace {settings.workspace}"):
            ml_client = connect_to(settings)
        model = latest_model(ml_client, settings) if settings.reuse_latest else train_and_register(ml_client, settings)
        with tempfile.TemporaryDirectory(prefix="model-download-") as download_dir:
            folder, metadata = download_and_check(ml_client, model, Path(download_dir), settings.gates["min_accuracy"])
            if not settings.reuse_latest:
                model = tag_figures(ml_client, model, metadata)
            install_model(folder, settings.model_dir)
    except StepFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    report(model, metadata, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
