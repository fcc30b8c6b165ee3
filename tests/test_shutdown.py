"""SIGTERM under load: predictions in flight finish, and the process exits 0 within the grace period.

The app runs for real (python -m app). 16 clients loop over predictions through the Gradio HTTP API:
upload, POST /gradio_api/call/predict, then GET its event stream for the result. Once predictions are
flowing and several streams are open, the server gets SIGTERM, as Kubernetes sends it.

In Gradio's two-step flow a prediction is "in flight" once its event stream is open: the job is queued
or running and the client is waiting on the stream for the answer. (A client that has its event id
but has not yet opened the stream must make a new request, which a draining server turns away: the
Deployment's preStop delay makes that window one nobody is routed into.) Proved:
- every prediction whose stream was open at the signal ends with `complete` and the right digit:
  uvicorn's drain does not cut the event streams;
- no request gets an HTTP 5xx, an `event: error`, a wrong digit, or a stream cut off part-way;
  requests begun after the signal may only be turned away;
- the process exits with status 0 within the time Kubernetes leaves it after SIGTERM
  (terminationGracePeriodSeconds minus the preStop sleep, read from kustomize/base/deployment.yaml),
  which is longer than uvicorn's drain (GRACEFUL_SHUTDOWN_SECONDS in app/__main__.py);
- nothing is left half-written in the upload folder (no staging files; any file left is a whole
  canvas, byte for byte), and the log shows no exception and no drain timeout.

    python -m pytest tests/test_shutdown.py
"""

import asyncio
import json
import signal
import time

import httpx

from app.__main__ import GRACEFUL_SHUTDOWN_SECONDS
from tests.support.drawing import drawn_canvases
from tests.support.gradio_api import CALL_PREDICT, UPLOAD, EventReader, upload_form, uploaded_sketch
from tests.support.manifests import base, container, pod_spec
from tests.support.server import run_app

CLIENTS = 16
COMPLETED_BEFORE_SIGNAL = 50
OPEN_STREAMS_AT_SIGNAL = 8
WAIT_LIMIT = 180  # seconds for the load to get going at all: a limit on a condition, not a timing


def kubernetes_time_after_sigterm() -> tuple[int, int]:
    """(terminationGracePeriodSeconds, preStop sleep seconds) of the Deployment."""
    deployment = base()
    return (pod_spec(deployment)["terminationGracePeriodSeconds"],
            container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"])


async def predict_traced(client: httpx.AsyncClient, png: bytes, record: dict, streams: set) -> None:
    """One prediction, noting when each step was reached in `record`, and its outcome."""
    upload = await client.post(UPLOAD, files=upload_form(png))
    record["status"] = upload.status_code
    upload.raise_for_status()
    call = await client.post(CALL_PREDICT, json={"data": [uploaded_sketch(upload.json()[0])]})
    record["status"] = call.status_code
    call.raise_for_status()
    record["called"] = time.monotonic()
    reader = EventReader()
    async with client.stream("GET", f"{CALL_PREDICT}/{call.json()['event_id']}") as stream:
        record["status"] = stream.status_code
        stream.raise_for_status()
        record["streaming"] = time.monotonic()
        streams.add(id(record))
        try:
            async for line in stream.aiter_lines():
                event, data = reader.read(line) or ("", "")
                if event in ("complete", "error"):
                    record["event"], record["outputs"] = event, json.loads(data)
                    return
        finally:
            streams.discard(id(record))


async def run_load(url: str, canvases: list[tuple[bytes, str]], server) -> tuple[list[dict], float]:
    """Clients loop until the signal has been sent, then finish what they started; returns all records."""
    records, streams, signalled = [], set(), None
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        async def worker(start: int):
            index = start
            while signalled is None:
                png, digit = canvases[index % len(canvases)]
                index += CLIENTS
                record = {"started": time.monotonic(), "digit": digit}
                records.append(record)
                try:
                    await predict_traced(client, png, record, streams)
                except httpx.HTTPError as error:
                    record["failure"] = f"{type(error).__name__}: {error}"
                record["ended"] = time.monotonic()

        workers = [asyncio.create_task(worker(start)) for start in range(CLIENTS)]
        deadline = time.monotonic() + WAIT_LIMIT
        while not (sum("event" in r for r in records) >= COMPLETED_BEFORE_SIGNAL
                   and len(streams) >= OPEN_STREAMS_AT_SIGNAL):
            assert time.monotonic() < deadline, f"the load did not get going: {records[-3:]}"
            assert not any(task.done() for task in workers), [t.exception() for t in workers if t.done()]
            await asyncio.sleep(0.01)
        signalled = time.monotonic()
        server.send_signal(signal.SIGTERM)
        await asyncio.gather(*workers)
    return records, signalled


def test_sigterm_under_load_finishes_in_flight_predictions_and_exits_0(tmp_path, mnist_slice):
    grace, pre_stop = kubernetes_time_after_sigterm()
    assert GRACEFUL_SHUTDOWN_SECONDS < grace - pre_stop, "uvicorn's drain must end before Kubernetes kills the pod"
    canvases = drawn_canvases(48, seed=5, mnist=mnist_slice)
    server, url = run_app(tmp_path)
    try:
        records, signalled = asyncio.run(run_load(url, canvases, server))
        exit_status = server.wait(timeout=grace - pre_stop)
    finally:
        server.kill()
        server.wait(timeout=30)
    log = server.log.read_text()

    in_flight = [r for r in records if r.get("streaming", float("inf")) < signalled]
    assert len(in_flight) >= OPEN_STREAMS_AT_SIGNAL
    for record in in_flight:
        assert record.get("event") == "complete", f"in flight at SIGTERM, then: {record}"
    for record in records:
        assert record.get("status", 200) < 500, record
        assert record.get("event") != "error", record
        if record.get("event") == "complete":
            assert record["outputs"][0]["label"] in [str(d) for d in range(10)], record
        if "streaming" in record:
            assert "event" in record, f"an event stream was cut off: {record}"
        if "failure" in record:
            assert record["ended"] > signalled, f"failed before the signal: {record}"
    right = [r["outputs"][0]["label"] == r["digit"] for r in records if r.get("event") == "complete"]
    assert sum(right) >= 0.95 * len(right)

    assert exit_status == 0, f"exit status {exit_status} (-15: killed by the re-raised SIGTERM)"
    leftovers = [path for path in (tmp_path / "gradio").rglob("*") if path.is_file()]
    whole = {png for png, _ in canvases}
    assert not [path for path in leftovers if path.name.startswith(".")], "staging files left behind"
    assert all(path.read_bytes() in whole for path in leftovers), "a partly written upload was left behind"
    assert "Exception in ASGI application" not in log and "Traceback" not in log, log[-3000:]
    assert "timeout graceful shutdown exceeded" not in log, log[-3000:]
