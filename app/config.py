"""The app's settings, read from the environment in one place, with defaults that work on a laptop."""

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "model"
DEFAULT_FEEDBACK_DIR = Path(__file__).resolve().parents[1] / "feedback"  # ignored by git


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"  # HOST: 0.0.0.0 in the container
    port: int = 7860  # PORT
    model_dir: Path = DEFAULT_MODEL_DIR  # MODEL_DIR: holds model.tflite and metadata.json
    # MAX_UPLOAD_MB: a Gradio upload (the page, gradio_client) larger than this is turned away; a drawn 800x800
    # canvas is tens of KB. Uploads are files on disk, within UPLOAD_BUDGET_MB.
    max_upload_mb: float = 1.0
    # MAX_PHOTO_MB: a picture sent to POST /predict or /feedback larger than this is turned away (413). Read in
    # memory, never stored: room for a phone's photo up to app/preprocess.py's MAX_PIXELS (16 MP: 3-8 MB as JPEG).
    max_photo_mb: float = 20.0
    # UPLOAD_BUDGET_MB: Gradio's upload folder (GRADIO_TEMP_DIR) holds at most this much; past it, its oldest files go
    # first, then uploads are turned away. Within the pod's /tmp emptyDir with room to spare (tests/test_deploy.py).
    upload_budget_mb: float = 64.0
    concurrency: int = 2  # CONCURRENCY: predictions run at once; more than the cores costs CPU, gains nothing
    log_level: str = "info"  # LOG_LEVEL
    # FEEDBACK_DIR: where users' corrections are kept (app/corrections.py); set but empty: not kept (the image's
    # default)
    feedback_dir: Path | None = DEFAULT_FEEDBACK_DIR
    feedback_max_records: int = 10_000  # FEEDBACK_MAX_RECORDS: corrections waiting for review; beyond, not kept
    # Corrections kept per minute (app/limits.py), on top of the cap: by this replica from everyone
    # (FEEDBACK_PER_MINUTE), and from one client address (FEEDBACK_PER_CLIENT_PER_MINUTE; 0: no per-client
    # limit, where every client reaches the pod from one address: docs/operations.md, "What the pod sees of a client").
    feedback_per_minute: int = 60
    feedback_per_client_per_minute: int = 10


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Settings from `env` (default: os.environ); a bad value raises ValueError naming the variable."""
    env = os.environ if env is None else env
    defaults = Settings()

    def number(name: str, cast, default, minimum):
        raw = env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = cast(raw)
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not a number") from None
        if value < minimum:
            raise ValueError(f"{name}={raw!r} must be at least {minimum}")
        return value

    port = number("PORT", int, defaults.port, 1)
    if port > 65535:
        raise ValueError(f"PORT={port} is not a TCP port")
    feedback_dir = env.get("FEEDBACK_DIR")
    return Settings(
        host=env.get("HOST") or defaults.host,
        port=port,
        model_dir=Path(env.get("MODEL_DIR") or defaults.model_dir),
        max_upload_mb=number("MAX_UPLOAD_MB", float, defaults.max_upload_mb, 0.001),
        max_photo_mb=number("MAX_PHOTO_MB", float, defaults.max_photo_mb, 0.001),
        upload_budget_mb=number("UPLOAD_BUDGET_MB", float, defaults.upload_budget_mb, 1),
        concurrency=number("CONCURRENCY", int, defaults.concurrency, 1),
        log_level=(env.get("LOG_LEVEL") or defaults.log_level).lower(),
        feedback_dir=defaults.feedback_dir if feedback_dir is None else Path(feedback_dir) if feedback_dir else None,
        feedback_max_records=number("FEEDBACK_MAX_RECORDS", int, defaults.feedback_max_records, 0),
        feedback_per_minute=number("FEEDBACK_PER_MINUTE", int, defaults.feedback_per_minute, 1),
        feedback_per_client_per_minute=number("FEEDBACK_PER_CLIENT_PER_MINUTE", int,
                                              defaults.feedback_per_client_per_minute, 0),
    )
