"""The Azure ML YAML: loads with azure-ai-ml, strictly, without warnings; wired to things that exist; pinned.

azure-ai-ml keeps a misspelled field and a reference to a missing job without a word, and its offline
`_validate()` passes both, so the strict schema loads and the binding check here do what it does not. Each test
says what a user of `python azureml/run_pipeline.py` (or `az ml job create`) would meet if it failed.
"""

import ast
import copy
import json
import logging
import re
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path

import pytest
from marshmallow import RAISE, ValidationError
from marshmallow.warnings import Marshmallow4Warning

from app.contract import METADATA_FILE
from tests.support.azureml_definitions import (
    COMMAND_PLACEHOLDER,
    COMPONENT_NAMES,
    COMPONENT_YAMLS,
    COMPUTE_YAML,
    CONDA_YAML,
    ENVIRONMENT_YAML,
    PARENT_REFERENCE,
    PIPELINE_YAML,
    REPO,
    node_component_path,
    read_yaml,
    snapshot_files,
)
from tests.support.azureml_run import aml_run
from tests.support.paths import MODEL_DIR
from training.evaluate import figure
from training.fonts import FONT_DIR, FONTS
from training.gates import GATE
from training.styles import STYLE_SET_FILE

with warnings.catch_warnings():
    warnings.simplefilter("ignore", Marshmallow4Warning)  # about the SDK's own schema classes, at import
    from azure.ai.ml import Input, dsl, load_component, load_compute, load_environment, load_job
    from azure.ai.ml._schema.assets.environment import EnvironmentSchema
    from azure.ai.ml._schema.component.command_component import CommandComponentSchema
    from azure.ai.ml._schema.compute.aml_compute import AmlComputeSchema
    from azure.ai.ml._schema.pipeline.component_job import CommandSchema
    from azure.ai.ml._schema.pipeline.pipeline_job import PipelineJobSchema
    from azure.ai.ml._schema.pipeline.settings import PipelineJobSettingsSchema
    from azure.ai.ml.constants._common import BASE_PATH_CONTEXT_KEY

# Pipeline inputs a run adds and pipeline.yml binds without declaring (azureml/aml_run/definitions.py): a
# pipeline job's input cannot be optional, and the SDK refuses one without a value. Only an optional component
# input may be bound to one.
RUN_INPUTS = aml_run.definitions.RUN_INPUTS
PIPELINE_GATES = aml_run.settings.PIPELINE_GATES  # the evaluate step's gates: training/gates.py's
FEEDBACK_FLAG = "$[[--feedback ${{inputs.feedback}}]]"  # Azure ML's syntax for an optional input's argument
COMMAND_FLAG = re.compile(r"(?<![^\s\[])(--[\w-]+)")  # an option in a command: "--handwriting", "$[[--epochs"
# What each component runs: `python -m training.<module> [<subcommand>]`.
COMMANDS = {"prep": "training.prep", "styles": "training.styles", "train": "training.train digits",
            "detector": "training.train detector", "evaluate": "training.evaluate"}
TRAINING_STEPS = ("train", "detector")

# marshmallow 3.26 warns about how the SDK's schema classes are written, each time they are used.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


