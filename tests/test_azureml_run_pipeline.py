"""azureml/run_pipeline.py against a fake MLClient at its one seam: the calls, their objects, its failures.

The fake (tests/support/fake_mlclient.py) records every call by operation and answers as the service would
in the case at hand; the entity objects the entry point hands it (AmlCompute, Environment, Data, PipelineJob,
Model) are the real azure-ai-ml classes. The model it downloads, as the job's output and as the registered
version, is a copy of the model the repository ships in app/model/, its metadata.json given the figures the
case needs. The handwriting folder (the real writers' digits, and the letters and symbols learnt as "not a
digit") is the shipped slice (tests/data/handwriting) or a copy of it.
Corrections folders are written with the app's own CorrectionsStore and reviewed with training.review.
The entry point and its package are imported as running the script finds them (tests/support/azureml_run.py),
and run by path too.
"""

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from marshmallow.warnings import Marshmallow4Warning

from app.corrections import ACCEPTED, REJECTED, CorrectionsStore, new_correction
from tests.support.azureml_run import AZUREML, ENTRY_POINT, aml_run, run_pipeline
from tests.support.fake_mlclient import EXISTING_HANDWRITING, EXISTING_MNIST, Call, FakeMLClient
from tests.support.paths import HANDWRITING_SLICE, MNIST_SLICE, MODEL_DIR
from training import review
from training.data import load_mnist, write_idx
from training.negatives import CHARACTER_FILES, read_characters
from training.negatives import CREDIT as CHARACTERS_CREDIT
from training.strokes import CREDIT, DIGIT_FILES

with warnings.catch_warnings():
    warnings.simplefilter("ignore", Marshmallow4Warning)  # about the SDK's own schema classes, at import
    from azure.ai.ml import load_environment, load_job
    from azure.ai.ml.entities import Data
    from azure.ai.ml.exceptions import JobException
    from azure.core.exceptions import HttpResponseError

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

ENV = {"AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000", "AZURE_RESOURCE_GROUP": "rg-digits",
       "AZUREML_WORKSPACE": "mlw-digits", "GIT_COMMIT": "c0ffee1", "MNIST_DIR": str(MNIST_SLICE),
       "HANDWRITING_DIR": str(HANDWRITING_SLICE)}
SHIPPED_ACCURACY = json.loads((MODEL_DIR / "metadata.json").read_text())["test_accuracy"]
STYLE_ACCURACY = 2473 / 2600  # a figure with more than 4 decimals, as the style set's are: its tag reads 0.9512
WRITER_ACCURACY = 4102 / 4243  # the real writers kept out (as many as the full data keeps out): its tag reads 0.9668
REFUSED = 6283 / 6600  # the negatives kept out refused (about as many as the full data keeps out): tag 0.9520
DIGITS_REFUSED = 8 / 4243  # the real writers' digits kept out answered "not a digit": tag 0.0019
REGISTERED_TAGS = {"accuracy": f"{SHIPPED_ACCURACY:.4f}", "style_accuracy": f"{STYLE_ACCURACY:.4f}",
                   "writer_accuracy": f"{WRITER_ACCURACY:.4f}", "refused": f"{REFUSED:.4f}",
                   "digits_refused": f"{DIGITS_REFUSED:.4f}", "data_version": "3"}
HANDWRITING_FILES = sorted([*DIGIT_FILES.values(), *CHARACTER_FILES.values()])  # the handwriting asset's files
with warnings.catch_warnings():
    warnings.simplefilter("ignore", Marshmallow4Warning)
    ENVIRONMENT = load_environment(aml_run.definitions.ENVIRONMENT_YAML)  # environment.yml's version, whatever it is
PIPELINE_GATES = aml_run.settings.PIPELINE_GATES  # the evaluate step's gates: training/gates.py's


def workspace(model_files: Path | None, **case) -> FakeMLClient:
    """The fake workspace of a case; its latest registered model version has REGISTERED_TAGS unless told."""
    return FakeMLClient(model_files, **{"registered_tags": REGISTERED_TAGS, **case})


