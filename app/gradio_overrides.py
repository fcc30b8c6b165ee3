"""Every change this app makes to Gradio's defaults and internals, in one file: read it when Gradio is upgraded.

Import Gradio from here (`from app.gradio_overrides import gr`): this module sets what Gradio reads as it
loads, then imports it. Entry points: `override_sketchpad(sketch)` (app/ui.py's build_ui) and
`mount(app, demo, settings, ...)` (app/server.py's create_app). Each override, what it fixes, and the test
that proves it:

Before `import gradio` (this module's top):
- GRADIO_ANALYTICS_ENABLED=False, always, and HF_HUB_DISABLE_TELEMETRY=1: Gradio and huggingface_hub call
  home otherwise. This is the one place analytics are switched off.
  tests/test_server.py::test_telemetry_is_off_before_gradio_loads
- GRADIO_ANALYTICS_MAX_EVENTS=1, GRADIO_ANALYTICS_CACHE_FREQUENCY=2**62: the queue rebuilt a pandas summary
  of up to 10,000 past events after every event, for a monitoring dashboard this app leaves off, so each
  prediction cost more than the last. A timing, so no test: bench/bench_gradio_floor.py measures it.
- `skip_stub_rewriting()`: `import gradio` rewrote its own type stubs, slowing every start-up.
  tests/test_server.py::test_gradio_loads_without_rewriting_its_stubs_and_works

The Sketchpad (`override_sketchpad`):
- `preprocess` -> `undecoded_sketch`: Gradio decoded the background, every layer and the composite of each
  value; app.preprocess decodes only the one it reads.
  tests/test_ui.py::test_the_sketchpad_hands_over_undecoded_files
- `accept_blobs` -> `Drawings.accept_blobs`: Gradio kept every stroke's images until an event read them,
  and those none read for good; Drawings keeps each page's last composite, within a cap.
  tests/test_ui.py::test_drawings_keep_each_pages_last_composite_only,
  tests/test_ui.py::test_drawings_stay_within_their_memory_cap_whatever_is_sent,
  tests/test_browser.py::test_a_stroke_sends_its_picture_once_and_no_uploads

The app (`mount`):
- `api_open = False`: POST /gradio_api/run/predict skipped the queue (and CONCURRENCY), 500 on any error.
  tests/test_bad_input.py::test_the_direct_run_route_gives_no_500_for_bad_input
- `has_launched = True`: mount_gradio_app, unlike launch(), leaves it False, and Gradio then skips its check
  that a file path sent to the API was uploaded: any server file (/etc/passwd, /dev/zero) would be read.
  tests/test_bad_input.py::test_paths_outside_the_upload_folder_are_turned_away_and_never_read,
  ::test_a_device_path_is_turned_away_and_the_server_goes_on, ::test_the_queue_path_the_browser_uses_reports_errors_too
- `state_session_capacity`: each API call makes a session, and Gradio keeps 10,000 by default, so memory
  grew with the calls. tests/test_load.py (resident memory stays flat)
- the queue's poll intervals (`sleep_when_free`, `progress_update_sleep_when_free`): Gradio looks for new
  events every 1 ms and for progress every 10 ms, which keeps the CPU busy with no client at all
  (docs/gradio-idle-cpu.md). A timing, so no test: bench/bench_browser.py measures the idle CPU.
- 404 for an unknown endpoint (/gradio_api/call/<no such name>), not Gradio's unhandled 500.
  tests/test_bad_input.py::test_an_unknown_endpoint_gets_404_not_500
- 400 for an unknown fn_index at /gradio_api/queue/join, not Gradio's unguarded KeyError.
  tests/test_bad_input.py::test_an_unknown_function_index_in_the_queue_gets_4xx_not_500
- the queue's lost sessions (`guard_queue`): Gradio keeps each session's pending messages in an LRU of 2,000, and
  a message for an evicted session raised KeyError in the loop that runs the queue, which then stopped for good:
  every later event got 503 "Queue is stopped." (docs/gradio-queue-stopped.md). An event whose session was
  evicted is dropped instead (nobody can read its answer), and the session's pending ids go with it.
  tests/test_abuse.py::test_a_flood_of_unread_calls_leaves_the_queue_serving_everyone
- `queue(max_size=...)`, QUEUE_WAITING_PER_WORKER events for each of CONCURRENCY's workers: Gradio's queue had
  no bound, so a flood made a backlog of minutes. Past it, Gradio answers 503 with BUSY_MESSAGE.
  tests/test_abuse.py::test_a_flood_of_unread_calls_leaves_the_queue_serving_everyone
- `queue_running(demo)`: whether the queue's loop still runs, for /health/live (app/server.py).
  tests/test_abuse.py::test_liveness_fails_when_the_queue_has_stopped
- `UploadSpace`, before /gradio_api/upload: Gradio takes any number of uploads up to max_file_size each and
  keeps them 10 minutes, so a few seconds of uploads filled the pod's /tmp. The folder stays within
  UPLOAD_BUDGET_MB: the oldest files (older than UPLOAD_MIN_AGE_SECONDS) go first, then uploads are turned away.
  tests/test_abuse.py::test_an_upload_flood_leaves_the_folder_within_its_budget
- `FOOTER_CSS`: with only the "Use via API" link in the footer, Gradio still shows the "·" that would lead to the
  next, so the footer ended in a dangling dot. tests/test_browser.py::test_the_page_hides_nothing_it_shows
- `app.state.end_heartbeats`, Gradio's stop event, which only its own launch() sets: every open page and
  gradio_client holds a heartbeat stream (GET /gradio_api/heartbeat/...) that ends only when it is set.
  app/__main__.py sets it on SIGTERM, else each shutdown waits out the whole drain for them.
  tests/test_replicas.py::test_a_rolling_update_moves_users_on_cleanly
"""

