"""POST /predict: one picture in, one JSON answer out. POST /feedback: the digit a picture shows, kept for
the next training. Stateless, so any replica can answer them.

    curl -F file=@digit.png http://localhost:7860/predict
    curl --data-binary @digit.png -H "Content-Type: image/png" http://localhost:7860/predict
    curl -F file=@digit.png -F digit=7 http://localhost:7860/feedback
    curl -F file=@digit.png "http://localhost:7860/feedback?digit=7"

The same reading and correction as the UI and the Gradio API (app/reading.py): preprocessing, model,
the corrections store, metrics and logs.
"""

from typing import Literal

import anyio
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from app.classifier import Classifier
from app.feedback import FeedbackRefused, FeedbackStore, check_digit, summary
from app.limits import CorrectionLimits, RateLimited
from app.metrics import Metrics
from app.preprocess import NothingToRead, UnreadableImage
from app.reading import keep_correction, read_digit

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


class Correction(BaseModel):
    record: str = Field(description="the record's file name in the corrections folder")
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
          413: {"description": "larger than MAX_UPLOAD_MB"},
          415: {"description": "neither multipart/form-data nor an image content type"},
          422: {"description": "multipart/form-data without a `file` field"}}


FEEDBACK_ERRORS = {**ERRORS, 422: {"description": "multipart/form-data without a `file` field, no digit in the "
                                                  "picture, or no `digit` 0-9 (query or form field)"},
                   429: {"description": "over a limit of corrections per minute (FEEDBACK_PER_MINUTE, "
                                        "FEEDBACK_PER_CLIENT_PER_MINUTE): not kept; Retry-After says when to try "
                                        "again"},
                   503: {"description": "corrections are not kept on this server, or could not be written"},
                   507: {"description": "the store of corrections is full: not kept"}}
REFUSAL_STATUS = {"full": 507}  # else 503


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it passes `limit` bytes."""
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
        if int(request.headers.get("content-length") or 0) > limit + 64 * 1024:  # room for the framing
            raise HTTPException(413, f"the picture is larger than {limit / 2**20:g} MB")
        # A larger part sent without a length is refused by the parser (400, "Part exceeded maximum size").
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


def rest_router(classifier: Classifier, metrics: Metrics, store: FeedbackStore, limits: CorrectionLimits,
                model_sha256: str, max_upload_bytes: int, concurrency: int) -> APIRouter:
    router = APIRouter()
    limiter = anyio.CapacityLimiter(concurrency)  # as many readings at once as the Gradio path allows

    @router.post("/predict", response_model=Prediction, responses=ERRORS, openapi_extra={"requestBody": PREDICT_BODY},
                 summary="Read the digit in one picture")
    async def predict(request: Request) -> Prediction:
        """One picture of one digit in, the digit (or "not a digit") and the top 3 digits out. Stateless: no
        session, any replica."""
        picture, _ = await uploaded_picture(request, max_upload_bytes)
        sketch = {"background": None, "layers": [], "composite": picture}
        try:
            reading = await anyio.to_thread.run_sync(
                read_digit, classifier, metrics, sketch, request.headers.get("x-request-id"), limiter=limiter)
        except NothingToRead as reason:
            return Prediction(outcome="nothing_drawn", digit=None, top=[], message=f"Nothing to read: {reason}",
                              model_sha256=model_sha256)
        except UnreadableImage as error:
            raise HTTPException(400, f"Could not read the image: {error}") from None
        return Prediction(outcome="digit" if reading.is_digit else "not_a_digit", digit=reading.digit,
                          top=[Guess(digit=d, probability=p) for d, p in reading.top(TOP)],
                          message="" if reading.is_digit else reading.not_a_digit_message(),
                          model_sha256=model_sha256)

    @router.post("/feedback", status_code=201, response_model=Correction, responses=FEEDBACK_ERRORS,
                 openapi_extra={"requestBody": FEEDBACK_BODY}, summary="Say which digit a picture shows")
    async def feedback(request: Request, digit: int | None = Query(
            None, ge=0, le=9, description="the digit meant (or the multipart form field `digit`)")) -> Correction:
        """The picture, as sent to /predict, and the digit it shows: kept (28x28, as the model saw it) for the
        next training. The digit answered agreeing with `digit` counts as a confirmation."""
        picture, fields = await uploaded_picture(request, max_upload_bytes)
        digit = digit_meant(digit, fields.get("digit"))
        sketch = {"background": None, "layers": [], "composite": picture}
        try:
            record, name = await anyio.to_thread.run_sync(
                keep_correction, classifier, metrics, store, limits, sketch, digit, model_sha256,
                request.client.host if request.client else None, request.headers.get("x-request-id"),
                limiter=limiter)
        except NothingToRead as reason:
            raise HTTPException(422, f"Nothing to read: {reason}: nothing to correct") from None
        except UnreadableImage as error:
            raise HTTPException(400, f"Could not read the image: {error}") from None
        except RateLimited as refusal:
            raise HTTPException(429, str(refusal), headers={"Retry-After": str(refusal.retry_after)}) from None
        except FeedbackRefused as refusal:
            raise HTTPException(REFUSAL_STATUS.get(refusal.reason, 503), str(refusal)) from None
        return Correction(**summary(record, name))

    return router
