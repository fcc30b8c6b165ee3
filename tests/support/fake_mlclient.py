"""A stand-in for azure.ai.ml.MLClient at the Azure ML entry point's one seam (aml_run.connection.connect).

It records each call under its operation ("data.get", "models.create_or_update", ...), so that a test asks
what was called with what (`fake.calls("data.get")`, `fake.objects("jobs.create_or_update")`) and, where the
order is the behaviour, in which order (`fake.operations()`). It answers as the workspace would in the case
at hand; the entities it returns are the real azure-ai-ml classes.
"""

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

from azure.ai.ml.entities import AmlCompute, Data, Model
from azure.core.exceptions import ResourceNotFoundError

EXISTING_MNIST = ("mnist", "3")  # the data asset (name, version) a workspace with "data" has
EXISTING_HANDWRITING = ("handwriting", "2")  # the handwriting data asset a workspace with "handwriting" has


class Call(NamedTuple):
    args: tuple
    kwargs: dict


class FakeMLClient:
    """The workspace of one test case.

    model_files: what a download of a registered model writes (None: nothing); job_files: what a download of
    the job's output writes (default: the same). exists: which of "compute", "environment", "data" (MNIST),
    "handwriting" (its data asset) the workspace already has; registered_environment: what
    environments.get answers for it. registered_tags: the latest registered model version's tags (None: no
    version yet). final_status, stream_error: how the pipeline job ends;
    register_error: what models.create_or_update raises.
    """

    def __init__(self, model_files: Path | None, *, registered_tags: dict | None, exists=(), final_status="Completed",
                 stream_error=None, register_error=None, registered_environment=None, job_files=...):
        self.log: list[tuple[str, Call]] = []  # (operation, call), in the order made
        self.model_files = model_files
        self.job_files = model_files if job_files is ... else job_files
        self.registered_tags = registered_tags
        self.exists = set(exists)
        self.final_status, self.stream_error, self.register_error = final_status, stream_error, register_error
        self.registered_environment = registered_environment
        self.job_name = None  # the name the entry point gave the pipeline job
        self.uploaded = {}  # (name, version) -> the paths of the files uploaded as that data asset version
        self.compute = SimpleNamespace(get=self.compute_get, begin_create_or_update=self.compute_create)
        self.environments = SimpleNamespace(get=self.environment_get, create_or_update=self.environment_create)
        self.data = SimpleNamespace(get=self.data_get, create_or_update=self.data_create)
        self.jobs = SimpleNamespace(create_or_update=self.job_create, stream=self.job_stream, get=self.job_get,
                                    download=self.job_download)
        self.models = SimpleNamespace(create_or_update=self.model_create, download=self.model_download,
                                      get=self.model_get)

    # --- what the tests ask ---

    def operations(self) -> list[str]:
        """The operations called, in order."""
        return [operation for operation, _ in self.log]

    def calls(self, operation: str) -> list[Call]:
        """Each call of one operation, in order: its arguments."""
        return [call for name, call in self.log if name == operation]

    def objects(self, operation: str) -> list:
        """The entity each call of one operation was given (its first argument)."""
        return [call.args[0] for call in self.calls(operation)]

    # --- the operations ---

    def record(self, operation, *args, **kwargs):
        self.log.append((operation, Call(args, kwargs)))

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
        if (name, version) in self.uploaded:
            return Data(name=name, version=version, path=f"azureml://datastores/workspaceblobstore/paths/{name}/")
        for kind, (existing, existing_version) in (("data", EXISTING_MNIST), ("handwriting", EXISTING_HANDWRITING)):
            if kind in self.exists and name == existing:
                return Data(name=name, version=version or existing_version,
                            path=f"azureml://datastores/workspaceblobstore/paths/{name}/")
        raise ResourceNotFoundError(f"data {name} not found")

    def data_create(self, data):
        self.record("data.create_or_update", data)
        folder = Path(data.path)
        self.uploaded[data.name, data.version] = sorted(path.relative_to(folder).as_posix()
                                                        for path in folder.rglob("*") if path.is_file())
        return data

    def job_create(self, job):
        self.record("jobs.create_or_update", job)
        assert job.name, "the entry point names the job"
        self.job_name = job.name
        return job

    def job_stream(self, name):
        self.record("jobs.stream", name)
        if self.stream_error:
            raise self.stream_error

    def job_get(self, name):
        self.record("jobs.get", name)
        return SimpleNamespace(name=name, status=self.final_status)

    def job_download(self, name, *, download_path=".", output_name=None, all=False):  # the SDK's signature
        self.record("jobs.download", name, output_name=output_name)
        if self.job_files is not None:  # the SDK's layout: <download_path>/named-outputs/<output name>
            shutil.copytree(self.job_files, Path(download_path) / "named-outputs" / output_name)

    def model_create(self, model):
        self.record("models.create_or_update", model)
        if self.register_error:
            raise self.register_error
        return Model(name=model.name, version=model.version or "7", type=model.type, path=model.path,
                     tags=dict(model.tags))

    def model_get(self, name, label=None):
        self.record("models.get", name, label=label)
        if self.registered_tags is None:
            raise ResourceNotFoundError(f"model {name} not found")
        return Model(name=name, version="6", type="custom_model", path="azureml://datastores/x/paths/y/",
                     tags=dict(self.registered_tags))

    def model_download(self, name, version, download_path):
        self.record("models.download", name=name, version=version)
        if self.model_files is not None:  # the SDK's layout: <download_path>/<name>/<last folder of the path>
            shutil.copytree(self.model_files, Path(download_path) / name / "trained_model")
