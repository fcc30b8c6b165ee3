"""MLflow tracking for training and evaluation: what Azure ML studio shows of a job (its parameters, a curve per
metric, the gate's figures and the plots), and what any MLflow server or folder shows when MLFLOW_TRACKING_URI
points at it.

Off unless MLFLOW_TRACKING_URI is set: locally nothing changes, and `mlflow` need not be installed. Azure ML sets
it, and MLFLOW_RUN_ID, in every job, so each step logs into its own job; its environment
(azureml/environment/conda.yml) has MLflow's client (mlflow-skinny) and azureml-mlflow, which lets MLflow talk
to the workspace. The serving image has neither.

    MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python -m training.train ...            # an MLflow server
    MLFLOW_TRACKING_URI=file:///tmp/mlruns MLFLOW_ALLOW_FILE_STORE=true python -m training.train ...  # a folder
"""

import math
import os
import re
import unicodedata
from contextlib import contextmanager
from pathlib import Path

TRACKING_URI = "MLFLOW_TRACKING_URI"
PLOTS = "*.png"


def enabled() -> bool:
    return bool(os.environ.get(TRACKING_URI))


@contextmanager
def tracked_run(name: str):
    """The MLflow run this job logs into (Azure ML's own job run when MLFLOW_RUN_ID is set, else a new run called
    `name`), or None when tracking is off."""
    if not enabled():
        yield None
        return
    try:
        import mlflow
    except ImportError:
        raise SystemExit(f"{TRACKING_URI} is set but MLflow is not installed: pip install mlflow-skinny (the "
                         "version in azureml/environment/conda.yml), or unset it") from None
    with mlflow.start_run(run_name=None if os.environ.get("MLFLOW_RUN_ID") else name) as run:
        yield run


def figures(tree, prefix: str = "") -> dict[str, float]:
    """Every number in a metrics tree (metadata.json, metrics.json) as {"writers_validation.accuracy": 0.99}:
    nested keys joined by dots, a list of numbers by index (per_class_accuracy.7). Tables (confusion matrices,
    lists of lists) and text are left to the JSON file, logged whole as an artifact. A character MLflow refuses
    in a name is written as its Unicode name: per_kind_refused.symbols:NUMBER SIGN for "#"."""
    if isinstance(tree, bool):
        return {prefix: float(tree)}
    if isinstance(tree, (int, float)):
        return {prefix: float(tree)} if math.isfinite(tree) else {}
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list) and all(isinstance(item, (int, float)) for item in tree):
        items = enumerate(tree)
    else:
        return {}
    found = {}
    for key, value in items:
        key = re.sub(r"[^A-Za-z0-9_\-. :/]", lambda match: unicodedata.name(match.group(), "CHARACTER"), str(key))
        found.update(figures(value, f"{prefix}.{key}" if prefix else key))
    return found


def log_figures(run, tree: dict, skip: tuple[str, ...] = ()) -> None:
    """Log every number of `tree` (figures) but the top-level keys in `skip` as a metric of `run`."""
    if run is None:
        return
    import mlflow

    found = figures({key: value for key, value in tree.items() if key not in skip})
    names = list(found)
    for start in range(0, len(names), 500):  # MLflow's limit per batch is 1,000 metrics
        mlflow.log_metrics({name: found[name] for name in names[start:start + 500]})


def log_params(run, params: dict) -> None:
    """Log the settings of the run (nested dicts flattened as figures does) as MLflow parameters."""
    if run is None:
        return
    import mlflow

    flat = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{inner}": item for inner, item in value.items()})
        else:
            flat[key] = value
    mlflow.log_params({key: str(value) for key, value in flat.items()})


def log_epoch(run, epoch: int, logs: dict) -> None:
    """One epoch's loss and accuracy (Keras' logs), as a point on each curve."""
    if run is None:
        return
    import mlflow

    mlflow.log_metrics({name: float(value) for name, value in logs.items() if isinstance(value, (int, float))},
                       step=epoch)


def log_folder(run, folder: Path, names: tuple[str, ...]) -> None:
    """Log the plots (PNG) of `folder` and the files `names` (metadata.json, metrics.json) as artifacts."""
    if run is None:
        return
    import mlflow

    for path in sorted(folder.glob(PLOTS)) + [folder / name for name in names if (folder / name).exists()]:
        mlflow.log_artifact(str(path))


def set_tags(run, tags: dict[str, str]) -> None:
    if run is not None:
        import mlflow

        mlflow.set_tags(tags)
