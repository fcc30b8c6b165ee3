"""Load on a running app from many clients at once over Gradio's HTTP API: tests/test_load.py proves with it
what bench/bench_load.py measures, and the benchmarks time predictions with `latencies`."""

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx

from app.contract import CLASS_NAMES
from tests.support.gradio_api import predict_async
from tests.support.process import resident_mb

RSS_EVERY = 1000  # predictions between two samples of the server's resident memory


def valid_label(value) -> bool:
    """A gr.Label value as the API sends it: the top class (a digit or "not a digit") and three confidences in
    [0, 1]."""
    return (isinstance(value, dict) and value.get("label") in CLASS_NAMES
            and len(value.get("confidences", [])) == 3
            and all(c["label"] in CLASS_NAMES and 0.0 <= c["confidence"] <= 1.0 for c in value["confidences"]))


async def load(base: str, canvases: list[tuple[bytes, str]], clients: int, predictions: int, seconds: float,
               pid: int, rss_every: int = RSS_EVERY) -> dict:
    """`clients` clients each making one prediction at a time over the (PNG, digit) `canvases`, round and
    round, until `predictions` have been made or `seconds` have passed. Returns "times" (seconds of each
    answered prediction), "errors" (a Counter of failures by message: HTTP status, transport, `event: error`),
    "wrong" and "invalid" answers, and "rss": the server's (`pid`) resident MB every `rss_every` predictions."""
    result = {"times": [], "errors": Counter(), "wrong": 0, "invalid": 0, "rss": []}
    issued = 0
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients * 2)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        async def worker():
            nonlocal issued
            while issued < predictions and time.monotonic() < deadline:
                png, digit = canvases[issued % len(canvases)]
                issued += 1
                started = time.perf_counter()
                try:
                    answer = await predict_async(client, png)
                except Exception as error:  # any failure counts: HTTP status, transport, `event: error`
                    result["errors"][f"{type(error).__name__}: {error}"[:120]] += 1
                else:
                    result["times"].append(time.perf_counter() - started)
                    result["invalid"] += not valid_label(answer)
                    result["wrong"] += valid_label(answer) and answer["label"] != digit
                done = len(result["times"]) + sum(result["errors"].values())
                if done % rss_every == 0:
                    result["rss"].append(resident_mb(pid))

        await asyncio.gather(*(worker() for _ in range(clients)))
    return result


async def latencies(base: str, canvases: list, concurrency: int, call: Callable = predict_async,
                    answers: list | None = None) -> list[float]:
    """Seconds per prediction, `concurrency` at a time, over all canvases, each made by
    `await call(client, canvas)` (default: over Gradio's HTTP API); `answers` gets (canvas, what `call` returned)."""
    queue = list(canvases)
    times: list[float] = []
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        async def worker():
            while queue:
                canvas = queue.pop()
                started = time.perf_counter()
                answer = await call(client, canvas)
                times.append(time.perf_counter() - started)
                if answers is not None:
                    answers.append((canvas, answer))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return times
