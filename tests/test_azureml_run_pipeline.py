"""azureml/run_pipeline.py against a fake MLClient at its one seam: the calls, their objects, its failures.

The fake records every call and answers as the service would in the case at hand; the entity objects the
script hands it (AmlCompute, Environment, Data, PipelineJob, Model) are the real azure-ai-ml classes. The
"registered model" it downloads is a copy of the model the repository ships in app/model/.
"""

import importlib.util
import json
import shutil
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from marshmallow.warnings import Marshmallow4Warning

from tests.conftest import MNIST_SLICE, MODEL_DIR, REPO
from training.data import load_mnist, write_idx

with warnings.catch_warnings():
    warnings.simplefilter("ignore", Marshmallow4Warning)  # about the SDK's own schema classes, at import
    from azure.ai.ml.entities import AmlCompute, Data, Environment, Model, PipelineJob
    from azure.ai.ml.exceptions import JobException
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    # A script, not a module (see its docstring): load it by path, under a name that is not `azureml`.
    spec = importlib.util.spec_from_file_location("run_pipeline", REPO / "azureml" / "run_pipeline.py")
    run_pipeline = importlib.util.module_from_spec(spec)
    sys.modules["run_pipeline"] = run_pipeline
    spec.loader.exec_module(run_pipeline)

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

JOB_NAME = "quiet_river_42"
ENV = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000", "AZURE_RESOURCE_GROUP": "rg-digits",
       "AZUREML_WORKSPACE": "mlw-digits", "GIT_COMMIT": "c0ffee1", "MNIST_DIR": str(MNIST_SLICE)}
SHIPPED_ACCURACY = json.loads((MODEL_DIR / "metadata.json").read_text())["test_accuracy"]


class FakeMLClient:
    """Stands in for azure.ai.ml.MLClient: records calls as (operation, arguments); answers as configured."""

    def __init__(self, model_files: Path | None, exists=(), final_status="Completed", stream_error=None,
                 register_error=None, registered_environment=None):
        self.calls = []
        self.model_files = model_files  # what a model download writes; None: nothing
        self.exists = set(exists)  # which of "compute", "environment", "data" the workspace already has
        self.final_status, self.stream_error, self.register_error = final_status, stream_error, register_error
        self.registered_environment = registered_environment
        self.compute = SimpleNamespace(get=self.compute_get, begin_create_or_update=self.compute_create)
        self.environments = SimpleNamespace(get=self.environment_get, create_or_update=self.environment_create)
        self.data = SimpleNamespace(get=self.data_get, create_or_update=self.data_create)
        self.jobs = SimpleNamespace(create_or_update=self.job_create, stream=self.job_stream, get=self.job_get)
        self.models = SimpleNamespace(create_or_update=self.model_create, download=self.model_download,
                                      get=self.model_get)

    def record(self, operation, *args, **kwargs):
        self.calls.append((operation, args, kwargs))

    def operations(self) -> list[str]:
        return [operation for operation, _, _ in self.calls]

    def objects(self, operation) -> list:
        return [args[0] for name, args, _ in self.calls if name == operation]

    def compute_get(self, name):
        self.record("compute.get", name)
        if "compute" not in self.exists:
            raise ResourceNotFoundError(f"compute {name} not found")
        return AmlCompute(name=name, size="Standard_D2s_v3")

    def compute_create(self, compute):
        self.record("compute.begin_create_or_update", compute)
        return SimpleNamespace(result=lambda: compute)

    def environment_get(self, name, version=None):
        self.record("environments.get", name, version=version)
        if "environment" not in self.exists:
            raise ResourceNotFoundError(f"environment {name}:{version} not found")
        return self.registered_environment

    def environment_create(self, environment):
        self.record("environments.create_or_update", environment)
        return environment

    def data_get(self, name, version=None, label=None):
        self.record("data.get", name, version=version, label=label)
        if "data" not in self.exists:
            raise ResourceNotFoundError(f"data {name} not found")
        return Data(name=name, version=version or "3", path="azureml://datastores/workspaceblobstore/paths/mnist/")

    def data_create(self, data):
        self.record("data.create_or_update", data)
        return data

    def job_create(self, job):
        self.record("jobs.create_or_update", job)
        job.name = JOB_NAME
        return job

    def job_stream(self, name):
        self.record("jobs.stream", name)
        if self.stream_error:
            raise self.stream_error

    def job_get(self, name):
        self.record("jobs.get", name)
        return SimpleNamespace(name=name, status=self.final_status)

    def model_create(self, model):
        self.record("models.create_or_update", model)
        if self.register_error:
            raise self.register_error
        return Model(name=model.name, version=model.version or "7", type=model.type, path=model.path,
                     tags=dict(model.tags))

    def model_get(self, name, label=None):
        self.record("models.get", name, label=label)
        return Model(name=name, version="6", type="custom_model", path="azureml://datastores/x/paths/y/",
                     tags={"accuracy": f"{SHIPPED_ACCURACY:.4f}", "data_version": "3"})

    def model_download(self, name, version, download_path):
        self.record("models.download", name=name, version=version)
        if self.model_files is not None:  # the SDK's layout: <download_path>/<name>/<last folder of the path>
            shutil.copytree(self.model_files, Path(download_path) / name / "trained_model")


