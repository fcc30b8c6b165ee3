"""The azureml/*.yml files: where they are, the names the code shares with them, and loading them.

pipeline.yml declares only the inputs every run has. A run adds RUN_INPUTS, which pipeline.yml binds to
optional component inputs without declaring them: a pipeline job's input cannot be optional, and the SDK
refuses one without a value ("Input path can't be empty for jobs"). Left out, a step runs without the
argument (`$[[...]]` in its command), as `az ml job create --file azureml/pipeline.yml` runs it.
"""

import logging

from azure.ai.ml import load_compute, load_environment, load_job
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import AmlCompute, Environment, PipelineJob

from aml_run import AZUREML
from aml_run.steps import step

COMPUTE_YAML = AZUREML / "compute" / "cpu-cluster.yml"
ENVIRONMENT_YAML = AZUREML / "environment" / "environment.yml"
PIPELINE_YAML = AZUREML / "pipeline.yml"
MODEL_OUTPUT = "trained_model"  # the pipeline output that holds the model folder
HANDWRITING_INPUT = "handwriting"  # the pipeline input of the handwriting data asset
GATES_STEP = "evaluate"  # the step whose inputs are the gates
# The run's corrections (FEEDBACK_DIR), bound to train's and evaluate's optional `feedback`.
CORRECTIONS_INPUT = "corrections"
# --epochs, bound to train's optional `epochs`; left out, training's own default (training/train.py digits).
EPOCHS_INPUT = "epochs"
# --detector-epochs, bound to the detector's `epochs`; left out, its own default (training/train.py detector).
DETECTOR_EPOCHS_INPUT = "detector_epochs"
RUN_INPUTS = {CORRECTIONS_INPUT, EPOCHS_INPUT, DETECTOR_EPOCHS_INPUT}
Definitions = tuple[AmlCompute, Environment, PipelineJob]

# Notices that some of the SDK's own schema classes are experimental: about the SDK, not these files.
logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)


def load_definitions(epochs: int | None = None, detector_epochs: int | None = None,
                     corrections: bool = False) -> Definitions:
    """The compute, environment and pipeline as azure-ai-ml entities, from the YAML files. The pipeline gets
    the RUN_INPUTS this run has, as `az ml job create --set inputs.<name>...` adds them: the two steps' epochs,
    and the corrections' folder type (its data asset version is set when the pipeline is built)."""
    override = []
    for name, value in ((EPOCHS_INPUT, epochs), (DETECTOR_EPOCHS_INPUT, detector_epochs)):
        if value is not None:
            override.append({f"inputs.{name}": value})
    if corrections:
        override.append({f"inputs.{CORRECTIONS_INPUT}": {"type": AssetTypes.URI_FOLDER}})
    with step("loading azureml/*.yml"):
        return (load_compute(COMPUTE_YAML), load_environment(ENVIRONMENT_YAML),
                load_job(PIPELINE_YAML, params_override=override))
