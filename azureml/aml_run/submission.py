"""The pipeline job: built for this run from pipeline.yml, validated offline, submitted, and awaited."""

import sys
import uuid

from azure.ai.ml import Input, MLClient
from azure.ai.ml.constants import AssetTypes, InputOutputModes
from azure.ai.ml.entities import Environment, Job, PipelineJob

from aml_run.definitions import CORRECTIONS_INPUT, GATES_STEP, HANDWRITING_INPUT, MODEL_OUTPUT
from aml_run.settings import Settings
from aml_run.steps import StepFailed, step

MODEL_DATASTORE = "workspaceblobstore"  # the workspace's default datastore, where outputs go unless told otherwise


def pin_environment(pipeline: PipelineJob, environment: Environment) -> None:
    """Give every step the environment version environment.yml names, the one ensure_environment made sure of.
    The components name the environment without a version (`azureml:mnist-train@latest`), so that its
    version is written in environment.yml only; a step naming another environment stops the run."""
    latest, pinned = f"{environment.name}@latest", f"{environment.name}:{environment.version}"
    for name, node in pipeline.jobs.items():
        named = str(node.component.environment)
        if named.removeprefix("azureml:") != latest:
            raise StepFailed(f"step {name} names the environment {named}, not azureml:{latest}: "
                             "azureml/environment/environment.yml is the steps' one environment")
        node.component.environment = pinned  # as the loader keeps `azureml:...`


def build_pipeline(pipeline: PipelineJob, environment: Environment, settings: Settings, data_path: str,
                   handwriting_path: str, corrections_path: str | None = None) -> PipelineJob:
    """The pipeline with this run's name, data versions (MNIST's, the handwriting's: the real writers' digits
    and the negatives' letters and symbols, the corrections'), gates, environment version and commit (its epochs
    came with loading it); validated offline.

    The job is named here so that its model output can be put at azureml/<job name>/trained_model/ on the
    default datastore: where jobs.download() looks for an output the service does not list, and it lists no
    uri_folder output of a pipeline (azure-sdk-for-python#48941, see azureml/README.md)."""
    pipeline.name = f"mnist-{settings.git_commit[:7]}-{uuid.uuid4().hex[:8]}"
    pipeline.outputs[MODEL_OUTPUT].path = (
        f"azureml://datastores/{MODEL_DATASTORE}/paths/azureml/{pipeline.name}/{MODEL_OUTPUT}/")
    pipeline.inputs.raw_mnist = Input(type=AssetTypes.URI_FOLDER, path=data_path, mode=InputOutputModes.RO_MOUNT)
    setattr(pipeline.inputs, HANDWRITING_INPUT, Input(type=AssetTypes.URI_FOLDER, path=handwriting_path,
                                                      mode=InputOutputModes.RO_MOUNT))
    if corrections_path:
        setattr(pipeline.inputs, CORRECTIONS_INPUT, Input(type=AssetTypes.URI_FOLDER, path=corrections_path,
                                                          mode=InputOutputModes.RO_MOUNT))
    for name, bound in settings.gates.items():  # the evaluate component's inputs, training/gates.py's names
        setattr(pipeline.jobs[GATES_STEP].inputs, name, bound)
    pin_environment(pipeline, environment)
    pipeline.tags = {"git_commit": settings.git_commit}
    validation = pipeline._validate()  # the SDK's offline check; the tests check what it misses
    if not validation.passed:
        raise StepFailed(f"pipeline.yml is not valid: {validation.error_messages}")
    return pipeline


def submit(ml_client: MLClient, pipeline: PipelineJob) -> Job:
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
