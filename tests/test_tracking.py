"""MLflow tracking (training/tracking.py), as a user meets it: `python -m training.train` and `training.evaluate`
run with MLFLOW_TRACKING_URI pointing at a local folder, then MLflow's own client reads what they logged: every
figure of metadata.json and metrics.json, a point per epoch on each training curve, the settings, the gate's
outcome and every plot (the handwriting slice read pre-drawn: tests/support/training.py). Azure ML's jobs log
the same way (it sets MLFLOW_TRACKING_URI); without it nothing is logged and MLflow is never imported.
"""

import json
import math
import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from tests.support.paths import HANDWRITING_SLICE, MNIST_SLICE, MODEL_DIR, REPO, STYLE_SLICE

EPOCHS = 2


def python(*args: str, **env) -> subprocess.CompletedProcess:
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("MLFLOW_")}
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**inherited, **env})


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A small training and an evaluation of it, each logged to a folder: (the folder's URI, model folder, the
    evaluation's folder)."""
    folder = tmp_path_factory.mktemp("tracking")
    uri, model, measured = (folder / "mlruns").as_uri(), folder / "model", folder / "evaluated"
    trained = python("-m", "tests.support.training", "train", "detector", "--digits", str(MODEL_DIR), "--data",
                     str(MNIST_SLICE), "--styles", str(STYLE_SLICE), "--handwriting", str(HANDWRITING_SLICE), "--out",
                     str(model), "--epochs", str(EPOCHS), MLFLOW_TRACKING_URI=uri, MLFLOW_ALLOW_FILE_STORE="true")
    assert trained.returncode == 0, trained.stderr[-3000:]
    evaluated = python("-m", "tests.support.training", "evaluate", "--model", str(model), "--data", str(MNIST_SLICE),
                       "--handwriting", str(HANDWRITING_SLICE), "--served", str(MODEL_DIR), "--out", str(measured),
                       MLFLOW_TRACKING_URI=uri, MLFLOW_ALLOW_FILE_STORE="true")
    assert evaluated.returncode == 1, evaluated.stderr[-3000:]  # a detector of two epochs on the slice: it fails
    return uri, model, measured


def run_named(uri: str, name: str):
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow's own opt-in to a folder
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([experiment.experiment_id for experiment in client.search_experiments()],
                              filter_string=f"tags.mlflow.runName = '{name}'")
    assert len(runs) == 1, [run.info.run_name for run in runs]
    return client, runs[0]


def numbers(tree) -> list[float]:
    """Every number in a JSON tree but those in tables (lists of lists): found here without training/tracking.py."""
    if isinstance(tree, (bool, int, float)):
        return [float(tree)] if math.isfinite(tree) else []
    if isinstance(tree, dict):
        return [number for value in tree.values() for number in numbers(value)]
    if isinstance(tree, list) and not any(isinstance(item, (list, dict)) for item in tree):
        return [number for value in tree for number in numbers(value)]
    return []


def assert_logs_every_figure(logged_metrics: dict, tree: dict):
    """Each number of the file is logged as one metric (values compared as multisets, names aside)."""
    expected = sorted(numbers(tree))
    assert len(expected) > 50
    assert sorted(logged_metrics.values()) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_training_logs_every_figure_of_its_metadata_each_epoch_and_its_plots(logged):
    uri, model, _ = logged
    client, run = run_named(uri, "train")
    metadata = json.loads((model / "metadata.json").read_text())
    curves = metadata["history"]
    assert_logs_every_figure({name: value for name, value in run.data.metrics.items() if name not in curves},
                             {key: value for key, value in metadata.items() if key != "history"})
    assert run.data.metrics["writers_validation.accuracy"] == metadata["writers_validation"]["accuracy"]
    for curve, values in metadata["history"].items():  # loss, accuracy, val_loss, val_accuracy
        points = client.get_metric_history(run.info.run_id, curve)
        assert [point.step for point in points] == list(range(EPOCHS))
        assert [point.value for point in points] == pytest.approx(values, rel=1e-6)
    assert run.data.params["epochs"] == str(EPOCHS) and run.data.params["augmentation.rotation_degrees"] == "10.0"
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert artifacts == {path.name for path in model.glob("*.png")} | {"metadata.json"}
    assert {"training_curves.png", "confusion_matrix.png", "refusals.png"} <= artifacts


def test_evaluation_logs_every_figure_of_its_metrics_the_gate_and_its_plots(logged):
    uri, _, measured = logged
    client, run = run_named(uri, "evaluate")
    metrics = json.loads((measured / "metrics.json").read_text())
    assert run.data.metrics["gate_passed"] == 0.0
    assert_logs_every_figure({name: value for name, value in run.data.metrics.items() if name != "gate_passed"},
                             metrics)
    assert run.data.metrics["served_per_class_accuracy.7"] == metrics["served_per_class_accuracy"]["7"]
    assert "is below the minimum 0.6500 (min_refused)" in run.data.tags["gate"]  # what failed, as it was said
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert artifacts == {path.name for path in measured.glob("*.png")} | {"metrics.json"}


def test_nothing_is_logged_and_mlflow_is_not_loaded_without_a_tracking_uri():
    check = ("import sys, training.tracking as t\n"
             "with t.tracked_run('train') as run: assert run is None\n"
             "assert 'mlflow' not in sys.modules")
    done = python("-c", check)
    assert done.returncode == 0, done.stderr


def test_a_tracking_uri_without_mlflow_installed_is_a_clear_error(tmp_path):
    without = "import sys; sys.modules['mlflow'] = None  # as if not installed\n"
    done = python("-c", without + "import training.tracking as t\nwith t.tracked_run('train'): pass",
                  MLFLOW_TRACKING_URI=(tmp_path / "runs").as_uri())
    assert done.returncode == 1 and "MLFLOW_TRACKING_URI is set but MLflow is not installed" in done.stderr
