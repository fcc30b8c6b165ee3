"""python -m app with its Gradio queue altered for a test that cannot wait for Gradio to fail on its own.

    python -m tests.support.queue_app               # SIGUSR1 stops the queue, as its loop dying stops it
    python -m tests.support.queue_app --unbounded   # and no bound on the queue (Gradio's default), so that a
                                                    # flood reaches the crash app/gradio_overrides.py guards
"""

import signal
import sys

import app.gradio_overrides
from app.__main__ import main

queues = []
guard_queue = app.gradio_overrides.guard_queue


def guard_and_remember(queue, turned_away) -> None:
    if "--unbounded" in sys.argv:
        queue.max_size = None
    guard_queue(queue, turned_away)
    queues.append(queue)


app.gradio_overrides.guard_queue = guard_and_remember
signal.signal(signal.SIGUSR1, lambda signum, frame: [queue.close() for queue in queues])  # close(): stopped = True

if __name__ == "__main__":
    sys.exit(main())
