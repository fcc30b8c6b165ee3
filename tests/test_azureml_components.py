"""The pipeline run here, step by step, as Azure ML would run it, on the shipped MNIST slice.

Each component's `command` runs as a subprocess in a copy of the code snapshot Azure ML would upload,
with the ${{inputs.x}} / ${{outputs.y}} placeholders replaced the way Azure ML replaces them (mounted
folder paths, literal values, the component's defaults for inputs the pipeline leaves unbound, and a
$[[...]] part left out when an optional input in it has no value), and the steps wired as pipeline.yml
wires them. The styles step draws every template and font of the style set, but only a few times each
(SMALL_COMMANDS); then train runs one epoch on 300 MNIST images, those and the writers' training split,
drawn from the shipped handwriting slice (tests/data/handwriting, the folder the `handwriting` data asset holds,
every 100th recorded character); detector one epoch more on those and the negatives' ("not a digit": letters and
symbols, and a few generated shapes of each kind, SMALL_COMMANDS, from the same slice), joined to train's digits
network; evaluate measures and gates (training/gates.py) on the sets kept out. The pipeline runs as run_pipeline.py
submits it without corrections (no `corrections` input, as without FEEDBACK_DIR); train, detector and evaluate
then run again with a corrections folder written by the app's CorrectionsStore.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.classifier import load_classifier
from app.contract import KERAS_FILE, METADATA_FILE, NOT_A_DIGIT, NUM_DIGITS, TFLITE_FILE
from app.corrections import CorrectionsStore, new_correction
from tests.support.azureml_definitions import (
    COMMAND_PLACEHOLDER,
    COMPONENT_YAMLS,
    PARENT_REFERENCE,
    PIPELINE_YAML,
    node_component_path,
    read_yaml,
    snapshot_files,
)
from tests.support.paths import HANDWRITING_SLICE, MNIST_SLICE, REPO
from training import prep, review
from training.data import MnistError, load_mnist, to_model_input, write_idx
from training.evaluate import figure
from training.fonts import families
from training.gates import GATE
from training.negatives import GENERATED
from training.strokes import read_digits, writer_split
from training.styles import STYLE_SET_FILE, TEMPLATES, load_style_set, split

# The evaluate step's gates and their defaults (training/gates.py's), as Azure ML applies them when unbound.
GATE_DEFAULTS = {name: spec["default"] for name, spec in read_yaml(COMPONENT_YAMLS["evaluate"])["inputs"].items()
                 if name in GATE}
PIPELINE_INPUTS = {"raw_mnist": MNIST_SLICE, "handwriting": HANDWRITING_SLICE, "epochs": 1, "detector_epochs": 1}
NO_GATES = {name: 0.0 if GATE[name].direction == "min" else 1.0 for name in GATE_DEFAULTS}  # none can fail
# The recorded digits of the slice on each side of the split by writer (training/strokes.py), none unreadable.
WRITER_DIGITS = {which: sum(writer_split(sample["writer"]) == which for sample in read_digits(HANDWRITING_SLICE))
                 for which in ("training", "validation")}
WRITERS_FIGURES = {"accuracy", "worst_digit_accuracy", "per_digit_accuracy", "per_dataset_accuracy",
                   "per_source_accuracy", "images", "refused", "confusion_matrix"}  # what writers_validation holds
NEGATIVES_FIGURES = {"refused", "worst_group_refused", "per_group_refused", "per_kind_refused", "images"}
NEGATIVE_GROUPS = {"unseen writers", "unseen characters", "generated", "unseen shapes"}
NODE_INPUTS = {"evaluate": NO_GATES}  # what run_pipeline.py would bind: one epoch on the slice meets no gate
# Keeps the one epoch quick and leaves 300 images to train on (the recipe holds out 5,000): both commands'
# recipes (training/recipe.py) with fewer validation images and smaller batches.
SMALL_TRAINING = ("import functools, training.train as step; "
                  "step.DigitsConfig = functools.partial(step.DigitsConfig, validation_images=100, batch_size=64); "
                  "step.DetectorConfig = functools.partial(step.DetectorConfig, validation_images=100, batch_size=64)")
# The style set and the negatives at their full size take minutes to draw. The steps run the same main() with
# the same arguments, their drawings cut to a few: per template and per font and digit (training/styles.py,
# SIZES); letters and symbols, and drawings of each generated kind (training/negatives.py, SIZES).
SMALL_NEGATIVES = ("import training.negatives as negatives; "
                   "negatives.SIZES.update(training=(100, 2), validation=(40, 3))")
SMALL_COMMANDS = {
    "python -m training.styles ": ("python -c 'import training.styles as styles; "
                                   "styles.SIZES.update(training=(2, 1), validation=(2, 1)); styles.main()' "),
    "python -m training.train ": f"python -c '{SMALL_NEGATIVES}; {SMALL_TRAINING}; raise SystemExit(step.main())' ",
    "python -m training.evaluate ": (f"python -c '{SMALL_NEGATIVES}; import training.evaluate as step; "
                                     "raise SystemExit(step.main())' ")}
# SMALL_NEGATIVES' validation split: up to 40 letters and symbols in each of their two groups (unseen writers,
# unseen characters), 3 drawings of each generated kind.
MOST_KEPT_OUT_NEGATIVES = 2 * 40 + len(GENERATED) * 3

OPTIONAL_PART = re.compile(r"\$\[\[(.*?)\]\]")  # Azure ML's $[[...]]: kept only when its inputs have values

pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")


def render(command: str, inputs: dict, outputs: dict) -> str:
    """The command with its placeholders replaced by values and paths, as Azure ML does before running it."""
    def value(match: re.Match) -> str:
        kind, name = match.groups()
        return shlex.quote(str((inputs if kind == "inputs" else outputs)[name]))

    def optional(match: re.Match) -> str:
        given = all(name in inputs for kind, name in COMMAND_PLACEHOLDER.findall(match[1]) if kind == "inputs")
        return match[1] if given else ""

    return COMMAND_PLACEHOLDER.sub(value, OPTIONAL_PART.sub(optional, command))


def small_component(job_name: str) -> dict:
    """The component pipeline.yml's job runs, its command drawing the style set and the negatives small
    (SMALL_COMMANDS)."""
    component = read_yaml(node_component_path(read_yaml(PIPELINE_YAML)["jobs"][job_name]))
    for module, small in SMALL_COMMANDS.items():
        if component["command"].startswith(module):
            component["command"] = small + component["command"].removeprefix(module)
    return component


def run_component(component: dict, inputs: dict, outputs: dict, snapshot: Path) -> subprocess.CompletedProcess:
    """Run the component's command in the snapshot, its output folders made first (Azure ML mounts them)."""
    for path in outputs.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    defaults = {name: spec["default"] for name, spec in (component.get("inputs") or {}).items() if "default" in spec}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in ("MNIST_DIR", "HANDWRITING_DIR"):  # the command must say where its data is
        env.pop(name, None)
    return subprocess.run(["bash", "-c", render(component["command"], {**defaults, **inputs}, outputs)],
                          cwd=snapshot, env=env, capture_output=True, text=True, timeout=300)