def binding_problems(pipeline: dict) -> list[str]:
    """What in the pipeline refers to a job, input or output that does not exist, or leaves one unbound."""
    problems, earlier_jobs, used_inputs, bound_outputs = [], {}, set(), []
    for job_name, node in pipeline["jobs"].items():
        component = read_yaml(node_component_path(node))
        for kind in ("inputs", "outputs"):
            for name, value in (node.get(kind) or {}).items():
                if name not in (component.get(kind) or {}):
                    problems.append(f"jobs.{job_name}.{kind}.{name}: not an {kind[:-1]} of its component")
                if not (isinstance(value, str) and value.startswith("${{")):
                    continue
                optional = kind == "inputs" and (component.get("inputs") or {}).get(name, {}).get("optional")
                match = PARENT_REFERENCE.match(value)
                if not match:
                    problems.append(f"jobs.{job_name}.{kind}.{name}: {value} is not a reference to the parent")
                elif match["input"] and (kind != "inputs" or not (
                        match["input"] in pipeline["inputs"] or (match["input"] in RUN_INPUTS and optional))):
                    problems.append(f"jobs.{job_name}.{kind}.{name}: {value}: no such pipeline input")
                elif match["output"] and (kind != "outputs" or match["output"] not in pipeline["outputs"]):
                    problems.append(f"jobs.{job_name}.{kind}.{name}: {value}: no such pipeline output")
                elif match["job"] and (match["job"] not in earlier_jobs
                                       or match["job_output"] not in earlier_jobs[match["job"]]):
                    problems.append(f"jobs.{job_name}.{kind}.{name}: {value}: no such output of an earlier job")
                used_inputs.add(match and match["input"])
                bound_outputs.append(match and match["output"])
        for name, spec in (component.get("inputs") or {}).items():
            if "default" not in spec and not spec.get("optional") and name not in (node.get("inputs") or {}):
                problems.append(f"jobs.{job_name}.inputs.{name}: required by its component, not bound")
        earlier_jobs[job_name] = set(component.get("outputs") or {})
    problems += [f"inputs.{name}: used by no job" for name in pipeline["inputs"]
                 if name not in used_inputs]
    problems += [f"outputs.{name}: bound {bound_outputs.count(name)} times, expected once"
                 for name in pipeline["outputs"] if bound_outputs.count(name) != 1]
    return problems


def strict_load(schema, path: Path, data: dict | None = None):
    """Load with the SDK's schema, refusing unknown fields (its loaders keep them silently)."""
    context = {BASE_PATH_CONTEXT_KEY: path.parent}
    return schema(context=context, unknown=RAISE).load(read_yaml(path) if data is None else data)


def requirement_pins() -> dict[str, str]:
    """name -> version from requirements.txt and requirements-dev.txt."""
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (REPO / name).read_text().splitlines():
            requirement = line.split("#")[0].split(";")[0].strip()
            if "==" in requirement:
                package, version = requirement.split("==")
                pins[package.strip().lower()] = version.strip()
    return pins


# --- every YAML loads, strictly and quietly ---

@pytest.mark.parametrize("path, load", [
    (COMPUTE_YAML, load_compute), (ENVIRONMENT_YAML, load_environment), (PIPELINE_YAML, load_job),
    *[(path, load_component) for path in COMPONENT_YAMLS.values()],
], ids=lambda value: value.name if isinstance(value, Path) else "")
def test_loads_with_the_sdk_without_warnings(path, load, caplog):
    """A warning while loading is the SDK dropping or guessing something: the run would not do what the file says."""
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        load(path)
    caught = [w for w in caught if not issubclass(w.category, Marshmallow4Warning)]  # about the SDK's classes
    records = [r for r in caplog.records if r.name != "azure.ai.ml._utils._experimental"]  # ditto
    assert not caught and not records, [str(w.message) for w in caught] + [r.getMessage() for r in records]


def test_every_yaml_names_a_current_v2_schema():
    """Editors and `az ml` check a file against its $schema: a wrong or v1 one misleads whoever edits it."""
    schemas = {"amlCompute", "environment", "pipelineJob", "commandComponent"}
    for path in [COMPUTE_YAML, ENVIRONMENT_YAML, PIPELINE_YAML, *COMPONENT_YAMLS.values()]:
        assert path.read_text().startswith("$schema: "), f"{path}: $schema first"
        match = re.fullmatch(r"https://azuremlschemas\.azureedge\.net/latest/(\w+)\.schema\.json",
                             read_yaml(path)["$schema"])
        assert match and match[1] in schemas, path


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_components_have_no_unknown_fields(name):
    """A misspelled field is dropped silently by the SDK: the step would run without it."""
    strict_load(CommandComponentSchema, COMPONENT_YAMLS[name])


def test_environment_and_compute_have_no_unknown_fields():
    """As above: a misspelled field would leave the cluster or the image other than the file says."""
    strict_load(EnvironmentSchema, ENVIRONMENT_YAML)
    strict_load(AmlComputeSchema, COMPUTE_YAML)


