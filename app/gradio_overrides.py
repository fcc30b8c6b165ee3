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
  tests/test_bad_input.py::test_paths_outside_the_upload_folder_are_refused_and_never_read,
  ::test_a_device_path_is_refused_and_the_server_goes_on, ::test_the_queue_path_the_browser_uses_reports_errors_too
- `state_session_capacity`: each API call makes a session, and Gradio keeps 10,000 by default, so memory
  grew with the calls. tests/test_load.py (resident memory stays flat)
- the queue's poll intervals (`sleep_when_free`, `progress_update_sleep_when_free`): Gradio looks for new
  events every 1 ms and for progress every 10 ms, which keeps the CPU busy with no client at all
  (docs/gradio-idle-cpu.md). A timing, so no test: bench/bench_browser.py measures the idle CPU.
- 404 for an unknown endpoint (/gradio_api/call/<no such name>), not Gradio's unhandled 500.
  tests/test_bad_input.py::test_an_unknown_endpoint_gets_404_not_500
- 400 for an unknown fn_index at /gradio_api/queue/join, not Gradio's unguarded KeyError.
  tests/test_bad_input.py::test_an_unknown_function_index_in_the_queue_gets_4xx_not_500
- `app.state.end_heartbeats`, Gradio's stop event, which only its own launch() sets: every open page and
  gradio_client holds a heartbeat stream (GET /gradio_api/heartbeat/...) that ends only when it is set.
  app/__main__.py sets it on SIGTERM, else each shutdown waits out the whole drain for them.
  tests/test_replicas.py::test_a_rolling_update_moves_users_on_cleanly
"""

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from app.config import Settings

STUB_REWRITING_GRADIO = ("6.31.",)  # versions checked; requirements.txt pins one (tests/test_server.py)
DRAWINGS_BYTES = 64 * 2**20  # the last composites of open pages, together; the oldest go first beyond this
STATE_SESSIONS = 1000  # Gradio's sessions kept (each API call makes one): the oldest go first beyond this
# Polling every 10 ms delays an event by half that on average; this app reports no progress.
QUEUE_POLL_SECONDS = 0.01
PROGRESS_POLL_SECONDS = 1.0


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


def mount(app: FastAPI, demo: gr.Blocks, settings: Settings, *, theme: gr.themes.Base, css: str) -> FastAPI:
    """Mount the UI and its API at / (mount_gradio_app), with every override above; after the app's own routes."""
    demo.api_open = False
    demo.has_launched = True
    demo.state_session_capacity = STATE_SESSIONS
    demo._queue.sleep_when_free = QUEUE_POLL_SECONDS
    demo._queue.progress_update_sleep_when_free = PROGRESS_POLL_SECONDS
    app = gr.mount_gradio_app(
        app, demo, path="/", footer_links=["api"], max_file_size=int(settings.max_upload_mb * 2**20),
        theme=theme, css=css, show_error=True, ssr_mode=False, enable_monitoring=False, mcp_server=False)
    gradio_app = app.routes[-1].app  # the mount just added at /
    gradio_app.add_exception_handler(gr.route_utils.FnIndexInferError, unknown_endpoint)
    gradio_app.add_exception_handler(KeyError, unknown_function)
    app.state.end_heartbeats = gradio_app.stop_event  # set by app/__main__.py on SIGTERM
    return app