def resolve(binding, outputs_so_far: dict[str, dict[str, Path]]):
    """A node input's value: a ${{parent...}} reference resolved to a pipeline input or an earlier output; None
    for a pipeline input the run does not have (`corrections` without FEEDBACK_DIR)."""
    match = PARENT_REFERENCE.match(binding) if isinstance(binding, str) else None
    if not match:
        return binding
    if match["input"]:
        return PIPELINE_INPUTS.get(match["input"])
    return outputs_so_far[match["job"]][match["job_output"]]


def node_inputs(node: dict, outputs_so_far: dict[str, dict[str, Path]]) -> dict:
    """The values a node's inputs get; an input bound to nothing the run has gets none."""
    resolved = {name: resolve(binding, outputs_so_far) for name, binding in (node.get("inputs") or {}).items()}
    return {name: value for name, value in resolved.items() if value is not None}


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """A copy of just the files Azure ML would upload as the components' code."""
    root = tmp_path_factory.mktemp("snapshot")
    for relative in snapshot_files():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / relative, root / relative)
    return root


@pytest.fixture(scope="module")
def pipeline_run(snapshot, tmp_path_factory):
    """Run every step in pipeline.yml's order and wiring; return each step's result and outputs."""
    work = tmp_path_factory.mktemp("pipeline")
    results, outputs = {}, {}
    for job_name, node in read_yaml(PIPELINE_YAML)["jobs"].items():
        run_node(job_name, node, outputs, results, work, snapshot)
    return results, outputs


