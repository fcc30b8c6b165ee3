"""Gradio's API as programs call it: the Sketchpad's value, and the plain HTTP flow of a prediction.

Over HTTP a prediction is three requests: upload the canvas (UPLOAD), call `predict` with the uploaded
file's path (CALL_PREDICT: it answers with an event id), then read the result from that event's stream
(an `event: complete` or `event: error` line, then a `data:` line). predict_http and predict_async make
all three; call_predict and read_events are the steps on their own, for tests that send odd values.
"""

import json

import httpx
from gradio_client import handle_file

UPLOAD = "/gradio_api/upload"
CALL_PREDICT = "/gradio_api/call/predict"


def sketchpad_value(composite=None) -> dict:
    """The Sketchpad's value with nothing but a composite: a picture (bytes, an image, a file's FileData) or
    None, as an untouched or cleared canvas sends."""
    return {"background": None, "layers": [], "composite": composite}


def sketch(path) -> dict:
    """The Sketchpad value gradio_client sends: a canvas file as the composite."""
    return sketchpad_value(handle_file(str(path)))


def file_data(path: str) -> dict:
    """A file on the server (what UPLOAD answered) as the API takes it."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def uploaded_sketch(path: str) -> dict:
    """The Sketchpad value whose composite is a file on the server."""
    return sketchpad_value(file_data(path))


def upload_form(png: bytes, name: str = "canvas.png") -> dict:
    """UPLOAD's multipart field, as httpx's `files`."""
    return {"files": (name, png, "image/png")}


class EventReader:
    """An event stream read line by line: read(line) gives (event, data) at each `data:` line, data as sent
    (JSON text), event "" when the stream named none."""

    def __init__(self):
        self.event = ""

    def read(self, line: str) -> tuple[str, str] | None:
        if line.startswith("event:"):
            self.event = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            event, self.event = self.event, ""
            return event, line[5:].strip()
        return None


def read_events(text: str) -> list[tuple[str, object]]:
    """A whole event stream's (event, data) pairs, data decoded from JSON."""
    reader = EventReader()
    return [(event, json.loads(data)) for event, data in filter(None, map(reader.read, text.splitlines()))]


def upload(url: str, content: bytes, name: str = "canvas.png", timeout: float = 30) -> str:
    """UPLOAD one file, which must be taken; its path on the server."""
    response = httpx.post(f"{url}{UPLOAD}", files=upload_form(content, name), timeout=timeout)
    assert response.status_code == 200, response.text
    return response.json()[0]


def call_predict(url: str, data: list, timeout: float = 30, **kwargs) -> tuple[str, object]:
    """POST CALL_PREDICT with the inputs `data` (and httpx's `kwargs`, e.g. headers), then read its event
    stream: the final (event, data)."""
    response = httpx.post(f"{url}{CALL_PREDICT}", json={"data": data}, timeout=timeout, **kwargs)
    assert response.status_code == 200, response.text
    stream = httpx.get(f"{url}{CALL_PREDICT}/{response.json()['event_id']}", timeout=timeout)
    assert stream.status_code == 200, stream.text
    events = read_events(stream.text)
    assert events and events[-1][0] in ("complete", "error"), stream.text
    return events[-1]


class PredictionFailed(Exception):
    """A prediction over HTTP ended without an answer; the message says at which step and why."""


def checked(method: str, path: str, response: httpx.Response) -> httpx.Response:
    """The response, if it is a 200; else PredictionFailed naming the request."""
    if response.status_code != 200:
        raise PredictionFailed(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
    return response


def request_from(url: str, method: str, path: str, source: str = "127.0.0.1", timeout: float = 30,
                 **kwargs) -> httpx.Response:
    """One request on a new connection from the address `source` (a client of its own to a Service that
    tells clients apart by address); PredictionFailed unless it is answered 200."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=url, transport=transport, timeout=timeout) as client:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise PredictionFailed(f"{method} {path}: {type(error).__name__}: {error}") from None
    return checked(method, path, response)


def answer(stream: str) -> dict:
    """The Label's value from a prediction's whole event stream; PredictionFailed on `event: error` or none."""
    reader = EventReader()
    for event, data in filter(None, map(reader.read, stream.splitlines())):
        if event == "complete":
            return json.loads(data)[0]
        if event == "error":
            raise PredictionFailed(f"the event stream gave an error: {data[:300]}")
    raise PredictionFailed(f"the event stream ended without a result: {stream[-300:]!r}")


def prediction_requests(png: bytes):
    """The three requests of one prediction as (method, path, httpx keyword arguments); each yield is sent
    its response. Returns the Label's value: predict_http and predict_async send them, each its own way."""
    uploaded = yield "POST", UPLOAD, {"files": upload_form(png)}
    call = yield "POST", CALL_PREDICT, {"json": {"data": [uploaded_sketch(uploaded.json()[0])]}}
    stream = yield "GET", f"{CALL_PREDICT}/{call.json()['event_id']}", {}
    return answer(stream.text)


def predict_http(url: str, png: bytes, source: str = "127.0.0.1", timeout: float = 30) -> dict:
    """One prediction over Gradio's HTTP API, each request on a new connection from the address `source`.
    Returns the Label's value."""
    requests, response = prediction_requests(png), None
    try:
        while True:
            method, path, kwargs = requests.send(response)
            response = request_from(url, method, path, source, timeout, **kwargs)
    except StopIteration as done:
        return done.value


async def predict_async(client: httpx.AsyncClient, png: bytes) -> dict:
    """One prediction over Gradio's HTTP API through `client` (its base URL the app's). Returns the Label's value."""
    requests, response = prediction_requests(png), None
    try:
        while True:
            method, path, kwargs = requests.send(response)
            response = checked(method, path, await client.request(method, path, **kwargs))
    except StopIteration as done:
        return done.value
