"""Facts of the model that ships in app/model/, for the tests that depend on them."""

import json

import pytest

from app.contract import METADATA_FILE
from tests.support.paths import MODEL_DIR, REPO

METADATA = json.loads((MODEL_DIR / METADATA_FILE).read_text())
REFUSES = "negatives_validation" in METADATA  # trained with --negatives: it answers "not a digit"
needs_refusing_model = pytest.mark.skipif(
    not REFUSES, reason='skipped: the shipped model (app/model) was trained before "not a digit" and answers a digit '
    "for every drawing; this runs once a model trained with --negatives ships (docs/model.md#not-a-digit)")
# A model that says "not a digit", for the tests of the app's three answers: the shipped one once it does, till
# then the trial model fine-tuned with the negatives (tests/data/refusing_model: docs/model.md#not-a-digit).
REFUSING_MODEL_DIR = MODEL_DIR if REFUSES else REPO / "tests" / "data" / "refusing_model"
