"""The app as a real process: python -m app on a free port, as a user starts it; what it logged and counted."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.support.paths import REPO

APP = ("-m", "app")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_app(tmp_path: Path, command: Sequence[str] = APP, **env) -> tuple[subprocess.Popen, str]:
    """Start python -m app with these settings; return it and its URL once /health answers 200.

    The process's output goes to `process.log` (a file in tmp_path), its uploads to tmp_path/gradio, the
    corrections users send to tmp_path/feedback (never the repository's folder); `process.port` is its port
    and `process.ready_seconds` the time from its start to /health answering 200. `command` runs Python with
    other arguments instead of `-m app` (a benchmark's stand-in server), "{port}" in them replaced by the port.
    """
    port = free_port()
    environment = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning",
                   "GRADIO_TEMP_DIR": str(tmp_path / "gradio"),
                   "FEEDBACK_DIR": str(tmp_path / "feedback"), **env}
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = tmp_path / "server.log"
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, *(part.replace("{port}", str(port)) for part in command)], cwd=REPO,
                              env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)
    server.log = log
    server.port = port
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited ({server.returncode}): {log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                server.ready_seconds = time.perf_counter() - started
                return server, url
        except httpx.TransportError:
            time.sleep(0.02)
    server.kill()
    raise RuntimeError("the app did not become ready in 60 s")


def stop_app(process: subprocess.Popen) -> str | None:
    """Stop a server started by run_app; the end of its log if it had died on its own, else None."""
    died = process.poll() is not None
    if not died:
        process.terminate()
        process.wait(timeout=30)
    return process.log.read_text()[-3000:] if died else None


def logged_requests(process: subprocess.Popen) -> list[dict]:
    """The HTTP requests a server started by run_app with LOG_LEVEL=info has logged so far, in the order
    they ended: each with its "path", "status", "ms" taken and "time" (ISO 8601) it ended."""
    entries = []
    for line in process.log.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("message") == "request":
            entries.append(entry)
    return entries


def metric_families(url: str) -> dict[str, Metric]:
    """The app's /metrics, each family by name (there, with no samples, until a labelled one first counts)."""
    return {family.name: family for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text)}


def metric_samples(url: str) -> dict[tuple, float]:
    """The app's /metrics as {(sample name, sorted label pairs): value}."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in metric_families(url).values() for sample in family.samples}
