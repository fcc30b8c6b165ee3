"""One reading of a picture, whichever way it came in (the Sketchpad, gradio_client, POST /predict):
preprocess, classify, count in the metrics and log. The callers only shape the answer. A reading is a digit,
or "not a digit" (a letter, a shape, a scribble); a picture with nothing to read raises NothingToRead instead.

And one correction, whichever way it came in (the UI's "Wrong? It was…", the Gradio API `feedback`,
POST /feedback): the picture is read again, exactly as it was answered, and kept with the digit meant."""

import logging
import time
from dataclasses import dataclass

import numpy as np

from app.classifier import Classifier
from app.contract import CLASS_NAMES, DIGITS, NOT_A_DIGIT, NUM_DIGITS
from app.feedback import FeedbackRefused, FeedbackStore, Record, check_digit, new_record
from app.limits import CorrectionLimits
from app.metrics import Metrics
from app.preprocess import NothingToRead, UnreadableImage, preprocess_sketch

log = logging.getLogger("app.predictions")


@dataclass(frozen=True)
class Reading:
    probabilities: np.ndarray  # [11], one per class in CLASS_NAMES
    seen: np.ndarray  # float32 [28, 28, 1]: what the model read (the model contract)

    @property
    def answered(self) -> int:
        """The class answered: a digit 0-9, or NOT_A_DIGIT."""
        return int(self.probabilities.argmax())

    @property
    def is_digit(self) -> bool:
        return self.answered != NOT_A_DIGIT

    @property
    def digit(self) -> str | None:
        """The digit read; None when the model says it is not a digit."""
        return DIGITS[self.answered] if self.is_digit else None

    @property
    def probability(self) -> float:
        """The model's probability for its answer."""
        return float(self.probabilities[self.answered])

    def top(self, count: int) -> list[tuple[str, float]]:
        """The `count` likeliest digits (never "not a digit") with their probabilities as the model gave them,
        likeliest first: the answer when it is a digit, the digits the drawing resembles when it is not."""
        order = np.argsort(self.probabilities[:NUM_DIGITS])[::-1][:count]
        return [(DIGITS[i], float(self.probabilities[i])) for i in order]

    def not_a_digit_message(self) -> str:
        """What a person is told when the model says it is not a digit, with the digits it resembles most."""
        return ("That does not look like a digit: of the digits, it looks most like "
                + ", then ".join(digit for digit, _ in self.top(3)) + ".")


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
    log.info("prediction" if reading.is_digit else "not a digit",
             extra={"fields": {"request_id": request_id, "digit": reading.digit,
                               "confidence": round(reading.probability, 4), "ms": round(seconds * 1e3, 2)}})
    return reading


def keep_correction(classifier: Classifier, metrics: Metrics, store: FeedbackStore, limits: CorrectionLimits,
                    sketch, meant, model_sha256: str, client: str | None = None,
                    request_id: str | None = None) -> tuple[Record, str]:
    """Read the picture again and keep it with the digit the user meant; return the record and its file name.
    A "not a digit" answer is corrected like a wrong digit: the record's `answered` is NOT_A_DIGIT.

    Raises FeedbackRefused (off, over a limit of app/limits.py as RateLimited, full, a storage error: counted
    and logged here), ValueError (the digit meant is not 0-9), NothingToRead or UnreadableImage (nothing that
    could have been answered). `client`: the address the correction came from, for the per-client limit.
    """
    try:
        store.refuse_if_off()  # first: with feedback off, nothing else matters
        meant = check_digit(meant)
        limits.take(client)  # before any work: a flood costs little
        reading = look(classifier, sketch)
        record = new_record(reading.seen, meant, reading.answered, reading.probability, model_sha256)
        name = store.keep(record)
    except FeedbackRefused as refusal:
        metrics.feedback_refused.labels(refusal.reason).inc()
        log.warning("correction not kept", extra={"fields": {"request_id": request_id, "reason": refusal.reason,
                                                              "detail": str(refusal)}})
        raise
    metrics.feedback.labels(CLASS_NAMES[record.answered], str(record.meant), record.verdict).inc()
    log.info("correction kept", extra={"fields": {"request_id": request_id, "record": name,
                                                  "answered": record.answered, "meant": record.meant}})
    return record, name