@pytest.fixture
def shipped_model(tmp_path) -> Path:
    """A copy of the repository's model folder, for the fake to 'download'."""
    return Path(shutil.copytree(MODEL_DIR, tmp_path / "registered"))


def run(fake, tmp_path, *args, env=None):
    """The script's main() with the fake at the seam, installing into tmp_path/model."""
    connect = lambda settings: fake  # noqa: E731
    return run_pipeline.main(["--model-dir", str(tmp_path / "model"), *args],
                             env={**ENV, **(env or {})}, connect_to=connect)


def test_trains_registers_and_installs_in_order_with_the_right_objects(shipped_model, tmp_path):
    fake = FakeMLClient(shipped_model)
    assert run(fake, tmp_path, "--epochs", "3", "--min-accuracy", "0.995") == 0

    assert fake.operations() == [
        "compute.get", "compute.begin_create_or_update",
        "environments.get", "environments.create_or_update",
        "data.get", "data.create_or_update",
        "jobs.create_or_update", "jobs.stream", "jobs.get",
        "models.create_or_update", "models.download", "models.create_or_update",
    ]
    [compute] = fake.objects("compute.begin_create_or_update")
    assert isinstance(compute, AmlCompute) and compute.name == "cpu-cluster" and compute.min_instances == 0

    [environment] = fake.objects("environments.create_or_update")
    assert isinstance(environment, Environment) and (environment.name, environment.version) == ("mnist-train", "1")
    assert "python=3.11" in environment.conda_file["dependencies"]

    [data] = fake.objects("data.create_or_update")
    assert isinstance(data, Data) and data.type == "uri_folder" and Path(data.path) == MNIST_SLICE
    assert fake.calls[4] == ("data.get", ("mnist",), {"version": data.version, "label": None})

    [job] = fake.objects("jobs.create_or_update")
    assert isinstance(job, PipelineJob) and set(job.jobs) == {"prep", "train", "evaluate"}
    assert job.inputs.raw_mnist._data.path == f"azureml:mnist:{data.version}"
    assert job.inputs.epochs._data == 3 and job.inputs.min_accuracy._data == 0.995
    assert job.settings.continue_on_step_failure is False and job.tags["git_commit"] == "c0ffee1"
    assert fake.calls[7][1] == (JOB_NAME,) and fake.calls[8][1] == (JOB_NAME,)

    registered, tagged = fake.objects("models.create_or_update")
    assert isinstance(registered, Model) and registered.type == "custom_model" and registered.name == "mnist-cnn"
    assert registered.path == f"azureml://jobs/{JOB_NAME}/outputs/trained_model"
    assert registered.tags["data_version"] == data.version and registered.tags["git_commit"] == "c0ffee1"
    assert fake.calls[10][2] == {"name": "mnist-cnn", "version": "7"}  # the registered version, by name
    assert isinstance(tagged, Model) and tagged.version == "7"
    assert tagged.tags["accuracy"] == f"{SHIPPED_ACCURACY:.4f}" and tagged.tags["data_version"] == data.version

    installed = tmp_path / "model"
    assert {path.name for path in installed.iterdir()} == {path.name for path in MODEL_DIR.iterdir()}
    for path in MODEL_DIR.iterdir():
        assert (installed / path.name).read_bytes() == path.read_bytes(), path.name


def test_uses_what_the_workspace_already_has(shipped_model, tmp_path):
    environment = run_pipeline.load_environment(run_pipeline.ENVIRONMENT_YAML)
    fake = FakeMLClient(shipped_model, exists={"compute", "environment", "data"}, registered_environment=environment)
    assert run(fake, tmp_path, env={"MNIST_DIR": ""}) == 0
    assert fake.operations() == ["compute.get", "environments.get", "data.get", "jobs.create_or_update",
                                 "jobs.stream", "jobs.get", "models.create_or_update", "models.download",
                                 "models.create_or_update"]
    assert fake.calls[2][2]["label"] == "latest"  # no local folder: the latest data asset version
    [job] = fake.objects("jobs.create_or_update")
    assert job.inputs.raw_mnist._data.path == "azureml:mnist:3"


