"""The Kustomize manifests: the overlays as Kubernetes gets them (`kubectl kustomize`, parsed), the base as
written, and the app's container in either."""

import shutil
import subprocess

import pytest
import yaml

from tests.support.paths import REPO

BASE = REPO / "kustomize" / "base"
OVERLAYS = REPO / "kustomize" / "overlays"

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None,
                                   reason="no kubectl: install kubectl (it bundles kustomize) to render the overlays")


def render(overlay: str) -> tuple[str, dict[str, dict]]:
    """`kubectl kustomize` of an overlay: its warnings, and its objects by kind."""
    result = subprocess.run(["kubectl", "kustomize", str(OVERLAYS / overlay)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stderr, {obj["kind"]: obj for obj in yaml.safe_load_all(result.stdout)}


def base() -> dict[str, dict]:
    """The base's objects as written, by kind: without kubectl, and without what the overlays change."""
    paths = sorted(path for path in BASE.glob("*.yaml") if path.name != "kustomization.yaml")
    return {obj["kind"]: obj for path in paths for obj in yaml.safe_load_all(path.read_text())}


def pod_spec(objects: dict) -> dict:
    return objects["Deployment"]["spec"]["template"]["spec"]


def container(objects: dict) -> dict:
    (app,) = pod_spec(objects)["containers"]
    return app


def environment(objects: dict) -> dict[str, str]:
    """The app container's env, by name."""
    return {variable["name"]: variable["value"] for variable in container(objects)["env"]}


def pod_settings(overlay: str = "local") -> dict[str, str]:
    """The settings an overlay's pods run with, less FEEDBACK_DIR (a path in the pod: a test gives its own)."""
    return {name: value for name, value in environment(render(overlay)[1]).items() if name != "FEEDBACK_DIR"}
