"""One short training run on the shipped slice writes every output the app and the docs rely on."""

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from app.classifier import Classifier, load_classifier, sha256_file
from app.contract import CLASS_NAMES, KERAS_FILE, METADATA_FILE, NOT_A_DIGIT, NUM_DIGITS, TFLITE_FILE
from tests.support.networks import refusing_everything
from tests.support.paths import MNIST_SLICE, MODEL_DIR, NEGATIVES_SLICE, STYLE_SLICE, WRITERS_SLICE
from training import train
from training.data import to_model_input


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    assert train.main(["--data", str(MNIST_SLICE), "--styles", str(STYLE_SLICE), "--writers", str(WRITERS_SLICE),
                       "--negatives", str(NEGATIVES_SLICE), "--out", str(out), "--epochs", "1",
                       "--validation-images", "100", "--verbose", "0"]) == 0
    return out


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """Fine-tuned from the shipped model with --keep-digits: its digits network kept, a detector trained."""
    out = tmp_path_factory.mktemp("kept")
    assert train.main(["--data", str(MNIST_SLICE), "--styles", str(STYLE_SLICE), "--negatives", str(NEGATIVES_SLICE),
                       "--keep-digits", str(MODEL_DIR), "--out", str(out), "--epochs", "1",
                       "--validation-images", "100", "--verbose", "0"]) == 0
    return out


