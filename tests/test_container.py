"""The image, built and run for real the way the rendered Deployment runs it: its user, a read-only
root filesystem, tmpfs where the pod has emptyDirs, its env; probed, used, then stopped with SIGTERM.

Needs a Docker engine with BuildKit (`DOCKER`, default `docker`). Without one these tests are skipped,
unless REQUIRE_DOCKER=1 (as .ci/run sets), which makes them fail instead.
"""

import json
import os
import subprocess
import time

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file

from tests.conftest import REPO
from tests.drawing import browser_png, draw_digit
from tests.support.manifests import container, pod_spec, render
from tests.support.server import free_port

DOCKER = os.environ.get("DOCKER", "docker")
IMAGE = "digit-recognizer:test"
IMAGE_LIMIT_MB = 600


def docker(*args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, check=check, timeout=timeout,
                          env={**os.environ, "DOCKER_BUILDKIT": "1"})


@pytest.fixture(scope="module")
def image():
    try:
        engine = docker("info", check=False, timeout=30).returncode == 0
    except FileNotFoundError:
        engine = False
    if not engine:
        message = f"no Docker engine answers `{DOCKER} info`: container tests skipped (.ci/run starts one)"
        if os.environ.get("REQUIRE_DOCKER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    build = ["build", "--network", "host", "-t", IMAGE, str(REPO)]
    ca_bundle = os.environ.get("PIP_CERT")  # a proxy's CA bundle, when pip needs one to reach the index
    if ca_bundle and os.path.isfile(ca_bundle):
        build[1:1] = ["--secret", f"id=ca.crt,src={ca_bundle}"]
    result = docker(*build, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return IMAGE


def run_options(deployment: dict, port: int) -> list[str]:
    """`docker run` options that do what the Deployment's pod spec says (PORT moved to a free port)."""
    pod, app = pod_spec(deployment), container(deployment)
    security = app["securityContext"]
    options = ["--user", f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}",
               "--network", "host"]  # this machine's engine runs without a bridge network
    if security["readOnlyRootFilesystem"]:
        options.append("--read-only")
    if security["capabilities"]["drop"] == ["ALL"]:
        options += ["--cap-drop", "ALL"]
    if security["allowPrivilegeEscalation"] is False:
        options += ["--security-opt", "no-new-privileges"]
    empty_dirs = {volume["name"]: volume["emptyDir"] for volume in pod["volumes"] if "emptyDir" in volume}
    for mount in app["volumeMounts"]:
        if mount["name"] in empty_dirs:
            size = empty_dirs[mount["name"]].get("sizeLimit", "64Mi").replace("Mi", "m")
            options += ["--tmpfs", f"{mount['mountPath']}:rw,size={size},mode=1777"]
    for variable in app["env"]:
        value = str(port) if variable["name"] == "PORT" else variable["value"]
        options += ["--env", f"{variable['name']}={value}"]
    return options


@pytest.fixture(scope="module")
def deployment():
    return render("local")[1]


@pytest.fixture(scope="module")
def running(image, deployment):
    """The container, started as the pod would be; (name, URL, seconds from start to the startup probe's 200)."""
    port = free_port()
    name = f"digit-recognizer-test-{port}"
    startup = container(deployment)["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    started = time.monotonic()
    docker("run", "--detach", "--name", name, *run_options(deployment, port), image)
    url = f"http://127.0.0.1:{port}"
    ready_after = None
    while time.monotonic() - started < budget:
        try:
            if httpx.get(url + startup["httpGet"]["path"], timeout=1).status_code == 200:
                ready_after = time.monotonic() - started
                break
        except httpx.TransportError:
            time.sleep(0.05)
    if ready_after is None:
        logs = docker("logs", name, check=False).stderr
        docker("rm", "--force", name, check=False)
        pytest.fail(f"the container did not pass its startup probe in {budget} s: {logs[-3000:]}")
    yield name, url, ready_after
    docker("rm", "--force", name, check=False)


def test_image_is_lean_and_holds_no_tensorflow(image, capsys):
    size_mb = int(docker("image", "inspect", "--format", "{{.Size}}", image).stdout) / 1e6
    with capsys.disabled():
        print(f"\n[container] image size: {size_mb:.0f} MB")
    assert size_mb <= IMAGE_LIMIT_MB
    probe = docker("run", "--rm", "--network", "none", image, "python", "-c", "import tensorflow", check=False)
    assert "No module named 'tensorflow'" in probe.stderr


def test_runs_as_the_deployment_says_and_answers(running, deployment, capsys):
    name, url, ready_after = running
    with capsys.disabled():
        print(f"\n[container] start to startup probe passing: {ready_after:.2f} s")
    app = container(deployment)
    assert httpx.get(url + app["readinessProbe"]["httpGet"]["path"]).json()["status"] == "ready"
    assert httpx.get(url + app["livenessProbe"]["httpGet"]["path"]).status_code == 200
    user = docker("exec", name, "id", "-u").stdout.strip()
    assert user == str(pod_spec(deployment)["securityContext"]["runAsUser"])
    refused = docker("exec", name, "touch", "/srv/app/written", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr


def test_the_images_healthcheck_passes(running, image):
    name, _, _ = running
    healthcheck = json.loads(docker("image", "inspect", "--format", "{{json .Config.Healthcheck}}", image).stdout)
    assert healthcheck["Test"][0] == "CMD"
    assert docker("exec", name, *healthcheck["Test"][1:], check=False).returncode == 0


def test_predicts_through_gradio_client(running, mnist_slice, tmp_path):
    _, url, _ = running
    canvas = tmp_path / "canvas.png"
    canvas.write_bytes(browser_png(draw_digit(mnist_slice.x_test[3], np.random.default_rng(3))))
    client = Client(url, verbose=False, analytics_enabled=False)
    result = client.predict({"background": None, "layers": [], "composite": handle_file(str(canvas))},
                            api_name="/predict")
    assert result["label"] == str(mnist_slice.y_test[3])


def test_sigterm_exits_cleanly_within_the_grace_period(running, deployment):
    name, _, _ = running
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    started = time.monotonic()
    docker("kill", "--signal", "TERM", name)
    exit_code = docker("wait", name, timeout=grace).stdout.strip()
    assert time.monotonic() - started < grace
    assert exit_code == "0"
    assert "Finished server process" in docker("logs", name).stderr
