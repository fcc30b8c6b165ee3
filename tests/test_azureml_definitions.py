"""The Azure ML YAML: loads with azure-ai-ml, strictly, without warnings; wired to things that exist; pinned.

azure-ai-ml keeps a misspelled field and a reference to a missing job without a word, and its offline
`_validate()` passes both, so the strict schema loads and the binding check here do what it does not.
"""

import ast
import copy
import json
import logging
import re
import warnings
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
from training.evaluate import MAX_DIGITS_REFUSED
from training.fonts import FONT_DIR, FONTS
from training.negatives import CHARACTER_FILES
from training.strokes import DIGIT_FILES
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
FEEDBACK_FLAG = "$[[--feedback ${{inputs.feedback}}]]"  # Azure ML's syntax for an optional input's argument
HANDWRITING_FILES = (*DIGIT_FILES.values(), *CHARACTER_FILES.values())  # what the handwriting folder holds
REFUSAL_GATES = (("min_refused", "--min-refused"), ("max_digits_refused", "--max-digits-refused"))
COMMAND_FLAG = re.compile(r"(?<![^\s\[])(--[\w-]+)")  # an option in a command: "--writers", "$[[--epochs"

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
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        load(path)
    caught = [w for w in caught if not issubclass(w.category, Marshmallow4Warning)]  # about the SDK's classes
    records = [r for r in caplog.records if r.name != "azure.ai.ml._utils._experimental"]  # ditto
    assert not caught and not records, [str(w.message) for w in caught] + [r.getMessage() for r in records]


def test_every_yaml_names_a_current_v2_schema():
    schemas = {"amlCompute", "environment", "pipelineJob", "commandComponent"}
    for path in [COMPUTE_YAML, ENVIRONMENT_YAML, PIPELINE_YAML, *COMPONENT_YAMLS.values()]:
        assert path.read_text().startswith("$schema: "), f"{path}: $schema first"
        match = re.fullmatch(r"https://azuremlschemas\.azureedge\.net/latest/(\w+)\.schema\.json",
                             read_yaml(path)["$schema"])
        assert match and match[1] in schemas, path


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_components_have_no_unknown_fields(name):
    strict_load(CommandComponentSchema, COMPONENT_YAMLS[name])


def test_environment_and_compute_have_no_unknown_fields():
    strict_load(EnvironmentSchema, ENVIRONMENT_YAML)
    strict_load(AmlComputeSchema, COMPUTE_YAML)


def test_pipeline_has_no_unknown_fields():
    pipeline = read_yaml(PIPELINE_YAML)
    strict_load(PipelineJobSchema, PIPELINE_YAML)
    # The pipeline schema lets unknown fields through in its nodes and settings: check those too.
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
    data = read_yaml(path)
    misspell(data)
    with pytest.raises(ValidationError, match="Unknown field"):
        strict_load(schema, path, data)


def test_the_strict_node_and_settings_checks_refuse_a_misspelled_field():
    pipeline = read_yaml(PIPELINE_YAML)
    node = pipeline["jobs"]["train"]
    node["input"] = node.pop("inputs")
    with pytest.raises(ValidationError, match="Unknown field"):
        strict_load(CommandSchema, PIPELINE_YAML, node)
    with pytest.raises(ValidationError, match="Unknown field"):
        PipelineJobSettingsSchema(unknown=RAISE).load({"continue_on_step_falure": False})


# --- the pipeline: valid, wired to things that exist, stops at the first failed step ---

def test_pipeline_validates_with_the_sdk():
    result = load_job(PIPELINE_YAML)._validate()
    assert result.passed, result.error_messages


