"""The model that ships in app/model/ meets the contract and the figures its metadata claims."""

import json

import numpy as np
import pytest

from app.classifier import Classifier, sha256_file
from app.contract import KERAS_FILE, METADATA_FILE, NOT_A_DIGIT, NUM_CLASSES, TFLITE_FILE, check_output
from app.preprocess import preprocess
from tests.support.drawing import draw_digit
from tests.support.paths import BROWSER_COMPOSITE, MODEL_DIR, NEGATIVES_SLICE
from training.data import to_model_input

TARGET_ACCURACY = 0.996
TARGET_DRAWN_ACCURACY = 0.993  # MNIST test digits drawn on 800x800 canvases, through the app's preprocessing
TARGET_STYLE_ACCURACY, TARGET_STYLE_WORST_DIGIT = 0.97, 0.93  # the style set's held-out fonts and templates
TARGET_WRITER_ACCURACY, TARGET_WRITER_WORST_DIGIT = 0.99, 0.97  # real writers kept out (training/strokes.py)
TARGET_SMALL_ACCURACY = 0.97  # every stroke template drawn 15-20 % of the canvas high with the app's brush
# Each group of the negatives kept out (unseen writers, characters, shapes) answered "not a digit": the floor the
# shipped model holds (its worst group, the unseen shapes, 69.5 %), below issue 24's target of 95 % (docs/model.md).
MIN_REFUSED = 0.65
MAX_DIGITS_REFUSED = 0.003  # real digits answered "not a digit": MNIST test, drawn MNIST, real writers kept out



@pytest.fixture(scope="module")
def metadata():
    return json.loads((MODEL_DIR / METADATA_FILE).read_text())


@pytest.fixture(scope="module")
def classifier():
    return Classifier(MODEL_DIR / TFLITE_FILE)


def test_files_match_their_checksums(metadata):
    for name in (KERAS_FILE, TFLITE_FILE):
        assert sha256_file(MODEL_DIR / name) == metadata["files"][name]["sha256"], name
    assert (MODEL_DIR / TFLITE_FILE).stat().st_size <= 3 * 1024 * 1024  # two networks: the digits and "not a digit"


def test_was_trained_and_evaluated_on_full_mnist(metadata):
    assert metadata["test_images"] == 10000
    training = metadata["training"]
    mnist_images = (training["training_images"] - training["style_images"] - training["writers_images"]
                    - training.get("negatives_images", 0))
    assert mnist_images + training["validation_images"] == 60000
    assert metadata["test_accuracy"] >= TARGET_ACCURACY  # a digit answered "not a digit" counts as an error
    assert metadata.get("refused", 0.0) <= MAX_DIGITS_REFUSED
    assert metadata["tflite_keras_agreement"] >= 0.999


def test_meets_the_output_contract(classifier, mnist_slice):
    for batch in (to_model_input(mnist_slice.x_test[:1]), to_model_input(mnist_slice.x_test)):
        check_output(classifier.predict(batch), len(batch))
    blank = np.zeros((3, 28, 28, 1), np.float32)
    check_output(classifier.predict(blank), 3)


def test_reads_the_slice(classifier, mnist_slice):
    predicted = classifier.predict(to_model_input(mnist_slice.x_test)).argmax(1)
    assert (predicted == mnist_slice.y_test).mean() >= 0.99