def model_copy(folder: Path, accuracy: float = SHIPPED_ACCURACY, style_accuracy: float | None = STYLE_ACCURACY,
               writer_accuracy: float | None = WRITER_ACCURACY, refused: float | None = REFUSED,
               digits_refused: float | None = DIGITS_REFUSED) -> Path:
    """A copy of the repository's model folder whose metadata.json has these figures (None: not measured on the
    style set, on the real writers, on the negatives, or the real writers' digits refused not measured)."""
    shutil.copytree(MODEL_DIR, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["test_accuracy"] = accuracy
    for kept_out in ("style_validation", "writers_validation", "negatives_validation"):
        metadata.pop(kept_out, None)
    if style_accuracy is not None:
        metadata["style_validation"] = {"accuracy": style_accuracy, "images": 2600}
    if writer_accuracy is not None:
        metadata["writers_validation"] = {"accuracy": writer_accuracy, "images": 4243}
        if digits_refused is not None:
            metadata["writers_validation"]["refused"] = digits_refused
    if refused is not None:
        metadata["negatives_validation"] = {"refused": refused, "worst_group_refused": refused, "images": 6600}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


@pytest.fixture
def shipped_model(tmp_path) -> Path:
    """A copy of the repository's model folder, measured on the style set, for the fake to 'download'."""
    return model_copy(tmp_path / "registered")


def run(fake, tmp_path, *args, env=None):
    """The script's main() with the fake at the seam, installing into tmp_path/model."""
    connect = lambda options: fake  # noqa: E731
    return run_pipeline.main(["--model-dir", str(tmp_path / "model"), *args],
                             env={**ENV, **(env or {})}, connect_to=connect)


def test_trains_registers_and_installs_in_order_with_the_right_objects(shipped_model, tmp_path):
    """The whole run: what is made, uploaded and submitted, and the model registered only after the job completed
    and installed only after its files were checked. Out of order, a user would ship an unchecked model."""
    fake = workspace(shipped_model)
    gates = ["--min-accuracy", "0.995", "--min-style-accuracy", "0.9", "--min-writer-accuracy", "0.98",
             "--min-writer-digit-accuracy", "0.96", "--min-refused", "0.9", "--max-digits-refused", "0.01"]
    assert run(fake, tmp_path, "--epochs", "3", "--detector-epochs", "2", *gates) == 0

    assert fake.operations() == [
        "compute.get", "compute.begin_create_or_update",
        "environments.get", "environments.create_or_update",
        "data.get", "data.create_or_update",  # MNIST
        "data.get", "data.create_or_update",  # the handwriting
        "jobs.create_or_update", "jobs.stream", "jobs.get",
        "jobs.download", "models.get",  # the new model's figures, and the registered version's to beat
        "models.create_or_update", "models.download", "models.create_or_update",
    ]
    [environment] = fake.objects("environments.create_or_update")
    assert environment.version == ENVIRONMENT.version
    data, writers = fake.objects("data.create_or_update")
    assert Path(data.path) == MNIST_SLICE and fake.uploaded["handwriting", writers.version] == HANDWRITING_FILES

    [job] = fake.objects("jobs.create_or_update")
    assert job.inputs.raw_mnist._data.path == f"azureml:mnist:{data.version}"
    assert job.inputs.handwriting._data.path == f"azureml:handwriting:{writers.version}"
    assert job.inputs.epochs._data == 3 and job.inputs.detector_epochs._data == 2
    given = dict(zip((flag[2:].replace("-", "_") for flag in gates[::2]), map(float, gates[1::2]), strict=True))
    assert {name: job.jobs["evaluate"].inputs[name]._data for name in given} == given  # the evaluate step's
    assert job.tags["git_commit"] == "c0ffee1" and job.name.startswith("mnist-c0ffee1-")
    # Named by the script, its model output where jobs.download() looks when the service lists none (README).
    assert job.outputs.trained_model.path == (
        f"azureml://datastores/workspaceblobstore/paths/azureml/{job.name}/trained_model/")
    # Every step runs in the environment version just made sure of: environment.yml's.
    assert {node.component.environment for node in job.jobs.values()} == {f"mnist-train:{environment.version}"}

    registered, tagged = fake.objects("models.create_or_update")
    assert registered.path == f"azureml://jobs/{job.name}/outputs/trained_model"
    assert registered.tags["data_version"] == data.version and registered.tags["handwriting_version"] == writers.version
    assert CREDIT in registered.description and CHARACTERS_CREDIT in registered.description  # CC BY 4.0
    assert fake.calls("models.download") == [Call((), {"name": "mnist-cnn", "version": "7"})]  # the registered one
    assert tagged.tags["accuracy"] == f"{SHIPPED_ACCURACY:.4f}" and tagged.tags["style_accuracy"] == "0.9512"
    assert tagged.tags["writer_accuracy"] == "0.9668"
    assert tagged.tags["refused"] == "0.9520" and tagged.tags["digits_refused"] == "0.0019"

    installed = tmp_path / "model"
    assert {path.name for path in installed.iterdir()} == {path.name for path in shipped_model.iterdir()}
    for path in shipped_model.iterdir():
        assert (installed / path.name).read_bytes() == path.read_bytes(), path.name


def test_uses_what_the_workspace_already_has(shipped_model, tmp_path):
    """A second run makes and uploads nothing again: without local folders it trains on the latest data
    versions."""
    fake = workspace(shipped_model, exists={"compute", "environment", "data", "handwriting"},
                     registered_environment=ENVIRONMENT)
    assert run(fake, tmp_path, env={"MNIST_DIR": "", "HANDWRITING_DIR": ""}) == 0
    assert fake.operations() == ["compute.get", "environments.get", "data.get", "data.get", "jobs.create_or_update",
                                 "jobs.stream", "jobs.get", "jobs.download", "models.get",
                                 "models.create_or_update", "models.download", "models.create_or_update"]
    # No local folders: the latest data asset versions.
    assert fake.calls("data.get") == [Call(("mnist",), {"version": None, "label": "latest"}),
                                      Call(("handwriting",), {"version": None, "label": "latest"})]
    [job] = fake.objects("jobs.create_or_update")
    assert job.inputs.raw_mnist._data.path == "azureml:{}:{}".format(*EXISTING_MNIST)
    assert job.inputs.handwriting._data.path == "azureml:{}:{}".format(*EXISTING_HANDWRITING)
    registered, _ = fake.objects("models.create_or_update")
    assert registered.tags["handwriting_version"] == EXISTING_HANDWRITING[1]


def test_no_data_asset_and_no_local_folder_stops_it(shipped_model, tmp_path, capsys):
    """With nothing to train on, the run stops before submitting and says to set MNIST_DIR."""
    fake = workspace(shipped_model, exists={"compute", "environment"}, registered_environment=ENVIRONMENT)
    assert run(fake, tmp_path, env={"MNIST_DIR": ""}) == 1
    assert fake.operations()[-1] == "data.get"
    assert "MNIST_DIR" in capsys.readouterr().err


def test_no_writers_data_asset_and_no_local_handwriting_folder_stops_it(shipped_model, tmp_path, capsys):
    """Likewise for the handwriting: it says to set HANDWRITING_DIR, before a node is allocated."""
    fake = workspace(shipped_model, exists={"compute", "environment", "data"}, registered_environment=ENVIRONMENT)
    assert run(fake, tmp_path, env={"MNIST_DIR": "", "HANDWRITING_DIR": ""}) == 1
    assert fake.operations()[-1] == "data.get" and "jobs.create_or_update" not in fake.operations()
    assert fake.calls("data.get")[-1] == Call(("handwriting",), {"version": None, "label": "latest"})
    error = capsys.readouterr().err
    assert "the workspace has no data asset handwriting: set HANDWRITING_DIR (or --handwriting-dir)" in error


def test_a_registered_environment_that_differs_stops_it(shipped_model, tmp_path, capsys):
    """Registered environment versions cannot change: training in the old one silently would not be the files'."""
    environment = load_environment(aml_run.definitions.ENVIRONMENT_YAML)
    environment.image = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20250101.v1"
    fake = workspace(shipped_model, exists={"compute", "environment"}, registered_environment=environment)
    assert run(fake, tmp_path) == 1
    assert "jobs.create_or_update" not in fake.operations()
    error = capsys.readouterr().err
    assert f"environment mnist-train:{ENVIRONMENT.version} in the workspace differs" in error
    assert "bump the version in environment.yml" in error


@pytest.mark.parametrize("fake_kwargs, status_word", [
    ({"stream_error": JobException(  # as jobs.stream raises it on a failed job
        message='Exception : \n {"code": "UserError", "message": "Execution failed. User process exited with 1"} ',
        no_personal_data_message="Exception raised on failed job.")}, "failed"),
    ({"final_status": "Canceled"}, "Canceled"),
    ({"final_status": "Failed"}, "Failed"),
], ids=["stream raises on Failed", "Canceled (stream returns)", "Failed after streaming"])
def test_a_job_that_does_not_complete_registers_nothing(shipped_model, tmp_path, capsys, fake_kwargs, status_word):
    """A failed or cancelled job (a gate missed) must register and install nothing."""
    fake = workspace(shipped_model, **fake_kwargs)
    assert run(fake, tmp_path) == 1
    assert not [operation for operation in fake.operations() if operation.startswith("models.")]
    assert not (tmp_path / "model").exists()
    error = capsys.readouterr().err
    assert fake.job_name in error and status_word.lower() in error.lower()


def test_a_registration_error_stops_it(shipped_model, tmp_path, capsys):
    """A refused registration stops the run before anything is installed."""
    fake = workspace(shipped_model, register_error=HttpResponseError(message="(UserError) path not found"))
    assert run(fake, tmp_path) == 1
    assert fake.operations()[-1] == "models.create_or_update" and "models.download" not in fake.operations()
    assert not (tmp_path / "model").exists()
    assert "registering model mnist-cnn" in capsys.readouterr().err


def test_an_empty_download_stops_it(shipped_model, tmp_path, capsys):
    """An empty model download (the service's layout changed) stops the run instead of installing nothing."""
    fake = workspace(model_files=None, job_files=shipped_model)
    assert run(fake, tmp_path) == 1
    assert fake.operations()[-1] == "models.download"  # never tagged as checked
    assert not (tmp_path / "model").exists()
    assert "empty" in capsys.readouterr().err


def test_an_empty_download_of_the_job_output_registers_nothing(shipped_model, tmp_path, capsys):
    """Without the job's output its figures cannot be compared: nothing is registered."""
    fake = workspace(shipped_model, job_files=None)
    assert run(fake, tmp_path) == 1
    assert fake.operations()[-1] == "jobs.download"
    assert not (tmp_path / "model").exists()
    assert f"download of output trained_model of job {fake.job_name} is empty" in capsys.readouterr().err


@pytest.mark.parametrize("unmeasured, named", [("style_accuracy", "style_validation.accuracy"),
                                                ("writer_accuracy", "writers_validation.accuracy"),
                                                ("digits_refused", "writers_validation.refused")])
def test_a_job_output_not_measured_on_a_kept_out_set_registers_nothing(tmp_path, capsys, unmeasured, named):
    """A model whose metadata.json lacks a compared figure is not registered, the missing figure named."""
    fake = workspace(model_copy(tmp_path / "new", **{unmeasured: None}))
    assert run(fake, tmp_path) == 1
    assert fake.operations()[-1] == "jobs.download"
    assert named in capsys.readouterr().err


def test_a_download_that_does_not_match_its_metadata_stops_it(shipped_model, tmp_path, capsys):
    """The app's loader checks the downloaded files: a corrupt model never reaches app/model/."""
    metadata_path = shipped_model / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["files"]["model.tflite"]["sha256"] = "0" * 64
    metadata_path.write_text(json.dumps(metadata))
    fake = workspace(shipped_model)
    assert run(fake, tmp_path) == 1
    assert fake.operations()[-1] == "models.download"
    assert not (tmp_path / "model").exists()
    assert "mnist-cnn:7" in capsys.readouterr().err


def test_a_download_without_the_model_file_stops_it(shipped_model, tmp_path):
    """Likewise for a download missing model.tflite."""
    (shipped_model / "model.tflite").unlink()
    assert run(workspace(shipped_model), tmp_path) == 1
    assert not (tmp_path / "model").exists()


# --- registration refuses a model worse than the registered version: on MNIST, the style set or the real writers,
# or refusing fewer of the negatives kept out ---

FIGURES = {"accuracy": SHIPPED_ACCURACY, "style_accuracy": STYLE_ACCURACY, "writer_accuracy": WRITER_ACCURACY,
           "refused": REFUSED}
ONE_IMAGE_WORSE = {"accuracy": SHIPPED_ACCURACY - 1 / 10_000, "style_accuracy": 2472 / 2600,
                   "writer_accuracy": 4101 / 4243, "refused": 6282 / 6600}


@pytest.mark.parametrize("figure, named", [("accuracy", "MNIST test accuracy"),
                                           ("style_accuracy", "style set accuracy"),
                                           ("writer_accuracy", "real writers accuracy"),
                                           ("refused", "negatives kept out refused")],
                         ids=["MNIST", "style set", "real writers", "negatives"])
def test_a_model_worse_than_the_registered_one_is_not_registered(tmp_path, capsys, figure, named):
    """One image worse on any compared figure and the new model is not registered (nor shipped), the figure
    named."""
    figures = {**FIGURES, figure: ONE_IMAGE_WORSE[figure]}
    fake = workspace(model_copy(tmp_path / "new", **figures))
    assert run(fake, tmp_path) == 1
    assert fake.operations()[-2:] == ["jobs.download", "models.get"]
    assert "models.create_or_update" not in fake.operations()
    assert not (tmp_path / "model").exists()
    error = capsys.readouterr().err
    assert f"{named} {figures[figure]:.4f} < {REGISTERED_TAGS[figure]}" in error
    assert f"the model of job {fake.job_name} is worse than the registered mnist-cnn:6" in error
    assert "not registered" in error


@pytest.mark.parametrize("figures", [
    FIGURES,  # its style, writers and negatives figures read below their tags (0.95115... < 0.9512, ...)
    {"accuracy": SHIPPED_ACCURACY + 1 / 10_000, "style_accuracy": 2474 / 2600, "writer_accuracy": 4103 / 4243,
     "refused": 6284 / 6600},
], ids=["as good", "better"])
def test_a_model_as_good_as_the_registered_one_or_better_is_registered(tmp_path, figures):
    """Tags round to 4 decimals: a model exactly as good must not be refused for the rounding."""
    fake = workspace(model_copy(tmp_path / "new", **figures))
    assert run(fake, tmp_path) == 0
    _, tagged = fake.objects("models.create_or_update")
    for tag in FIGURES:
        assert tagged.tags[tag] == f"{figures[tag]:.4f}", tag


def test_more_digits_refused_than_the_registered_version_is_not_compared(tmp_path, capsys):
    """The real writers' digits refused are tagged, not compared: the writers' accuracy already counts a refused
    digit as an error, and the evaluate step's max_digits_refused bounds the share."""
    fake = workspace(model_copy(tmp_path / "new", digits_refused=30 / 4243))  # 0.0071 against the tag's 0.0019
    assert run(fake, tmp_path) == 0
    _, tagged = fake.objects("models.create_or_update")
    assert tagged.tags["digits_refused"] == "0.0071" and "worse" not in capsys.readouterr().err


def test_the_first_model_is_registered_on_the_evaluate_steps_gates_alone(shipped_model, tmp_path, capsys):
    """A new workspace has no registered model: the first run registers on the gates alone."""
    fake = workspace(shipped_model, registered_tags=None)  # no version registered yet
    assert run(fake, tmp_path) == 0
    assert fake.operations()[-5:] == ["jobs.download", "models.get", "models.create_or_update", "models.download",
                                      "models.create_or_update"]
    assert "no registered version yet" in capsys.readouterr().err


def test_a_latest_version_that_was_never_checked_stops_it(shipped_model, tmp_path, capsys):
    """A version registered but never tagged cannot be compared: the run says how to archive it."""
    fake = workspace(shipped_model, registered_tags={"data_version": "3"})  # registered, never tagged
    assert run(fake, tmp_path) == 1
    assert "models.create_or_update" not in fake.operations()
    assert "az ml model archive --name mnist-cnn --version 6" in capsys.readouterr().err


def test_reuse_latest_fetches_without_training(shipped_model, tmp_path):
    """--reuse-latest downloads and installs the latest version and touches nothing else."""
    fake = workspace(shipped_model)
    assert run(fake, tmp_path, "--reuse-latest") == 0
    assert fake.operations() == ["models.get", "models.download"]
    assert fake.calls("models.get") == [Call(("mnist-cnn",), {"label": "latest"})]
    assert fake.calls("models.download") == [Call((), {"name": "mnist-cnn", "version": "6"})]
    assert (tmp_path / "model" / "model.tflite").read_bytes() == (MODEL_DIR / "model.tflite").read_bytes()


def test_reuse_latest_says_it_does_not_use_the_corrections(shipped_model, tmp_path, capsys):
    """The rebuild's "reuse-latest" trains nothing, so the corrections given to it wait for the next training: it
    says so, and uploads none of them."""
    folder = tmp_path / "feedback" / "accepted"
    folder.mkdir(parents=True)
    fake = workspace(shipped_model)
    assert run(fake, tmp_path, "--reuse-latest", env={"FEEDBACK_DIR": str(tmp_path / "feedback")}) == 0
    assert fake.operations() == ["models.get", "models.download"]
    assert (f"--reuse-latest trains nothing: the corrections in {tmp_path / 'feedback'} are not used"
            in capsys.readouterr().err)


def test_reuse_latest_refuses_a_model_below_the_bar(shipped_model, tmp_path, capsys):
    """--min-accuracy is also the bar for a fetched model: below it nothing is installed."""
    assert run(workspace(shipped_model), tmp_path, "--reuse-latest", "--min-accuracy", "0.999") == 1
    assert not (tmp_path / "model").exists()
    assert "below the minimum" in capsys.readouterr().err


def test_dry_run_needs_no_workspace_and_prints_the_pipeline(tmp_path, capsys):
    """--dry-run works offline, without Azure settings, and prints what would be submitted, gates included."""
    def no_azure(options):
        raise AssertionError("a dry run must not connect")

    env = {"GIT_COMMIT": "c0ffee1", "MNIST_DIR": str(MNIST_SLICE)}  # no workspace settings at all
    assert run_pipeline.main(["--dry-run", "--epochs", "2"], env=env, connect_to=no_azure) == 0
    out, err = capsys.readouterr()
    printed = yaml.safe_load(out)
    assert set(printed["jobs"]) == {"prep", "styles", "train", "detector", "evaluate"}
    assert printed["inputs"]["epochs"] == 2
    assert f"/azureml/{printed['name']}/trained_model/" in printed["outputs"]["trained_model"]["path"]
    assert printed["inputs"]["raw_mnist"]["path"].startswith("azureml:mnist:")
    assert printed["inputs"]["handwriting"]["path"] == "azureml:handwriting@latest"  # no HANDWRITING_DIR
    assert {gate.name: printed["jobs"]["evaluate"]["inputs"][gate.name] for gate in PIPELINE_GATES} == {
        gate.name: gate.default for gate in PIPELINE_GATES}  # training/gates.py's
    assert printed["settings"]["continue_on_step_failure"] is False
    assert "handwriting azureml:handwriting@latest" in err


def test_without_epochs_the_train_step_trains_its_own_default_number(shipped_model, tmp_path, capsys):
    """No --epochs or --detector-epochs: the pipeline gets neither input, so the train and detector steps'
    optional `epochs` have no value and their commands leave --epochs out: training/recipe.py's DigitsConfig and
    DetectorConfig, the one place each default is written."""
    fake = workspace(shipped_model)
    assert run(fake, tmp_path) == 0
    [job] = fake.objects("jobs.create_or_update")
    assert "epochs" not in job.inputs and "detector_epochs" not in job.inputs

    assert run_pipeline.main(["--dry-run"], env=ENV, connect_to=None) == 0
    assert not {"epochs", "detector_epochs"} & set(yaml.safe_load(capsys.readouterr().out)["inputs"])


def test_detector_epochs_alone_leave_the_digits_to_their_default(tmp_path, capsys):
    """--detector-epochs without --epochs: a run input for the detector only, the train step's epochs left out."""
    assert run_pipeline.main(["--dry-run", "--detector-epochs", "1"], env=ENV, connect_to=None) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["inputs"]["detector_epochs"] == 1 and "epochs" not in printed["inputs"]
    assert printed["jobs"]["detector"]["inputs"]["epochs"] == {"path": "${{parent.inputs.detector_epochs}}"}


def test_a_step_naming_another_environment_stops_it():
    """Every step runs in environment.yml's environment: a component naming another would train elsewhere."""
    pipeline = load_job(aml_run.definitions.PIPELINE_YAML)
    pipeline.jobs["train"].component.environment = "azureml:tensorflow-gpu@latest"
    with pytest.raises(aml_run.steps.StepFailed, match="step train names the environment azureml:tensorflow-gpu"):
        aml_run.submission.pin_environment(pipeline, ENVIRONMENT)


def test_dry_run_checks_the_local_data(tmp_path, capsys):
    """--dry-run checks the local MNIST folder too, so a bad one is found before any upload."""
    (tmp_path / "mnist").mkdir()  # no IDX files in it
    env = {"GIT_COMMIT": "c0ffee1", "MNIST_DIR": str(tmp_path / "mnist")}
    assert run_pipeline.main(["--dry-run"], env=env, connect_to=None) == 1
    assert "file not found" in capsys.readouterr().err


def test_dry_run_checks_the_local_handwriting_and_shows_its_version(tmp_path, capsys):
    """--dry-run checks the handwriting folder and shows the data version it would upload."""
    env = {"GIT_COMMIT": "c0ffee1", "MNIST_DIR": str(MNIST_SLICE), "HANDWRITING_DIR": str(HANDWRITING_SLICE)}
    assert run_pipeline.main(["--dry-run"], env=env, connect_to=None) == 0
    captured = capsys.readouterr()
    version = aml_run.data_assets.local_handwriting(HANDWRITING_SLICE).version
    assert yaml.safe_load(captured.out)["inputs"]["handwriting"]["path"] == f"azureml:handwriting:{version}"
    characters = len(read_characters(HANDWRITING_SLICE, like_digits=True))
    assert characters > 500  # the slice holds the letters and symbols too
    assert (f"handwriting azureml:handwriting:{version} (263 recorded digits by 136 writers, {characters} letters and "
            "symbols)") in captured.err

    (tmp_path / "handwriting").mkdir()
    assert run_pipeline.main(["--dry-run", "--handwriting-dir", str(tmp_path / "handwriting")], env=env,
                             connect_to=None) == 1
    assert f"error: handwriting folder {tmp_path / 'handwriting'} has no unipen-digits.json.gz" in (
        capsys.readouterr().err)


def test_the_data_version_follows_the_content(tmp_path):
    """The MNIST version is named by content: the same files never upload twice, changed files always do."""
    shutil.copytree(MNIST_SLICE, tmp_path / "copy")
    same = aml_run.data_assets.local_data_version(tmp_path / "copy")
    assert same == aml_run.data_assets.local_data_version(MNIST_SLICE)  # same files elsewhere: same version
    labels = load_mnist(MNIST_SLICE).y_test.copy()
    labels[0] = (labels[0] + 1) % 10
    write_idx(tmp_path / "copy" / "t10k-labels-idx1-ubyte.gz", labels)
    assert aml_run.data_assets.local_data_version(tmp_path / "copy") != same


# --- the handwriting folder's five files (the real writers' digits, the letters and symbols learnt as "not a digit"),
# as a content-hashed data asset, into train and evaluate ---

def handwriting_copy(folder: Path) -> Path:
    """A copy of the shipped handwriting slice with what else a handwriting folder holds (the full one has a
    README, someone's notes may be there): none of it belongs to the data asset."""
    shutil.copytree(HANDWRITING_SLICE, folder)
    (folder / "README.md").write_text("where these come from\n")
    (folder / "unipen-digits.json.gz.bak").write_bytes((folder / DIGIT_FILES["unipen"]).read_bytes())
    return folder


def read_records(path: Path) -> list[dict]:
    return json.loads(gzip.decompress(path.read_bytes()))


def write_records(path: Path, records: list) -> None:
    path.write_bytes(gzip.compress(json.dumps(records).encode()))


def handwriting_data_gets(fake) -> list[str]:
    """The versions of the real writers' data asset the run asked the workspace for."""
    return [call.kwargs["version"] for call in fake.calls("data.get") if call.args == ("handwriting",)]


def test_the_writers_asset_is_the_five_handwriting_files_versioned_by_their_content(shipped_model, tmp_path):
    """Only the five files training reads are uploaded (no README or stray copy), credited, and given to the
    steps."""
    folder = handwriting_copy(tmp_path / "handwriting")
    fake = workspace(shipped_model)
    assert run(fake, tmp_path, env={"HANDWRITING_DIR": str(folder)}) == 0

    _, uploaded = fake.objects("data.create_or_update")
    assert isinstance(uploaded, Data) and uploaded.type == "uri_folder" and uploaded.name == "handwriting"
    assert not Path(uploaded.path).is_relative_to(folder)  # a staging folder, gone now
    names = HANDWRITING_FILES
    assert len(names) == 5 and fake.uploaded["handwriting", uploaded.version] == names  # no README, no copy
    listing = "".join(f"{name} {hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n" for name in names)
    assert uploaded.version == hashlib.sha256(listing.encode()).hexdigest()[:12]  # as MNIST's version is made
    samples = [record for name in DIGIT_FILES.values() for record in read_records(folder / name)]
    characters = [record for name in CHARACTER_FILES.values() for record in read_records(folder / name)]
    assert uploaded.tags == {"digits": str(len(samples)), "writers": str(len({r["writer"] for r in samples})),
                             "characters": str(len(characters))}
    assert int(uploaded.tags["digits"]) > 200 and int(uploaded.tags["writers"]) > 100
    assert int(uploaded.tags["characters"]) > 500
    assert CREDIT in uploaded.description and "CC BY 4.0" in uploaded.description
    assert CHARACTERS_CREDIT in uploaded.description  # the letters and symbols credited too
    assert "letters and symbols (sections 1b, 1c, 1d" in uploaded.description
    assert '"not a digit"' in uploaded.description

    [job] = fake.objects("jobs.create_or_update")
    writers_input = job.inputs.handwriting._data
    assert (writers_input.type, writers_input.path, writers_input.mode) == (
        "uri_folder", f"azureml:handwriting:{uploaded.version}", "ro_mount")


def test_the_writers_version_follows_the_content_and_is_uploaded_once(shipped_model, tmp_path):
    """Other files do not make a new handwriting version; one record fewer does, and is uploaded once."""
    folder = handwriting_copy(tmp_path / "handwriting")
    fake = workspace(shipped_model, exists={"compute", "environment", "data"}, registered_environment=ENVIRONMENT)
    env = {"MNIST_DIR": "", "HANDWRITING_DIR": str(folder)}
    assert run(fake, tmp_path, env=env) == 0
    [first] = handwriting_data_gets(fake)
    assert fake.operations().count("data.create_or_update") == 1
    assert first == aml_run.data_assets.local_handwriting(HANDWRITING_SLICE).version  # the other files do not count

    fake.log.clear()  # the same files again, the other files changed: the workspace has that version
    (folder / "README.md").write_text("edited\n")
    (folder / "unipen-digits.json.gz.bak").unlink()
    assert run(fake, tmp_path, env=env) == 0
    assert handwriting_data_gets(fake) == [first] and "data.create_or_update" not in fake.operations()
    [job] = fake.objects("jobs.create_or_update")
    assert job.inputs.handwriting._data.path == f"azureml:handwriting:{first}"

    pendigits = folder / DIGIT_FILES["pendigits"]
    write_records(pendigits, read_records(pendigits)[:-1])  # one recorded digit fewer: a new version, uploaded
    fake.log.clear()
    assert run(fake, tmp_path, env=env) == 0
    [second] = handwriting_data_gets(fake)
    assert second != first and fake.operations().count("data.create_or_update") == 1
    [job] = fake.objects("jobs.create_or_update")
    assert job.inputs.handwriting._data.path == f"azureml:handwriting:{second}"
    registered, _ = fake.objects("models.create_or_update")
    assert registered.tags["handwriting_version"] == second

    symbols = folder / CHARACTER_FILES["symbols"]
    write_records(symbols, read_records(symbols)[:-1])  # one recorded symbol fewer: a new version, uploaded
    fake.log.clear()
    assert run(fake, tmp_path, env=env) == 0
    [third] = handwriting_data_gets(fake)
    assert third not in (first, second) and fake.operations().count("data.create_or_update") == 1


def test_the_writers_asset_name_is_a_setting(shipped_model, tmp_path):
    """--handwriting-name names the handwriting data asset, in the upload and in the submitted job."""
    fake = workspace(shipped_model)
    assert run(fake, tmp_path, "--handwriting-name", "pen-strokes", "--handwriting-dir", str(HANDWRITING_SLICE),
               env={"HANDWRITING_DIR": ""}) == 0
    _, uploaded = fake.objects("data.create_or_update")
    assert uploaded.name == "pen-strokes" and fake.uploaded["pen-strokes", uploaded.version]
    [job] = fake.objects("jobs.create_or_update")
    assert job.inputs.handwriting._data.path == f"azureml:pen-strokes:{uploaded.version}"


def handwriting_without(folder: Path, key: str | None, files=DIGIT_FILES) -> Path:
    """The slice, one of whose recorded digits (files=CHARACTER_FILES: letters or symbols) lacks `key` (None:
    those files without any record)."""
    handwriting_copy(folder)
    for name in files.values():
        records = read_records(folder / name)
        if key is None:
            records = []
        elif name == next(iter(files.values())):
            del records[0][key]
        write_records(folder / name, records)
    return folder


CHARACTERS = len(read_characters(HANDWRITING_SLICE, like_digits=True))  # the slice's letters and symbols


@pytest.mark.parametrize("make, problem", [
    (lambda folder: folder, "handwriting folder {folder}: not found"),
    (lambda folder: folder.write_text("a file"), "handwriting folder {folder}: not a folder"),
    (lambda folder: folder.mkdir(),
     "handwriting folder {folder} has no unipen-digits.json.gz and no pendigits-digits.json.gz and no "
     "unipen-uppercase.json.gz and no unipen-lowercase.json.gz and no unipen-symbols.json.gz:"),
    (lambda folder: (handwriting_copy(folder) / DIGIT_FILES["pendigits"]).unlink(),
     "handwriting folder {folder} has no pendigits-digits.json.gz:"),
    (lambda folder: (handwriting_copy(folder) / CHARACTER_FILES["uppercase"]).unlink(),
     "handwriting folder {folder} has no unipen-uppercase.json.gz:"),
    (lambda folder: (handwriting_copy(folder) / CHARACTER_FILES["lowercase"]).unlink(),
     "handwriting folder {folder} has no unipen-lowercase.json.gz:"),
    (lambda folder: (handwriting_copy(folder) / CHARACTER_FILES["symbols"]).unlink(),
     "handwriting folder {folder} has no unipen-symbols.json.gz:"),
    (lambda folder: (handwriting_copy(folder) / CHARACTER_FILES["lowercase"]).write_bytes(b"not gzip"),
     "handwriting folder {folder}/unipen-lowercase.json.gz: not a readable handwriting file"),
    (lambda folder: (handwriting_copy(folder) / DIGIT_FILES["pendigits"]).write_bytes(b"not gzip"),
     "handwriting folder {folder}/pendigits-digits.json.gz: not a readable handwriting file"),
    (lambda folder: (handwriting_copy(folder) / DIGIT_FILES["unipen"]).write_bytes(
        gzip.compress(json.dumps([{"label": 1}] * 50).encode())[:-20]),  # cut short
     "handwriting folder {folder}/unipen-digits.json.gz: not a readable handwriting file"),
    (lambda folder: handwriting_without(folder, None),
     "handwriting folder {folder}: its unipen-digits.json.gz and pendigits-digits.json.gz hold no recorded digit"),
    (lambda folder: handwriting_without(folder, "writer"),
     "handwriting folder {folder}: 1 of its 263 recorded digits have no label 0-9, source, writer or strokes"),
    (lambda folder: handwriting_without(folder, None, CHARACTER_FILES),
     "handwriting folder {folder}: its unipen-uppercase.json.gz, unipen-lowercase.json.gz, unipen-symbols.json.gz "
     "hold no recorded letter or symbol"),
    (lambda folder: handwriting_without(folder, "strokes", CHARACTER_FILES),
     f"handwriting folder {{folder}}: 1 of its {CHARACTERS} recorded letters and symbols have no source, writer or "
     "strokes"),
    (lambda folder: handwriting_without(folder, "label", CHARACTER_FILES),
     "handwriting folder {folder}: a recorded letter or symbol in its unipen-uppercase.json.gz, "
     "unipen-lowercase.json.gz, unipen-symbols.json.gz has no label"),
], ids=["missing", "a file", "empty", "one file missing", "uppercase missing", "lowercase missing",
        "symbols missing", "letters not gzip", "not gzip", "cut short", "no digits", "no writer", "no characters",
        "a character without strokes", "a character without a label"])
def test_a_bad_handwriting_folder_stops_it_before_it_is_uploaded(shipped_model, tmp_path, capsys, make, problem):
    """A folder training could not read stops the run before the upload, saying what is wrong and what to set."""
    folder = tmp_path / "handwriting"
    make(folder)
    fake = workspace(shipped_model)
    assert run(fake, tmp_path, env={"HANDWRITING_DIR": str(folder)}) == 1
    assert not handwriting_data_gets(fake) and "jobs.create_or_update" not in fake.operations()
    assert [data.name for data in fake.objects("data.create_or_update")] == ["mnist"]
    assert not (tmp_path / "model").exists()
    error = capsys.readouterr().err
    assert f"error: {problem.format(folder=folder)}" in error
    assert "set HANDWRITING_DIR (or --handwriting-dir) to the folder holding the real writers' unipen-digits" in error


def test_a_handwriting_file_that_changes_before_it_is_uploaded_stops_it(tmp_path):
    """A file changed between the check and the upload would upload under the wrong version: it stops."""
    folder = handwriting_copy(tmp_path / "handwriting")
    checked = aml_run.data_assets.local_handwriting(folder)
    write_records(folder / DIGIT_FILES["unipen"], read_records(folder / DIGIT_FILES["unipen"])[1:])
    (tmp_path / "staging").mkdir()
    with pytest.raises(aml_run.steps.StepFailed, match="unipen-digits.json.gz changed while it was being uploaded"):
        aml_run.data_assets.stage_handwriting(checked, tmp_path / "staging")


# --- corrections: the app's corrections folder, as a content-hashed data asset, into train and evaluate ---

def corrections(folder: Path, records: int = 6, start: int = 0, decision: str | None = ACCEPTED) -> Path:
    """A corrections folder as the app writes it: `records` more records, each a different picture, then accepted
    or rejected as a reviewer does (None: left waiting for review)."""
    store = CorrectionsStore(folder, max_waiting=1000)
    names = []
    for number in range(start, start + records):
        picture = np.zeros((28, 28), np.uint8)
        picture[number % 28, :] = 255  # a stroke, somewhere else in each record
        names.append(store.keep(new_correction(picture, meant=number % 10, answered=(number + 1) % 10, probability=0.8,
                                           model_sha256="0" * 64)))
    if decision:
        moved, problems = review.decide(folder, *((names, []) if decision == ACCEPTED else ([], names)))
        assert moved[decision] == records and not problems, problems
    return folder


def feedback_data_gets(fake) -> list[str]:
    """The versions of the corrections data asset the run asked the workspace for."""
    return [call.kwargs["version"] for call in fake.calls("data.get") if call.args == ("digit-feedback",)]


def test_corrections_are_uploaded_as_a_data_asset_and_given_to_train_and_evaluate(shipped_model, tmp_path, capsys):
    """FEEDBACK_DIR: only the readable accepted corrections are uploaded, versioned by content, given to the
    steps and named in the model's tags; an unreadable one is said."""
    folder = corrections(tmp_path / "feedback")
    names = sorted(f"{ACCEPTED}/{path.name}" for path in (folder / ACCEPTED).iterdir())
    corrections(folder, records=3, start=6, decision=None)  # waiting for review: not trained on
    corrections(folder, records=3, start=9, decision=REJECTED)  # rejected: never trained on
    (folder / ACCEPTED / "broken.png").write_bytes(b"not a PNG")  # a corrupt record: left out, and said so
    (folder / f".{Path(names[0]).name}.tmp").write_bytes(b"half a record")  # the app's temporary file
    fake = workspace(shipped_model)
    assert run(fake, tmp_path, env={"FEEDBACK_DIR": str(folder)}) == 0

    assert fake.operations()[:12] == [
        "compute.get", "compute.begin_create_or_update", "environments.get", "environments.create_or_update",
        "data.get", "data.create_or_update",  # MNIST
        "data.get", "data.create_or_update",  # the real writers
        "data.get", "data.create_or_update",  # the corrections
        "jobs.create_or_update", "jobs.stream"]
    mnist, writers, uploaded = fake.objects("data.create_or_update")
    assert isinstance(uploaded, Data) and uploaded.type == "uri_folder" and uploaded.name == "digit-feedback"
    assert fake.calls("data.get") == [Call(("mnist",), {"version": mnist.version, "label": None}),
                                      Call(("handwriting",), {"version": writers.version, "label": None}),
                                      Call(("digit-feedback",), {"version": uploaded.version, "label": None})]
    assert fake.uploaded["digit-feedback", uploaded.version] == names  # the readable accepted records, no other
    listing = "".join(f"{name} {hashlib.sha256((folder / name).read_bytes()).hexdigest()}\n" for name in names)
    assert uploaded.version == hashlib.sha256(listing.encode()).hexdigest()[:12]  # as MNIST's version is made
    assert uploaded.tags == {"accepted": "6", "unreviewed": "0"}

    [job] = fake.objects("jobs.create_or_update")
    corrections_input = job.inputs.corrections._data
    assert (corrections_input.type, corrections_input.path, corrections_input.mode) == (
        "uri_folder", f"azureml:digit-feedback:{uploaded.version}", "ro_mount")

    registered, tagged = fake.objects("models.create_or_update")
    for model in (registered, tagged):
        assert model.tags["feedback_asset"] == "digit-feedback"
        assert model.tags["feedback_version"] == uploaded.version
    error = capsys.readouterr().err
    assert f"1 of the 7 records read in {folder} are unreadable" in error and "broken.png" in error


def test_the_corrections_version_follows_the_content_and_is_uploaded_once(tmp_path):
    """The same corrections never upload twice; a record waiting does not count until it is accepted."""
    folder = corrections(tmp_path / "feedback")
    fake = workspace(model_copy(tmp_path / "new"), exists={"compute", "environment", "data", "handwriting"},
                     registered_environment=ENVIRONMENT)
    env = {"FEEDBACK_DIR": str(folder), "MNIST_DIR": "", "HANDWRITING_DIR": ""}
    assert run(fake, tmp_path, env=env) == 0
    [first] = feedback_data_gets(fake)
    assert fake.operations().count("data.create_or_update") == 1

    fake.log.clear()  # the same folder again: the workspace has that version
    assert run(fake, tmp_path, env=env) == 0
    assert feedback_data_gets(fake) == [first] and "data.create_or_update" not in fake.operations()
    [job] = fake.objects("jobs.create_or_update")
    assert job.inputs.corrections._data.path == f"azureml:digit-feedback:{first}"

    shutil.copytree(folder, tmp_path / "elsewhere")  # the same records elsewhere: the same version
    assert aml_run.data_assets.local_corrections(tmp_path / "elsewhere").version == first

    corrections(folder, records=1, start=6, decision=None)  # a new record waiting for review: the same version
    fake.log.clear()
    assert run(fake, tmp_path, env=env) == 0
    assert feedback_data_gets(fake) == [first] and "data.create_or_update" not in fake.operations()

    review.decide(folder, [path.name for path in folder.glob("*.png")], [])  # accepted: a new version, uploaded
    fake.log.clear()
    assert run(fake, tmp_path, env=env) == 0
    [second] = feedback_data_gets(fake)
    assert second != first and len(fake.uploaded["digit-feedback", second]) == 7
    registered, _ = fake.objects("models.create_or_update")
    assert registered.tags["feedback_version"] == second


def test_without_corrections_the_pipeline_has_no_corrections_input(shipped_model, tmp_path):
    """Without FEEDBACK_DIR the pipeline has no corrections input and the model no feedback tags."""
    fake = workspace(shipped_model)
    assert run(fake, tmp_path, env={"FEEDBACK_DIR": ""}) == 0
    assert not feedback_data_gets(fake) and fake.operations().count("data.create_or_update") == 2  # MNIST, handwriting
    [job] = fake.objects("jobs.create_or_update")
    assert "corrections" not in job.inputs
    registered, _ = fake.objects("models.create_or_update")
    assert not {"feedback_asset", "feedback_version"} & set(registered.tags)


def broken_corrections(folder: Path) -> Path:
    """A corrections folder whose one accepted record is corrupt."""
    (folder / ACCEPTED).mkdir(parents=True)
    (folder / ACCEPTED / "20260101T000000000000Z-7-0123.png").write_bytes(b"\x89PNG\r\n\x1a\n and then nothing")
    return folder


@pytest.mark.parametrize("make, args, problem", [
    (lambda folder: folder, [], "folder not found"),
    (lambda folder: folder, ["--feedback-dir"], "folder not found"),
    (lambda folder: folder.write_text("a file"), [], "not a folder"),
    (lambda folder: folder.mkdir(), [], "holds no readable accepted record (0 unreadable; 0 waiting for review"),
    (broken_corrections, [], "holds no readable accepted record (1 unreadable; 0 waiting for review"),
    (lambda folder: corrections(folder, decision=REJECTED), [],
     "holds no readable accepted record (0 unreadable; 0 waiting for review"),
    (lambda folder: corrections(folder, decision=None), [],
     "holds no readable accepted record (0 unreadable; 6 waiting for review: python -m training.review"),
], ids=["missing", "missing (argument)", "a file", "empty", "only a corrupt record", "only rejected records",
        "none reviewed yet"])
def test_a_corrections_folder_without_a_readable_record_stops_it_before_anything_is_made(
        shipped_model, tmp_path, capsys, make, args, problem):
    """A corrections folder with nothing to train on stops the run before the workspace is asked anything."""
    folder = tmp_path / "feedback"
    make(folder)
    fake = workspace(shipped_model)
    arguments = [*args, str(folder)] if args else []
    assert run(fake, tmp_path, *arguments, env={} if args else {"FEEDBACK_DIR": str(folder)}) == 1
    assert fake.operations() == []  # nothing asked of the workspace, so nothing made, uploaded or submitted
    assert not (tmp_path / "model").exists()
    error = capsys.readouterr().err
    assert f"error: corrections folder {folder}" in error and problem in error


def test_dry_run_shows_the_corrections_input(tmp_path, capsys):
    """--dry-run shows the corrections version it would upload, and checks the folder."""
    folder = corrections(tmp_path / "feedback")
    env = {"GIT_COMMIT": "c0ffee1", "MNIST_DIR": str(MNIST_SLICE), "FEEDBACK_DIR": str(folder)}
    assert run_pipeline.main(["--dry-run"], env=env, connect_to=None) == 0
    captured = capsys.readouterr()
    printed = yaml.safe_load(captured.out)
    version = aml_run.data_assets.local_corrections(folder).version
    assert printed["inputs"]["corrections"]["path"] == f"azureml:digit-feedback:{version}"
    for name in ("train", "evaluate"):
        assert printed["jobs"][name]["inputs"]["feedback"]["path"] == "${{parent.inputs.corrections}}"
    assert f"corrections azureml:digit-feedback:{version} (6 records: 6 accepted; 0 unreadable left out)" in (
        captured.err)

    assert run_pipeline.main(["--dry-run"], env={**env, "FEEDBACK_DIR": str(tmp_path / "none")}, connect_to=None) == 1
    assert "corrections folder" in capsys.readouterr().err


def test_a_record_that_changes_before_it_is_uploaded_stops_it(tmp_path):
    """A record changed after its check would upload under the wrong version: it stops."""
    folder = corrections(tmp_path / "feedback", records=1)
    checked = aml_run.data_assets.local_corrections(folder)
    [name] = checked.checksums
    corrections(tmp_path / "other", records=1)
    shutil.copy(next((tmp_path / "other" / ACCEPTED).iterdir()), folder / name)  # another record, the checked name
    (tmp_path / "staging").mkdir()
    with pytest.raises(aml_run.steps.StepFailed, match="changed while it was being uploaded"):
        aml_run.data_assets.stage_records(checked, tmp_path / "staging")


def test_a_record_reviewed_before_it_is_uploaded_stops_it(tmp_path):
    """A record a reviewer moved after its check stops the upload, asking to run again."""
    folder = corrections(tmp_path / "feedback", records=1, decision=None)
    checked = aml_run.data_assets.local_corrections(folder, include_unreviewed=True)
    assert review.decide(folder, [path.name for path in folder.glob("*.png")], [])[0][ACCEPTED] == 1
    (tmp_path / "staging").mkdir()
    with pytest.raises(aml_run.steps.StepFailed, match="was moved while it was being uploaded"):
        aml_run.data_assets.stage_records(checked, tmp_path / "staging")


def test_with_feedback_unreviewed_the_records_waiting_are_uploaded_too_never_the_rejected(
        shipped_model, tmp_path, capsys):
    """--feedback-unreviewed adds the records waiting, never the rejected ones, and needs a folder."""
    folder = corrections(tmp_path / "feedback", records=4)
    corrections(folder, records=2, start=4, decision=None)
    corrections(folder, records=2, start=6, decision=REJECTED)
    fake = workspace(shipped_model)
    assert run(fake, tmp_path, "--feedback-unreviewed", env={"FEEDBACK_DIR": str(folder)}) == 0
    _, _, uploaded = fake.objects("data.create_or_update")
    expected = sorted(f"{ACCEPTED}/{path.name}" for path in [*folder.glob("*.png"), *folder.glob(f"{ACCEPTED}/*")])
    assert fake.uploaded["digit-feedback", uploaded.version] == expected and len(expected) == 6
    assert uploaded.tags == {"accepted": "4", "unreviewed": "2"}
    assert "(6 records: 4 accepted, 2 not reviewed; 0 unreadable left out)" in capsys.readouterr().err

    with pytest.raises(SystemExit) as exit_info:  # nothing to include without a folder
        run_pipeline.main(["--feedback-unreviewed"], env={**ENV, "FEEDBACK_DIR": ""}, connect_to=None)
    assert exit_info.value.code == 2 and "--feedback-unreviewed needs a corrections folder" in capsys.readouterr().err


def test_no_workspace_is_a_usage_error(tmp_path, capsys):
    """Without the workspace's settings the run stops at once, naming them."""
    with pytest.raises(SystemExit) as exit_info:
        run_pipeline.main(["--epochs", "1"], env={"GIT_COMMIT": "x"}, connect_to=None)
    assert exit_info.value.code == 2
    assert "AZURE_SUBSCRIPTION_ID" in capsys.readouterr().err


@pytest.mark.parametrize("gate", [f"--{gate.name.replace('_', '-')}" for gate in aml_run.settings.PIPELINE_GATES])
def test_a_gate_above_one_is_a_usage_error(capsys, gate):
    """A gate is a share: --min-refused 95 (meaning 95 %) is refused before anything runs."""
    with pytest.raises(SystemExit) as exit_info:
        run_pipeline.main([gate, "95"], env=ENV, connect_to=None)
    assert exit_info.value.code == 2
    assert f"{gate} must be between 0 and 1" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--epochs", "--detector-epochs"])
def test_no_epochs_is_a_usage_error(capsys, option):
    """--epochs 0 would train nothing: refused before anything runs."""
    with pytest.raises(SystemExit) as exit_info:
        run_pipeline.main([option, "0"], env=ENV, connect_to=None)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert option in error and "must be >= 1" in error


def test_connect_makes_a_client_for_the_workspace_without_a_network_call():
    """The client names the workspace of the settings; making it reaches no network."""
    options = aml_run.settings.parse_args([], ENV)
    ml_client = aml_run.connection.connect(options)
    assert (ml_client.subscription_id, ml_client.resource_group_name, ml_client.workspace_name) == (
        ENV["AZURE_SUBSCRIPTION_ID"], "rg-digits", "mlw-digits")


def test_a_workflow_reads_the_model_and_its_accuracies_from_github_output(shipped_model, tmp_path):
    """rebuild.yml reads the model and its figures from GITHUB_OUTPUT for its summary."""
    outputs = tmp_path / "github_output"
    assert run(workspace(shipped_model), tmp_path, env={"GITHUB_OUTPUT": str(outputs)}) == 0
    assert outputs.read_text().splitlines() == ["model=mnist-cnn:7", f"accuracy={SHIPPED_ACCURACY}",
                                                f"style_accuracy={STYLE_ACCURACY}",
                                                f"writer_accuracy={WRITER_ACCURACY}", f"refused={REFUSED}"]


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
    """In a workflow a training run outlasts GitHub's first OIDC token: each Azure token asks for a new one."""
    from azure.core.exceptions import AzureError
    from azure.identity import ClientAssertionCredential

    url, requests = github_token_service
    options = aml_run.settings.parse_args([], {**ENV, **GITHUB_OIDC, "ACTIONS_ID_TOKEN_REQUEST_URL": url})
    azure_credential = aml_run.connection.credential(options)
    assert isinstance(azure_credential, ClientAssertionCredential)
    with pytest.raises(AzureError):  # Azure is out of reach here (or refuses the test's tenant): GitHub was asked first
        azure_credential.get_token("https://management.azure.com/.default")
    assert len(requests) == 1
    assert aml_run.connection.github_id_token(url, "request-token") == "github-oidc-token-2"  # a new one each time
    with pytest.raises(Exception, match="403"):
        aml_run.connection.github_id_token(url, "a-wrong-token")


def test_outside_a_workflow_the_default_credential_chain_is_used():
    """Outside a workflow, az login (DefaultAzureCredential) is used."""
    from azure.identity import DefaultAzureCredential

    options = aml_run.settings.parse_args([], {**ENV, **GITHUB_OIDC})  # no request URL: not in a workflow job
    assert options.github_oidc is None
    assert isinstance(aml_run.connection.credential(options), DefaultAzureCredential)


# --- the entry point as the user runs it: by its path, beside Microsoft's `azureml` package ---

def microsofts_azureml(folder: Path) -> Path:
    """A site folder with a regular `azureml` package in it, as azureml-core and azureml-mlflow install one."""
    (folder / "azureml").mkdir(parents=True)
    (folder / "azureml" / "__init__.py").write_text("MICROSOFT = True\n")
    return folder


def test_the_entry_point_runs_by_its_path_from_anywhere_with_microsofts_azureml_installed(tmp_path):
    """`python azureml/run_pipeline.py` works from any folder, beside Microsoft's azureml package."""
    env = {**os.environ, "PYTHONPATH": str(microsofts_azureml(tmp_path / "site")), "GIT_COMMIT": "c0ffee1",
           "MNIST_DIR": str(MNIST_SLICE), "HANDWRITING_DIR": str(HANDWRITING_SLICE)}
    result = subprocess.run([sys.executable, str(ENTRY_POINT), "--dry-run"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert set(yaml.safe_load(result.stdout)["jobs"]) == {"prep", "styles", "train", "detector", "evaluate"}

    # And the other way round: with the entry point and its package imported, `azureml` is still theirs.
    check = (f"import sys; sys.path.insert(0, {str(AZUREML)!r}); import run_pipeline, aml_run, azureml; "
             "print(azureml.MICROSOFT, aml_run.__file__)")
    result = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", str(AZUREML / "aml_run" / "__init__.py")]


def test_the_azureml_folder_is_no_package_and_its_modules_import_normally():
    """azureml/ must never shadow Microsoft's `azureml` package; aml_run's listing names each module."""
    assert not (AZUREML / "__init__.py").exists()  # never importable as `azureml`: Microsoft's name
    for path in AZUREML.rglob("*.py"):
        assert "noqa: E402" not in path.read_text(), f"{path}: imports after code"
    package = AZUREML / "aml_run"
    listing = (package / "__init__.py").read_text()
    modules = {path.name for path in package.glob("*.py")} - {"__init__.py"}
    assert modules and all(f"    {name}" in listing for name in modules), "aml_run/__init__.py lists each module"
