"""A gradio_client user on a machine of its own: a process whose every connection comes from one address.

    python -m tests.support.caller URL SOURCE_ADDRESS [--pause SECONDS] < calls.json
    user = Caller(url, "127.0.0.2", calls)   # the same, driven from a test

A Service with `sessionAffinity: ClientIP` tells clients apart by address, so each simulated user is a
process bound to its own loopback address (127.0.0.2, 127.0.0.3, ...). It reads a JSON list of
[canvas path, digit] from stdin, predicts each through one gradio_client Client, and prints a JSON line
per call: {"index", "digit", "label", "error", "started", "ended"} (times from the system's monotonic
clock, which the test shares). A call that has no answer after --timeout seconds is an error.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def bind_every_connection_to(address: str) -> None:
    """httpx (through httpcore) connects with socket.create_connection: give each the source address."""
    create_connection = socket.create_connection

    def from_address(destination, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, **kwargs):
        return create_connection(destination, timeout, source_address or (address, 0), **kwargs)

    socket.create_connection = from_address


class Caller:
    """This module run as a process for one user: its records arrive in `records` as the calls end."""

    def __init__(self, url: str, address: str, calls: list[tuple[str, str]], pause: float = 0.0,
                 timeout: float = 30.0):
        self.address = address
        self.records: list[dict] = []
        self.process = subprocess.Popen([sys.executable, "-m", "tests.support.caller", url, address, "--pause",
                                         str(pause), "--timeout", str(timeout)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
        self.process.stdin.write(json.dumps(calls))
        self.process.stdin.close()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.records.append(json.loads(line))

    def answered(self) -> int:
        return sum(record["error"] is None for record in self.records)

    def finish(self, timeout: float = 300) -> list[dict]:
        """Wait for every call to end; the records."""
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return self.records

    def stop(self) -> list[dict]:
        """End the user now; the records of the calls that ended."""
        self.process.terminate()
        return self.finish()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("source_address")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between calls")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a call may take")
    args = parser.parse_args()
    bind_every_connection_to(args.source_address)
    from gradio_client import Client

    from tests.support.gradio_api import sketch

    calls = json.load(sys.stdin)
    client = Client(args.url, verbose=False, analytics_enabled=False)
    for index, (path, digit) in enumerate(calls):
        record = {"index": index, "digit": digit, "label": None, "error": None, "started": time.monotonic()}
        try:
            job = client.submit(sketch(path), api_name="/predict")
            record["label"] = job.result(timeout=args.timeout).get("label")
        except Exception as error:  # noqa: BLE001 - every failure is the finding, reported as it came
            record["error"] = f"{type(error).__name__}: {error}"[:300]
        record["ended"] = time.monotonic()
        print(json.dumps(record), flush=True)
        time.sleep(args.pause)
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