def run_node(job_name, node, outputs, results, work, snapshot) -> None:
    """Run one step as pipeline.yml wires it, its outputs under work; it must pass."""
    component = small_component(job_name)
    inputs = {**node_inputs(node, outputs), **NODE_INPUTS.get(job_name, {})}
    outputs[job_name] = {name: work / job_name / name for name in component["outputs"]}
    results[job_name] = run_component(component, inputs, outputs[job_name], snapshot)
    assert results[job_name].returncode == 0, f"{job_name}:\n{results[job_name].stderr[-3000:]}"


def test_prep_writes_the_checked_arrays_the_loader_reads(pipeline_run, mnist_slice):
    """The prep step's mnist.npz holds exactly the raw IDX files' images: the other steps read nothing else."""
    _, outputs = pipeline_run
    prepared = outputs["prep"]["prepared"]
    assert {path.name for path in prepared.iterdir()} == {prep.PREPARED_FILE, prep.SUMMARY_FILE}
    arrays = load_mnist(prepared / prep.PREPARED_FILE)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(arrays, name), getattr(mnist_slice, name))
    summary = json.loads((prepared / prep.SUMMARY_FILE).read_text())
    assert summary["sha256"] == mnist_slice.checksums
    assert sum(summary["train_per_digit"]) == 400 and sum(summary["test_per_digit"]) == 200


def test_styles_writes_every_template_and_font_of_each_split(pipeline_run):
    """The styles step draws every template and font, each in its split: a missing one would train or gate
    without it."""
    _, outputs = pipeline_run
    folder = outputs["styles"]["styles"]
    assert [path.name for path in folder.iterdir()] == [STYLE_SET_FILE]
    for which, data in load_style_set(folder / STYLE_SET_FILE).items():
        expected = {f"template {name}" for name in TEMPLATES if split(name) == which}
        expected |= {f"font {name}" for name in families(which)}
        assert set(data["styles"]) == expected, which
        assert set(data["labels"]) == set(range(10)), which


def test_train_writes_a_digits_model_folder_the_app_accepts(pipeline_run):
    """The train step's output is a digits network the app's loader accepts, trained on the styles step's set and
    the handwriting given: otherwise the detector step starts from the wrong network."""
    _, outputs = pipeline_run
    model_dir = outputs["train"]["model"]
    assert {KERAS_FILE, TFLITE_FILE, METADATA_FILE, "training_curves.png", "confusion_matrix.png",
            "style_confusion_matrix.png", "writers_confusion_matrix.png"} <= {path.name for path in model_dir.iterdir()}
    _, metadata = load_classifier(model_dir)
    styles = load_style_set(outputs["styles"]["styles"] / STYLE_SET_FILE)
    assert metadata["hyperparameters"]["epochs"] == 1 and metadata["test_images"] == 200
    assert metadata["training"]["style_images"] == len(styles["training"]["labels"])  # the styles step's set
    assert metadata["training"]["writers_images"] == WRITER_DIGITS["training"]  # the handwriting folder given
    assert metadata["training"]["training_images"] == (300 + metadata["training"]["style_images"]
                                                       + metadata["training"]["writers_images"])
    assert "negatives_images" not in metadata["training"] and "negatives_validation" not in metadata
    assert len(metadata["model"]["classes"]) == NUM_DIGITS  # a digits network: nothing to refuse with
    assert metadata["style_validation"]["images"] == len(styles["validation"]["labels"])
    assert WRITERS_FIGURES <= set(metadata["writers_validation"])
    assert metadata["writers_validation"]["images"] == WRITER_DIGITS["validation"]
    assert set(metadata["writers_validation"]["per_dataset_accuracy"]) == {"unipen", "pendigits"}


