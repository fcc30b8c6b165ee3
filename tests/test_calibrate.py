"""The refusal cap: lowering "not a digit" refuses no more held-out digits than allowed, and changes nothing else."""

import numpy as np
import pytest

from app.contract import NOT_A_DIGIT, NUM_DIGITS
from tests.support.networks import refusing_everything
from training.calibrate import calibrate, refusal_margins, refusal_shift
from training.data import to_model_input


def test_the_shift_leaves_at_most_the_cap_above_it():
    margins = np.array([-5.0, -1.0, 0.5, 2.0, 3.0, 7.0] + [-3.0] * 94)
    assert (margins - refusal_shift(margins, 0.02) > 0).sum() == 2
    assert (margins - refusal_shift(margins, 0.0) > 0).sum() == 0
    assert refusal_shift(margins, 0.05) == 0.0  # 4 of 100 refused already: nothing to lower
    with pytest.raises(ValueError, match="fraction"):
        refusal_shift(margins, 1.5)


def test_margins_say_which_rows_argmax_refuses():
    probabilities = np.array([[0.5, *[0.05] * 9, 0.05], [0.1, *[0.0] * 9, 0.9]], dtype=np.float32)
    assert ((refusal_margins(probabilities) > 0) == (probabilities.argmax(1) == NOT_A_DIGIT)).all()


def test_a_model_that_refuses_everything_is_brought_under_the_cap(mnist_slice):
    model = refusing_everything()
    images = to_model_input(mnist_slice.x_test)
    before = model.predict(images, verbose=0)
    assert (before.argmax(1) == NOT_A_DIGIT).all()

    figures = calibrate(model, images, max_refused=0.01)

    after = model.predict(images, verbose=0)
    assert (after.argmax(1) == NOT_A_DIGIT).mean() <= 0.01
    assert figures["refused_before"] == 1.0 and figures["refused_after"] <= 0.01 and figures["shift"] > 0
    # the digits keep their order: only "not a digit" moved
    assert (after[:, :NUM_DIGITS].argmax(1) == before[:, :NUM_DIGITS].argmax(1)).all()


def test_a_model_that_keeps_its_digits_is_lowered_in_its_detector(mnist_slice):
    """The cap lowers the detector's "not a digit": the refusal margins fall by exactly the shift, the digits'
    network is untouched."""
    from tests.support.paths import MODEL_DIR
    from training.fit import digits_network
    from training.model import keep_digits

    digits = digits_network(MODEL_DIR)
    kept_weights = [weights.copy() for weights in digits.get_weights()]
    model = keep_digits(digits, refusing_everything(8.0))  # not saturated: the margins can fall
    images = to_model_input(mnist_slice.x_test)
    before = refusal_margins(model.predict(images, verbose=0))

    figures = calibrate(model, images, max_refused=0.01)

    after = refusal_margins(model.predict(images, verbose=0))
    assert figures["refused_before"] == 1.0 and (after > 0).mean() <= 0.01
    assert np.allclose(before - after, figures["shift"], atol=1e-3)
    assert all(np.array_equal(a, b) for a, b in zip(digits.get_weights(), kept_weights, strict=True))
