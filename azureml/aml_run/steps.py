"""How a step of the run is said and how it fails: one message naming the step, exit status 1."""

import sys
from contextlib import contextmanager


class StepFailed(RuntimeError):
    """A step of the run failed; the message says which step and why."""


@contextmanager
def step(what: str):
    """Say what is being done; turn any error inside (the SDK raises many kinds) into StepFailed naming it."""
    print(f"-> {what}", file=sys.stderr, flush=True)
    try:
        yield
    except StepFailed:
        raise
    except Exception as error:
        raise StepFailed(f"{what} failed: {type(error).__name__}: {error}") from error