def test_detector_joins_a_not_a_digit_network_to_trains_digits_network(pipeline_run, mnist_slice):
    """The model registered: train's digits network kept as it is (each drawing the detector lets through gets
    train's digit), a detector trained on the negatives too, measured on those kept out."""
    results, outputs = pipeline_run
    model_dir = outputs["detector"]["model"]
    assert f"--digits {shlex.quote(str(outputs['train']['model']))} " in results["detector"].args[-1]
    assert {path.name for path in model_dir.iterdir()} == {path.name for path in outputs["train"]["model"].iterdir()
                                                           } | {"refusals.png"}
    classifier, metadata = load_classifier(model_dir)
    digits, _ = load_classifier(outputs["train"]["model"])
    assert metadata["training"]["keeps_digits"] and metadata["hyperparameters"]["epochs"] == 1
    assert metadata["training"]["started_from"]["folder"] == str(outputs["train"]["model"])
    assert metadata["training"]["negatives_images"] > 0  # its letters and symbols, and generated shapes
    negatives = metadata["negatives_validation"]  # the figure run_pipeline.py tags as `refused`
    assert NEGATIVES_FIGURES <= set(negatives) and set(negatives["per_group_refused"]) == NEGATIVE_GROUPS
    assert 0 < negatives["images"] <= MOST_KEPT_OUT_NEGATIVES  # drawn small: SMALL_COMMANDS took effect
    assert metadata["data"]["negatives"]["source"] == str(HANDWRITING_SLICE)
    images = to_model_input(mnist_slice.x_test)
    served, read = classifier.predict(images), digits.predict(images)
    assert not digits.refuses_non_digits and not read[:, NOT_A_DIGIT].any()  # train's: a digits network
    assert np.allclose(served[:, :NUM_DIGITS], read[:, :NUM_DIGITS] * (1.0 - served[:, NOT_A_DIGIT:]), atol=1e-4)
    assert served[:, NOT_A_DIGIT].max() > 1e-3  # the detector's own "not a digit"


