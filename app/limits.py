"""How many corrections are kept per minute: by this replica from everyone, and from one client address.

Each limit is a token bucket holding a minute's allowance, refilled continuously: a burst of that many
passes, then one more every 60/limit seconds. A correction over a limit is told when to try again (429 with
Retry-After on POST /feedback). Predictions are never limited here.

The client is the address the pod sees (after uvicorn's X-Forwarded-For handling, trusted from
FORWARDED_ALLOW_IPS only). Where every client reaches the pod from one address, as on both overlays, a
per-client limit would be one more shared limit: FEEDBACK_PER_CLIENT_PER_MINUTE=0 turns it off there.
"""

import math
import threading
import time
from collections import OrderedDict

from app.corrections import NotKept

MAX_CLIENTS = 10_000  # client buckets remembered; the least recently used go first (a full bucket again)


class RateLimited(NotKept):
    """A correction not kept for a limit; `retry_after`: whole seconds until it would be taken."""

    def __init__(self, reason: str, message: str, retry_after: int):
        super().__init__(reason, message)
        self.retry_after = retry_after


class Bucket:
    def __init__(self, per_minute: int, now: float):
        self.capacity, self.rate = float(per_minute), per_minute / 60.0
        self.tokens, self.at = self.capacity, now

    def wait(self, now: float) -> float:
        """Seconds until a token is there (0: now), after refilling up to `now`."""
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class CorrectionLimits:
    def __init__(self, per_minute: int, per_client_per_minute: int, clock=time.monotonic):
        self.clock, self.per_client = clock, per_client_per_minute
        self.pod = Bucket(per_minute, clock())
        self.clients: OrderedDict[str, Bucket] = OrderedDict()
        self.lock = threading.Lock()  # corrections are kept from worker threads

    def take(self, client: str | None) -> None:
        """Count one correction from `client`; RateLimited (taking nothing) if a limit is reached."""
        with self.lock:
            now = self.clock()
            buckets = [("pod_limit", self.pod)]
            if self.per_client and client:
                bucket = self.clients.pop(client, None) or Bucket(self.per_client, now)
                self.clients[client] = bucket
                while len(self.clients) > MAX_CLIENTS:
                    self.clients.popitem(last=False)
                buckets.insert(0, ("client_limit", bucket))
            for reason, bucket in buckets:
                if wait := bucket.wait(now):
                    seconds = math.ceil(wait)
                    who = "from your address" if reason == "client_limit" else "on this server"
                    raise RateLimited(reason, f"Too many corrections {who} this minute: this one was not kept. "
                                      f"Try again in {seconds} s. Predictions go on as before.", seconds)
            for _, bucket in buckets:
                bucket.tokens -= 1