import importlib.abc
import importlib.machinery
import importlib.util
import json
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.config import Settings

STUB_REWRITING_GRADIO = ("6.31.",)  # versions checked; requirements.txt pins one (tests/test_server.py)
DRAWINGS_BYTES = 64 * 2**20  # the last composites of open pages, together; the oldest go first beyond this
STATE_SESSIONS = 1000  # Gradio's sessions kept (each API call makes one): the oldest go first beyond this
# Polling every 10 ms delays an event by half that on average; this app reports no progress.
QUEUE_POLL_SECONDS = 0.01
PROGRESS_POLL_SECONDS = 1.0
QUEUE_WAITING_PER_WORKER = 64  # events waiting per CONCURRENCY worker: about a second of predictions
BUSY_MESSAGE = "The server is busy: try again in a few seconds."
UPLOAD_PATH = "/gradio_api/upload"
UPLOAD_MIN_AGE_SECONDS = 30  # a younger upload or output may still be read: it is never evicted
UPLOAD_RESCAN_SECONDS = 1.0  # the upload folder is listed at most this often, unless it is short of space
MULTIPART_FRAMING_BYTES = 64 * 1024  # an upload request's room for its multipart headers, beyond the file
TurnedAway = Callable[[str], None]  # told the reason of each request turned away to keep serving


# --- before `import gradio` --------------------------------------------------------------------------------

class NoStubRewriting(importlib.abc.MetaPathFinder):
    """Finds gradio.component_meta as usual, and loads it with `create_or_modify_pyi` doing nothing.

    For each of its component classes, `import gradio` reads the class's source, parses it and its .pyi
    stub, renders the stub again and writes it back if it differs (`create_or_modify_pyi` in
    gradio/component_meta.py), with no setting to turn it off. The stubs are for editors; serving never
    reads them.
    """

    def find_spec(self, name, path, target=None):
        if name != "gradio.component_meta":
            return None
        sys.meta_path.remove(self)  # once is enough
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            module.create_or_modify_pyi = lambda component_class, class_name, events: None

        spec.loader.exec_module = exec_module
        return spec


def gradio_version() -> str:
    """The installed Gradio's version, from its package.json (importlib.metadata is slower to load)."""
    spec = importlib.util.find_spec("gradio")
    try:
        return json.loads((Path(spec.submodule_search_locations[0]) / "package.json").read_text())["version"]
    except (AttributeError, TypeError, IndexError, OSError, ValueError, KeyError):
        return ""


def skip_stub_rewriting() -> bool:
    """Make the coming `import gradio` skip its stub rewriting; False if Gradio is loaded or not a known version."""
    if "gradio" in sys.modules or not gradio_version().startswith(STUB_REWRITING_GRADIO):
        return False
    sys.meta_path.insert(0, NoStubRewriting())
    return True


os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1")  # keep one past event, never summarise
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(2**62))
skip_stub_rewriting()

import gradio as gr  # noqa: E402
import gradio.utils  # noqa: E402
from gradio.components.base import server  # noqa: E402
from gradio.data_classes import FileData  # noqa: E402

# --- the Sketchpad -----------------------------------------------------------------------------------------

def undecoded_sketch(payload):
    """Stands in for the Sketchpad's preprocess: its images as undecoded file paths or bytes.

    Set on the instance: a subclass would make Gradio look for a custom frontend and write a .pyi stub
    beside this file.
    """
    if payload is None:
        return None
    if payload.id is not None:  # a blob id: the page's blobs go to Drawings, never to the API's blob_storage
        return {"background": None, "layers": [], "composite": None}

    def undecoded(part):
        return part.path if isinstance(part, FileData) else part

    return {"background": undecoded(payload.background),
            "layers": [undecoded(layer) for layer in payload.layers or [] if layer is not None],
            "composite": undecoded(payload.composite)}