def test_writes_every_output(trained):
    names = {path.name for path in trained.iterdir()}
    pictures = {"training_curves.png", "confusion_matrix.png", "style_confusion_matrix.png",
                "writers_confusion_matrix.png", "refusals.png"}
    assert names == {KERAS_FILE, TFLITE_FILE, METADATA_FILE, *pictures}
    for png in pictures:
        assert (trained / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def negatives_slice():
    from training.negatives import load_negatives

    return load_negatives(NEGATIVES_SLICE)


def test_metadata_describes_the_run(trained, mnist_slice, style_slice, writers_slice, negatives_slice):
    metadata = json.loads((trained / METADATA_FILE).read_text())
    for name in (KERAS_FILE, TFLITE_FILE):
        assert metadata["files"][name]["sha256"] == sha256_file(trained / name)
    assert metadata["data"]["sha256"] == mnist_slice.checksums
    style_images = len(style_slice["training"]["labels"])
    assert metadata["training"]["style_images"] == style_images
    writers_images = len(writers_slice["training"]["labels"])
    assert metadata["training"]["writers_images"] == writers_images
    negative_images = len(negatives_slice["training"]["labels"])
    assert metadata["training"]["negatives_images"] == negative_images
    assert metadata["training"]["training_images"] == 300 + style_images + writers_images + negative_images
    assert metadata["model"]["classes"] == CLASS_NAMES and "[N, 11]" in metadata["model"]["output"]
    assert "UNIPEN" in metadata["data"]["negatives"]["credit"] and "letters" in metadata["data"]["negatives"]["credit"]
    assert "CC BY 4.0" in metadata["data"]["writers"]["credit"] and "UNIPEN" in metadata["data"]["writers"]["credit"]
    writers = metadata["writers_validation"]
    assert writers["images"] == len(writers_slice["validation"]["labels"])
    assert set(writers["per_dataset_accuracy"]) == {"unipen", "pendigits"}
    assert set(writers["per_digit_accuracy"]) == {str(digit) for digit in range(10)}
    assert metadata["training"]["validation_images"] == 100
    assert metadata["training"]["seconds"] > 0
    assert metadata["hyperparameters"]["epochs"] == 1 and metadata["hyperparameters"]["seed"] == 42
    assert metadata["model"]["parameters"] > 100_000
    assert metadata["trained_on"]["platform"] == "local"
    assert {"python", "keras", "numpy", "ai-edge-litert"} <= set(metadata["libraries"])
    assert len(metadata["history"]["loss"]) == 1 and "val_accuracy" in metadata["history"]
    confusion = np.array(metadata["confusion_matrix"])
    assert confusion.shape == (11, 11) and confusion.sum() == 200 and confusion[NOT_A_DIGIT].sum() == 0
    assert metadata["test_accuracy"] == pytest.approx(confusion.trace() / 200)
    assert metadata["refused"] == pytest.approx(confusion[:, NOT_A_DIGIT].sum() / 200)
    assert set(metadata["per_class_accuracy"]) == {str(d) for d in range(10)}


def test_metadata_accuracy_is_the_tflite_accuracy(trained, mnist_slice):
    metadata = json.loads((trained / METADATA_FILE).read_text())
    probabilities = Classifier(trained / TFLITE_FILE).predict(to_model_input(mnist_slice.x_test))
    assert (probabilities.argmax(1) == mnist_slice.y_test).mean() == metadata["test_accuracy"]


def test_metadata_holds_the_refusals_of_the_served_file(trained, negatives_slice):
    """The share of each kept-out group of negatives that model.tflite answers "not a digit"."""
    metadata = json.loads((trained / METADATA_FILE).read_text())["negatives_validation"]
    kept_out = negatives_slice["validation"]
    refused = Classifier(trained / TFLITE_FILE).predict(to_model_input(kept_out["images"])).argmax(1) == NOT_A_DIGIT
    assert metadata["images"] == len(refused) and metadata["refused"] == pytest.approx(refused.mean())
    for group in ("unseen writers", "unseen characters", "generated", "unseen shapes"):
        assert metadata["per_group_refused"][group] == pytest.approx(refused[kept_out["groups"] == group].mean())
    assert metadata["worst_group_refused"] == min(metadata["per_group_refused"].values())
    assert sum(metadata["answered_as_digit"].values()) == (~refused).sum()


def test_metadata_holds_the_style_set_accuracy_of_the_served_file(trained, style_slice):
    metadata = json.loads((trained / METADATA_FILE).read_text())["style_validation"]
    held_out = style_slice["validation"]
    predicted = Classifier(trained / TFLITE_FILE).predict(to_model_input(held_out["images"])).argmax(1)
    right = predicted == held_out["labels"]
    assert metadata["images"] == len(right) and metadata["accuracy"] == right.mean()
    assert metadata["worst_digit_accuracy"] == min(metadata["per_digit_accuracy"].values())
    style = "template 7-hook-crossed"
    assert metadata["per_style_accuracy"][style] == right[held_out["styles"] == style].mean()
    assert not any(name in metadata["per_style_accuracy"] for name in style_slice["training"]["styles"])


@pytest.mark.parametrize("folder", ["trained", "kept"])
def test_model_keras_loads_with_keras_alone(folder, request, mnist_slice, tmp_path):
    """Training's fused batch norm stays in training: model.keras (one network, or one that keeps its digits) is
    Keras' own layers, and it loads and reads as model.tflite does in a process that never imports this
    repository's code."""
    trained = request.getfixturevalue(folder)
    load = ("import sys, numpy as np, keras; model = keras.saving.load_model(sys.argv[1]); "
            "images = np.load(sys.argv[2]); print(' '.join(map(str, model.predict(images, verbose=0).argmax(1))))")
    images = to_model_input(mnist_slice.x_test[:50])
    np.save(tmp_path / "images.npy", images)
    alone = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    read = subprocess.run([sys.executable, "-c", load, str(trained / KERAS_FILE), str(tmp_path / "images.npy")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path, env=alone, check=True)
    assert "FusedBatchNormalization" not in zipfile.ZipFile(trained / KERAS_FILE).read("config.json").decode()
    served = Classifier(trained / TFLITE_FILE).predict(images).argmax(1)
    assert read.stdout.split() == [str(digit) for digit in served]


def test_records_an_azure_ml_run(tmp_path, monkeypatch):
    from training.export import training_place

    monkeypatch.setenv("AZUREML_RUN_ID", "mnist-train_1700000000_abc")
    assert training_place()["run_id"] == "mnist-train_1700000000_abc"
    assert training_place()["platform"] == "azureml"


def test_bad_data_path_is_a_clear_error(tmp_path, capsys):
    from training.data import MnistError

    with pytest.raises(MnistError, match="file not found"):
        train.main(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--epochs", "1"])
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_bad_arguments_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--data", str(MNIST_SLICE), "--out", str(tmp_path), "--epochs", "0"])
    assert exit_info.value.code == 2
    assert "--epochs and --batch-size must be >= 1" in capsys.readouterr().err


def test_starts_from_the_shipped_model():
    """--init: every weight of the shipped network (of a model that keeps its digits: its detector) is carried
    over; a model with only the digits' outputs gets the "not a digit" output added, which starts fresh."""
    import keras

    from training.model import build_model, parts

    model = build_model()
    fresh = model.get_weights()[-2:]
    train.start_from(model, MODEL_DIR)
    shipped = parts(keras.saving.load_model(MODEL_DIR / KERAS_FILE))[1].get_weights()
    started = model.get_weights()
    for mine, theirs in zip(started[:-2], shipped[:-2], strict=True):
        assert np.array_equal(mine, theirs)
    width = shipped[-1].shape[0]
    assert np.array_equal(started[-2][:, :width], shipped[-2]) and np.array_equal(started[-1][:width], shipped[-1])
    assert np.array_equal(started[-2][:, width:], fresh[0][:, width:])


def test_the_served_file_refuses_no_more_held_out_digits_than_the_cap(tmp_path, mnist_slice):
    """Fine-tuned from a network that refuses every drawing, training lowers "not a digit" in the exported file
    until MNIST's held-out images are answered: read back through LiteRT."""
    from training.export import write_model_files

    files = write_model_files(refusing_everything(), tmp_path / "refusing")
    (tmp_path / "refusing" / METADATA_FILE).write_text(json.dumps({"files": files}))
    out = tmp_path / "model"
    assert train.main(["--data", str(MNIST_SLICE), "--styles", str(STYLE_SLICE), "--init", str(tmp_path / "refusing"),
                       "--negatives", str(NEGATIVES_SLICE), "--out", str(out), "--epochs", "1", "--learning-rate",
                       "1e-6", "--validation-images", "100", "--verbose", "0"]) == 0
    refusal = json.loads((out / METADATA_FILE).read_text())["training"]["refusal"]
    assert refusal["max_refused"] == train.TrainConfig().max_refused and refusal["refused_before"] == 1.0
    _, (held_out, _) = train.split_validation(mnist_slice.x_train, mnist_slice.y_train, 100, 42)
    probabilities = Classifier(out / TFLITE_FILE).predict(to_model_input(held_out))
    assert (probabilities.argmax(1) == NOT_A_DIGIT).mean() <= refusal["max_refused"]


def test_without_the_negatives_it_trains_a_digits_network(tmp_path):
    """The first of the shipped model's two runs: 10 outputs, no "not a digit" to cap; the app serves it as a
    model that never refuses, and --keep-digits takes it as it is."""
    out = tmp_path / "digits"
    assert train.main(["--data", str(MNIST_SLICE), "--styles", str(STYLE_SLICE), "--out", str(out), "--epochs", "1",
                       "--validation-images", "100", "--verbose", "0"]) == 0
    metadata = json.loads((out / METADATA_FILE).read_text())
    assert metadata["model"]["classes"] == CLASS_NAMES[:NUM_DIGITS] and "[N, 10]" in metadata["model"]["output"]
    assert metadata["training"]["refusal"] is None and "negatives_validation" not in metadata
    classifier, _ = load_classifier(out)
    assert not classifier.refuses_non_digits
    assert train.digits_network(out).outputs[0].shape[-1] == NUM_DIGITS


def test_keep_digits_serves_the_digits_it_started_from(kept, mnist_slice, negatives_slice):
    """--keep-digits: the served file answers each digit it does not refuse as the shipped digits network does,
    in the same order; "not a digit" comes from the network trained here, capped as any."""
    images = to_model_input(np.concatenate([mnist_slice.x_test, negatives_slice["validation"]["images"]]))
    served = Classifier(kept / TFLITE_FILE).predict(images)
    digits = train.digits_network(MODEL_DIR).predict(images, batch_size=500, verbose=0)
    answered = served.argmax(1) != NOT_A_DIGIT
    assert answered.any()
    assert (served[answered].argmax(1) == digits[answered].argmax(1)).all()
    a_digit = 1.0 - served[:, NOT_A_DIGIT:]
    assert np.allclose(served[:, :NOT_A_DIGIT], digits * a_digit, atol=1e-5)
    metadata = json.loads((kept / METADATA_FILE).read_text())
    assert metadata["training"]["keeps_digits"] and metadata["model"]["classes"] == CLASS_NAMES
    assert metadata["training"]["refusal"]["refused_after"] <= train.TrainConfig().max_refused


def test_keep_digits_trains_its_detector_with_the_detectors_defaults_unless_told():
    digits_run = ["--data", str(MNIST_SLICE), "--out", "out"]
    detector_run = [*digits_run, "--negatives", str(NEGATIVES_SLICE), "--keep-digits", str(MODEL_DIR)]
    _, plain = train.parse_args(digits_run)
    _, detector = train.parse_args(detector_run)
    _, told = train.parse_args([*detector_run, "--epochs", "3", "--learning-rate", "1e-3"])
    assert (plain.epochs, plain.learning_rate) == (train.TrainConfig().epochs, train.TrainConfig().learning_rate)
    assert (detector.epochs, detector.learning_rate) == (train.DETECTOR_DEFAULTS["epochs"],
                                                         train.DETECTOR_DEFAULTS["learning_rate"])
    assert (detector.epochs, detector.learning_rate) != (plain.epochs, plain.learning_rate)
    assert (told.epochs, told.learning_rate) == (3, 1e-3)


def test_keep_digits_needs_the_negatives_and_takes_any_digits_network(tmp_path, capsys):
    from training.export import write_model_files

    for extra, error in ((["--keep-digits", str(MODEL_DIR)], "--keep-digits needs --negatives"),
                         (["--keep-digits", str(MODEL_DIR), "--negatives", str(NEGATIVES_SLICE), "--init",
                           str(MODEL_DIR)], "leave out --init")):
        with pytest.raises(SystemExit) as exit_info:
            train.main(["--data", str(MNIST_SLICE), "--out", str(tmp_path), *extra])
        assert exit_info.value.code == 2 and error in capsys.readouterr().err
    write_model_files(refusing_everything(), tmp_path / "eleven")  # one network of 11 outputs, trained for both
    assert train.digits_network(tmp_path / "eleven").outputs[0].shape[-1] == NUM_DIGITS  # cut to its digits
    assert train.digits_network(MODEL_DIR).name == "digits"  # the shipped model keeps one: that one
