"""The model contract: what every model of this project takes and gives, written down once.

Input:  float32 array of shape [N, 28, 28, 1], values in [0, 1], white ink (1.0) on black (0.0),
        the digit fitted into a 20x20 box and centred by its centre of mass in the 28x28 frame,
        the way MNIST itself was made.
Output: float32 array of shape [N, 11], one probability per class in CLASS_NAMES, each row summing to 1:
        the digits 0-9, then "not a digit" (index NOT_A_DIGIT: a letter, a shape, a scribble, several
        characters). A digits network alone (`python -m training.train digits`) gives [N, NUM_DIGITS]; the
        classifier serves it too, with a zero "not a digit" column, and says so at start (app/classifier.py).

Training (`training.data.to_model_input`), the app's preprocessing, the LiteRT classifier and the
tests all check against the functions here. The model folder holds the files named below, and the
canvas and brush below are the drawing both the app and the style set make.

The words used for the data, the networks, corrections and refusals: docs/model.md#words (one name for each
thing, in code and docs).
"""

import numpy as np

IMAGE_SIZE = 28
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
NUM_DIGITS = 10
DIGITS = [str(digit) for digit in range(NUM_DIGITS)]
NOT_A_DIGIT = NUM_DIGITS  # the class index, and the label the training gives every negative
NOT_A_DIGIT_NAME = "not a digit"
CLASS_NAMES = [*DIGITS, NOT_A_DIGIT_NAME]
NUM_CLASSES = len(CLASS_NAMES)

# The drawing the app hands to preprocessing, which the style set (training/styles.py) draws like: the
# Sketchpad's square canvas and its brush's radius, in pixels. The radius makes a stroke like MNIST's when
# a digit is drawn across about half the canvas.
CANVAS_SIZE = 800
BRUSH_RADIUS = 22

KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
METADATA_FILE = "metadata.json"


def check_input(batch: np.ndarray) -> np.ndarray:
    """Return `batch` unchanged if it meets the input contract, else raise ValueError saying why."""
    if not isinstance(batch, np.ndarray):
        raise ValueError(f"model input must be a NumPy array, got {type(batch).__name__}")
    if batch.dtype != np.float32:
        raise ValueError(f"model input must be float32, got {batch.dtype}")
    if batch.ndim != 4 or batch.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"model input must have shape [N, 28, 28, 1], got {list(batch.shape)}")
    if batch.size and (not np.isfinite(batch).all() or batch.min() < 0.0 or batch.max() > 1.0):
        raise ValueError("model input values must be finite and in [0, 1]")
    return batch


def check_output(probabilities: np.ndarray, batch_size: int, atol: float = 1e-4) -> np.ndarray:
    """Return `probabilities` unchanged if they meet the output contract, else raise ValueError."""
    if probabilities.shape != (batch_size, NUM_CLASSES):
        raise ValueError(f"model output must have shape [{batch_size}, {NUM_CLASSES}], "
                         f"got {list(probabilities.shape)}")
    if not np.isfinite(probabilities).all() or probabilities.min() < 0.0:
        raise ValueError("model output must be finite and non-negative")
    if not np.allclose(probabilities.sum(axis=1), 1.0, atol=atol):
        raise ValueError("model output rows must sum to 1")
    return probabilities
