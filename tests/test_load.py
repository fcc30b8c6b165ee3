"""Load on the real server through the Gradio HTTP API, bounded for CI (a fixed number of predictions).

16 clients at once (several times the app's CONCURRENCY, so the queue stays full), each looping over
upload -> call `predict` -> read the event stream, with a fixed set of drawn MNIST test digits: the
load bench/bench_load.py makes (tests/support/load.py), in two equal batches. Proves: no request fails
(no HTTP error, no event other than `complete`), every answer is a valid Label value and at least 95 %
are the right digit, /health answers 200 afterwards, and the server's resident memory after the second
batch is within LEAK_MB of that after the first (a leak check, not a timing). No latency is asserted
here: bench/bench_load.py measures it.

    python -m pytest tests/test_load.py
"""

import asyncio

import httpx

from tests.support.drawing import drawn_canvases
from tests.support.load import load
from tests.support.process import resident_mb
from tests.support.server import run_app

CLIENTS = 16
BATCH = 500  # predictions per batch
RIGHT = 0.95
LEAK_MB = 40


def test_concurrent_clients_all_get_answers_and_memory_stays_flat(tmp_path, mnist_slice):
    canvases = drawn_canvases(100, seed=11, mnist=mnist_slice)
    process, url = run_app(tmp_path)
    try:
        batches, resident = [], []
        for _ in range(2):  # no time limit: each request has httpx's 60 s timeout
            batches.append(asyncio.run(load(url, canvases, CLIENTS, BATCH, float("inf"), process.pid)))
            resident.append(resident_mb(process.pid))
        health = httpx.get(f"{url}/health", timeout=30).status_code
    finally:
        process.terminate()
        process.wait(timeout=60)

    for batch in batches:
        assert not batch["errors"], batch["errors"].most_common(3)
        assert len(batch["times"]) == BATCH
        assert batch["invalid"] == 0, "answers that are not a valid Label value"
        assert batch["wrong"] <= (1 - RIGHT) * BATCH, f"{batch['wrong']} of {BATCH} wrong"
    assert health == 200
    assert resident[1] - resident[0] <= LEAK_MB, f"resident memory {resident[0]:.0f} -> {resident[1]:.0f} MB"