def test_pipeline_has_no_unknown_fields():
    """As above, for the pipeline, its nodes and its settings (which the pipeline schema lets through)."""
    pipeline = read_yaml(PIPELINE_YAML)
    strict_load(PipelineJobSchema, PIPELINE_YAML)
    for node in pipeline["jobs"].values():
        strict_load(CommandSchema, PIPELINE_YAML, node)
    PipelineJobSettingsSchema(unknown=RAISE).load(pipeline["settings"])


@pytest.mark.parametrize("path, schema, misspell", [
    (COMPONENT_YAMLS["train"], CommandComponentSchema, lambda data: data.update(commandd=data.pop("command"))),
    (ENVIRONMENT_YAML, EnvironmentSchema, lambda data: data.update(conda_files=data.pop("conda_file"))),
    (COMPUTE_YAML, AmlComputeSchema, lambda data: data.update(min_instance=data.pop("min_instances"))),
    (PIPELINE_YAML, PipelineJobSchema, lambda data: data.update(job=data.pop("jobs"))),
], ids=["component", "environment", "compute", "pipeline"])
def test_the_strict_load_refuses_a_misspelled_field(path, schema, misspell):
    """The checks above would pass a misspelled file if the strict load let unknown fields through."""
    data = read_yaml(path)
    misspell(data)
    with pytest.raises(ValidationError, match="Unknown field"):
        strict_load(schema, path, data)


# --- the pipeline: valid, wired to things that exist, stops at the first failed step ---

def test_pipeline_validates_with_the_sdk():
    """run_pipeline.py refuses to submit a pipeline the SDK's offline check fails."""
    result = load_job(PIPELINE_YAML)._validate()
    assert result.passed, result.error_messages


def test_pipeline_bindings_refer_to_what_exists():
    """A binding to a missing job, input or output passes the SDK's check and fails on Azure ML, after the
    cluster started."""
    assert binding_problems(read_yaml(PIPELINE_YAML)) == []


@pytest.mark.parametrize("break_it, problem", [
    (lambda p: p["jobs"]["train"]["inputs"].update(data="${{parent.jobs.prepp.outputs.prepared}}"),
     "jobs.train.inputs.data"),
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(data="${{parent.jobs.prep.outputs.prepped}}"),
     "jobs.evaluate.inputs.data"),
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(min_accuracy="${{parent.inputs.min_acc}}"),
     "jobs.evaluate.inputs.min_accuracy"),
    (lambda p: p["jobs"]["detector"]["outputs"].update(model="${{parent.outputs.model}}"),
     "jobs.detector.outputs.model"),
    (lambda p: p["jobs"]["train"]["inputs"].update(epoch="${{parent.inputs.epochs}}"), "jobs.train.inputs.epoch"),
    (lambda p: p["jobs"]["evaluate"]["inputs"].pop("model"), "jobs.evaluate.inputs.model"),
    (lambda p: p["jobs"]["detector"]["inputs"].pop("digits"), "jobs.detector.inputs.digits"),
    (lambda p: p["jobs"]["train"]["inputs"].pop("handwriting"), "jobs.train.inputs.handwriting"),
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(handwriting="${{parent.inputs.raw_writers}}"),
     "jobs.evaluate.inputs.handwriting"),
    (lambda p: p["inputs"].update(seed=1), "inputs.seed"),
    (lambda p: p["jobs"]["prep"]["inputs"].update(raw="${{parent.jobs.evaluate.outputs.report}}"),
     "jobs.prep.inputs.raw"),  # a later job's output: a cycle
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(feedback="${{parent.inputs.correction}}"),
     "jobs.evaluate.inputs.feedback"),
    (lambda p: p["jobs"]["train"]["inputs"].update(data="${{parent.inputs.corrections}}"),
     "jobs.train.inputs.data"),  # a run's input, left out when there are no corrections: not for a required input
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(min_accuracy="${{parent.inputs.epochs}}"),
     "jobs.evaluate.inputs.min_accuracy"),  # a run's input, left out without --epochs: not for a gate
], ids=["job", "job output", "pipeline input", "pipeline output", "component input", "unbound input",
        "unbound digits", "unbound handwriting", "handwriting misspelled", "unused pipeline input", "later job",
        "run input misspelled", "run input for a required input", "epochs for a gate"])