class Drawings:
    """The last composite image each browser session's Sketchpad sent, in this process's memory.

    Its `accept_blobs` stands in for the Sketchpad's own. The oldest are dropped beyond `capacity` bytes,
    and a session's when its page closes or clears (app/ui.py).
    """

    def __init__(self, capacity: int = DRAWINGS_BYTES):
        self.capacity = capacity
        self.composites: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()  # Gradio calls accept_blobs from worker threads

    @server
    def accept_blobs(self, data) -> None:
        """The browser's images after a stroke (gradio's AcceptBlobs): keep the composite, the one read."""
        fields, files = data.data, data.files
        if fields.get("type") != "composite" or not files or not isinstance(fields.get("session_hash"), str):
            return
        composite = files[0][1]
        with self.lock:
            self.composites.pop(fields["session_hash"], None)
            self.composites[fields["session_hash"]] = composite
            while sum(map(len, self.composites.values())) > self.capacity:
                self.composites.popitem(last=False)

    def latest(self, session: str) -> bytes | None:
        with self.lock:
            return self.composites.get(session)

    def forget(self, session: str) -> None:
        with self.lock:
            self.composites.pop(session, None)


def override_sketchpad(sketch: gr.Sketchpad) -> Drawings:
    """The Sketchpad's overrides: hand images over undecoded, keep each page's last composite; returns where."""
    sketch.preprocess = undecoded_sketch
    drawings = Drawings()
    sketch.accept_blobs = drawings.accept_blobs
    return drawings


# --- the app -----------------------------------------------------------------------------------------------

async def unknown_endpoint(request, error) -> JSONResponse:
    """/gradio_api/call/<a name that does not exist>: 404, not Gradio's unhandled 500."""
    return JSONResponse({"detail": str(error)}, status_code=404)


async def unknown_function(request, error: KeyError) -> JSONResponse:
    """/gradio_api/queue/join with an fn_index that does not exist: 400, not Gradio's unguarded KeyError."""
    if request.url.path.endswith("/queue/join"):
        return JSONResponse({"detail": f"no such function: fn_index {error}"}, status_code=400)
    raise error  # anywhere else a KeyError is a bug: let it be the 500 it is


class ForgetfulSessions(gradio.utils.LRUCache):
    """Gradio's pending messages per session, an LRU: evicting a session also forgets its pending event ids,
    which Gradio keeps in a plain dict that grew by one entry for every call nobody read."""

    def __init__(self, queue):
        super().__init__(queue.pending_messages_per_session.max_size)
        self.queue = queue

    def popitem(self, last: bool = True):
        session, messages = super().popitem(last)
        self.queue.pending_event_ids_session.pop(session, None)
        return session, messages


def guard_queue(queue, turned_away: TurnedAway) -> None:
    """Drop a message for a session the LRU evicted, and its event, instead of the KeyError that stops the queue.
    A full queue answers BUSY_MESSAGE, and `turned_away("queue_full")` is told."""
    queue.pending_messages_per_session = ForgetfulSessions(queue)
    send, push = queue.send_message, queue.push

    def send_message(event, message) -> None:
        if event.session_hash in queue.pending_messages_per_session:
            send(event, message)
        else:
            event.alive = False  # nobody can read its answer: Gradio skips it

    async def push_or_busy(body, request, username):
        success, detail, state = await push(body, request, username)
        if state != "queue_full":
            return success, detail, state
        turned_away("queue_full")
        return success, BUSY_MESSAGE, state

    queue.send_message, queue.push = send_message, push_or_busy


def queue_running(demo: gr.Blocks) -> bool:
    """Whether the queue's loop still runs: once it stops, every Gradio event is turned away until a restart."""
    return not demo._queue.stopped