def test_pipeline_bindings_refer_to_what_exists():
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
    (lambda p: p["jobs"]["evaluate"]["inputs"].pop("min_style_accuracy"), "jobs.evaluate.inputs.min_style_accuracy"),
    (lambda p: p["jobs"]["evaluate"]["inputs"].pop("min_accuracy"), "jobs.evaluate.inputs.min_accuracy"),
    (lambda p: p["jobs"]["evaluate"]["inputs"].pop("min_writer_digit_accuracy"),
     "jobs.evaluate.inputs.min_writer_digit_accuracy"),
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(negatives="${{parent.inputs.negative}}"),
     "jobs.evaluate.inputs.negatives"),
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(max_digits_refused="${{parent.inputs.max_digit_refused}}"),
     "jobs.evaluate.inputs.max_digits_refused"),
    (lambda p: p["jobs"]["train"]["inputs"].pop("writers"), "jobs.train.inputs.writers"),
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(writers="${{parent.inputs.raw_writer}}"),
     "jobs.evaluate.inputs.writers"),
    (lambda p: p["inputs"].update(seed=1), "inputs.seed"),
    (lambda p: p["jobs"]["prep"]["inputs"].update(raw="${{parent.jobs.evaluate.outputs.report}}"),
     "jobs.prep.inputs.raw"),  # a later job's output: a cycle
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(feedback="${{parent.inputs.correction}}"),
     "jobs.evaluate.inputs.feedback"),
    (lambda p: p["jobs"]["train"]["inputs"].update(data="${{parent.inputs.corrections}}"),
     "jobs.train.inputs.data"),  # a run's input, left out when there are no corrections: not for a required input
    (lambda p: p["jobs"]["train"]["inputs"].update(writers="${{parent.inputs.corrections}}"),
     "jobs.train.inputs.writers"),  # the real writers are required: never a run's optional input
    (lambda p: p["jobs"]["evaluate"]["inputs"].update(min_accuracy="${{parent.inputs.epochs}}"),
     "jobs.evaluate.inputs.min_accuracy"),  # a run's input, left out without --epochs: not for a required input
], ids=["job", "job output", "pipeline input", "pipeline output", "component input", "unbound input",
        "unbound input without a default", "unbound gate", "unbound writer gate", "negatives misspelled",
        "refusal gate misspelled", "unbound writers",
        "writers input misspelled", "unused pipeline input", "later job", "run input misspelled",
        "run input for a required input", "corrections for the writers", "epochs for a required input"])
def test_the_binding_check_finds_what_the_sdk_lets_through(break_it, problem):
    pipeline = copy.deepcopy(read_yaml(PIPELINE_YAML))
    break_it(pipeline)
    assert any(found.startswith(problem) for found in binding_problems(pipeline)), binding_problems(pipeline)


def test_pipeline_stops_at_the_first_failed_step():
    pipeline = load_job(PIPELINE_YAML)
    assert pipeline.settings.continue_on_step_failure is False
    assert read_yaml(PIPELINE_YAML)["settings"]["continue_on_step_failure"] is False


def test_the_registered_output_is_the_detector_joined_to_the_train_steps_digits_network():
    """As the shipped model is made (docs/model.md, "Train it again"): train learns the digits, detector runs the
    same component again with the negatives and train's model as `digits` (--keep-digits); evaluate gates and
    run_pipeline.py registers the detector's model."""
    jobs = read_yaml(PIPELINE_YAML)["jobs"]
    assert node_component_path(jobs["detector"]) == node_component_path(jobs["train"]) == COMPONENT_YAMLS["train"]
    assert "outputs" not in jobs["train"] and "negatives" not in jobs["train"]["inputs"]
    assert jobs["detector"]["inputs"]["digits"] == "${{parent.jobs.train.outputs.model}}"
    assert jobs["detector"]["outputs"]["model"] == "${{parent.outputs.trained_model}}"
    assert jobs["evaluate"]["inputs"]["model"] == "${{parent.jobs.detector.outputs.model}}"
    assert "digits" not in jobs["train"]["inputs"]
    assert jobs["detector"]["inputs"]["epochs"] == "${{parent.inputs.detector_epochs}}"  # a run's, else its own
    component = read_yaml(COMPONENT_YAMLS["train"])
    assert component["inputs"]["digits"]["type"] == "uri_folder" and component["inputs"]["digits"]["optional"] is True
    assert "$[[--keep-digits ${{inputs.digits}}]]" in component["command"]


