"""One reading of a picture, whichever way it came in (the Sketchpad, gradio_client, POST /predict):
preprocess, classify, count in the metrics and log. The callers only shape the answer.

And one correction, whichever way it came in (the UI's "Wrong? It was…", the Gradio API `feedback`,
POST /feedback): the picture is read again, exactly as it was answered, and kept with the digit meant."""

import logging
import time
from dataclasses import dataclass

import numpy as np

from app.classifier import Classifier
from app.contract import CLASS_NAMES
from app.feedback import FeedbackRefused, FeedbackStore, Record, check_digit, new_record
from app.limits import CorrectionLimits
from app.metrics import Metrics
from app.preprocess import NothingToRead, UnreadableImage, preprocess_sketch

log = logging.getLogger("app.predictions")


@dataclass(frozen=True)
class Reading:
    probabilities: np.ndarray  # [10], one per class in CLASS_NAMES
    seen: np.ndarray  # float32 [28, 28, 1]: what the model read (the model contract)

    @property
    def digit(self) -> str:
        return CLASS_NAMES[int(self.probabilities.argmax())]

    def top(self, count: int) -> list[tuple[str, float]]:
        """The `count` likeliest classes with their probabilities, likeliest first."""
        order = np.argsort(self.probabilities)[::-1][:count]
        return [(CLASS_NAMES[i], float(self.probabilities[i])) for i in order]


def look(classifier: Classifier, sketch) -> Reading:
    """Preprocess and classify, nothing else (no metric, no log)."""
    seen = preprocess_sketch(sketch)
    return Reading(classifier.predict(seen[np.newaxis])[0], seen)


def read_digit(classifier: Classifier, metrics: Metrics, sketch, request_id: str | None = None) -> Reading:
    """A Sketchpad value or a plain image (a path or bytes) -> its Reading.

    Raises NothingToRead (blank, stray marks) or UnreadableImage (not an image, too large), counted and
    logged here; any other error is counted and logged as internal, then raised.
    """
    started = time.perf_counter()
    try:
        reading = look(classifier, sketch)
    except NothingToRead as reason:
        metrics.nothing_to_read.inc()
        log.info("nothing to read", extra={"fields": {"request_id": request_id, "reason": str(reason)}})
        raise
    except UnreadableImage as error:
        metrics.errors.labels("unreadable_image").inc()
        log.info("unreadable image", extra={"fields": {"request_id": request_id, "reason": str(error)}})
        raise
    except Exception:
        metrics.errors.labels("internal").inc()
        log.exception("prediction failed", extra={"fields": {"request_id": request_id}})
        raise
    seconds = time.perf_counter() - started
    metrics.answered(reading.digit, seconds)
    log.info("prediction", extra={"fields": {"request_id": request_id, "digit": reading.digit,
                                             "confidence": round(float(reading.probabilities.max()), 4),
                                             "ms": round(seconds * 1e3, 2)}})
    return reading


def keep_correction(classifier: Classifier, metrics: Metrics, store: FeedbackStore, limits: CorrectionLimits,
                    sketch, meant, model_sha256: str, client: str | None = None,
                    request_id: str | None = None) -> tuple[Record, str]:
    """Read the picture again and keep it with the digit the user meant; return the record and its file name.

    Raises FeedbackRefused (off, over a limit of app/limits.py as RateLimited, full, a storage error: counted
    and logged here), ValueError (the digit meant is not 0-9), NothingToRead or UnreadableImage (nothing that
    could have been answered). `client`: the address the correction came from, for the per-client limit.
    """
    try:
        store.refuse_if_off()  # first: with feedback off, nothing else matters
        meant = check_digit(meant)
        limits.take(client)  # before any work: a flood costs little
        reading = look(classifier, sketch)
        record = new_record(reading.seen, meant, int(reading.digit), float(reading.probabilities.max()),
                            model_sha256)
        name = store.keep(record)
    except FeedbackRefused as refusal:
        metrics.feedback_refused.labels(refusal.reason).inc()
        log.warning("correction not kept", extra={"fields": {"request_id": request_id, "reason": refusal.reason,
                                                              "detail": str(refusal)}})
        raise
    metrics.feedback.labels(str(record.answered), str(record.meant), record.verdict).inc()
    log.info("correction kept", extra={"fields": {"request_id": request_id, "record": name,
                                                  "answered": record.answered, "meant": record.meant}})
    return record, name