class UploadSpace:
    """ASGI middleware: Gradio's upload folder within `budget` bytes, whatever clients send.

    An upload must declare its length (411 otherwise), one file of `max_file` bytes with its multipart framing
    at most (413). Space is reserved for it
    before Gradio reads a byte: if the folder, with the uploads in flight, would pass the budget, Gradio's
    own files older than UPLOAD_MIN_AGE_SECONDS are deleted, oldest first, as its delete_cache would delete
    them later; if that is not enough, 503 with Retry-After.
    """

    def __init__(self, app, demo: gr.Blocks, folder: str, budget: int, max_file: int, turned_away: TurnedAway):
        self.app, self.demo, self.folder = app, demo, Path(folder)
        self.budget, self.max_file, self.turned_away = budget, max_file, turned_away
        self.lock = threading.Lock()
        self.used = self.reserved = 0
        self.listed_at = -math.inf

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(UPLOAD_PATH):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if not length.isdigit():
            return await self.turn_away(send, 411, "upload_length", "Send the upload with a Content-Length.")
        size = int(length)
        if size > self.max_file + MULTIPART_FRAMING_BYTES:
            return await self.turn_away(send, 413, "upload_size",
                                        f"The upload is larger than {self.max_file / 2**20:g} MB (MAX_UPLOAD_MB).")
        if not await anyio.to_thread.run_sync(self.reserve, size):
            return await self.turn_away(send, 503, "upload_space", "The server's upload space is full: try again "
                                        f"in {UPLOAD_MIN_AGE_SECONDS} s.", retry_after=UPLOAD_MIN_AGE_SECONDS)
        try:
            await self.app(scope, receive, send)
        finally:
            with self.lock:
                self.reserved -= size
                self.used += size  # on disk now, until the next listing says otherwise

    async def turn_away(self, send, status: int, reason: str, message: str, retry_after: int | None = None) -> None:
        self.turned_away(reason)
        headers = [(b"content-type", b"application/json")]
        if retry_after:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": json.dumps({"detail": message}).encode()})

    def reserve(self, size: int) -> bool:
        """Room for `size` more bytes, made by deleting old files if need be; False if there is none."""
        with self.lock:
            now = time.monotonic()
            if now - self.listed_at > UPLOAD_RESCAN_SECONDS or self.used + self.reserved + size > self.budget:
                files = self.files()
                self.used, self.listed_at = sum(length for _, length, _ in files), now
                for _, length, path in self.evictable(files):
                    if self.used + self.reserved + size <= self.budget:
                        break
                    self.evict(path)
                    self.used -= length
            if self.used + self.reserved + size > self.budget:
                return False
            self.reserved += size
            return True

    def files(self) -> list[tuple[float, int, str]]:
        """(modified, bytes, path) of every file in the folder, oldest first."""
        found = []
        for root, _, names in os.walk(self.folder):
            for name in names:
                try:
                    stat = os.stat(os.path.join(root, name))
                except OSError:
                    continue  # deleted meanwhile
                found.append((stat.st_mtime, stat.st_size, os.path.join(root, name)))
        return sorted(found)

    def evictable(self, files: list[tuple[float, int, str]]):
        """The files Gradio would delete itself in time (its own, not kept), older than UPLOAD_MIN_AGE_SECONDS."""
        own = set().union(*self.demo.temp_file_sets)
        kept = set().union(*(getattr(block, "keep_in_cache", set()) for block in self.demo.blocks.values()))
        old = time.time() - UPLOAD_MIN_AGE_SECONDS
        return [file for file in files if file[0] < old and file[2] in own and file[2] not in kept]

    def evict(self, path: str) -> None:
        try:
            os.remove(path)
        except OSError:
            return
        for files in self.demo.temp_file_sets:
            files.discard(path)  # else Gradio keeps the name for good
        try:
            os.rmdir(os.path.dirname(path))  # its folder, named for its hash, if now empty
        except OSError:
            pass


FOOTER_CSS = "\nfooter .divider:last-child { display: none; }"


def mount(app: FastAPI, demo: gr.Blocks, settings: Settings, *, theme: gr.themes.Base, css: str,
          turned_away: TurnedAway = lambda reason: None) -> FastAPI:
    """Mount the UI and its API at / (mount_gradio_app), with every override above; after the app's own routes.
    `turned_away(reason)` is told of each request turned away to keep serving: queue_full, upload_length, upload_size,
    upload_space."""
    demo.queue(max_size=QUEUE_WAITING_PER_WORKER * settings.concurrency)
    guard_queue(demo._queue, turned_away)
    demo.api_open = False
    demo.has_launched = True
    demo.state_session_capacity = STATE_SESSIONS
    demo._queue.sleep_when_free = QUEUE_POLL_SECONDS
    demo._queue.progress_update_sleep_when_free = PROGRESS_POLL_SECONDS
    app = gr.mount_gradio_app(
        app, demo, path="/", footer_links=["api"], max_file_size=int(settings.max_upload_mb * 2**20),
        theme=theme, css=css + FOOTER_CSS, show_error=True, ssr_mode=False, enable_monitoring=False, mcp_server=False)
    gradio_app = app.routes[-1].app  # the mount just added at /
    gradio_app.add_exception_handler(gr.route_utils.FnIndexInferError, unknown_endpoint)
    gradio_app.add_exception_handler(KeyError, unknown_function)
    app.state.end_heartbeats = gradio_app.stop_event  # set by app/__main__.py on SIGTERM
    app.routes[-1].app = UploadSpace(  # in front of Gradio's app, behind the app's middleware (logs, metrics)
        gradio_app, demo, gradio_app.uploaded_file_dir, int(settings.upload_budget_mb * 2**20),
        int(settings.max_upload_mb * 2**20), turned_away)
    return app