def test_evaluate_writes_metrics_and_plot_of_the_trained_model(pipeline_run):
    """The evaluate step measures the registered model on the same sets as its metadata.json: run_pipeline.py
    compares the metadata's figures, the gates the metrics'."""
    _, outputs = pipeline_run
    report = outputs["evaluate"]["report"]
    plots = {"confusion_matrix.png", "style_confusion_matrix.png", "writers_confusion_matrix.png"}
    assert {path.name for path in report.iterdir()} == {"metrics.json", "refusals.png", *plots}  # with negatives
    for plot in plots:
        assert (report / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((report / "metrics.json").read_text())
    trained = json.loads((outputs["detector"]["model"] / METADATA_FILE).read_text())  # the model registered
    assert metrics["test_images"] == 200
    assert metrics["test_accuracy"] == trained["test_accuracy"]  # the same model.tflite on the same test set
    assert metrics["style_validation"]["accuracy"] == trained["style_validation"]["accuracy"]  # and style set
    # and the real writers kept out: the figure run_pipeline.py reads from metadata.json is the gate's
    assert WRITERS_FIGURES <= set(metrics["writers_validation"])
    assert metrics["writers_validation"]["images"] == WRITER_DIGITS["validation"]
    for key in ("accuracy", "worst_digit_accuracy", "per_digit_accuracy", "refused"):
        assert metrics["writers_validation"][key] == trained["writers_validation"][key], key
    # and the negatives kept out: the same drawings (fixed seeds), so the same figures
    assert NEGATIVES_FIGURES <= set(metrics["negatives_validation"])
    for key in ("images", "refused", "worst_group_refused", "per_group_refused"):
        assert metrics["negatives_validation"][key] == trained["negatives_validation"][key], key
    assert metrics["refused"] == trained["refused"]  # MNIST's test digits answered "not a digit"


def test_every_step_is_given_the_handwriting_folder_and_evaluate_the_gates(pipeline_run):
    """train, detector and evaluate each read the handwriting data asset's folder, and evaluate gets each gate as
    its own --gate: a gate the command dropped would never fail a run."""
    results, _ = pipeline_run
    for name in ("train", "detector", "evaluate"):
        assert f"--handwriting {shlex.quote(str(HANDWRITING_SLICE))} " in results[name].args[-1], name
    for name, bound in NO_GATES.items():
        assert f"--gate {name}={bound} " in results["evaluate"].args[-1], name


def test_evaluate_gates_fail_past_their_bounds(pipeline_run, snapshot, tmp_path):
    """Each gate of the evaluate step, set just past the trained model's figure, fails the step and is named (the
    others passing); at the figures it passes; at training/gates.py's defaults one epoch on the slice fails.
    Otherwise a model below a gate would be registered and shipped."""
    _, outputs = pipeline_run
    component = small_component("evaluate")
    metrics = json.loads((outputs["evaluate"]["report"] / "metrics.json").read_text())
    inputs = {"model": outputs["detector"]["model"], "data": outputs["prep"]["prepared"],
              "styles": outputs["styles"]["styles"], "handwriting": HANDWRITING_SLICE}
    at = {name: (min if GATE[name].direction == "min" else max)(figure(metrics, key) for key in GATE[name].figures)
          for name in GATE_DEFAULTS}

    def gate(label, **bounds):
        return run_component(component, {**inputs, **at, **bounds}, {"report": tmp_path / label}, snapshot)

    passed = gate("at")
    assert passed.returncode == 0, passed.stderr[-2000:]
    for name, value in at.items():
        past = value + 0.005 if GATE[name].direction == "min" else value / 2
        if past > 1 or past == value:  # a figure at 1 (or a maximum at 0) cannot be missed
            continue
        failed = gate(name, **{name: round(past, 6)})
        assert failed.returncode == 1, (name, failed.stderr[-2000:])
        named = [line for line in failed.stderr.splitlines() if line.endswith(")") and " is " in line]
        assert named and all(line.endswith(f"({name})") for line in named), (name, named)
    default = gate("default", **GATE_DEFAULTS)
    assert metrics["test_accuracy"] < GATE_DEFAULTS["min_accuracy"] and default.returncode == 1
    assert "(min_accuracy)" in default.stderr and "(min_writer_accuracy)" in default.stderr
    assert (tmp_path / "default" / "metrics.json").is_file()  # the failed step keeps its evidence


# --- corrections: train and evaluate with and without their optional `feedback` ---

def corrections_folder(folder: Path, served_right: bool, mnist_slice) -> Path:
    """60 records written by the app's CorrectionsStore and accepted in review (training.review): MNIST test digits
    with a wrong digit meant (so no model learns them), the model in service's answer the digit meant
    (served_right) or another one."""
    store = CorrectionsStore(folder, max_waiting=1000)
    names = []
    for index, (picture, label) in enumerate(zip(mnist_slice.x_test[:60], mnist_slice.y_test[:60], strict=True)):
        meant = (int(label) + 1 + index % 9) % 10  # never the digit drawn
        answered = meant if served_right else (meant + 1) % 10
        names.append(store.keep(new_correction(picture, meant, answered, 0.9, "0" * 64)))
    moved, problems = review.decide(folder, names, [])
    assert moved["accepted"] == 60 and not problems, problems
    return folder


@pytest.fixture(scope="module")
def corrections_run(pipeline_run, snapshot, tmp_path_factory, mnist_slice):
    """Train, detector and evaluate again as pipeline.yml wires them, now with `corrections`: a folder whose model
    in service answered every record as meant, so a new model can only be worse on its kept-out records."""
    _, pipeline_outputs = pipeline_run
    work = tmp_path_factory.mktemp("corrections")
    folder = corrections_folder(work / "feedback", served_right=True, mnist_slice=mnist_slice)
    PIPELINE_INPUTS["corrections"] = folder
    try:
        results, outputs = {}, {name: pipeline_outputs[name] for name in ("prep", "styles")}
        pipeline = read_yaml(PIPELINE_YAML)
        for job_name in ("train", "detector", "evaluate"):
            node = pipeline["jobs"][job_name]
            component = small_component(job_name)
            inputs = {**node_inputs(node, outputs), **NODE_INPUTS.get(job_name, {})}
            outputs[job_name] = {name: work / job_name / name for name in component["outputs"]}
            results[job_name] = run_component(component, inputs, outputs[job_name], snapshot)
    finally:
        del PIPELINE_INPUTS["corrections"]
    for name in ("train", "detector"):
        assert results[name].returncode == 0, f"{name}:\n{results[name].stderr[-3000:]}"
    return results, outputs, folder


def test_without_corrections_train_and_evaluate_run_without_the_feedback_argument(pipeline_run):
    """Without FEEDBACK_DIR no step gets --feedback (nor a `$[[` left in its command) and nothing measures them."""
    results, outputs = pipeline_run
    for name in ("train", "detector", "evaluate"):
        assert "--feedback" not in results[name].args[-1] and "$[[" not in results[name].args[-1], name
    assert "feedback_validation" not in json.loads((outputs["detector"]["model"] / METADATA_FILE).read_text())
    assert "feedback_validation" not in json.loads((outputs["evaluate"]["report"] / "metrics.json").read_text())


def test_with_corrections_train_and_evaluate_get_the_folder(corrections_run):
    """With FEEDBACK_DIR every step reads the corrections' folder and measures their kept-out split."""
    results, outputs, folder = corrections_run
    for name in ("train", "detector", "evaluate"):
        assert f"--feedback {shlex.quote(str(folder))}" in results[name].args[-1], name
    assert "feedback_validation" in json.loads((outputs["detector"]["model"] / METADATA_FILE).read_text())
    assert "feedback_validation" in json.loads((outputs["evaluate"]["report"] / "metrics.json").read_text())


def test_the_evaluate_gate_refuses_a_model_worse_than_the_one_in_service_on_the_kept_out_corrections(
        corrections_run, snapshot, tmp_path, mnist_slice):
    """The evaluate step fails a model worse than the one in service on the kept-out corrections, and passes it
    when the model in service was worse still: the gate that stops corrections from making the model worse."""
    results, outputs, _ = corrections_run
    assert results["evaluate"].returncode == 1, results["evaluate"].stderr[-2000:]  # the model in service: all right

    component = small_component("evaluate")
    served_wrong = corrections_folder(tmp_path / "feedback", served_right=False, mnist_slice=mnist_slice)
    inputs = {"model": outputs["detector"]["model"], "data": outputs["prep"]["prepared"],
              "styles": outputs["styles"]["styles"], "handwriting": HANDWRITING_SLICE, **NO_GATES,
              "feedback": served_wrong}
    passed = run_component(component, inputs, {"report": tmp_path / "report"}, snapshot)
    assert passed.returncode == 0, passed.stderr[-2000:]  # the model in service: none right


def test_without_a_value_the_epochs_are_left_to_training():
    """train's command without `epochs` leaves --epochs out, so training/train.py's own default decides, as Azure
    ML runs it when the pipeline gives none."""
    command = read_yaml(COMPONENT_YAMLS["train"])["command"]
    inputs = {"data": "/mnt/prepared", "styles": "/mnt/styles", "handwriting": "/mnt/handwriting"}
    rendered = render(command, inputs, {"model": "/mnt/model"})
    assert "--epochs" not in rendered and "$[[" not in rendered and "${{" not in rendered
    assert "--epochs 7" in render(command, {**inputs, "epochs": 7}, {"model": "/mnt/model"})


def test_prep_refuses_data_missing_a_digit(tmp_path, mnist_slice):
    """A broken MNIST data asset stops the prep step, before any training."""
    raw = tmp_path / "raw"
    shutil.copytree(MNIST_SLICE, raw)
    labels = mnist_slice.y_test.copy()
    labels[labels == 8] = 3
    write_idx(raw / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(MnistError, match="the test split holds no image of digit"):
        prep.main(["--data", str(raw), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_prep_refuses_a_broken_file(tmp_path):
    """Likewise for a file that is not IDX, named."""
    raw = tmp_path / "raw"
    shutil.copytree(MNIST_SLICE, raw)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip, not IDX")
    with pytest.raises(MnistError, match="train-images-idx3-ubyte.gz"):
        prep.main(["--data", str(raw), "--out", str(tmp_path / "out")])
