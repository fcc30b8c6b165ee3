"""A Reading: a digit, or "not a digit" with the digits it resembles; its top lists digits only."""

import numpy as np

from app.contract import NOT_A_DIGIT, NUM_CLASSES
from app.reading import Reading


def reading(**probabilities) -> Reading:
    """A Reading whose probabilities are given by class index (c0..c10), the rest shared out evenly."""
    given = {int(name[1:]): value for name, value in probabilities.items()}
    rest = (1 - sum(given.values())) / (NUM_CLASSES - len(given))
    values = np.array([given.get(index, rest) for index in range(NUM_CLASSES)], np.float32)
    return Reading(values, np.zeros((28, 28, 1), np.float32))


def test_a_digit_is_its_own_top():
    seven = reading(c7=0.9, c1=0.05, c10=0.04)
    assert (seven.is_digit, seven.digit, seven.answered) == (True, "7", 7)
    assert [digit for digit, _ in seven.top(2)] == ["7", "1"]  # "not a digit" (0.04) is never listed
    assert abs(seven.probability - 0.9) < 1e-6


def test_not_a_digit_has_no_digit_and_lists_the_digits_it_resembles():
    star = reading(c10=0.94, c8=0.03, c0=0.02, c4=0.005)
    assert (star.is_digit, star.digit, star.answered) == (False, None, NOT_A_DIGIT)
    assert [(digit, round(p, 3)) for digit, p in star.top(3)] == [("8", 0.03), ("0", 0.02), ("4", 0.005)]
    assert star.not_a_digit_message() == ("That does not look like a digit: of the digits, it looks most like "
                                          "8, then 0, then 4.")
