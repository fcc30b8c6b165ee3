"""The image, built and run for real the way the rendered Deployment runs it: its user, a read-only
root filesystem, tmpfs where the pod has emptyDirs, a host folder for its claim, its env; probed, used,
then stopped with SIGTERM. And the image alone, with none of the Deployment's env or volumes.

Needs a Docker engine with BuildKit (`DOCKER`, default `docker`). Without one these tests are skipped,
unless REQUIRE_DOCKER=1 (as .ci/run sets), which makes them fail instead.
"""

import json
import os
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client

from app.corrections import read_correction
from tests.support.drawing import browser_png, draw_digit
from tests.support.gradio_api import sketch
from tests.support.manifests import container, pod_spec, render
from tests.support.paths import REPO
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


def run_options(deployment: dict, port: int, claims: dict[str, Path] | None) -> list[str]:
    """`docker run` options that do what the Deployment's pod spec says (PORT moved to a free port), with
    the host folder `claims[name]` for each claim. `claims` None: the image alone, run as the pod is (its
    user, read-only root, tmpfs) but with none of its env but PORT, and no claims."""
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
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in app["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit", "64Mi").replace("Mi", "m")
            options += ["--tmpfs", f"{mount['mountPath']}:rw,size={size},mode=1777"]
        elif "persistentVolumeClaim" in volume and claims is not None:
            folder = claims[volume["persistentVolumeClaim"]["claimName"]]
            read_only = ",readonly" if mount.get("readOnly") else ""
            options += ["--mount", f"type=bind,source={folder},target={mount['mountPath']}{read_only}"]
    options += ["--env", f"PORT={port}"]
    for variable in app["env"] if claims is not None else []:
        options += ["--env", f"{variable['name']}={variable['value']}"]
    return options


@contextmanager
def started(image: str, deployment: dict, claims: dict[str, Path] | None):
    """The container, started with run_options; (name, URL, seconds from start to the startup probe's 200)."""
    port = free_port()
    name = f"digit-recognizer-test-{port}"
    startup = container(deployment)["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    started_at = time.monotonic()
    docker("run", "--detach", "--name", name, *run_options(deployment, port, claims), image)
    url = f"http://127.0.0.1:{port}"
    ready_after = None
    while time.monotonic() - started_at < budget:
        try:
            if httpx.get(url + startup["httpGet"]["path"], timeout=1).status_code == 200:
                ready_after = time.monotonic() - started_at
                break
        except httpx.TransportError:
            time.sleep(0.05)
    if ready_after is None:
        logs = docker("logs", name, check=False).stderr
        docker("rm", "--force", name, check=False)
        pytest.fail(f"the container did not pass its startup probe in {budget} s: {logs[-3000:]}")
    try:
        yield name, url, ready_after
    finally:
        docker("rm", "--force", name, check=False)


@pytest.fixture(scope="module")
def deployment():
    return render("local")[1]


@pytest.fixture(scope="module")
def corrections_folder(tmp_path_factory):
    """The host folder standing in for the corrections' claim. Open to every user, as the volumes are:
    Azure Files' driver mounts shares 0777, Docker Desktop's hostpath folders are made 0777."""
    folder = tmp_path_factory.mktemp("feedback")
    folder.chmod(0o777)
    return folder


@pytest.fixture(scope="module")
def running(image, deployment, corrections_folder):
    """The container, started as the pod would be; (name, URL, seconds from start to the startup probe's 200)."""
    claim = deployment["PersistentVolumeClaim"]["metadata"]["name"]
    with started(image, deployment, {claim: corrections_folder}) as pod:
        yield pod


def digit_png(mnist_slice, index: int) -> tuple[bytes, int]:
    """MNIST's test digit `index` drawn as the browser sends it, and the digit it is."""
    picture = draw_digit(mnist_slice.x_test[index], np.random.default_rng(index))
    return browser_png(picture), int(mnist_slice.y_test[index])


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
    write = docker("exec", name, "touch", "/srv/app/written", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr


def test_the_images_healthcheck_passes(running, image):
    name, _, _ = running
    healthcheck = json.loads(docker("image", "inspect", "--format", "{{json .Config.Healthcheck}}", image).stdout)
    assert healthcheck["Test"][0] == "CMD"
    assert docker("exec", name, *healthcheck["Test"][1:], check=False).returncode == 0


def test_predicts_through_gradio_client(running, mnist_slice, tmp_path):
    _, url, _ = running
    canvas = tmp_path / "canvas.png"
    canvas.write_bytes(digit_png(mnist_slice, 3)[0])
    client = Client(url, verbose=False, analytics_enabled=False)
    result = client.predict(sketch(canvas), api_name="/predict")
    assert result["label"] == str(mnist_slice.y_test[3])


def test_keeps_a_correction_in_the_claims_folder(running, corrections_folder, deployment, mnist_slice):
    """POST /feedback writes one correction, as the pod's user, into the folder the claim stands for."""
    _, url, _ = running
    picture, digit = digit_png(mnist_slice, 5)
    meant = (digit + 1) % 10  # a correction, whatever the model answers
    response = httpx.post(f"{url}/feedback", params={"digit": meant},
                          files={"file": ("digit.png", picture, "image/png")}, timeout=30)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert [path.name for path in corrections_folder.iterdir()] == [answer["record"]]  # no temporary file left
    correction = read_correction(corrections_folder / answer["record"])
    assert (correction.meant, str(correction.answered), correction.verdict) == (meant, answer["answered"],
                                                                                 answer["verdict"])
    assert answer["meant"] == str(meant)
    assert correction.picture.shape == (28, 28) and correction.picture.max() > 0
    owner = (corrections_folder / answer["record"]).stat().st_uid
    assert owner == pod_spec(deployment)["securityContext"]["runAsUser"]


def test_the_image_alone_keeps_no_corrections_and_still_predicts(image, deployment, mnist_slice):
    """Without the Deployment's FEEDBACK_DIR and claim: 503 to a correction, said to be off (not a failed
    write on the read-only root), and predictions as ever."""
    picture, digit = digit_png(mnist_slice, 6)
    with started(image, deployment, None) as (_, url, _):
        turned_away = httpx.post(f"{url}/feedback", params={"digit": digit},
                             files={"file": ("digit.png", picture, "image/png")}, timeout=30)
        predicted = httpx.post(f"{url}/predict", files={"file": ("digit.png", picture, "image/png")}, timeout=30)
        metrics = httpx.get(f"{url}/metrics").text
    assert turned_away.status_code == 503, turned_away.text
    assert 'digits_feedback_refused_total{reason="off"} 1.0' in metrics
    assert predicted.status_code == 200 and predicted.json()["digit"] == str(digit)


def test_sigterm_exits_cleanly_within_the_grace_period(running, deployment):
    name, _, _ = running
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    started = time.monotonic()
    docker("kill", "--signal", "TERM", name)
    exit_code = docker("wait", name, timeout=grace).stdout.strip()
    assert time.monotonic() - started < grace
    assert exit_code == "0"
    assert "Finished server process" in docker("logs", name).stderr
