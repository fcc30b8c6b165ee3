"""Write a trained model as the files the app serves: model.keras, model.tflite, metadata.json."""

import contextlib
import io
import json
import os
import platform
import socket
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path

import keras
import tensorflow as tf

from app.classifier import sha256_file
from app.contract import KERAS_FILE, METADATA_FILE, TFLITE_FILE

LIBRARIES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "ai-edge-litert", "pillow", "matplotlib")


def save_keras(model: keras.Model, path: Path) -> None:
    """Save the architecture and weights only: the optimizer state would triple the file."""
    uncompiled = keras.Model(model.inputs, model.outputs, name=model.name)  # same layers, no optimizer
    uncompiled.save(path)


def to_tflite(model: keras.Model) -> bytes:
    """Convert to a float32 LiteRT flatbuffer (batch dimension left dynamic)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a SavedModel listing otherwise
        return converter.convert()


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape the model, plus Python's."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            pass
    return versions


def training_place() -> dict[str, str]:
    """Where this ran: an Azure ML run (which sets AZUREML_RUN_ID) or a local machine."""
    run_id = os.environ.get("AZUREML_RUN_ID") or os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        return {"platform": "azureml", "run_id": run_id,
                "experiment": os.environ.get("AZUREML_ARM_PROJECT_NAME", "")}
    return {"platform": "local", "host": socket.gethostname()}


def write_model_files(model: keras.Model, out_dir: Path) -> dict[str, dict]:
    """Write model.keras and model.tflite into out_dir; return their sizes and checksums."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_keras(model, out_dir / KERAS_FILE)
    (out_dir / TFLITE_FILE).write_bytes(to_tflite(model))
    return {name: {"sha256": sha256_file(out_dir / name), "bytes": (out_dir / name).stat().st_size}
            for name in (KERAS_FILE, TFLITE_FILE)}


def write_metadata(out_dir: Path, metadata: dict) -> Path:
    """metadata.json, stamped with its creation time, the library versions and the place it ran."""
    metadata = {
        **metadata,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "trained_on": training_place(),
        "libraries": library_versions(),
    }
    path = out_dir / METADATA_FILE
    path.write_text(json.dumps(metadata, indent=1) + "\n")
    return path