def test_train_and_evaluate_read_the_style_set_the_styles_step_writes():
    pipeline = read_yaml(PIPELINE_YAML)
    assert "inputs" not in pipeline["jobs"]["styles"]  # built from the code snapshot alone
    assert read_yaml(COMPONENT_YAMLS["styles"])["command"].endswith(f"--out ${{{{outputs.styles}}}}/{STYLE_SET_FILE}")
    for name in ("train", "detector", "evaluate"):
        assert pipeline["jobs"][name]["inputs"]["styles"] == "${{parent.jobs.styles.outputs.styles}}"
        assert f"--styles ${{{{inputs.styles}}}}/{STYLE_SET_FILE}" in read_yaml(
            node_component_path(pipeline["jobs"][name]))["command"]


# --- the real writers: a required input of train and evaluate, the handwriting data asset ---

def test_the_pipeline_reads_the_handwriting_data_asset_as_it_reads_mnist():
    inputs = read_yaml(PIPELINE_YAML)["inputs"]
    writers_name = aml_run.settings.parse_args(["--dry-run"], {}).writers_name  # run_pipeline.py's default name
    assert writers_name == "handwriting"
    assert inputs["raw_writers"] == {"type": "uri_folder", "path": f"azureml:{writers_name}@latest", "mode": "ro_mount"}
    assert {key: inputs["raw_mnist"][key] for key in ("type", "mode")} == {"type": "uri_folder", "mode": "ro_mount"}
    rest = load_job(PIPELINE_YAML)._to_rest_object().as_dict()["properties"]  # what is submitted
    assert rest["inputs"]["raw_writers"]["jobInputType"] == "uri_folder"
    assert rest["inputs"]["raw_writers"]["mode"] == "ReadOnlyMount"


@pytest.mark.parametrize("name", ["train", "evaluate"])
def test_train_and_evaluate_take_the_real_writers_folder_always(name):
    spec = read_yaml(COMPONENT_YAMLS[name])["inputs"]["writers"]
    assert spec["type"] == "uri_folder" and not spec.get("optional") and "default" not in spec
    assert all(file in spec["description"] for file in HANDWRITING_FILES)
    command = read_yaml(COMPONENT_YAMLS[name])["command"]
    assert "--writers ${{inputs.writers}} " in command
    assert "$[[--writers" not in command and command.count("--writers") == 1  # not optional: always passed
    # The negatives ("not a digit"): the same folder's letters and symbols, an optional input of their own.
    assert "$[[--negatives ${{inputs.negatives}}]]" in command and command.count("--negatives") == 1
    spec = read_yaml(COMPONENT_YAMLS[name])["inputs"]["negatives"]
    assert spec["type"] == "uri_folder" and spec["optional"] is True and "default" not in spec
    assert read_yaml(PIPELINE_YAML)["jobs"][name]["inputs"]["writers"] == "${{parent.inputs.raw_writers}}"
    component = load_component(COMPONENT_YAMLS[name])
    assert component.inputs["writers"].optional is not True
    result = component._validate()
    assert result.passed, result.error_messages


def test_the_detector_and_evaluate_take_the_handwriting_folder_again_as_the_negatives():
    jobs = read_yaml(PIPELINE_YAML)["jobs"]
    for name in ("detector", "evaluate"):
        assert jobs[name]["inputs"]["negatives"] == jobs[name]["inputs"]["writers"] == "${{parent.inputs.raw_writers}}"
    assert "negatives" not in jobs["train"]["inputs"]  # the digits network: the digits only


@pytest.mark.parametrize("name, output", [("train", "model"), ("evaluate", "report")])
def test_the_outputs_say_they_hold_the_writers_confusion_matrix(name, output):
    assert "writers_confusion_matrix.png" in read_yaml(COMPONENT_YAMLS[name])["outputs"][output]["description"]