def test_the_binding_check_finds_what_the_sdk_lets_through(break_it, problem):
    """The check above would let these through, and each fails only on Azure ML, if it missed them."""
    pipeline = copy.deepcopy(read_yaml(PIPELINE_YAML))
    break_it(pipeline)
    assert any(found.startswith(problem) for found in binding_problems(pipeline)), binding_problems(pipeline)


def test_pipeline_stops_at_the_first_failed_step():
    """A failed gate must stop the run: with continue_on_step_failure the model would be registered anyway."""
    pipeline = load_job(PIPELINE_YAML)
    assert pipeline.settings.continue_on_step_failure is False
    assert read_yaml(PIPELINE_YAML)["settings"]["continue_on_step_failure"] is False


def test_the_registered_output_is_the_detector_joined_to_the_train_steps_digits_network():
    """The shipped model's recipe: train makes the digits network, detector is given it as --digits, evaluate
    gates the detector's model and run_pipeline.py registers that one. Another wiring ships a model that never
    says "not a digit", or one nobody gated."""
    jobs = read_yaml(PIPELINE_YAML)["jobs"]
    assert node_component_path(jobs["train"]) == COMPONENT_YAMLS["train"]
    assert node_component_path(jobs["detector"]) == COMPONENT_YAMLS["detector"]
    assert "outputs" not in jobs["train"]
    assert jobs["detector"]["inputs"]["digits"] == "${{parent.jobs.train.outputs.model}}"
    assert jobs["detector"]["outputs"]["model"] == "${{parent.outputs.trained_model}}"
    assert jobs["evaluate"]["inputs"]["model"] == "${{parent.jobs.detector.outputs.model}}"
    assert "--digits ${{inputs.digits}} " in read_yaml(COMPONENT_YAMLS["detector"])["command"]


def test_every_step_reads_the_style_set_the_styles_step_writes():
    """train, detector and evaluate read style_set.npz from the styles step: another path fails them on Azure ML."""
    pipeline = read_yaml(PIPELINE_YAML)
    assert "inputs" not in pipeline["jobs"]["styles"]  # built from the code snapshot alone
    assert read_yaml(COMPONENT_YAMLS["styles"])["command"].endswith(f"--out ${{{{outputs.styles}}}}/{STYLE_SET_FILE}")
    for name in (*TRAINING_STEPS, "evaluate"):
        assert pipeline["jobs"][name]["inputs"]["styles"] == "${{parent.jobs.styles.outputs.styles}}"
        assert f"--styles ${{{{inputs.styles}}}}/{STYLE_SET_FILE}" in read_yaml(COMPONENT_YAMLS[name])["command"]


# --- the handwriting: a required input of train, detector and evaluate, the handwriting data asset ---

def test_the_pipeline_reads_the_handwriting_data_asset_mounted_read_only():
    """The pipeline's default data is the asset run_pipeline.py uploads, under the name it uses; `az ml job
    create` reads its latest version."""
    inputs = read_yaml(PIPELINE_YAML)["inputs"]
    handwriting_name = aml_run.settings.parse_args(["--dry-run"], {}).handwriting_name  # run_pipeline.py's default
    assert inputs[aml_run.definitions.HANDWRITING_INPUT] == {
        "type": "uri_folder", "path": f"azureml:{handwriting_name}@latest", "mode": "ro_mount"}
    assert {key: inputs["raw_mnist"][key] for key in ("type", "mode")} == {"type": "uri_folder", "mode": "ro_mount"}


@pytest.mark.parametrize("name", [*TRAINING_STEPS, "evaluate"])
def test_every_step_gets_the_handwriting_folder_always(name):
    """Without the handwriting, training would make a model that never says "not a digit", and evaluate would
    skip the writers' and the negatives' gates: the input is required and always passed."""
    spec = read_yaml(COMPONENT_YAMLS[name])["inputs"]["handwriting"]
    assert spec["type"] == "uri_folder" and not spec.get("optional") and "default" not in spec
    command = read_yaml(COMPONENT_YAMLS[name])["command"]
    assert "--handwriting ${{inputs.handwriting}} " in command and "$[[--handwriting" not in command
    assert read_yaml(PIPELINE_YAML)["jobs"][name]["inputs"]["handwriting"] == "${{parent.inputs.handwriting}}"


