"""The model contract's checks refuse what breaks it and pass what meets it."""

import numpy as np
import pytest

from app.contract import check_input, check_output


def test_input_that_meets_the_contract():
    batch = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    assert check_input(batch) is batch
    assert check_input(np.zeros((0, 28, 28, 1), np.float32)).shape == (0, 28, 28, 1)


@pytest.mark.parametrize("batch, message", [
    ([[0.0]], "NumPy array"),
    (np.zeros((1, 28, 28, 1), np.uint8), "float32"),
    (np.zeros((28, 28, 1), np.float32), r"shape \[N, 28, 28, 1\]"),
    (np.zeros((1, 28, 28, 3), np.float32), r"got \[1, 28, 28, 3\]"),
    (np.full((1, 28, 28, 1), np.nan, np.float32), "finite"),
    (np.full((1, 28, 28, 1), -0.1, np.float32), r"in \[0, 1\]"),
])
def test_input_that_breaks_the_contract(batch, message):
    with pytest.raises(ValueError, match=message):
        check_input(batch)


def test_output_checks():
    good = np.full((2, 11), 1 / 11, np.float32)  # the digits 0-9 and "not a digit"
    assert check_output(good, 2) is good
    with pytest.raises(ValueError, match=r"shape \[3, 11\]"):
        check_output(good, 3)
    with pytest.raises(ValueError, match=r"shape \[2, 11\], got \[2, 10\]"):  # a legacy model's, unpadded
        check_output(np.full((2, 10), 0.1, np.float32), 2)
    with pytest.raises(ValueError, match="sum to 1"):
        check_output(np.full((2, 11), 0.2, np.float32), 2)
    with pytest.raises(ValueError, match="non-negative"):
        check_output(np.array([[-0.5, 1.5] + [0.0] * 9], np.float32), 1)