def test_evaluate_gates_on_the_real_writers_with_the_pipelines_thresholds():
    component = read_yaml(COMPONENT_YAMLS["evaluate"])
    for gate, flag in (("min_writer_accuracy", "--min-writer-accuracy"),
                       ("min_writer_digit_accuracy", "--min-writer-digit-accuracy")):
        assert component["inputs"][gate] == {"type": "number", "min": 0, "max": 1}
        assert f"{flag} ${{{{inputs.{gate}}}}}" in component["command"]
        assert read_yaml(PIPELINE_YAML)["jobs"]["evaluate"]["inputs"][gate] == f"${{{{parent.inputs.{gate}}}}}"
    assert "min_writer_accuracy" not in read_yaml(PIPELINE_YAML)["jobs"]["train"]["inputs"]


def test_evaluate_gates_on_the_refusals_with_the_pipelines_thresholds_which_the_shipped_model_meets():
    """min_refused: each group of the negatives kept out refused at least that share; max_digits_refused: at
    most that share of MNIST's test digits and of the real writers kept out answered "not a digit". The shipped
    model is made by the same recipe: gates it would fail would fail every run."""
    component = read_yaml(COMPONENT_YAMLS["evaluate"])
    pipeline = read_yaml(PIPELINE_YAML)
    for gate, flag in REFUSAL_GATES:
        assert f"$[[{flag} ${{{{inputs.{gate}}}}}]]" in component["command"] and component["command"].count(flag) == 1
        assert pipeline["jobs"]["evaluate"]["inputs"][gate] == f"${{{{parent.inputs.{gate}}}}}"
        assert gate not in pipeline["jobs"]["train"]["inputs"] and gate not in pipeline["jobs"]["detector"]["inputs"]
    assert pipeline["inputs"]["max_digits_refused"] == MAX_DIGITS_REFUSED  # training/evaluate.py's target
    shipped = json.loads((MODEL_DIR / METADATA_FILE).read_text())
    assert shipped["negatives_validation"]["worst_group_refused"] >= pipeline["inputs"]["min_refused"] >= 0.5
    assert max(shipped["refused"], shipped["writers_validation"]["refused"]) <= pipeline["inputs"]["max_digits_refused"]
    rest = load_job(PIPELINE_YAML)._to_rest_object().as_dict()["properties"]  # what is submitted
    for gate, _ in REFUSAL_GATES:
        assert rest["jobs"]["evaluate"]["inputs"][gate]["value"] == f"${{{{parent.inputs.{gate}}}}}"
    for name in ("detector", "evaluate"):
        assert rest["jobs"][name]["inputs"]["negatives"]["value"] == "${{parent.inputs.raw_writers}}"


def test_the_pipeline_says_what_it_trains_and_credits_the_handwriting_data():
    description = read_yaml(PIPELINE_YAML)["description"]
    assert "UNIPEN" in description and "UCI" in description and "CC BY 4.0" in description
    assert '"not a digit"' in description and "letters and symbols" in description
    for gate in ("min_refused", "max_digits_refused"):
        assert gate in description


# --- corrections: an optional input of train and evaluate, bound to the run's `corrections` when it has one ---

def corrections_pipeline():
    """pipeline.yml with the run inputs run_pipeline.py adds (as `az ml job create --set` would)."""
    override = [{"inputs.corrections": {"type": "uri_folder", "path": "azureml:digit-feedback:0123456789ab"}},
                {"inputs.epochs": 3}, {"inputs.detector_epochs": 2}]
    return load_job(PIPELINE_YAML, params_override=override)


@pytest.mark.parametrize("name", ["train", "detector", "evaluate"])
def test_train_and_evaluate_take_the_corrections_as_an_optional_feedback_folder(name):
    spec = read_yaml(node_component_path(read_yaml(PIPELINE_YAML)["jobs"][name]))["inputs"]["feedback"]
    assert spec["type"] == "uri_folder" and spec["optional"] is True and "default" not in spec
    assert read_yaml(PIPELINE_YAML)["jobs"][name]["inputs"]["feedback"] == "${{parent.inputs.corrections}}"
    assert "corrections" not in read_yaml(PIPELINE_YAML)["inputs"]  # a run adds it (RUN_INPUTS)