# --- the gates: training/gates.py's table, the evaluate component's inputs ---

def test_the_evaluate_components_gates_are_the_tables():
    """Each gate of training/gates.py (but those needing a model in service, which the pipeline has not) is an
    input of the evaluate step with the table's default, passed as --gate NAME=VALUE: a gate missing here would
    go unchecked on Azure ML, a default that differs would gate other than local evaluation does. The pipeline
    binds none, so nothing else restates them."""
    component = read_yaml(COMPONENT_YAMLS["evaluate"])
    gates = {name: spec for name, spec in component["inputs"].items() if name in GATE}
    assert {name: spec["default"] for name, spec in gates.items()} == {
        gate.name: gate.default for gate in PIPELINE_GATES}
    for name, spec in gates.items():
        assert (spec["type"], spec["min"], spec["max"]) == ("number", 0, 1), name
        assert f"--gate {name}=${{{{inputs.{name}}}}} " in component["command"], name
    text = PIPELINE_YAML.read_text()
    assert not [name for name in GATE if name in text], "pipeline.yml restates a gate"


def test_the_shipped_model_meets_every_gate():
    """The pipeline makes the model by the shipped model's recipe: a default gate that the shipped model fails
    would fail every run."""
    shipped = json.loads((MODEL_DIR / METADATA_FILE).read_text())  # the figures evaluate's metrics.json holds
    for gate in PIPELINE_GATES:
        for key in gate.figures:
            value = figure(shipped, key)
            assert (value >= gate.default) if gate.direction == "min" else (value <= gate.default), (gate.name, key)


def test_the_pipeline_credits_the_handwriting_data():
    """CC BY 4.0 asks for credit wherever the data is used: the pipeline's description gives it."""
    description = read_yaml(PIPELINE_YAML)["description"]
    assert "UNIPEN" in description and "UCI" in description and "CC BY 4.0" in description
    assert '"not a digit"' in description


# --- corrections and epochs: optional inputs, bound to the run's inputs when it has them ---

def corrections_pipeline():
    """pipeline.yml with the run inputs run_pipeline.py adds (as `az ml job create --set` would)."""
    override = [{"inputs.corrections": {"type": "uri_folder", "path": "azureml:digit-feedback:0123456789ab"}},
                {"inputs.epochs": 3}, {"inputs.detector_epochs": 2}]
    return load_job(PIPELINE_YAML, params_override=override)


@pytest.mark.parametrize("name", [*TRAINING_STEPS, "evaluate"])
def test_every_step_takes_the_corrections_as_an_optional_feedback_argument(name):
    """Without FEEDBACK_DIR the steps must run without --feedback (no empty argument); with it, each gets the
    run's `corrections`."""
    spec = read_yaml(COMPONENT_YAMLS[name])["inputs"]["feedback"]
    assert spec["type"] == "uri_folder" and spec["optional"] is True and "default" not in spec
    assert read_yaml(PIPELINE_YAML)["jobs"][name]["inputs"]["feedback"] == "${{parent.inputs.corrections}}"
    component = load_component(COMPONENT_YAMLS[name])
    assert FEEDBACK_FLAG in component.command and component.command.count("--feedback") == 1
    result = component._validate()
    assert result.passed, result.error_messages


def test_the_sdk_refuses_an_optional_argument_naming_no_input():
    """A misspelled optional argument would silently never be passed; the SDK's check catches it, which the
    tests above rely on."""
    command = read_yaml(COMPONENT_YAMLS["train"])["command"].replace("inputs.feedback", "inputs.feedbak")
    result = load_component(COMPONENT_YAMLS["train"], params_override=[{"command": command}])._validate()
    assert not result.passed and "inputs.feedbak" in str(result.error_messages)


