"""The compute cluster and the training environment: made in the workspace when it lacks them."""

import sys

from azure.ai.ml import MLClient
from azure.ai.ml.entities import AmlCompute, Environment
from azure.core.exceptions import ResourceNotFoundError

from aml_run.steps import StepFailed, step


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
                         "registered versions cannot change, so bump the version in environment.yml")
