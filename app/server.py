"""The FastAPI app: health routes for people and probes, with the Gradio UI and API mounted at /.

    GET /health/live  liveness: the process answers (never touches the model)
    GET /health       readiness: the model is loaded and answers a forward pass; its identity
    GET /metrics      Prometheus metrics (app/metrics.py)
    POST /predict     one picture in, one JSON answer out (app/rest.py); stateless
    POST /feedback    a picture and the digit it shows, kept for the next training (app/feedback.py)
    GET /docs         the OpenAPI docs (Swagger UI served from here: no CDN); /openapi.json
    /                 the Gradio UI; /gradio_api/... its API (`predict`), /?view=api its docs
"""

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from app.classifier import load_classifier
from app.config import Settings, load_settings
from app.contract import TFLITE_FILE
from app.feedback import FeedbackStore
from app.logs import RequestLog
from app.metrics import CONTENT_TYPE, Metrics
from app.rest import rest_router
from app.ui import CSS, THEME, build_ui, gr  # app.ui turns off telemetry before importing Gradio

DOCS_ASSETS = "/docs-assets"  # Swagger UI's script, style and icon, for /docs
# Gradio's queue looks for new events every 1 ms while it has none, and for progress to report every 10 ms
# (gradio/queueing.py: sleep_when_free), which keeps the CPU busy with no client at all
# (docs/gradio-idle-cpu.md). Polling every 10 ms delays an event by half that on average; this app reports
# no progress.
QUEUE_POLL_SECONDS = 0.01
PROGRESS_POLL_SECONDS = 1.0


def model_identity(metadata: dict) -> dict:
    """What /health tells about the model: enough to know which one is served."""
    return {
        "sha256": metadata["files"][TFLITE_FILE]["sha256"],
        "test_accuracy": metadata.get("test_accuracy"),
        "created": metadata.get("created"),
        "trained_on": metadata.get("trained_on"),
    }


def create_app(settings: Settings | None = None) -> FastAPI:
    """Load and check the model (ModelError if it is missing or corrupt), then build the app."""
    settings = settings or load_settings()
    classifier, metadata = load_classifier(settings.model_dir)
    identity = model_identity(metadata)
    metrics = Metrics(identity)
    store = FeedbackStore(settings.feedback_dir, settings.feedback_max_records)
    app = FastAPI(title="Handwritten digits", version=identity["sha256"][:12], docs_url=None, redoc_url=None,
                  description="Read a handwritten digit: `POST /predict` with one picture. The drawing UI is at `/`.")
    app.add_middleware(RequestLog, metrics=metrics)
    app.include_router(rest_router(classifier, metrics, store, identity["sha256"],
                                   int(settings.max_upload_mb * 2**20), settings.concurrency))

    # FastAPI's /docs loads Swagger UI from a CDN: serve it from the fastapi-offline package instead.
    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")

    # Routes first: the Gradio mount at / would swallow them.
    @app.get("/health/live")
    def live() -> dict:
        """Liveness: the server answers."""
        return {"status": "alive"}

    @app.get("/health")
    def health() -> JSONResponse:
        """Readiness: the model is loaded and answers; 503 if not."""
        if classifier.answers():
            return JSONResponse({"status": "ready", "model": identity})
        return JSONResponse({"status": "model not answering", "model": identity}, status_code=503)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """Prometheus: predictions by digit, latency, errors, HTTP statuses, the model's identity."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    demo = build_ui(classifier, metadata, metrics, store, settings.concurrency)  # events set their concurrency
    demo.api_open = False  # else POST /gradio_api/run/predict skips the queue (and CONCURRENCY), 500 on any error
    # mount_gradio_app, unlike launch(), leaves has_launched False, and Gradio then skips its check that a
    # file path sent to the API was uploaded: any server file (/etc/passwd, /dev/zero) would be read.
    demo.has_launched = True
    demo.state_session_capacity = 1000  # each API call makes a session (~20 KB): 10,000 by default
    demo._queue.sleep_when_free = QUEUE_POLL_SECONDS
    demo._queue.progress_update_sleep_when_free = PROGRESS_POLL_SECONDS
    app = gr.mount_gradio_app(
        app, demo, path="/", footer_links=["api"], max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        theme=THEME, css=CSS, show_error=True, ssr_mode=False, enable_monitoring=False, mcp_server=False)

    async def unknown_endpoint(request, error) -> JSONResponse:
        """/gradio_api/call/<a name that does not exist>: 404, not Gradio's unhandled 500."""
        return JSONResponse({"detail": str(error)}, status_code=404)

    async def unknown_function(request, error: KeyError) -> JSONResponse:
        """/gradio_api/queue/join with an fn_index that does not exist: 400, not Gradio's unguarded KeyError."""
        if request.url.path.endswith("/queue/join"):
            return JSONResponse({"detail": f"no such function: fn_index {error}"}, status_code=400)
        raise error  # anywhere else a KeyError is a bug: let it be the 500 it is

    gradio_app = app.routes[-1].app  # the mount just added at /
    gradio_app.add_exception_handler(gr.route_utils.FnIndexInferError, unknown_endpoint)
    gradio_app.add_exception_handler(KeyError, unknown_function)
    # Every open page and gradio_client holds a session heartbeat stream (GET /gradio_api/heartbeat/...)
    # that ends only when this event is set, which Gradio does in its own launch() only. app.__main__ sets
    # it on SIGTERM: else each shutdown waits out the whole drain for them, then cancels them with an error.
    app.state.end_heartbeats = gradio_app.stop_event
    return app