def test_the_pipeline_validates_with_corrections_and_epochs_and_binds_them_to_their_steps():
    """run_pipeline.py FEEDBACK_DIR=... --epochs 3 --detector-epochs 2: what is submitted gives each step its own."""
    pipeline = corrections_pipeline()
    result = pipeline._validate()
    assert result.passed, result.error_messages
    rest = pipeline._to_rest_object().as_dict()["properties"]  # what is submitted
    assert rest["inputs"]["corrections"]["jobInputType"] == "uri_folder"
    assert rest["inputs"]["corrections"]["uri"].endswith("digit-feedback:0123456789ab")
    for name in (*TRAINING_STEPS, "evaluate"):
        assert rest["jobs"][name]["inputs"]["feedback"]["value"] == "${{parent.inputs.corrections}}"
    assert rest["inputs"]["epochs"] == {"jobInputType": "literal", "value": "3"}
    assert rest["inputs"]["detector_epochs"] == {"jobInputType": "literal", "value": "2"}
    assert rest["jobs"]["train"]["inputs"]["epochs"]["value"] == "${{parent.inputs.epochs}}"
    assert rest["jobs"]["detector"]["inputs"]["epochs"]["value"] == "${{parent.inputs.detector_epochs}}"


def test_without_run_inputs_the_pipeline_is_submitted_as_the_sdk_submits_an_optional_input_left_unset():
    """No `corrections`, `epochs` or `detector_epochs` input at all, and the steps' bindings left as they are:
    the very shape azure-ai-ml's own pipeline builder submits for an optional pipeline input nobody set, so the
    service leaves --feedback and --epochs out and training's own defaults apply."""
    pipeline = load_job(PIPELINE_YAML)
    rest = pipeline._to_rest_object().as_dict()["properties"]
    assert not RUN_INPUTS & set(rest["inputs"])

    train = load_component(COMPONENT_YAMLS["train"])

    @dsl.pipeline(default_compute="cpu-cluster")
    def built(data: Input(type="uri_folder"), corrections: Input(type="uri_folder", optional=True) = None,
              epochs: Input(type="integer", optional=True) = None):
        train(data=data, styles=data, handwriting=data, feedback=corrections, epochs=epochs)

    sdk = built(data=Input(type="uri_folder", path="azureml:mnist:1"))._to_rest_object().as_dict()["properties"]
    [sdk_node] = sdk["jobs"].values()
    assert not RUN_INPUTS & set(sdk["inputs"])
    for name in (*TRAINING_STEPS, "evaluate"):
        assert rest["jobs"][name]["inputs"]["feedback"] == sdk_node["inputs"]["feedback"]
    assert rest["jobs"]["train"]["inputs"]["epochs"] == sdk_node["inputs"]["epochs"]
    assert rest["jobs"]["detector"]["inputs"]["epochs"] == {  # the same shape, bound to the detector's own
        **sdk_node["inputs"]["epochs"], "value": "${{parent.inputs.detector_epochs}}"}


@pytest.mark.parametrize("name", TRAINING_STEPS)
def test_the_epochs_are_trainings_own_unless_a_run_sets_them(name):
    """`epochs` has no default in the YAML: left unset, the command leaves --epochs out and training/train.py's
    default for that command decides, as it does locally."""
    spec = read_yaml(COMPONENT_YAMLS[name])["inputs"]["epochs"]
    assert spec["optional"] is True and "default" not in spec
    assert "$[[--epochs ${{inputs.epochs}}]]" in read_yaml(COMPONENT_YAMLS[name])["command"]


# --- the components run the training package, with the placeholders they declare ---

