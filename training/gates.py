"""The quality gates, one table: each gate's name, the metrics.json figures it reads, its direction and its
default. training/evaluate.py takes them as `--gate NAME=VALUE`; azureml/evaluate/evaluate.yml declares them as
the evaluate step's inputs with these defaults, azureml/run_pipeline.py as its options (`--min-accuracy`, ...);
tests/test_azureml_definitions.py checks the YAML against this table.
"""

from typing import NamedTuple


class Gate(NamedTuple):
    name: str
    figures: tuple[str, ...]  # metrics.json keys, "set.figure" for a kept-out set's; each is gated
    direction: str  # "min": fail below the bound; "max": fail above it
    default: float
    measured_with: str | None  # the flag of training/evaluate.py that measures the figures; None: always measured
    meaning: str


GATES = (
    Gate("min_accuracy", ("test_accuracy",), "min", 0.99, None,
         "MNIST's test accuracy, a digit answered \"not a digit\" counting as an error"),
    Gate("min_style_accuracy", ("style_validation.accuracy",), "min", 0.95, "--styles",
         "accuracy on the style set's held-out fonts and templates"),
    Gate("min_writer_accuracy", ("writers_validation.accuracy",), "min", 0.99, "--handwriting",
         "accuracy on the writers kept out, whole writers never trained on"),
    Gate("min_writer_digit_accuracy", ("writers_validation.worst_digit_accuracy",), "min", 0.97, "--handwriting",
         "the writers kept out: their worst digit's accuracy"),
    Gate("min_refused", ("negatives_validation.worst_group_refused",), "min", 0.65, "--handwriting",
         "the negatives kept out: each group's share answered \"not a digit\""),
    Gate("max_digits_refused", ("refused", "writers_validation.refused"), "max", 0.003, None,
         "MNIST's test digits, and the writers' digits kept out: the share answered \"not a digit\""),
    Gate("max_digit_drop", ("served_digit_drop",), "max", 0.005, "--served",
         "how far a digit's MNIST test accuracy may fall below the model in service's, about 5 test images"),
)
GATE = {gate.name: gate for gate in GATES}
