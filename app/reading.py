"""One reading of a picture, whichever way it came in (the Sketchpad, gradio_client, POST /predict):
preprocess, classify, count in the metrics and log. The callers only shape the answer."""

import logging
import time
from dataclasses import dataclass

import numpy as np

from app.classifier import Classifier
from app.contract import CLASS_NAMES
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


def read_digit(classifier: Classifier, metrics: Metrics, sketch, request_id: str | None = None) -> Reading:
    """A Sketchpad value or a plain image (a path or bytes) -> its Reading.

    Raises NothingToRead (blank, stray marks) or UnreadableImage (not an image, too large), counted and
    logged here; any other error is counted and logged as internal, then raised.
    """
    started = time.perf_counter()
    try:
        seen = preprocess_sketch(sketch)
        reading = Reading(classifier.predict(seen[np.newaxis])[0], seen)
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
