"""Untrained networks of this project's shape, set up to behave in one known way."""

from app.contract import NOT_A_DIGIT
from training.model import build_model


def refusing_everything():
    """The network with its "not a digit" bias so high that it refuses every drawing."""
    model = build_model()
    kernel, bias = model.layers[-1].get_weights()
    bias[NOT_A_DIGIT] = 30.0
    model.layers[-1].set_weights([kernel, bias])
    return model
