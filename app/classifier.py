"""The serving runtime: LiteRT over model.tflite, safe to share between threads.

A LiteRT Interpreter is not thread-safe (concurrent invoke() raises), so one lock serialises the
calls; a forward pass is short next to decoding an image, so requests decoding theirs in parallel rarely
wait on it.

A digits network alone (NUM_DIGITS outputs, no detector joined to it) still serves: predict() appends a zero
"not a digit" column, so everything downstream sees NUM_CLASSES; it answers a digit for every drawing, and
load_classifier says so at start.
"""

import hashlib
import json
import logging
import threading
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from app.contract import (
    INPUT_SHAPE,
    METADATA_FILE,
    NUM_CLASSES,
    NUM_DIGITS,
    TFLITE_FILE,
    check_input,
    check_output,
)

log = logging.getLogger("app.classifier")


class Classifier:
    """Class probabilities for a batch meeting the model contract (app/contract.py). `refuses_non_digits`:
    the model has the "not a digit" class; False for a digits network alone, whose every answer is a digit."""

    def __init__(self, tflite_path: str | Path, num_threads: int = 1):
        self.path = Path(tflite_path)
        self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if tuple(self._input["shape_signature"][1:]) != INPUT_SHAPE or self._input["dtype"] != np.float32:
            raise ValueError(f"{self.path}: input is {self._input['dtype'].__name__} "
                             f"{self._input['shape_signature'].tolist()}, expected float32 [N, 28, 28, 1]")
        width = int(self._output["shape_signature"][-1])
        if width not in (NUM_CLASSES, NUM_DIGITS):
            raise ValueError(f"{self.path}: output {self._output['shape_signature'].tolist()}, expected "
                             f"[N, {NUM_CLASSES}] (the digits 0-9 and \"not a digit\") or [N, {NUM_DIGITS}] "
                             "(a digits network, without \"not a digit\")")
        self.refuses_non_digits = width == NUM_CLASSES
        self._lock = threading.Lock()
        self._batch_size = 0  # the batch size the interpreter's tensors are allocated for

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """float32 [N, 28, 28, 1] in [0, 1] -> float32 [N, 11] probabilities, one per class in CLASS_NAMES."""
        check_input(batch)
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        with self._lock:
            if len(batch) != self._batch_size:
                self._interpreter.resize_tensor_input(self._input["index"], batch.shape)
                self._interpreter.allocate_tensors()
                self._batch_size = len(batch)
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            probabilities = self._interpreter.get_tensor(self._output["index"]).copy()
        if not self.refuses_non_digits:  # a digits network: "not a digit" is never its answer
            probabilities = np.pad(probabilities, ((0, 0), (0, NUM_CLASSES - NUM_DIGITS)))
        return check_output(probabilities, len(batch))

    def self_check(self) -> bool:
        """One forward pass on a blank image gives valid probabilities: the start-up and readiness check."""
        try:
            self.predict(np.zeros((1, *INPUT_SHAPE), np.float32))
            return True
        except Exception:  # a broken interpreter may raise anything: this is a yes or no
            return False

    def predict_many(self, batch: np.ndarray, chunk: int = 500) -> np.ndarray:
        """predict() over a large array in chunks, keeping the interpreter's tensors small."""
        parts = [self.predict(batch[start:start + chunk]) for start in range(0, len(batch), chunk)]
        return np.concatenate(parts) if parts else np.zeros((0, NUM_CLASSES), np.float32)


class ModelError(RuntimeError):
    """The model folder is missing, incomplete or does not match its metadata.json."""


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_classifier(model_dir: str | Path) -> tuple[Classifier, dict]:
    """Check model.tflite against metadata.json (checksum, shapes, one forward pass); return both."""
    model_dir = Path(model_dir)
    metadata_path, tflite_path = model_dir / METADATA_FILE, model_dir / TFLITE_FILE
    for path in (metadata_path, tflite_path):
        if not path.is_file():
            raise ModelError(f"{path} is missing: train a model (the README's \"Train\", ending with python -m "
                             f"training.train detector ... --out {model_dir}) or set MODEL_DIR to a model folder")
    try:
        metadata = json.loads(metadata_path.read_text())
        expected = metadata["files"][TFLITE_FILE]["sha256"]
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(f"{metadata_path} is not a model's metadata ({type(error).__name__}: {error})") from None
    found = sha256_file(tflite_path)
    if found != expected:
        raise ModelError(f"{tflite_path} is corrupt or not the model metadata.json describes: "
                         f"SHA-256 {found[:12]}…, expected {expected[:12]}…")
    try:
        classifier = Classifier(tflite_path)
    except ValueError as error:
        raise ModelError(f"{tflite_path} does not meet the model contract: {error}") from None
    if not classifier.self_check():
        raise ModelError(f"{tflite_path} does not answer a forward pass with valid probabilities")
    if not classifier.refuses_non_digits:
        log.warning(f"{tflite_path} has no \"not a digit\" output (a digits network, without a "
                    "detector): it answers a digit for every drawing, letters and shapes too; join a detector to it "
                    "(python -m training.train detector --digits MODEL_DIR ...) to refuse them",
                    extra={"fields": {"model": str(tflite_path), "refuses_non_digits": False}})
    return classifier, metadata
