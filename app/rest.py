"""POST /predict: one picture in, one JSON answer out. POST /feedback: the digit a picture shows, kept for
the next training. Stateless, so any replica can answer them.

    curl -F file=@digit.png http://localhost:7860/predict
    curl --data-binary @digit.png -H "Content-Type: image/png" http://localhost:7860/predict
    curl -F file=@digit.png -F digit=7 http://localhost:7860/feedback
    curl -F file=@digit.png "http://localhost:7860/feedback?digit=7"

The same reading and correction as the UI and the Gradio API (app/reading.py): preprocessing, model,
the corrections store, metrics and logs.
"""

from collections.abc import Callable
from contextlib import contextmanager
from typing import Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from app.corrections import NotKept, check_digit, summary
from app.limits import RateLimited
from app.preprocess import NothingToRead, UnreadableImage
from app.reading import Reader, nothing_to_correct

TOP = 3
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff")


class Guess(BaseModel):
    digit: str
    probability: float


class Prediction(BaseModel):
    outcome: Literal["digit", "not_a_digit", "nothing_drawn"] = Field(
        description='"digit": a digit was read; "not_a_digit": the drawing is no digit (a letter, a shape, a '
                    'scribble); "nothing_drawn": nothing to read (blank, or a few stray marks)')
    digit: str | None = Field(description='the digit read; null unless the outcome is "digit"')
    top: list[Guess] = Field(description=f"the {TOP} likeliest digits, likeliest first, with the model's "
                                         'probabilities: the answer first for "digit", the digits it resembles for '
                                         '"not_a_digit"; empty for "nothing_drawn"')
    message: str = Field(description='empty for "digit"; else what was seen, in words')
    model_sha256: str = Field(description="the served model.tflite's SHA-256, as GET /health tells")

    model_config = {"json_schema_extra": {"examples": [{
        "outcome": "digit", "digit": "7",
        "top": [{"digit": "7", "probability": 0.9991}, {"digit": "2", "probability": 0.0006},
                {"digit": "1", "probability": 0.0002}],
        "message": "", "model_sha256": "5f0c…"}]}}


class Kept(BaseModel):
    record: str = Field(description="the correction's file name in the corrections folder")
    meant: str = Field(description="the digit meant, as sent")
    answered: str = Field(description='what the model reads in the picture: a digit, or "not a digit"')
    probability: float = Field(description="the model's probability for its answer")
    verdict: str = Field(description='"wrong": a correction; "right": a confirmation of the answer')
    message: str


BINARY = {"type": "string", "format": "binary"}


def request_body(fields: dict[str, dict]) -> dict:
    """The OpenAPI request body: a multipart form with the picture as `file` and `fields`, or a raw image."""
    form = {"type": "object", "required": ["file"], "properties": {"file": BINARY, **fields}}
    return {"required": True, "description": "one picture of one digit, any size, dark on light or light on dark",
            "content": {"multipart/form-data": {"schema": form}, **{kind: {"schema": BINARY} for kind in IMAGE_TYPES}}}


PREDICT_BODY = request_body({})
FEEDBACK_BODY = request_body({"digit": {"type": "integer", "minimum": 0, "maximum": 9,
                                        "description": "the digit meant (or the query parameter `digit`)"}})
ERRORS = {400: {"description": "not a readable image (the reason is in `detail`)"},
          413: {"description": "larger than MAX_PHOTO_MB"},
          415: {"description": "neither multipart/form-data nor an image content type"},
          422: {"description": "multipart/form-data without a `file` field"},
          503: {"description": "busy: the pictures being read fill their memory; Retry-After says when to try again"}}


FEEDBACK_ERRORS = {**ERRORS, 422: {"description": "multipart/form-data without a `file` field, no digit in the "
                                                  "picture, or no `digit` 0-9 (query or form field)"},
                   429: {"description": "over a limit of corrections per minute (FEEDBACK_PER_MINUTE, "
                                        "FEEDBACK_PER_CLIENT_PER_MINUTE): not kept; Retry-After says when to try "
                                        "again"},
                   503: {"description": "corrections are not kept on this server, or could not be written; or "
                                        "busy, as for /predict"},
                   507: {"description": "the store of corrections is full: not kept"}}
NOT_KEPT_STATUS = {"full": 507}  # else 503
OTHER_METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE"]  # 405, not the Gradio mount's 404
PHOTOS_IN_MEMORY = 4  # pictures of MAX_PHOTO_MB held at once: more wait (503); a drawing holds tens of KB
FRAMING_BYTES = 64 * 1024  # a multipart body's room for its headers, beyond the picture
BUSY = "The server is busy: try again in a second."


