"""The GitHub workflows: valid, secure, with shell that passes shellcheck, and running only commands,
paths and overlays that exist in this repository. The deploy's smoke test runs against a real server."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.manifests import base
from tests.support.paths import REPO
from tests.support.server import free_port, run_app
from training.gates import GATE

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
SMOKE_TEST = REPO / ".github" / "scripts" / "smoke_test.py"
FETCH_CORRECTIONS = REPO / ".github" / "scripts" / "fetch_corrections.sh"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")  # owner/repo@<full commit SHA>
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")


def tool(name: str) -> str:
    """A command installed with the requirements (beside this Python), else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True)  # YAML 1.1 reads the key `on` as True
    return workflow


def steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def run_blocks() -> list[tuple[str, str]]:
    return [(f"{path.name}:{job}:{step.get('name', step['run'][:30])}", step["run"])
            for path in WORKFLOWS for job, step in steps(load(path)) if "run" in step]


def test_the_two_workflows_exist():
    assert [path.name for path in WORKFLOWS] == ["rebuild.yml", "tests.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_validates_against_the_github_workflow_schema(path):
    result = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_of_medium_severity_or_above():
    command = [tool("zizmor"), "--offline", "--min-severity", "medium", str(REPO / ".github" / "workflows")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def shell_scripts() -> list[tuple[str, str]]:
    return run_blocks() + [(path.name, path.read_text()) for path in sorted((REPO / ".github").rglob("*.sh"))]


@pytest.mark.parametrize("name, script", shell_scripts(), ids=[name for name, _ in shell_scripts()])
def test_run_steps_pass_shellcheck(name, script):
    if shutil.which("shellcheck") is None:
        message = "shellcheck not found (Debian package shellcheck; .ci/run installs it)"
        if os.environ.get("REQUIRE_SHELLCHECK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    script = EXPRESSION.sub("PLACEHOLDER", script)  # Actions fills these in before the shell sees them
    result = subprocess.run(["shellcheck", "--shell=bash", "-"], input=script, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda path: path.name)
def test_least_privilege_pinned_actions_and_timeouts(path):
    workflow = load(path)
    assert workflow["permissions"] in ({}, {"contents": "read"})  # jobs ask for more, each for itself
    for job_name, job in workflow["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 180, job_name  # the longest: waiting for Azure ML's training
    for job_name, step in steps(workflow):
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{job_name}: {step['uses']} is not pinned to a commit SHA"
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False


def test_tests_workflow_runs_ci_run_which_runs_the_readmes_test_command():
    workflow = load(REPO / ".github" / "workflows" / "tests.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    commands = [step["run"].strip() for _, step in steps(workflow) if "run" in step]
    assert ".ci/run" in commands
    assert any("ruff check ." in command for command in commands)
    readme_command = re.search(r"```bash\n(python3\.11 -m venv .* && python -m pytest)\n```",
                               (REPO / "README.md").read_text()).group(1)
    assert (REPO / ".ci" / "run").read_text().strip().splitlines()[-1] == readme_command


def test_rebuild_workflow_is_one_deployment_at_a_time_with_oidc():
    workflow = load(REPO / ".github" / "workflows" / "rebuild.yml")
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert set(workflow["on"]) == {"workflow_dispatch", "push"}
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"model", "epochs", "min_accuracy", "overlay", "runner"}
    assert set(inputs["overlay"]["options"]) == {path.name for path in (REPO / "kustomize" / "overlays").iterdir()}
    for job_name, step in steps(workflow):
        if step.get("uses", "").startswith("azure/login@"):
            assert workflow["jobs"][job_name]["permissions"]["id-token"] == "write"
            assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}  # OIDC, no secret
    pushed = [path.rstrip("/*") for path in workflow["on"]["push"]["paths"]]
    assert all((REPO / path).exists() for path in pushed), pushed


def test_the_rebuild_workflow_restates_no_training_default():
    """Epochs and the accuracy gate default to empty, and empty passes no flag: training/train.py and
    training/gates.py own the defaults, so a workflow default cannot drift from them."""
    workflow = load(REPO / ".github" / "workflows" / "rebuild.yml")
    inputs = workflow["on"]["workflow_dispatch"]["inputs"]
    assert inputs["epochs"]["default"] == "" and inputs["min_accuracy"]["default"] == ""
    decide = workflow["jobs"]["plan"]["steps"][-1]["run"]
    assert "EPOCHS='' MIN_ACCURACY=''" in decide  # a push, too
    text = (REPO / ".github" / "workflows" / "rebuild.yml").read_text()
    gate = str(GATE["min_accuracy"].default)
    assert gate not in text and not re.search(r"EPOCHS=\d", text)
    script = next(script for _, script in run_blocks() if "azureml/run_pipeline.py" in script)
    assert 'if [ -n "$EPOCHS" ]; then args+=(--epochs "$EPOCHS"); fi' in script
    assert 'if [ -n "$MIN_ACCURACY" ]; then args+=(--min-accuracy "$MIN_ACCURACY"); fi' in script


def test_every_path_and_entry_point_a_workflow_names_exists():
    scripts = "\n".join(script for _, script in run_blocks())
    for path in re.findall(r"(?:python |pip install -r |grep '[^']*' )([\w./-]+\.(?:py|txt))", scripts):
        assert (REPO / path).is_file(), path
    entry_point = subprocess.run([sys.executable, "azureml/run_pipeline.py", "--help"], cwd=REPO,
                                 capture_output=True, text=True)
    assert entry_point.returncode == 0, entry_point.stderr
    [azureml_step] = [script for _, script in run_blocks() if "azureml/run_pipeline.py" in script]
    flags = set(re.findall(r"(?<![\w-])--[a-z][\w-]*", azureml_step))
    assert {"--reuse-latest", "--epochs", "--min-accuracy"} <= flags
    for flag in flags:  # every flag the step may pass, on whichever line it is added
        assert flag in entry_point.stdout, flag
    assert (REPO / "kustomize" / "overlays" / "local").is_dir() and (REPO / "kustomize" / "overlays" / "aks").is_dir()
    assert "deployment/digit-recognizer" in scripts
    assert base()["Deployment"]["metadata"]["name"] == "digit-recognizer"


def test_smoke_test_passes_against_a_real_server(tmp_path):
    server, url = run_app(tmp_path)
    try:
        result = subprocess.run([sys.executable, str(SMOKE_TEST), url, "--wait", "30"], capture_output=True, text=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert "read a drawn 7" in result.stdout


def test_smoke_test_fails_clearly_when_nothing_answers():

    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([sys.executable, str(SMOKE_TEST), url, "--wait", "3"], capture_output=True, text=True)
    assert result.returncode == 1
    assert f"smoke test failed: {url}/health was not ready within 3 s" in result.stderr


# --- the rebuild's corrections: copied out of the cluster, with fake kubectl and az at the seam ---

FAKE_TOOL = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
case "$(basename "$0") $1" in
  "kubectl get") echo -n "$POD" ;;
  "kubectl exec") [ -d "$POD_FEEDBACK/accepted" ] ;;
  "kubectl cp") cp "$POD_FEEDBACK"/accepted/* "$3/" ;;
  "az storage") args="$*"; dest="${args##*--destination }"
                mkdir -p "$dest/accepted" && cp "$SHARE"/accepted/* "$dest/accepted/" ;;
esac
"""


def fetch_corrections(tmp_path, overlay: str, **env) -> tuple[subprocess.CompletedProcess, list[str]]:
    """The rebuild's step, as run on a runner: fake kubectl and az first on PATH, recording their calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("kubectl", "az"):
        (bin_dir / name).write_text(FAKE_TOOL)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    calls.write_text("")
    done = subprocess.run([str(FETCH_CORRECTIONS), overlay, str(tmp_path / "feedback")], capture_output=True,
                          text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(calls), **env})
    return done, calls.read_text().splitlines()


def cluster_folder(folder: Path) -> Path:
    """A corrections folder as the app leaves it: records waiting, accepted and rejected."""
    for part, names in [("", ["waiting.png"]), ("accepted", ["a.png", "b.png"]), ("rejected", ["r.png"])]:
        (folder / part).mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / part / name).write_bytes(b"record")
    return folder


def test_the_rebuild_takes_only_the_accepted_corrections_from_a_pod_on_docker_desktop(tmp_path):
    pod_folder = cluster_folder(tmp_path / "pod")
    done, calls = fetch_corrections(tmp_path, "local", POD="digit-recognizer-7f9c", POD_FEEDBACK=str(pod_folder))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "records=2"
    assert sorted(path.name for path in (tmp_path / "feedback").rglob("*.png")) == ["a.png", "b.png"]
    assert calls[-1] == f"kubectl cp digit-recognizer-7f9c:/feedback/accepted {tmp_path / 'feedback' / 'accepted'}"


@pytest.mark.parametrize("pod", ["", "digit-recognizer-7f9c"], ids=["no-pod", "nothing-reviewed"])
def test_no_corrections_to_take_is_no_error(tmp_path, pod):
    done, calls = fetch_corrections(tmp_path, "local", POD=pod, POD_FEEDBACK=str(tmp_path / "empty"))
    assert done.returncode == 0 and done.stdout.strip() == "records=0", done.stderr
    assert not any(call.startswith("kubectl cp") for call in calls)


def test_the_rebuild_reads_the_azure_files_share_with_its_oidc_login_on_aks(tmp_path):
    share = cluster_folder(tmp_path / "share")
    done, calls = fetch_corrections(tmp_path, "aks", SHARE=str(share), FEEDBACK_STORAGE_ACCOUNT="digitsfeedback",
                                    FEEDBACK_SHARE="pvc-1234")
    assert done.returncode == 0 and done.stdout.strip() == "records=2", done.stderr
    [call] = calls
    assert call.startswith("az storage file download-batch --auth-mode login")  # Entra ID (OIDC), no account key
    assert "--account-name digitsfeedback --source pvc-1234 --pattern accepted/*.png" in call
    missing, _ = fetch_corrections(tmp_path, "aks", SHARE=str(share))
    assert missing.returncode != 0 and "set the variable FEEDBACK_STORAGE_ACCOUNT" in missing.stderr


def test_the_rebuild_can_ship_the_repositorys_model_with_no_azure_ml():
    """model: shipped skips the corrections and Azure ML; the image and the deploy take app/model/ as checked out."""
    workflow = load(REPO / ".github" / "workflows" / "rebuild.yml")
    assert "shipped" in workflow["on"]["workflow_dispatch"]["inputs"]["model"]["options"]
    jobs = workflow["jobs"]
    assert "needs.plan.outputs.model != 'shipped'" in jobs["model"]["if"]
    assert jobs["corrections"]["if"] == "needs.plan.outputs.model == 'retrain'"
    for name in ("image", "deploy"):
        assert "needs.plan.outputs.model == 'shipped'" in jobs[name]["if"], name
        [download] = [step for step in jobs[name]["steps"] if "download-artifact" in step.get("uses", "")]
        assert download["if"] == "needs.plan.outputs.model != 'shipped'"

