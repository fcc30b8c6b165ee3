"""Gradio's API as programs call it: the Sketchpad value for gradio_client, and the plain HTTP flow."""

import json

import httpx
from gradio_client import handle_file


def sketch(path) -> dict:
    """The Sketchpad value gradio_client sends: a canvas file as the composite."""
    return {"background": None, "layers": [], "composite": handle_file(str(path))}


class PredictionFailed(Exception):
    """A prediction over HTTP ended without an answer; the message says at which step and why."""


def predict_http(url: str, png: bytes, source: str = "127.0.0.1", timeout: float = 30) -> dict:
    """One prediction over Gradio's HTTP API, each request on a new connection from the address `source`:
    upload the canvas, call `predict`, then read the result from its event stream. Returns the Label's value."""

    def request(method: str, path: str, **kwargs) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=url, transport=transport, timeout=timeout) as client:
            try:
                response = client.request(method, path, **kwargs)
            except httpx.HTTPError as error:
                raise PredictionFailed(f"{method} {path}: {type(error).__name__}: {error}") from None
        if response.status_code != 200:
            raise PredictionFailed(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
        return response

    upload = request("POST", "/gradio_api/upload", files={"files": ("canvas.png", png, "image/png")})
    composite = {"path": upload.json()[0], "meta": {"_type": "gradio.FileData"}}
    call = request("POST", "/gradio_api/call/predict",
                   json={"data": [{"background": None, "layers": [], "composite": composite}]})
    stream = request("GET", f"/gradio_api/call/predict/{call.json()['event_id']}")
    event = None
    for line in stream.text.splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "complete":
            return json.loads(line[5:])[0]
        elif line.startswith("data:") and event == "error":
            raise PredictionFailed(f"the event stream gave an error: {line[5:].strip()[:300]}")
    raise PredictionFailed(f"the event stream ended without a result: {stream.text[-300:]!r}")
