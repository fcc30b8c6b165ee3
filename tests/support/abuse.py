"""What one hostile client does to a public app, in a few lines of Python: bounded in count and time, sent
only to the app under test on this machine. tests/test_abuse.py proves the app stands it, and
bench/bench_abuse.py measures before and after.

- flood_unread_calls: POST /gradio_api/call/predict from many connections, never reading a result;
- flood_uploads: POST /gradio_api/upload, many files at once;
- flood_corrections: POST /feedback, as fast as it answers, from one or several client addresses.

Each returns a Counter of what came back, "STATUS detail" (the detail cut short), and the seconds taken.
"""

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.gradio_api import CALL_PREDICT, UPLOAD, sketchpad_value, upload_form, uploaded_sketch


def outcome(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", "") if response.status_code != 200 else ""
    except ValueError:
        detail = response.text
    return f"{response.status_code} {str(detail)[:60]}".strip()


async def flood(url: str, connections: int, request, until) -> tuple[Counter, float]:
    """`connections` clients each sending `await request(client, index)` until `until(sent)` is true."""
    outcomes: Counter = Counter()
    sent = 0
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=connections)) as client:
        async def sender():
            nonlocal sent
            while not until(sent):
                index, sent = sent, sent + 1
                try:
                    outcomes[outcome(await request(client, index))] += 1
                except httpx.HTTPError as error:
                    outcomes[type(error).__name__] += 1

        await asyncio.gather(*(sender() for _ in range(connections)))
    return outcomes, time.monotonic() - started


def flood_unread_calls(url: str, seconds: float, connections: int = 20, path: str | None = None,
                       at_least: int = 0, within: float | None = None) -> tuple[Counter, float]:
    """Call `predict` for `seconds`, never reading a result: with an uploaded canvas (`path`), or a blank one.
    Past `seconds`, go on until `at_least` calls are sent, for `within` seconds in all at most: a busy machine
    still sends the flood a test needs."""
    value = uploaded_sketch(path) if path else sketchpad_value(None)
    started = time.monotonic()

    def done(sent: int) -> bool:
        elapsed = time.monotonic() - started
        return elapsed > seconds and (sent >= at_least or elapsed > (within or seconds))

    async def call(client, index):
        return await client.post(CALL_PREDICT, json={"data": [value]})

    return in_own_loop(flood(url, connections, call, done))



def in_own_loop(coroutine):
    """Run `coroutine` in a thread of its own: the test's thread may hold a running loop (Playwright's)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def flood_uploads(url: str, count: int, size: int, connections: int = 8) -> tuple[Counter, float]:
    """Upload `count` files of `size` random-looking bytes each (every one different, as an attacker's would be)."""
    async def send(client, index):
        content = index.to_bytes(8, "big") * (size // 8)
        return await client.post(UPLOAD, files=upload_form(content, f"junk{index}.png"))

    return in_own_loop(flood(url, connections, send, lambda sent: sent >= count))


def flood_corrections(url: str, png: bytes, count: int, addresses: list[str], connections: int = 8
                      ) -> tuple[Counter, float]:
    """POST /feedback `count` times ("this is a 1"), round and round the client `addresses` (sent as
    X-Forwarded-For, which the app's uvicorn trusts from 127.0.0.1 only, as from a proxy of its own)."""
    async def send(client, index):
        return await client.post("/feedback", params={"digit": 1}, files={"file": ("d.png", png, "image/png")},
                                 headers={"X-Forwarded-For": addresses[index % len(addresses)]})

    return in_own_loop(flood(url, connections, send, lambda sent: sent >= count))


def folder_bytes(folder) -> int:
    """The bytes of every file under `folder` (0 if it does not exist)."""
    total = 0
    for path in folder.rglob("*") if folder.exists() else []:
        try:
            total += path.stat().st_size if path.is_file() else 0
        except FileNotFoundError:
            pass  # deleted meanwhile
    return total
