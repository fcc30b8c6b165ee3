"""Settings come from the environment, with defaults, and a bad value names its variable."""

from pathlib import Path

import pytest

from app.config import DEFAULT_FEEDBACK_DIR, DEFAULT_MODEL_DIR, load_settings


def test_defaults():
    settings = load_settings({})
    assert (settings.host, settings.port, settings.model_dir) == ("127.0.0.1", 7860, DEFAULT_MODEL_DIR)
    assert (DEFAULT_MODEL_DIR / "model.tflite").is_file()


def test_from_the_environment():
    settings = load_settings({"HOST": "0.0.0.0", "PORT": "8080", "MODEL_DIR": "/models/digits",
                              "MAX_UPLOAD_MB": "2.5", "MAX_PHOTO_MB": "8", "CONCURRENCY": "8", "LOG_LEVEL": "WARNING"})
    assert (settings.host, settings.port, settings.model_dir) == ("0.0.0.0", 8080, Path("/models/digits"))
    assert (settings.max_upload_mb, settings.concurrency, settings.log_level) == (2.5, 8, "warning")
    assert settings.max_photo_mb == 8 and load_settings({}).max_photo_mb == 20  # a phone's 16 MP photo


@pytest.mark.parametrize("env, message", [
    ({"PORT": "eighty"}, "PORT='eighty' is not a number"),
    ({"PORT": "70000"}, "PORT=70000 is not a TCP port"),
    ({"CONCURRENCY": "0"}, "CONCURRENCY='0' must be at least 1"),
    ({"MAX_UPLOAD_MB": "-1"}, "MAX_UPLOAD_MB='-1' must be at least"),
    ({"MAX_PHOTO_MB": "0"}, "MAX_PHOTO_MB='0' must be at least"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        load_settings(env)


def test_corrections_are_kept_in_the_repository_unless_told_otherwise():
    assert load_settings({}).feedback_dir == DEFAULT_FEEDBACK_DIR  # python -m app on a laptop
    assert load_settings({"FEEDBACK_DIR": "/feedback"}).feedback_dir == Path("/feedback")  # the pods' volume
    assert load_settings({"FEEDBACK_DIR": ""}).feedback_dir is None  # the image's default: not kept
    assert load_settings({"FEEDBACK_MAX_RECORDS": "5"}).feedback_max_records == 5
    with pytest.raises(ValueError, match="FEEDBACK_MAX_RECORDS='many' is not a number"):
        load_settings({"FEEDBACK_MAX_RECORDS": "many"})