def test_no_data_asset_and_no_local_folder_stops_it(shipped_model, tmp_path, capsys):
    fake = FakeMLClient(shipped_model, exists={"compute", "environment"},
                        registered_environment=run_pipeline.load_environment(run_pipeline.ENVIRONMENT_YAML))
    assert run(fake, tmp_path, env={"MNIST_DIR": ""}) == 1
    assert fake.operations()[-1] == "data.get"
    assert "MNIST_DIR" in capsys.readouterr().err


def test_a_registered_environment_that_differs_stops_it(shipped_model, tmp_path, capsys):
    environment = run_pipeline.load_environment(run_pipeline.ENVIRONMENT_YAML)
    environment.image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20250101.v1"
    fake = FakeMLClient(shipped_model, exists={"compute", "environment"}, registered_environment=environment)
    assert run(fake, tmp_path) == 1
    assert "jobs.create_or_update" not in fake.operations()
    assert "mnist-train:1" in capsys.readouterr().err


@pytest.mark.parametrize("fake_kwargs, status_word", [
    ({"stream_error": JobException(  # as jobs.stream raises it on a failed job
        message='Exception : \n {"code": "UserError", "message": "Execution failed. User process exited with 1"} ',
        no_personal_data_message="Exception raised on failed job.")}, "failed"),
    ({"final_status": "Canceled"}, "Canceled"),
    ({"final_status": "Failed"}, "Failed"),
], ids=["stream raises on Failed", "Canceled (stream returns)", "Failed after streaming"])
def test_a_job_that_does_not_complete_registers_nothing(shipped_model, tmp_path, capsys, fake_kwargs, status_word):
    fake = FakeMLClient(shipped_model, **fake_kwargs)
    assert run(fake, tmp_path) == 1
    assert not [operation for operation in fake.operations() if operation.startswith("models.")]
    assert not (tmp_path / "model").exists()
    error = capsys.readouterr().err
    assert JOB_NAME in error and status_word.lower() in error.lower()


def test_a_registration_error_stops_it(shipped_model, tmp_path, capsys):
    fake = FakeMLClient(shipped_model, register_error=HttpResponseError(message="(UserError) path not found"))
    assert run(fake, tmp_path) == 1
    assert fake.operations()[-1] == "models.create_or_update" and "models.download" not in fake.operations()
    assert not (tmp_path / "model").exists()
    assert "registering model mnist-cnn" in capsys.readouterr().err


def test_an_empty_download_stops_it(tmp_path, capsys):
    fake = FakeMLClient(model_files=None)
    assert run(fake, tmp_path) == 1
    assert fake.operations()[-1] == "models.download"  # never tagged as checked
    assert not (tmp_path / "model").exists()
    assert "empty" in capsys.readouterr().err


def test_a_download_that_does_not_match_its_metadata_stops_it(shipped_model, tmp_path, capsys):
    metadata_path = shipped_model / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["files"]["model.tflite"]["sha256"] = "0" * 64
    metadata_path.write_text(json.dumps(metadata))
    fake = FakeMLClient(shipped_model)
    assert run(fake, tmp_path) == 1
    assert fake.operations()[-1] == "models.download"
    assert not (tmp_path / "model").exists()
    assert "mnist-cnn:7" in capsys.readouterr().err


def test_a_download_without_the_model_file_stops_it(shipped_model, tmp_path):
    (shipped_model / "model.tflite").unlink()
    assert run(FakeMLClient(shipped_model), tmp_path) == 1
    assert not (tmp_path / "model").exists()


def test_reuse_latest_fetches_without_training(shipped_model, tmp_path):
    fake = FakeMLClient(shipped_model)
    assert run(fake, tmp_path, "--reuse-latest") == 0
    assert fake.operations() == ["models.get", "models.download"]
    assert fake.calls[0] == ("models.get", ("mnist-cnn",), {"label": "latest"})
    assert fake.calls[1][2] == {"name": "mnist-cnn", "version": "6"}
    assert (tmp_path / "model" / "model.tflite").read_bytes() == (MODEL_DIR / "model.tflite").read_bytes()


def test_reuse_latest_refuses_a_model_below_the_bar(shipped_model, tmp_path, capsys):
    assert run(FakeMLClient(shipped_model), tmp_path, "--reuse-latest", "--min-accuracy", "0.999") == 1
    assert not (tmp_path / "model").exists()
    assert "below the minimum" in capsys.readouterr().err