@pytest.mark.parametrize("name", ["train", "evaluate"])
def test_the_feedback_argument_is_optional_in_the_command_the_sdk_loads(name):
    component = load_component(COMPONENT_YAMLS[name])
    assert FEEDBACK_FLAG in component.command and component.command.count("--feedback") == 1
    assert component.inputs["feedback"].optional is True
    result = component._validate()
    assert result.passed, result.error_messages
    node = load_job(PIPELINE_YAML).jobs[name]  # the component as the pipeline runs it
    assert FEEDBACK_FLAG in node.component.command


def test_the_sdk_refuses_an_optional_argument_naming_no_input():
    command = read_yaml(COMPONENT_YAMLS["train"])["command"].replace("inputs.feedback", "inputs.feedbak")
    result = load_component(COMPONENT_YAMLS["train"], params_override=[{"command": command}])._validate()
    assert not result.passed and "inputs.feedbak" in str(result.error_messages)


def test_the_pipeline_validates_with_corrections_and_binds_them_to_both_steps():
    pipeline = corrections_pipeline()
    result = pipeline._validate()
    assert result.passed, result.error_messages
    rest = pipeline._to_rest_object().as_dict()["properties"]  # what is submitted
    assert rest["inputs"]["corrections"]["jobInputType"] == "uri_folder"
    assert rest["inputs"]["corrections"]["uri"].endswith("digit-feedback:0123456789ab")
    for name in ("train", "detector", "evaluate"):
        assert rest["jobs"][name]["inputs"]["feedback"]["value"] == "${{parent.inputs.corrections}}"
    assert rest["inputs"]["epochs"] == {"jobInputType": "literal", "value": "3"}
    assert rest["inputs"]["detector_epochs"] == {"jobInputType": "literal", "value": "2"}
    assert rest["jobs"]["train"]["inputs"]["epochs"]["value"] == "${{parent.inputs.epochs}}"
    assert rest["jobs"]["detector"]["inputs"]["epochs"]["value"] == "${{parent.inputs.detector_epochs}}"


def test_without_run_inputs_the_pipeline_is_submitted_as_the_sdk_submits_an_optional_input_left_unset():
    """No `corrections`, `epochs` or `detector_epochs` input at all, and the steps' bindings left as they are:
    the very shape azure-ai-ml's own pipeline builder submits for an optional pipeline input nobody set (so the
    service leaves --feedback and --epochs out)."""
    pipeline = load_job(PIPELINE_YAML)
    result = pipeline._validate()
    assert result.passed, result.error_messages
    rest = pipeline._to_rest_object().as_dict()["properties"]
    assert not RUN_INPUTS & set(rest["inputs"])

    train = load_component(COMPONENT_YAMLS["train"])

    @dsl.pipeline(default_compute="cpu-cluster")
    def built(data: Input(type="uri_folder"), corrections: Input(type="uri_folder", optional=True) = None,
              epochs: Input(type="integer", optional=True) = None):
        train(data=data, styles=data, writers=data, feedback=corrections, epochs=epochs)

    sdk = built(data=Input(type="uri_folder", path="azureml:mnist:1"))._to_rest_object().as_dict()["properties"]
    [sdk_node] = sdk["jobs"].values()
    assert not RUN_INPUTS & set(sdk["inputs"])
    for name in ("train", "detector", "evaluate"):
        assert rest["jobs"][name]["inputs"]["feedback"] == sdk_node["inputs"]["feedback"]
    assert rest["jobs"]["train"]["inputs"]["epochs"] == sdk_node["inputs"]["epochs"]
    assert rest["jobs"]["detector"]["inputs"]["epochs"] == {  # the same shape, bound to the detector's own
        **sdk_node["inputs"]["epochs"], "value": "${{parent.inputs.detector_epochs}}"}


@pytest.mark.parametrize("gate", ["min_accuracy", "min_style_accuracy", "min_writer_accuracy",
                                  "min_writer_digit_accuracy", "min_refused", "max_digits_refused"])
