"""The Reader: the one object the UI (app/ui.py) and REST (app/rest.py) share. It owns the classifier, the
metrics, the corrections store with its limits, and the model's identity.

One reading of a picture, whichever way it came in (the Sketchpad, gradio_client, POST /predict):
preprocess, classify, count in the metrics and log. The callers only shape the answer. A reading is a digit,
or "not a digit" (a letter, a shape, a scribble); a picture with nothing to read raises NothingToRead instead.

And one correction, whichever way it came in (the UI's "Wrong? It was…", the Gradio API `feedback`,
POST /feedback): the picture is read again, exactly as it was answered, and kept with the digit meant."""

import logging
import time
from dataclasses import dataclass

import numpy as np

from app.classifier import Classifier, load_classifier
from app.config import Settings
from app.contract import CLASS_NAMES, DIGITS, NOT_A_DIGIT, NUM_DIGITS, TFLITE_FILE
from app.corrections import Correction, CorrectionsStore, NotKept, check_digit, new_correction
from app.limits import CorrectionLimits
from app.metrics import Metrics
from app.preprocess import NothingToRead, UnreadableImage, preprocess

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


def nothing_to_correct(reason: NothingToRead) -> str:
    """What a correction of a picture with nothing to read is told (POST /feedback, the Gradio API `feedback`)."""
    return f"Nothing to read: {reason}, so nothing to correct: send the picture of one digit with the digit meant."


def model_identity(classifier: Classifier, metadata: dict) -> dict:
    """What /health (and digits_model_info) tells about the model: enough to know which one is served, and
    whether it can answer "not a digit" (a digits network alone cannot)."""
    return {
        "sha256": metadata["files"][TFLITE_FILE]["sha256"],
        "test_accuracy": metadata.get("test_accuracy"),
        "created": metadata.get("created"),
        "trained_on": metadata.get("trained_on"),
        "refuses_non_digits": classifier.refuses_non_digits,
    }


class Reader:
    """Reads pictures and keeps corrections with one classifier, counting both in its own `metrics`.
    `metadata`: the model's metadata.json, whose figures the page shows; `identity`: what /health tells."""

    def __init__(self, classifier: Classifier, metadata: dict, corrections: CorrectionsStore,
                 limits: CorrectionLimits):
        self.classifier, self.metadata = classifier, metadata
        self.corrections, self.limits = corrections, limits
        self.identity = model_identity(classifier, metadata)
        self.metrics = Metrics(self.identity)

    @property
    def model_sha256(self) -> str:
        """The served model.tflite's SHA-256, as /health tells it."""
        return self.identity["sha256"]

    @classmethod
    def load(cls, settings: Settings) -> "Reader":
        """The model of `settings` loaded and checked (ModelError if missing or corrupt), its corrections store
        and limits."""
        classifier, metadata = load_classifier(settings.model_dir)
        return cls(classifier, metadata, CorrectionsStore(settings.feedback_dir, settings.feedback_max_records),
                   CorrectionLimits(settings.feedback_per_minute, settings.feedback_per_client_per_minute))

    def look(self, picture) -> Reading:
        """Preprocess and classify, nothing else (no metric, no log)."""
        seen = preprocess(picture)
        return Reading(self.classifier.predict(seen[np.newaxis])[0], seen)

    def read(self, picture, request_id: str | None = None) -> Reading:
        """A Sketchpad value or a plain image (a path or bytes) -> its Reading.

        Raises NothingToRead (blank, stray marks) or UnreadableImage (not an image, too large), counted and
        logged here; any other error is counted and logged as internal, then raised.
        """
        metrics = self.metrics
        started = time.perf_counter()
        try:
            reading = self.look(picture)
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

    def correct(self, picture, meant, client: str | None = None,
                request_id: str | None = None) -> tuple[Correction, str]:
        """Read the picture again and keep it with the digit the user meant; return the correction and its file
        name. A "not a digit" answer is corrected like a wrong digit: the correction's `answered` is NOT_A_DIGIT.

        Raises NotKept (off, over a limit of app/limits.py as RateLimited, full, a storage error: counted and
        logged here), ValueError (the digit meant is not 0-9), NothingToRead or UnreadableImage (nothing that
        could have been answered). `client`: the address the correction came from, for the per-client limit.
        """
        try:
            self.corrections.check_on()  # first: with corrections off, nothing else matters
            meant = check_digit(meant)
            self.limits.take(client)  # before any work: a flood costs little
            reading = self.look(picture)
            correction = new_correction(reading.seen, meant, reading.answered, reading.probability,
                                        self.model_sha256)
            name = self.corrections.keep(correction)
        except NotKept as reason:
            self.metrics.corrections_not_kept.labels(reason.reason).inc()
            log.warning("correction not kept", extra={"fields": {"request_id": request_id, "reason": reason.reason,
                                                                  "detail": str(reason)}})
            raise
        self.metrics.corrections.labels(CLASS_NAMES[correction.answered], str(correction.meant),
                                        correction.verdict).inc()
        log.info("correction kept", extra={"fields": {"request_id": request_id, "record": name,
                                                      "answered": correction.answered, "meant": correction.meant}})
        return correction, name
