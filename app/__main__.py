"""Serve the app: python -m app (HOST, PORT, MODEL_DIR, ... from the environment: see app/config.py)."""

import asyncio
import ctypes
import signal
import sys

import uvicorn

from app.classifier import ModelError
from app.config import load_settings
from app.logs import configure_logging

GRACEFUL_SHUTDOWN_SECONDS = 20  # on SIGTERM, in-flight requests get this long; the pod's grace period is longer


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas (as MALLOC_ARENA_MAX=2 would): with Gradio's worker
    threads each holding an arena, resident memory grows under load otherwise (bench/bench_load.py)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # -8 is M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc (macOS, musl): nothing to cap


class Server(uvicorn.Server):
    """uvicorn's server, which on SIGTERM (or Ctrl-C) also ends Gradio's session heartbeat streams
    (app/gradio_overrides.py), so that the drain waits only for the predictions in flight."""

    def handle_exit(self, sig, frame) -> None:
        super().handle_exit(sig, frame)
        try:
            loop = asyncio.get_running_loop()  # the signal handler runs on the loop's thread, between two steps
        except RuntimeError:
            return  # not serving yet, or any more: no stream to end
        loop.call_soon_threadsafe(self.config.app.state.end_heartbeats.set)


def main() -> int:
    limit_malloc_arenas()
    # uvicorn drains on SIGTERM, then re-raises it, which would end the process with status 143: exit 0
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        settings = load_settings()
    except ValueError as error:
        print(f"error: bad setting: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    from app.server import create_app  # imports Gradio (app/gradio_overrides.py): after the settings are good

    try:
        app = create_app(settings)
    except ModelError as error:
        print(f"error: cannot serve: {error}", file=sys.stderr)
        return 1
    config = uvicorn.Config(app, host=settings.host, port=settings.port, http="httptools",  # cheaper than h11
                            log_level=settings.log_level,
                            log_config=None, access_log=False,  # app.logs logs requests
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS)
    Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
