"""Two short training runs on the shipped slice, the digits network then its detector, write every output the app
and the docs rely on; each command has its own defaults, the recipe the shipped model records."""

import json
import os
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict

import numpy as np
import pytest

from app.classifier import Classifier, load_classifier, sha256_file
from app.contract import CLASS_NAMES, KERAS_FILE, METADATA_FILE, NOT_A_DIGIT, NUM_DIGITS, TFLITE_FILE
from tests.support.networks import refusing_everything
from tests.support.paths import HANDWRITING_SLICE, MNIST_SLICE, MODEL_DIR, NEGATIVES_SLICE, REPO, STYLE_SLICE
from tests.support.training import train_on_slices
from training import train
from training.data import to_model_input
from training.recipe import DetectorConfig, DigitsConfig

PICTURES = {"training_curves.png", "confusion_matrix.png", "style_confusion_matrix.png", "writers_confusion_matrix.png",
            "refusals.png"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """`python -m training.train digits` on the slices: the first of the shipped recipe's two commands."""
    out = tmp_path_factory.mktemp("digits")
    assert train_on_slices("digits", "--data", MNIST_SLICE, "--styles", STYLE_SLICE, "--handwriting",
                           HANDWRITING_SLICE, "--out", out, "--epochs", "1") == 0
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits):
    """`python -m training.train detector` from it: the model as the app serves it."""
    out = tmp_path_factory.mktemp("model")
    assert train_on_slices("detector", "--digits", digits, "--data", MNIST_SLICE, "--styles", STYLE_SLICE,
                           "--handwriting", HANDWRITING_SLICE, "--out", out, "--epochs", "1") == 0
    return out


def test_writes_every_output(trained):
    names = {path.name for path in trained.iterdir()}
    assert names == {KERAS_FILE, TFLITE_FILE, METADATA_FILE, "README.md", *PICTURES}
    for png in PICTURES:
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