class PictureSpace:
    """The bytes of the pictures being received and read, within `budget`: each holds its declared length (the
    limit, undeclared) until answered, in the event loop's one thread. Past the budget: 503 with Retry-After,
    and `turned_away("photo_space")`."""

    def __init__(self, budget: int, turned_away: Callable[[str], None]):
        self.budget, self.turned_away, self.held = budget, turned_away, 0

    @contextmanager
    def hold(self, request: Request, limit: int):
        size = min(int(request.headers.get("content-length") or limit), limit + FRAMING_BYTES)
        if self.held + size > self.budget:
            self.turned_away("photo_space")
            raise HTTPException(503, BUSY, headers={"Retry-After": "1"})
        self.held += size
        try:
            yield
        finally:
            self.held -= size


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body; 413 as soon as it passes `limit` bytes."""
    if int(request.headers.get("content-length") or 0) > limit:
        raise HTTPException(413, f"the picture is larger than {limit / 2**20:g} MB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"the picture is larger than {limit / 2**20:g} MB")
    return bytes(body)


async def uploaded_picture(request: Request, limit: int) -> tuple[bytes, dict[str, str]]:
    """The picture (the multipart field `file`, or the whole body when it is sent as an image) and the form's
    other fields."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        if int(request.headers.get("content-length") or 0) > limit + FRAMING_BYTES:
            raise HTTPException(413, f"the picture is larger than {limit / 2**20:g} MB")
        # A larger part sent without a length is turned away by the parser (400, "Part exceeded maximum size").
        async with request.form(max_files=1, max_fields=10, max_part_size=limit) as form:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise HTTPException(422, "send the picture as the multipart field `file` (curl -F file=@digit.png)")
            return await file.read(), {name: value for name, value in form.items() if isinstance(value, str)}
    if kind.startswith("image/"):
        return await read_body(request, limit), {}
    raise HTTPException(415, f"send multipart/form-data with a `file` field, or an image content type; not {kind!r}")


def digit_meant(query: int | None, field: str | None) -> int:
    """The digit meant, from the query (`?digit=7`) or the form field (`-F digit=7`); 422 if neither or both
    disagree."""
    if field is None:
        if query is None:
            raise HTTPException(422, "say which digit the picture shows: the form field `digit` (curl -F digit=7) "
                                     "or the query parameter (?digit=7)")
        return query
    try:
        meant = check_digit(field)
    except ValueError as error:
        raise HTTPException(422, f"form field `digit`: {error}") from None
    if query is not None and query != meant:
        raise HTTPException(422, f"the query says digit {query} and the form field {meant}: send one")
    return meant


def rest_router(reader: Reader, max_body_bytes: int, concurrency: int) -> APIRouter:
    """POST /predict and /feedback, reading with `reader`: a picture of up to `max_body_bytes` (MAX_PHOTO_MB),
    `concurrency` readings at once (as many as the Gradio path allows)."""
    router = APIRouter()
    limiter = anyio.CapacityLimiter(concurrency)
    space = PictureSpace(PHOTOS_IN_MEMORY * max_body_bytes,
                         lambda reason: reader.metrics.turned_away.labels(reason).inc())

    @router.post("/predict", response_model=Prediction, responses=ERRORS, openapi_extra={"requestBody": PREDICT_BODY},
                 summary="Read the digit in one picture")
    async def predict(request: Request) -> Prediction:
        """One picture of one digit in, the digit (or "not a digit") and the top 3 digits out. Stateless: no
        session, any replica."""
        try:
            with space.hold(request, max_body_bytes):
                picture, _ = await uploaded_picture(request, max_body_bytes)
                reading = await anyio.to_thread.run_sync(
                    reader.read, picture, request.headers.get("x-request-id"), limiter=limiter)
        except NothingToRead as reason:
            return Prediction(outcome="nothing_drawn", digit=None, top=[], message=f"Nothing to read: {reason}",
                              model_sha256=reader.model_sha256)
        except UnreadableImage as error:
            raise HTTPException(400, f"Could not read the image: {error}") from None
        return Prediction(outcome="digit" if reading.is_digit else "not_a_digit", digit=reading.digit,
                          top=[Guess(digit=d, probability=p) for d, p in reading.top(TOP)],
                          message="" if reading.is_digit else reading.not_a_digit_message(),
                          model_sha256=reader.model_sha256)

    @router.post("/feedback", status_code=201, response_model=Kept, responses=FEEDBACK_ERRORS,
                 openapi_extra={"requestBody": FEEDBACK_BODY}, summary="Say which digit a picture shows")
    async def feedback(request: Request, digit: int | None = Query(
            None, ge=0, le=9, description="the digit meant (or the multipart form field `digit`)")) -> Kept:
        """The picture, as sent to /predict, and the digit it shows: kept (28x28, as the model saw it) for the
        next training. The digit answered agreeing with `digit` counts as a confirmation."""
        try:
            with space.hold(request, max_body_bytes):
                picture, fields = await uploaded_picture(request, max_body_bytes)
                correction, name = await anyio.to_thread.run_sync(
                    reader.correct, picture, digit_meant(digit, fields.get("digit")),
                    request.client.host if request.client else None, request.headers.get("x-request-id"),
                    limiter=limiter)
        except NothingToRead as reason:
            raise HTTPException(422, nothing_to_correct(reason)) from None
        except UnreadableImage as error:
            raise HTTPException(400, f"Could not read the image: {error}") from None
        except RateLimited as limited:
            raise HTTPException(429, str(limited), headers={"Retry-After": str(limited.retry_after)}) from None
        except NotKept as reason:
            raise HTTPException(NOT_KEPT_STATUS.get(reason.reason, 503), str(reason)) from None
        return Kept(**summary(correction, name))

    @router.api_route("/predict", methods=OTHER_METHODS, include_in_schema=False)
    @router.api_route("/feedback", methods=OTHER_METHODS, include_in_schema=False)
    def post_only() -> Response:
        return Response('{"detail":"Method Not Allowed: send a POST"}', 405, {"Allow": "POST"},
                        media_type="application/json")

    return router
