"""Structured logs: one JSON object per line, each HTTP request logged once with its request id.

The id comes from the caller's X-Request-ID header (kept when it looks sane) or is made here; it is
put into the request's headers, so Gradio's `gr.Request` sees it in the prediction's log line, and
returned in the response's X-Request-ID header.
"""

import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime

REQUEST_ID_HEADER = b"x-request-id"
SANE_REQUEST_ID = re.compile(r"^[\w.:-]{1,128}$")
log = logging.getLogger("app.requests")


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, logger, message, and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                 **getattr(record, "fields", {})}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """JSON lines on stderr for the app, uvicorn and Gradio alike."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []  # propagate to the JSON handler instead
        logging.getLogger(name).propagate = True


class RequestLog:
    """ASGI middleware: a request id for every HTTP request, one log line and one counted status each.

    Plain ASGI rather than Starlette's BaseHTTPMiddleware, which would buffer Gradio's event streams.
    """

    def __init__(self, app, metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = given if SANE_REQUEST_ID.match(given) else uuid.uuid4().hex
        scope["headers"] = [(name, value) for name, value in scope["headers"] if name != REQUEST_ID_HEADER]
        scope["headers"].append((REQUEST_ID_HEADER, request_id.encode()))
        status, started = 500, time.perf_counter()

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.http_responses.labels(str(status)).inc()
            log.info("request", extra={"fields": {
                "request_id": request_id, "method": scope["method"], "path": scope["path"], "status": status,
                "ms": round((time.perf_counter() - started) * 1e3, 1)}})