def test_dry_run_needs_no_workspace_and_prints_the_pipeline(tmp_path, capsys):
    def no_azure(settings):
        raise AssertionError("a dry run must not connect")

    env = {"GIT_COMMIT": "c0ffee1", "MNIST_DIR": str(MNIST_SLICE)}  # no workspace settings at all
    assert run_pipeline.main(["--dry-run", "--epochs", "2"], env=env, connect_to=no_azure) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert set(printed["jobs"]) == {"prep", "train", "evaluate"}
    assert printed["inputs"]["epochs"] == 2 and printed["inputs"]["min_accuracy"] == 0.99
    assert printed["inputs"]["raw_mnist"]["path"].startswith("azureml:mnist:")
    assert printed["settings"]["continue_on_step_failure"] is False


def test_dry_run_checks_the_local_data(tmp_path, capsys):
    (tmp_path / "mnist").mkdir()  # no IDX files in it
    env = {"GIT_COMMIT": "c0ffee1", "MNIST_DIR": str(tmp_path / "mnist")}
    assert run_pipeline.main(["--dry-run"], env=env, connect_to=None) == 1
    assert "file not found" in capsys.readouterr().err


def test_the_data_version_follows_the_content(tmp_path):
    shutil.copytree(MNIST_SLICE, tmp_path / "copy")
    same = run_pipeline.local_data_version(tmp_path / "copy")
    assert same == run_pipeline.local_data_version(MNIST_SLICE)  # same files elsewhere: same version
    labels = load_mnist(MNIST_SLICE).y_test.copy()
    labels[0] = (labels[0] + 1) % 10
    write_idx(tmp_path / "copy" / "t10k-labels-idx1-ubyte.gz", labels)
    assert run_pipeline.local_data_version(tmp_path / "copy") != same


def test_no_workspace_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_pipeline.main(["--epochs", "1"], env={"GIT_COMMIT": "x"}, connect_to=None)
    assert exit_info.value.code == 2
    assert "AZURE_SUBSCRIPTION_ID" in capsys.readouterr().err


def test_connect_makes_a_client_for_the_workspace_without_a_network_call():
    settings = run_pipeline.parse_args([], ENV)
    ml_client = run_pipeline.connect(settings)
    assert (ml_client.subscription_id, ml_client.resource_group_name, ml_client.workspace_name) == (
        ENV["AZURE_SUBSCRIPTION_ID"], "rg-digits", "mlw-digits")


def test_a_workflow_reads_the_model_and_its_accuracy_from_github_output(shipped_model, tmp_path):
    outputs = tmp_path / "github_output"
    assert run(FakeMLClient(shipped_model), tmp_path, env={"GITHUB_OUTPUT": str(outputs)}) == 0
    assert outputs.read_text().splitlines() == ["model=mnist-cnn:7", f"accuracy={SHIPPED_ACCURACY}"]


GITHUB_OIDC = {"ACTIONS_ID_TOKEN_REQUEST_URL": "", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
               "AZURE_CLIENT_ID": "00000000-0000-0000-0000-00000000c11e", "AZURE_TENANT_ID": "tenant"}


@pytest.fixture
def github_token_service():
    """A stand-in for GitHub's OIDC token endpoint on a real port: it answers a new token per request,
    only to the job's request token, only for Azure's audience."""
    import http.server
    import json
    import threading
    from urllib.parse import parse_qs, urlparse

    requests = []

    class TokenEndpoint(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            query = parse_qs(urlparse(self.path).query)
            requests.append(self.path)
            if (self.headers["Authorization"] != "Bearer request-token"
                    or query.get("audience") != ["api://AzureADTokenExchange"]):
                self.send_error(403)
                return
            body = json.dumps({"value": f"github-oidc-token-{len(requests)}"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), TokenEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/token?api-version=2.0", requests
    server.shutdown()


def test_in_a_github_workflow_each_azure_token_uses_a_fresh_github_token(github_token_service):
    from azure.core.exceptions import AzureError
    from azure.identity import ClientAssertionCredential

    url, requests = github_token_service
    settings = run_pipeline.parse_args([], {**ENV, **GITHUB_OIDC, "ACTIONS_ID_TOKEN_REQUEST_URL": url})
    azure_credential = run_pipeline.credential(settings)
    assert isinstance(azure_credential, ClientAssertionCredential)
    with pytest.raises(AzureError):  # Azure is out of reach here (or refuses the test's tenant): GitHub was asked first
        azure_credential.get_token("https://management.azure.com/.default")
    assert len(requests) == 1
    assert run_pipeline.github_id_token(url, "request-token") == "github-oidc-token-2"  # a new one each time
    with pytest.raises(Exception, match="403"):
        run_pipeline.github_id_token(url, "a-wrong-token")


def test_outside_a_workflow_the_default_credential_chain_is_used():
    from azure.identity import DefaultAzureCredential

    settings = run_pipeline.parse_args([], {**ENV, **GITHUB_OIDC})  # no request URL: not in a workflow job
    assert settings.github_oidc is None
    assert isinstance(run_pipeline.credential(settings), DefaultAzureCredential)