@pytest.mark.parametrize("folder", ["digits", "trained"])
def test_model_keras_loads_with_keras_alone(folder, request, mnist_slice, tmp_path):
    """Training's fused batch norm stays in training: model.keras (the digits network, or the two joined) is
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
        train.main(["digits", "--data", str(tmp_path), "--out", str(tmp_path / "out"), "--epochs", "1"])
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_bad_arguments_are_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HANDWRITING_DIR", raising=False)
    for argv, error in ((["digits", "--epochs", "0"], "--epochs must be >= 1"),
                        (["detector", "--digits", str(MODEL_DIR), "--handwriting", str(HANDWRITING_SLICE),
                          "--max-refused", "2"], "--max-refused must be a fraction"),
                        (["detector", "--digits", str(MODEL_DIR)], "the following arguments are required: "
                                                                    "--handwriting"),
                        (["digits", "--keep-digits", str(MODEL_DIR)], "unrecognized arguments: --keep-digits"),
                        (["--data", str(MNIST_SLICE)], "(choose from 'digits', 'detector')")):
        with pytest.raises(SystemExit) as exit_info:
            train.main([*argv, "--out", str(tmp_path)] if argv[0] != "--data" else argv)
        assert exit_info.value.code == 2
        assert error in capsys.readouterr().err, argv


def test_each_command_has_its_own_defaults_unless_told():
    """No mode switches a default: each command's are its recipe's (training/recipe.py)."""
    common = ["--data", str(MNIST_SLICE), "--handwriting", str(HANDWRITING_SLICE), "--out", "out"]
    _, digits = train.parse_args(["digits", *common])
    _, detector = train.parse_args(["detector", "--digits", str(MODEL_DIR), *common])
    _, told = train.parse_args(["detector", "--digits", str(MODEL_DIR), *common, "--epochs", "3",
                                "--learning-rate", "1e-3", "--max-refused", "0.01"])
    assert digits == DigitsConfig() and detector == DetectorConfig()
    assert (detector.epochs, detector.learning_rate) == (8, 5e-4) != (digits.epochs, digits.learning_rate)
    assert (told.epochs, told.learning_rate, told.max_refused) == (3, 1e-3, 0.01)


def test_each_command_has_at_most_ten_flags():
    parser = train.build_parser()
    commands = next(action for action in parser._actions if action.dest == "command").choices
    for name, command in commands.items():
        flags = [action.option_strings[0] for action in command._actions if action.option_strings[0] != "-h"]
        assert len(flags) <= 10, (name, flags)
    detector = commands["detector"].format_usage()
    assert "--seed" not in detector and "--digits" in detector
    assert "--max-refused" not in commands["digits"].format_usage()


def test_the_commands_defaults_are_the_recipe_the_shipped_model_records():
    """The detector's defaults are what the shipped model was trained with, and the settings both commands share
    are the digits network's: the two commands, run on the full data, make the shipped model again (a run on the
    slice with the old commands and these gave the same model.tflite, byte for byte)."""
    shipped = json.loads((MODEL_DIR / METADATA_FILE).read_text())
    assert asdict(DetectorConfig()) == shipped["hyperparameters"]
    shared = {key: value for key, value in asdict(DigitsConfig()).items() if key not in ("epochs", "learning_rate")}
    assert shared.items() <= shipped["hyperparameters"].items()
    assert shipped["training"]["epochs"] == DetectorConfig().epochs and shipped["training"]["keeps_digits"]


def test_starts_the_detector_from_the_digits_network():
    """Every weight of the digits network is carried over (of a joined model: its digits network); the "not a
    digit" output starts fresh."""
    from training.fit import digits_network, start_from
    from training.model import build_model

    model = build_model()
    fresh = model.get_weights()[-2:]
    start_from(model, MODEL_DIR)
    shipped = digits_network(MODEL_DIR).get_weights()
    started = model.get_weights()
    for mine, theirs in zip(started[:-2], shipped[:-2], strict=True):
        assert np.array_equal(mine, theirs)
    assert np.array_equal(started[-2][:, :NUM_DIGITS], shipped[-2]) and np.array_equal(started[-1][:NUM_DIGITS],
                                                                                        shipped[-1])
    assert np.array_equal(started[-2][:, NUM_DIGITS:], fresh[0][:, NUM_DIGITS:])


def test_the_served_file_refuses_no_more_held_out_digits_than_the_cap(tmp_path, mnist_slice):
    """A detector that refuses every drawing: training lowers "not a digit" in the exported file until MNIST's
    held-out images are answered, read back through LiteRT."""
    from unittest import mock

    from training import fit
    from training.fit import split_validation

    out = tmp_path / "model"
    refusing = refusing_everything().get_weights()
    with mock.patch.object(fit, "start_from", lambda model, _: model.set_weights(refusing)):
        assert train_on_slices("detector", "--digits", MODEL_DIR, "--data", MNIST_SLICE, "--styles", STYLE_SLICE,
                               "--handwriting", HANDWRITING_SLICE, "--out", out, "--epochs", "1",
                               "--learning-rate", "1e-6") == 0
    refusal = json.loads((out / METADATA_FILE).read_text())["training"]["refusal"]
    assert refusal["max_refused"] == DetectorConfig().max_refused and refusal["refused_before"] == 1.0
    _, (held_out, _) = split_validation(mnist_slice.x_train, mnist_slice.y_train, 100, 42)
    probabilities = Classifier(out / TFLITE_FILE).predict(to_model_input(held_out))
    assert (probabilities.argmax(1) == NOT_A_DIGIT).mean() <= refusal["max_refused"]


def test_the_digits_command_trains_a_digits_network(digits):
    """10 outputs, no "not a digit" to cap; the app serves it as a model that never refuses."""
    from training.fit import digits_network

    metadata = json.loads((digits / METADATA_FILE).read_text())
    assert metadata["model"]["classes"] == CLASS_NAMES[:NUM_DIGITS] and "[N, 10]" in metadata["model"]["output"]
    assert metadata["training"]["refusal"] is None and "negatives_validation" not in metadata
    assert metadata["data"]["negatives"] is None and metadata["data"]["writers"]["source"] == str(HANDWRITING_SLICE)
    classifier, _ = load_classifier(digits)
    assert not classifier.refuses_non_digits
    assert digits_network(digits).outputs[0].shape[-1] == NUM_DIGITS


