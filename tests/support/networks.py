"""Untrained networks of this project's shape, set up to behave in one known way."""

from app.contract import NOT_A_DIGIT
from training.model import build_model


def refusing_everything(bias_of_refusal: float = 30.0):
    """The network with its "not a digit" bias so high that it refuses every drawing (at 30, P(not a digit) is 1.0
    in float32; at 8, about 0.997)."""
    model = build_model()
    kernel, bias = model.layers[-1].get_weights()
    bias[NOT_A_DIGIT] = bias_of_refusal
    model.layers[-1].set_weights([kernel, bias])
    return model
