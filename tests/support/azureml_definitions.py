"""The Azure ML YAML as the tests read it: the files, the placeholders and references in them, and the code
snapshot the components upload (chosen by the SDK's own ignore-file logic)."""

import re
import warnings
from pathlib import Path

import yaml
from marshmallow.warnings import Marshmallow4Warning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", Marshmallow4Warning)  # about the SDK's own schema classes, at import
    from azure.ai.ml._utils._asset_utils import get_ignore_file, get_upload_files_from_folder

REPO = Path(__file__).resolve().parents[2]
AZUREML = REPO / "azureml"
PIPELINE_YAML = AZUREML / "pipeline.yml"
COMPUTE_YAML = AZUREML / "compute" / "cpu-cluster.yml"
ENVIRONMENT_YAML = AZUREML / "environment" / "environment.yml"
CONDA_YAML = AZUREML / "environment" / "conda.yml"
COMPONENT_NAMES = ("prep", "styles", "train", "detector", "evaluate")
COMPONENT_YAMLS = {name: AZUREML / name / f"{name}.yml" for name in COMPONENT_NAMES}
PARENT_REFERENCE = re.compile(r"^\$\{\{parent\.(?:inputs\.(?P<input>\w+)|outputs\.(?P<output>\w+)|"
                              r"jobs\.(?P<job>\w+)\.outputs\.(?P<job_output>\w+))\}\}$")
COMMAND_PLACEHOLDER = re.compile(r"\$\{\{(inputs|outputs)\.(\w+)\}\}")


def read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def node_component_path(node: dict) -> Path:
    """The component file a pipeline node names (`file:` relative to pipeline.yml)."""
    assert node["component"].startswith("file:"), node["component"]
    return (PIPELINE_YAML.parent / node["component"].removeprefix("file:")).resolve()


def snapshot_files() -> set[str]:
    """The files Azure ML uploads as the components' code, chosen by the SDK's own ignore-file logic."""
    files = get_upload_files_from_folder(REPO, ignore_file=get_ignore_file(REPO))
    return {relative for _, relative in files}
