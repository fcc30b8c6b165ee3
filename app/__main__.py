"""Serve the app: python -m app (HOST, PORT, MODEL_DIR, ... from the environment: see app/config.py)."""

import logging
import sys

import uvicorn

from app.classifier import ModelError
from app.config import load_settings


def main() -> int:
    try:
        settings = load_settings()
    except ValueError as error:
        print(f"error: bad setting: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from app.server import create_app  # imports Gradio: after the settings are known to be good

    try:
        app = create_app(settings)
    except ModelError as error:
        print(f"error: cannot serve: {error}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