def test_the_detector_serves_the_digits_it_started_from(trained, digits, mnist_slice, negatives_slice):
    """The served file answers each digit it does not refuse as the digits network does, in the same order; "not a
    digit" comes from the detector, capped."""
    from training.fit import digits_network

    images = to_model_input(np.concatenate([mnist_slice.x_test, negatives_slice["validation"]["images"]]))
    served = Classifier(trained / TFLITE_FILE).predict(images)
    read = digits_network(digits).predict(images, batch_size=500, verbose=0)
    answered = served.argmax(1) != NOT_A_DIGIT
    assert answered.any()
    assert (served[answered].argmax(1) == read[answered].argmax(1)).all()
    assert np.allclose(served[:, :NOT_A_DIGIT], read * (1.0 - served[:, NOT_A_DIGIT:]), atol=1e-5)
    metadata = json.loads((trained / METADATA_FILE).read_text())
    assert metadata["training"]["keeps_digits"] and metadata["model"]["classes"] == CLASS_NAMES
    assert metadata["training"]["started_from"] == {"folder": str(digits),
                                                    **json.loads((digits / METADATA_FILE).read_text())["files"][
                                                        TFLITE_FILE]}
    assert metadata["training"]["refusal"]["refused_after"] <= DetectorConfig().max_refused


def test_the_detector_needs_a_digits_network(tmp_path):
    from training.export import write_model_files
    from training.fit import digits_network

    write_model_files(refusing_everything(), tmp_path / "eleven")  # a network of 11 outputs, not a digits network
    with pytest.raises(ValueError, match="not a digits network"):
        digits_network(tmp_path / "eleven")
    assert digits_network(MODEL_DIR).name == "digits"  # a joined model: its digits network


def test_help_is_quick_and_loads_no_tensorflow():
    """`--help` of each command answers before TensorFlow would have loaded, and says how to run it."""
    for command in ([], ["digits"], ["detector"]):
        started = time.perf_counter()
        shown = subprocess.run([sys.executable, "-X", "importtime", "-m", "training.train", *command, "--help"],
                               cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
        assert time.perf_counter() - started < 5
        assert shown.stdout.startswith(f"usage: python -m training.train {' '.join(command)}".rstrip() + " ")
        assert "tensorflow" not in shown.stderr and "keras" not in shown.stderr  # -X importtime lists each import
        assert "../shared" not in shown.stdout


def test_progress_is_one_line_at_a_time_in_a_log(tmp_path):
    """Each phase says what it does before it does it, and each epoch is one line, when stdout is a file."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MLFLOW_")}
    log = tmp_path / "log"
    with log.open("w") as stdout:
        subprocess.run([sys.executable, "-m", "training.train", "digits", "--data", str(MNIST_SLICE), "--styles",
                        str(STYLE_SLICE), "--handwriting", str(HANDWRITING_SLICE), "--out", str(tmp_path / "out"),
                        "--epochs", "2"], cwd=REPO, stdout=stdout, stderr=subprocess.PIPE, timeout=600, check=True,
                       env=env)
    lines = log.read_text().splitlines()
    assert "\r" not in log.read_text() and "\b" not in log.read_text()  # no progress bar
    said = [line.split(" ")[0] for line in lines]
    assert said[:4] == ["MNIST", "style", "drawing", "writers'"] and said[-1] == "wrote"
    epochs = [line for line in lines if " - accuracy: " in line or "accuracy:" in line and "/step" in line]
    assert len(epochs) == 2
    assert len(lines) == len(set(lines))  # nothing said twice (a forked worker repeats an unflushed line)
