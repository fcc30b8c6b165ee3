"""Where the model starts saying "not a digit": a cap on the digits it refuses, set on digits it never saw.

The network's softmax weighs "not a digit" against the digits. Lowering that output's logit by `shift` refuses a
drawing only when "not a digit" is more than e**shift times as likely as the likeliest digit. Training picks the
smallest shift (never below 0) at which at most `max_refused` of MNIST's held-out training images are refused,
and writes it into the last layer's bias: model.keras and model.tflite both carry it, so the app, the evaluation
and the model contract stay one argmax.
"""

import keras
import numpy as np

from app.contract import NOT_A_DIGIT, NUM_DIGITS
from training.model import parts

MARGIN = 1e-3  # above the chosen margin, so float rounding in the exported file refuses no more than measured


def refusal_margins(probabilities: np.ndarray) -> np.ndarray:
    """log P(not a digit) - log P(likeliest digit), per row: a drawing is refused where this is above 0."""
    floor = np.finfo(np.float64).tiny
    probabilities = probabilities.astype(np.float64)
    return (np.log(np.maximum(probabilities[:, NOT_A_DIGIT], floor))
            - np.log(np.maximum(probabilities[:, :NUM_DIGITS].max(axis=1), floor)))


def refusal_shift(margins: np.ndarray, max_refused: float) -> float:
    """The smallest shift >= 0 that leaves at most `max_refused` (a fraction) of `margins` above it."""
    if not 0.0 <= max_refused <= 1.0:
        raise ValueError(f"max_refused must be a fraction in [0, 1], got {max_refused}")
    allowed = int(np.floor(max_refused * len(margins)))
    if allowed >= len(margins):
        return 0.0
    highest_kept = np.sort(margins)[::-1][allowed]  # the (allowed+1)-th highest: this one and below are answered
    return float(max(0.0, highest_kept + MARGIN))


def shift_refusal(model: keras.Model, shift: float) -> None:
    """Lower the "not a digit" logit of `model`'s last layer (a Dense, softmax; in a keep_digits model, its
    detector's) by `shift`, in place. Either way the refusal margin falls by exactly `shift`."""
    last = parts(model)[1].layers[-1]
    kernel, bias = last.get_weights()
    if bias.shape[0] <= NOT_A_DIGIT:
        raise ValueError(f"the model has {bias.shape[0]} outputs: no \"not a digit\" output to shift")
    bias[NOT_A_DIGIT] -= shift
    last.set_weights([kernel, bias])


def calibrate(model: keras.Model, images: np.ndarray, max_refused: float) -> dict:
    """Shift `model` so it refuses at most `max_refused` of `images` (model input of digits it never trained on);
    return the figures for metadata.json."""
    before = refusal_margins(model.predict(images, batch_size=500, verbose=0))
    shift = refusal_shift(before, max_refused)
    shift_refusal(model, shift)
    return {"shift": shift, "max_refused": max_refused, "images": len(images),
            "refused_before": float((before > 0).mean()), "refused_after": float((before > shift).mean())}