def test_the_gates_are_written_once_in_the_pipeline(gate):
    """run_pipeline.py takes its defaults from pipeline.yml; the component has none to disagree with them."""
    assert 0 < read_yaml(PIPELINE_YAML)["inputs"][gate] <= 1
    assert "default" not in read_yaml(COMPONENT_YAMLS["evaluate"])["inputs"][gate]
    assert aml_run.definitions.pipeline_defaults()[gate] == read_yaml(PIPELINE_YAML)["inputs"][gate]


@pytest.mark.parametrize("name, flag", [("epochs", "--epochs"), ("batch_size", "--batch-size"),
                                        ("validation_images", "--validation-images")])
def test_the_training_settings_are_training_s_own(name, flag):
    """train's epochs, batch size and validation images have no default in the YAML: left unset, the command
    leaves the argument out and training/train.py's TrainConfig decides, as it does locally (the detector:
    DETECTOR_DEFAULTS). Only the epochs can be set for a run, each step's as an input the run adds."""
    spec = read_yaml(COMPONENT_YAMLS["train"])["inputs"][name]
    assert spec["optional"] is True and "default" not in spec
    assert f"$[[{flag} ${{{{inputs.{name}}}}}]]" in read_yaml(COMPONENT_YAMLS["train"])["command"]
    assert name not in read_yaml(PIPELINE_YAML)["inputs"]
    jobs = read_yaml(PIPELINE_YAML)["jobs"]
    assert jobs["train"]["inputs"].get(name) == ("${{parent.inputs.epochs}}" if name == "epochs" else None)
    assert jobs["detector"]["inputs"].get(name) == ("${{parent.inputs.detector_epochs}}" if name == "epochs" else None)


# --- the components run the training package, with the placeholders they declare ---

@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_component_runs_the_training_package(name):
    component = read_yaml(COMPONENT_YAMLS[name])
    assert component["command"].startswith(f"python -m training.{name} ")
    assert (COMPONENT_YAMLS[name].parent / component["code"]).resolve() == REPO


def cli_options(path: Path) -> set[str]:
    """The options a training CLI's argparse takes: the "--..." names of every add_argument call in its file."""
    options = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            options.update(arg.value for arg in node.args
                           if isinstance(arg, ast.Constant) and str(arg.value).startswith("--"))
    return options


def unknown_flags(command: str, module: str) -> set[str]:
    """The options a component's command passes that its training module's CLI does not take."""
    return set(COMMAND_FLAG.findall(command)) - cli_options(REPO / "training" / f"{module}.py")


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_every_option_of_the_command_is_one_the_cli_takes(name):
    """The command's options are the CLI's real ones (argparse would stop the step on Azure ML otherwise)."""
    command = read_yaml(COMPONENT_YAMLS[name])["command"]
    assert COMMAND_FLAG.findall(command), command
    assert unknown_flags(command, name) == set()


def test_the_option_check_finds_a_misspelled_option():
    command = read_yaml(COMPONENT_YAMLS["evaluate"])["command"]
    assert unknown_flags(command.replace("--min-refused ", "--min-refusal "), "evaluate") == {"--min-refusal"}
    assert unknown_flags(command.replace("--negatives ", "--negative "), "evaluate") == {"--negative"}
    assert "--negatives" in cli_options(REPO / "training" / "train.py")
    optional = read_yaml(COMPONENT_YAMLS["train"])["command"].replace("$[[--epochs ", "$[[--epoch ")
    assert unknown_flags(optional, "train") == {"--epoch"}  # an optional part's option is checked too


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_command_uses_exactly_the_declared_inputs_and_outputs(name):
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
    image = read_yaml(ENVIRONMENT_YAML)["image"]
    assert re.fullmatch(r"mcr\.microsoft\.com/azureml/openmpi[\d.]+-ubuntu22\.04:\d{8}\.v\d+", image), image


def test_conda_file_has_the_repositorys_python_and_pins():
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
    compute = load_compute(COMPUTE_YAML)
    assert compute.type == "amlcompute" and compute.min_instances == 0 and compute.max_instances >= 1
    assert 0 < compute.idle_time_before_scale_down <= 1800
    assert read_yaml(PIPELINE_YAML)["settings"]["default_compute"] == f"azureml:{compute.name}"
