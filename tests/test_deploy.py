"""The Dockerfile and the Kustomize manifests: they render, validate strictly, and name the app's real
routes, port, settings and user. (tests/test_container.py runs the image as the manifests say.)"""

import dataclasses
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from fastapi.testclient import TestClient

from app.__main__ import GRACEFUL_SHUTDOWN_SECONDS
from app.config import Settings, load_settings
from app.server import create_app
from app.ui import CLIENT_STATE_SECONDS
from tests.support.manifests import OVERLAYS, container, environment, needs_kubectl, pod_spec, render
from tests.support.paths import REPO

KUBERNETES_VERSION = "1.32.0"
NAME = {"app.kubernetes.io/name": "digit-recognizer"}
CACHE_VARIABLES = {"HOME", "GRADIO_TEMP_DIR", "MPLCONFIGDIR"}  # where Python, Gradio and Matplotlib write
WRITABLE = "/tmp"

def dockerfile_instructions(name: str) -> list[str]:
    """The arguments of every NAME instruction of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(name + " ")]


@pytest.fixture(scope="module", params=sorted(path.name for path in OVERLAYS.iterdir()))
def overlay(request):
    return request.param


def test_both_overlays_exist():
    assert {path.name for path in OVERLAYS.iterdir()} == {"local", "aks"}


@needs_kubectl
def test_renders_without_warnings(overlay):
    warnings, objects = render(overlay)
    assert warnings == ""
    assert set(objects) >= {"Deployment", "Service", "PodDisruptionBudget", "PersistentVolumeClaim"}


@needs_kubectl
def test_every_object_validates_strictly(overlay):
    for obj in render(overlay)[1].values():
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)  # raises on any unknown or bad field


@needs_kubectl
def test_selectors_hold_only_the_name(overlay):
    """Selectors cannot change once applied: labels added later must not reach them."""
    objects = render(overlay)[1]
    assert objects["Deployment"]["spec"]["selector"] == {"matchLabels": NAME}
    assert objects["Service"]["spec"]["selector"] == NAME
    assert objects["PodDisruptionBudget"]["spec"]["selector"] == {"matchLabels": NAME}
    labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert labels.items() >= NAME.items() and "app.kubernetes.io/part-of" in labels


@needs_kubectl
def test_local_overlay_runs_two_replicas_of_the_local_image_on_localhost_80():
    objects = render("local")[1]
    assert objects["Deployment"]["spec"]["replicas"] == 2
    assert container(objects)["image"] == "digit-recognizer:local"
    assert container(objects)["imagePullPolicy"] == "IfNotPresent"
    service = objects["Service"]["spec"]
    assert service["type"] == "LoadBalancer"
    assert [(port["port"], port["targetPort"]) for port in service["ports"]] == [(80, "http")]
    assert [port["name"] for port in container(objects)["ports"]] == ["http"]


@needs_kubectl
def test_the_service_keeps_each_client_on_one_pod_as_long_as_gradio_keeps_its_state(overlay):
    """Gradio's uploads, queue and sessions live in one process (tests/test_replicas.py runs two)."""
    service = render(overlay)[1]["Service"]["spec"]
    assert service["sessionAffinity"] == "ClientIP"
    assert service["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] >= CLIENT_STATE_SECONDS


@needs_kubectl
def test_on_aks_every_node_stays_behind_the_load_balancer():
    """ClientIP makes AKS give the load balancer source-IP distribution: one client, one node. Local would
    take nodes out of its pool as pods move, and move clients with them."""
    assert render("aks")[1]["Service"]["spec"]["externalTrafficPolicy"] == "Cluster"


@needs_kubectl
def test_aks_overlay_autoscales_the_registry_image_spread_over_nodes():
    objects = render("aks")[1]
    assert "replicas" not in objects["Deployment"]["spec"]  # the autoscaler owns the count
    autoscaler = objects["HorizontalPodAutoscaler"]["spec"]
    assert autoscaler["scaleTargetRef"]["name"] == objects["Deployment"]["metadata"]["name"]
    assert autoscaler["minReplicas"] >= 2
    assert ".azurecr.io/" in container(objects)["image"]
    keys = {c["topologyKey"] for c in pod_spec(objects)["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


@needs_kubectl
def test_probe_paths_are_real_routes_of_the_app():
    app = container(render("local")[1])
    paths = {app[probe]["httpGet"]["path"] for probe in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert {app[probe]["httpGet"]["port"] for probe in ("startupProbe", "readinessProbe", "livenessProbe")} == {"http"}
    with TestClient(create_app(Settings())) as client:
        for path in paths:
            assert client.get(path).status_code == 200, path
    # liveness never waits on the model
    assert app["livenessProbe"]["httpGet"]["path"] != app["readinessProbe"]["httpGet"]["path"]


@needs_kubectl
def test_pods_are_annotated_for_scraping_the_apps_metrics():
    deployment = render("local")[1]["Deployment"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == container(render("local")[1])["ports"][0]["containerPort"]
    with TestClient(create_app(Settings())) as client:
        response = client.get(annotations["prometheus.io/path"])
    assert response.status_code == 200 and "digits_model_info" in response.text


def image_environment() -> dict[str, str]:
    """The Dockerfile's ENV, by name (values unquoted)."""
    pairs = (pair.split("=", 1) for pair in " ".join(dockerfile_instructions("ENV")).split())
    return {name: value.strip('"') for name, value in pairs}


@needs_kubectl
def test_port_and_settings_are_the_apps_and_written_once():
    """The pod sets only app settings, and none to the value the image gives it (it may change one: the
    image keeps no corrections, the pod keeps them on its claim); its port is the image's."""
    app = container(render("local")[1])
    env, image = environment(render("local")[1]), image_environment()
    settings = {field.name.upper() for field in dataclasses.fields(Settings)}
    assert set(env) <= settings, env
    assert [name for name, value in env.items() if image.get(name) == value] == [], "restated from the Dockerfile"
    defaults = {name: str(getattr(Settings(), name.lower())) for name in env}
    assert [name for name, value in env.items() if defaults[name] == value] == [], "restates the app's default"
    assert int(image["PORT"]) == app["ports"][0]["containerPort"]
    assert dockerfile_instructions("EXPOSE") == [image["PORT"]]


@needs_kubectl
def test_security_context_is_restricted_with_a_read_only_root(overlay):
    objects = render(overlay)[1]
    pod, app = pod_spec(objects), container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == \
        dockerfile_instructions("USER")[-1]  # the image's numeric user
    assert app["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                      "capabilities": {"drop": ["ALL"]}}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and pod["automountServiceAccountToken"] is False
    empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    assert [mount["mountPath"] for mount in app["volumeMounts"] if mount["name"] in empty_dirs] == [WRITABLE]
    image = image_environment()
    assert all(Path(image[name]).is_relative_to(WRITABLE) for name in CACHE_VARIABLES)


@needs_kubectl
def test_every_pod_mounts_the_feedback_claim_read_write_at_feedback_dir(overlay):
    """The one writable place besides /tmp: the corrections' volume, where the app's FEEDBACK_DIR says."""
    objects = render(overlay)[1]
    pod, app = pod_spec(objects), container(objects)
    claims = {volume["name"]: volume["persistentVolumeClaim"] for volume in pod["volumes"]
              if "persistentVolumeClaim" in volume}
    ((volume, claim),) = claims.items()
    assert claim["claimName"] == objects["PersistentVolumeClaim"]["metadata"]["name"]
    assert not claim.get("readOnly")
    (mount,) = [mount for mount in app["volumeMounts"] if mount["name"] == volume]
    assert not mount.get("readOnly") and not mount.get("subPath")
    feedback_dir = load_settings(environment(objects)).feedback_dir  # None: feedback off
    assert feedback_dir is not None and Path(mount["mountPath"]) == feedback_dir
    assert app["securityContext"]["readOnlyRootFilesystem"] is True


@needs_kubectl
def test_the_claim_is_the_deployments_not_one_per_pod(overlay):
    """Every replica writes to the same folder: one claim, named in the pod template, that no pod owns."""
    objects = render(overlay)[1]
    assert "StatefulSet" not in objects  # its volumeClaimTemplates would give each replica its own folder
    assert not any("ephemeral" in volume for volume in pod_spec(objects)["volumes"])  # a claim per pod, too
    modes = objects["PersistentVolumeClaim"]["spec"]["accessModes"]
    assert "ReadWriteOncePod" not in modes and "ReadOnlyMany" not in modes


@needs_kubectl
def test_on_docker_desktop_the_claim_is_on_the_default_class_shared_on_its_one_node():
    """hostpath, Docker Desktop's default class: a folder on its single node, where both replicas run.
    ReadWriteOnce is per node, so both mount it read-write."""
    objects = render("local")[1]
    claim = objects["PersistentVolumeClaim"]["spec"]
    assert "storageClassName" not in claim  # "" would mean no class at all: a volume made by hand
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert objects["Deployment"]["spec"]["replicas"] > 1
    assert "topologySpreadConstraints" not in pod_spec(objects)  # nothing asks for a second node
    assert claim["resources"]["requests"]["storage"] == "1Gi"


@needs_kubectl
def test_on_aks_the_claim_is_an_azure_files_share_that_every_node_mounts():
    """The replicas spread over nodes and zones: a disk attaches to one node, a file share to all."""
    objects = render("aks")[1]
    claim = objects["PersistentVolumeClaim"]["spec"]
    assert claim["storageClassName"] == "azurefile-csi"
    assert claim["accessModes"] == ["ReadWriteMany"]
    assert "kubernetes.io/hostname" in {c["topologyKey"] for c in pod_spec(objects)["topologySpreadConstraints"]}
    assert claim["resources"]["requests"]["storage"] == "1Gi"


def test_the_image_alone_keeps_no_corrections():
    """FEEDBACK_DIR set but empty in the image: feedback is off unless a volume is given (the Deployment's)."""
    image_env = dict(item.split("=", 1) for item in shlex.split(" ".join(dockerfile_instructions("ENV"))))
    assert image_env["FEEDBACK_DIR"] == ""
    assert load_settings(image_env).feedback_dir is None


@needs_kubectl
def test_requests_limits_and_shutdown(overlay):
    objects = render(overlay)[1]
    pod, app = pod_spec(objects), container(objects)
    resources = app["resources"]
    assert set(resources["requests"]) >= {"cpu", "memory"} and set(resources["limits"]) >= {"cpu", "memory"}
    # above what the app takes under load (docs/benchmarks.md)
    assert resources["requests"]["memory"] == "256Mi" and resources["limits"]["memory"] == "512Mi"
    drain = app["lifecycle"]["preStop"]["sleep"]["seconds"] + GRACEFUL_SHUTDOWN_SECONDS
    assert pod["terminationGracePeriodSeconds"] > drain


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "", result.stdout


def test_image_installs_the_serving_requirements_only():
    """No TensorFlow, Keras or test tools in what the Dockerfile installs; the build context is a whitelist."""
    lines = (REPO / "requirements.txt").read_text().splitlines()
    names = {re.split(r"[=<>;\[ ]", line)[0].lower() for line in lines if line and not line.startswith("#")}
    assert names.isdisjoint({"tensorflow", "tensorflow-cpu", "keras", "pytest", "matplotlib"})
    assert "requirements-dev" not in (REPO / "Dockerfile").read_text()
    ignored = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert ignored[0] == "*" and {"!app/", "!requirements.txt"} <= set(ignored)


def mebibytes(quantity: str) -> float:
    """A Kubernetes quantity of bytes ("256Mi", "1Gi", "500M") in MiB."""
    units = {"Ki": 2**-10, "Mi": 1, "Gi": 2**10, "k": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Za-z]*)", quantity).groups()
    return float(number) * units.get(unit, 2**-20)


@needs_kubectl
def test_the_upload_budget_fits_the_pods_tmp_with_room_to_spare(overlay):
    """Gradio's uploads (GRADIO_TEMP_DIR, in the /tmp emptyDir) are kept within UPLOAD_BUDGET_MB, uploads in
    flight included: at most half the emptyDir, whose limit is within the pod's ephemeral storage. Past it the
    kubelet would evict the pod."""
    objects = render(overlay)[1]
    settings = load_settings({**image_environment(), **environment(objects)})
    (tmp,) = [volume["emptyDir"] for volume in pod_spec(objects)["volumes"] if volume["name"] == "tmp"]
    assert Path(image_environment()["GRADIO_TEMP_DIR"]).is_relative_to(WRITABLE)
    assert settings.upload_budget_mb <= mebibytes(tmp["sizeLimit"]) / 2
    assert settings.max_upload_mb < settings.upload_budget_mb / 16  # a drawing, not a share of the budget
    assert mebibytes(tmp["sizeLimit"]) <= mebibytes(container(objects)["resources"]["limits"]["ephemeral-storage"])
