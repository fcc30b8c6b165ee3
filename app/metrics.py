"""Prometheus metrics for operators, served at GET /metrics.

    digits_predictions_total{digit}          predictions answered with a digit, by the digit read
    digits_not_a_digit_total                 predictions answered "not a digit" (a letter, a shape, a scribble)
    digits_nothing_to_read_total             canvases with nothing to read (blank, stray marks)
    digits_prediction_errors_total{reason}   predictions failed: unreadable_image, internal
    digits_prediction_seconds                histogram: preprocessing and model, per picture answered
    digits_http_responses_total{status}      every HTTP response, by status code (413s and 4xx included)
    digits_model_info{sha256, ...}           the model served (always 1)
    digits_feedback_total{answered, meant, verdict}  corrections kept: verdict "wrong" (a correction) or
                                             "right" (a confirmation: the user meant the digit answered);
                                             answered "not a digit" when the model said so
    digits_feedback_refused_total{reason}    corrections not kept: off, pod_limit, client_limit (app/limits.py),
                                             full, storage_error
    digits_refused_total{reason}             requests turned away to keep serving (app/gradio_overrides.py): queue_full
                                             (Gradio's queue), upload_space, upload_size, upload_length;
                                             photo_space (app/rest.py)

The live share of answers people marked wrong, of those they judged (docs/operations.md):
    sum(rate(digits_feedback_total{verdict="wrong"}[1h])) / sum(rate(digits_feedback_total[1h]))

Each app has its own registry, so that tests can build many apps in one process.
"""

from prometheus_client import CollectorRegistry, Counter, Histogram, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds, spread around a typical prediction's latency (bench/bench_app.py measures it).
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self, model_identity: dict):
        self.registry = CollectorRegistry()
        self.predictions = Counter("digits_predictions", "Predictions answered with a digit, by the digit read",
                                   ["digit"], registry=self.registry)
        self.not_a_digit = Counter("digits_not_a_digit", "Predictions answered \"not a digit\"",
                                   registry=self.registry)
        self.nothing_to_read = Counter("digits_nothing_to_read", "Canvases with nothing to read",
                                       registry=self.registry)
        self.errors = Counter("digits_prediction_errors", "Predictions failed, by reason", ["reason"],
                              registry=self.registry)
        self.latency = Histogram("digits_prediction_seconds", "Preprocessing and model time per picture",
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.http_responses = Counter("digits_http_responses", "HTTP responses, by status code", ["status"],
                                      registry=self.registry)
        self.corrections = Counter("digits_feedback", "Corrections kept, by the digit answered and the digit meant",
                                   ["answered", "meant", "verdict"], registry=self.registry)
        self.corrections_not_kept = Counter("digits_feedback_refused", "Corrections not kept, by reason", ["reason"],
                                            registry=self.registry)
        self.turned_away = Counter("digits_refused", "Requests turned away to keep serving, by reason", ["reason"],
                                   registry=self.registry)
        Info("digits_model", "The model served", registry=self.registry).info(
            {name: str(value) for name, value in model_identity.items() if not isinstance(value, dict)})

    def answered(self, digit: str | None, seconds: float) -> None:
        """One picture answered: `digit`, or None for "not a digit"."""
        if digit is None:
            self.not_a_digit.inc()
        else:
            self.predictions.labels(digit).inc()
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
