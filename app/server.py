"""The FastAPI app: health routes for people and probes, with the Gradio UI and API mounted at /.

    GET /health/live  liveness: the process answers and Gradio's queue runs (never touches the model)
    GET /health       readiness: the model is loaded and answers a forward pass, the queue runs; its identity, and
                      whether it refuses what is not a digit (refuses_non_digits: false for a digits network alone)
    GET /metrics      Prometheus metrics (app/metrics.py)
    POST /predict     one picture in, one JSON answer out (app/rest.py); stateless
    POST /feedback    a picture and the digit it shows, kept for the next training (app/corrections.py)
    GET /docs         the OpenAPI docs (Swagger UI served from here: no CDN); /openapi.json
    /                 the Gradio UI (app/ui.py); /gradio_api/... its API (`predict`), /?view=api its docs
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from app.config import Settings, load_settings
from app.gradio_overrides import mount, queue_running
from app.logs import RequestLog
from app.metrics import CONTENT_TYPE
from app.reading import Reader
from app.rest import rest_router
from app.ui import CSS, THEME, build_ui

DOCS_ASSETS = "/docs-assets"  # Swagger UI's script, style and icon, for /docs


def serve_docs_offline(app: FastAPI) -> None:
    """FastAPI's /docs loads Swagger UI from a CDN: serve it from the fastapi-offline package instead."""
    app.mount(DOCS_ASSETS, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: API",
                                   swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png")


def probe_router(reader: Reader, demo) -> APIRouter:
    """/health/live, /health and /metrics: for people, probes and Prometheus."""
    router = APIRouter()

    @router.get("/health/live")
    def live() -> JSONResponse:
        """Liveness: the server answers and Gradio's queue runs; 503 if it has stopped (only a restart brings it
        back: the page and gradio_client are turned away meanwhile)."""
        if queue_running(demo):
            return JSONResponse({"status": "alive"})
        return JSONResponse({"status": "Gradio's queue has stopped"}, status_code=503)

    @router.get("/health")
    def health() -> JSONResponse:
        """Readiness: the model is loaded and answers, and Gradio's queue runs; 503 if not."""
        if not queue_running(demo):
            return JSONResponse({"status": "Gradio's queue has stopped", "model": reader.identity}, status_code=503)
        if reader.classifier.self_check():
            return JSONResponse({"status": "ready", "model": reader.identity})
        return JSONResponse({"status": "model not answering", "model": reader.identity}, status_code=503)

    @router.get("/metrics")
    def prometheus_metrics() -> Response:
        """Prometheus: predictions by digit, latency, errors, HTTP statuses, the model's identity."""
        return Response(reader.metrics.exposition(), media_type=CONTENT_TYPE)

    return router


def create_app(settings: Settings | None = None) -> FastAPI:
    """Load and check the model (ModelError if it is missing or corrupt), then build the app."""
    settings = settings or load_settings()
    reader = Reader.load(settings)
    demo = build_ui(reader, settings.concurrency)  # events set their concurrency
    app = FastAPI(title="Handwritten digits", version=reader.model_sha256[:12], docs_url=None, redoc_url=None,
                  description="Read a handwritten digit: `POST /predict` with one picture. The drawing UI is at `/`.")
    app.add_middleware(RequestLog, metrics=reader.metrics)
    # Routes first: the Gradio mount at / would swallow them.
    app.include_router(rest_router(reader, int(settings.max_photo_mb * 2**20), settings.concurrency))
    serve_docs_offline(app)
    app.include_router(probe_router(reader, demo))
    return mount(app, demo, settings, theme=THEME, css=CSS,  # Gradio's overrides: app/gradio_overrides.py
                 turned_away=lambda reason: reader.metrics.turned_away.labels(reason).inc())