def test_refuses_input_that_breaks_the_contract(classifier):
    with pytest.raises(ValueError, match="float32"):
        classifier.predict(np.zeros((1, 28, 28, 1), np.float64))
    with pytest.raises(ValueError, match=r"shape \[N, 28, 28, 1\]"):
        classifier.predict(np.zeros((1, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        classifier.predict(np.full((1, 28, 28, 1), 255.0, np.float32))  # forgot to divide by 255


def test_metadata_accuracy_matches_a_re_evaluation(classifier, metadata, full_mnist):
    probabilities = classifier.predict_many(to_model_input(full_mnist.x_test))
    predicted = probabilities.argmax(1)
    assert int((predicted != full_mnist.y_test).sum()) == metadata["test_errors"]
    assert (predicted == full_mnist.y_test).mean() == pytest.approx(metadata["test_accuracy"], abs=1e-9)
    classes = len(metadata["confusion_matrix"])  # NUM_CLASSES, or the digits alone for a model trained before
    assert classes in (NUM_CLASSES, NUM_CLASSES - 1)
    confusion = np.zeros((classes, classes), int)
    np.add.at(confusion, (full_mnist.y_test, predicted), 1)
    assert confusion.tolist() == metadata["confusion_matrix"]


def test_reads_mnist_test_digits_drawn_on_the_canvas(classifier, full_mnist):
    """3,000 of the test digits painted at random sizes and places on the Sketchpad's canvas, then read
    through the app's preprocessing, as a drawing is."""
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(full_mnist.x_test), 3000, replace=False)
    frames = np.stack([preprocess(draw_digit(full_mnist.x_test[index], rng)) for index in chosen])
    predicted = classifier.predict_many(frames).argmax(1)
    assert (predicted == full_mnist.y_test[chosen]).mean() >= TARGET_DRAWN_ACCURACY
    assert (predicted == NOT_A_DIGIT).mean() <= MAX_DIGITS_REFUSED


def test_reads_the_style_set_as_its_metadata_says(classifier, metadata, style_validation):
    """The held-out fonts and templates, drawn again and read: the figures metadata.json holds, and the targets."""
    claimed = metadata["style_validation"]
    probabilities = classifier.predict_many(to_model_input(style_validation["images"]))
    right = probabilities.argmax(1) == style_validation["labels"]
    assert claimed["images"] == len(right) and right.mean() == pytest.approx(claimed["accuracy"], abs=1e-9)
    worst = min(right[style_validation["labels"] == digit].mean() for digit in range(10))
    assert worst == pytest.approx(claimed["worst_digit_accuracy"], abs=1e-9)
    assert right.mean() >= TARGET_STYLE_ACCURACY and worst >= TARGET_STYLE_WORST_DIGIT


def test_reads_the_real_writers_kept_out_as_its_metadata_says(classifier, metadata, full_writers_validation):
    """Whole writers never trained on, their pen strokes drawn again with the app's brush and read: the figures
    metadata.json holds, overall and per digit, and the targets."""
    claimed = metadata["writers_validation"]
    kept_out = full_writers_validation
    right = classifier.predict_many(to_model_input(kept_out["images"])).argmax(1) == kept_out["labels"]
    assert claimed["images"] == len(right) and right.mean() == pytest.approx(claimed["accuracy"], abs=1e-9)
    worst = min(right[kept_out["labels"] == digit].mean() for digit in range(10))
    assert worst == pytest.approx(claimed["worst_digit_accuracy"], abs=1e-9)
    assert right.mean() >= TARGET_WRITER_ACCURACY and worst >= TARGET_WRITER_WORST_DIGIT
    refused = (classifier.predict_many(to_model_input(kept_out["images"])).argmax(1) == NOT_A_DIGIT).mean()
    assert refused == pytest.approx(claimed.get("refused", 0.0), abs=1e-9) and refused <= MAX_DIGITS_REFUSED


def test_says_not_a_digit_to_the_negatives_kept_out_as_its_metadata_says(classifier, metadata,
                                                                          full_negatives_validation):
    """Letters and symbols of writers never trained on, characters never trained on, generated shapes: drawn
    again and read; the figures metadata.json holds, per group, and the target."""
    claimed = metadata["negatives_validation"]
    kept_out = full_negatives_validation
    refused = classifier.predict_many(to_model_input(kept_out["images"])).argmax(1) == NOT_A_DIGIT
    assert claimed["images"] == len(refused) and refused.mean() == pytest.approx(claimed["refused"], abs=1e-9)
    for group, claimed_share in claimed["per_group_refused"].items():
        share = refused[kept_out["groups"] == group].mean()
        assert share == pytest.approx(claimed_share, abs=1e-9) and share >= MIN_REFUSED, group


def test_says_not_a_digit_to_the_negatives_slice(classifier, metadata):
    """The shipped slice (every 40th kept-out negative), without the full data: near the claimed figure."""
    from training.negatives import load_negatives

    kept_out = load_negatives(NEGATIVES_SLICE)["validation"]
    refused = classifier.predict_many(to_model_input(kept_out["images"])).argmax(1) == NOT_A_DIGIT
    # 195 drawings: a standard error of about 2 points, so within 3 of them
    assert refused.mean() == pytest.approx(metadata["negatives_validation"]["refused"], abs=0.06)


def test_reads_the_real_writers_slice_as_its_metadata_says(classifier, metadata, writers_slice):
    """The shipped slice (every 10th kept-out digit), without the full data: near the claimed figure."""
    kept_out = writers_slice["validation"]
    right = classifier.predict_many(to_model_input(kept_out["images"])).argmax(1) == kept_out["labels"]
    assert right.mean() == pytest.approx(metadata["writers_validation"]["accuracy"], abs=0.01)


def test_reads_digits_drawn_small_with_the_apps_brush(classifier, metadata):
    """Each stroke template of training/styles.py (US and continental school styles), drawn as is at 15, 17.5
    and 20 % of the canvas height with the app's fixed brush: the figure metadata.json holds, and the target."""
    from training.styles import small_digits

    small = small_digits()
    right = classifier.predict_many(to_model_input(small["images"])).argmax(1) == small["labels"]
    assert right.mean() == pytest.approx(metadata["small_styles"]["accuracy"], abs=1e-9)
    assert right.mean() >= TARGET_SMALL_ACCURACY


def test_tflite_agrees_with_keras(classifier, full_mnist):
    import keras

    images = to_model_input(full_mnist.x_test)
    keras_top = keras.saving.load_model(MODEL_DIR / KERAS_FILE).predict(images, batch_size=500, verbose=0).argmax(1)
    tflite_top = classifier.predict_many(images).argmax(1)
    assert (keras_top == tflite_top).mean() >= 0.999


def test_self_check_says_no_when_the_interpreter_fails(classifier, monkeypatch):
    assert classifier.self_check()

    def broken():
        raise RuntimeError("There is at least 1 reference to internal data")

    monkeypatch.setattr(classifier._interpreter, "invoke", broken)
    assert not classifier.self_check()  # what /health turns into 503


def test_reads_a_seven_drawn_in_the_browser(classifier):
    probabilities = classifier.predict(preprocess(BROWSER_COMPOSITE.read_bytes())[np.newaxis])[0]
    assert probabilities.argmax() == 7 and probabilities[7] > 0.9