@cache
def cli_help(command: str) -> str:
    """What `python -m <command> --help` prints, run from the repository root."""
    done = subprocess.run([sys.executable, "-m", *command.split(), "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_component_runs_the_training_commands_with_options_they_take(name):
    """Each step runs the command a user runs locally, from the repository root, and passes only options that
    command takes (argparse would stop the step on Azure ML otherwise)."""
    component = read_yaml(COMPONENT_YAMLS[name])
    assert component["command"].startswith(f"python -m {COMMANDS[name]} ")
    assert (COMPONENT_YAMLS[name].parent / component["code"]).resolve() == REPO
    flags = set(COMMAND_FLAG.findall(component["command"]))
    assert flags and flags <= set(re.findall(r"--[\w-]+", cli_help(COMMANDS[name])))


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_command_uses_exactly_the_declared_inputs_and_outputs(name):
    """A placeholder for an undeclared input fails the step; a declared input never used is a setting that does
    nothing."""
    component = read_yaml(COMPONENT_YAMLS[name])
    used = {(kind, item) for kind, item in COMMAND_PLACEHOLDER.findall(component["command"])}
    declared = {(kind, item) for kind in ("inputs", "outputs") for item in component.get(kind) or {}}
    assert used == declared


def imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports, at its top or inside a function."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def app_files_imported(paths) -> set[str]:
    """The app/ files these files import, and the app/ files those import."""
    found, todo = set(), list(paths)
    while todo:
        for module in imported_modules(todo.pop()):
            file = f"{module.replace('.', '/')}.py"
            if module.startswith("app.") and file not in found:
                found.add(file)
                todo.append(REPO / file)
    return found


def test_code_snapshot_is_the_training_package_its_fonts_and_the_app_modules_it_imports():
    """/.amlignore decides what is uploaded: a module training imports left out fails every step; anything more
    makes a new snapshot (and a new upload) whenever it changes."""
    training = {f"training/{path.name}" for path in (REPO / "training").glob("*.py")}
    fonts = {f"training/fonts/{path.name}" for path in FONT_DIR.iterdir()}  # the fonts, their licences, sources
    assert {f"training/fonts/{path.name}" for path in FONTS.values()} <= fonts
    app = {"app/__init__.py"} | app_files_imported((REPO / "training").glob("*.py"))
    assert {"app/contract.py", "app/classifier.py", "app/preprocess.py"} <= app
    assert snapshot_files() == training | fonts | app, "/.amlignore must let through exactly these files"


# --- the environment and the compute ---

def test_components_name_the_environment_but_not_its_version():
    """The version is written in environment.yml only: run_pipeline.py gives it to every step (tested in
    test_azureml_run_pipeline.py); `az ml job create` runs the latest registered version."""
    environment = read_yaml(ENVIRONMENT_YAML)
    for path in COMPONENT_YAMLS.values():
        assert read_yaml(path)["environment"] == f"azureml:{environment['name']}@latest", path


def test_environment_pins_an_ubuntu_22_04_image_tag():
    """An unpinned image changes under the steps: the same commit would train in another system."""
    image = read_yaml(ENVIRONMENT_YAML)["image"]
    assert re.fullmatch(r"mcr\.microsoft\.com/azureml/openmpi[\d.]+-ubuntu22\.04:\d{8}\.v\d+", image), image


def test_conda_file_has_the_repositorys_python_and_pins():
    """Azure ML trains with the same Python and packages as local training and CI, or its model differs."""
    conda = read_yaml(CONDA_YAML)
    assert "python=3.11" in conda["dependencies"] and "python3.11" in (REPO / ".ci" / "run").read_text()
    pip = next(item["pip"] for item in conda["dependencies"] if isinstance(item, dict))
    conda_pins = dict(line.split("==") for line in pip)
    assert {"tensorflow-cpu", "keras", "numpy", "matplotlib", "pillow", "ai-edge-litert", "pyspng",
            "mlflow-skinny", "azureml-mlflow"} <= set(conda_pins)
    repository_pins = requirement_pins()
    azure_only = {"azureml-mlflow"}  # MLflow's plugin for the workspace: it can only run in Azure ML
    assert {name: repository_pins.get(name) for name in set(conda_pins) - azure_only} == {
        name: pin for name, pin in conda_pins.items() if name not in azure_only}
    serving = (REPO / "requirements.txt").read_text()
    assert "mlflow" not in serving and "azureml" not in serving  # the image has neither


def test_compute_scales_to_zero_and_is_the_pipelines():
    """An idle cluster that does not scale to zero bills every hour; the pipeline must run on this one."""
    compute = load_compute(COMPUTE_YAML)
    assert compute.type == "amlcompute" and compute.min_instances == 0 and compute.max_instances >= 1
    assert 0 < compute.idle_time_before_scale_down <= 1800
    assert read_yaml(PIPELINE_YAML)["settings"]["default_compute"] == f"azureml:{compute.name}"
