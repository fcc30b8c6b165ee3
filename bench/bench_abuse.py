"""One hostile client against the app, before and after: what each attack of tests/support/abuse.py leaves.

    git worktree add /tmp/before <commit>     # the app as it was
    python -m bench.bench_abuse --before /tmp/before [--seconds 15]

Starts `python -m app` from each checkout in turn (this one, then `--before`; only this one without it),
with the pod's upload folder, and makes each attack:
- unread Gradio calls for `--seconds` from 20 connections, then one user's prediction (given 60 s);
- 40 uploads of 10 MB, then the upload folder's size and /health;
- 1,000 corrections from one client (POST /feedback), with predictions sent all the while.
These are outcomes, not timings: the machine's noise moves the counts a little, never the verdicts.
"""

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from app.corrections import correction_paths
from tests.support.abuse import flood_corrections, flood_unread_calls, flood_uploads, folder_bytes
from tests.support.gradio_api import PredictionFailed, predict_http
from tests.support.paths import BROWSER_COMPOSITE, REPO
from tests.support.server import run_app
from tests.support.table import markdown_table

USER_WAITS = 60  # seconds a user keeps trying after the flood


def start(checkout: Path, folder: Path):
    """python -m app from `checkout` (its own code and model), its files in `folder`."""
    code = f"import os, runpy; os.chdir({str(checkout)!r}); runpy.run_module('app', run_name='__main__')"
    return run_app(folder, command=("-c", code), LOG_LEVEL="warning")


def stop(process) -> None:
    process.kill()  # an unbounded backlog could outlast a drain
    process.wait(timeout=30)


def user_after_flood(url: str, png: bytes) -> str:
    started = time.monotonic()
    while time.monotonic() - started < USER_WAITS:
        try:
            predict_http(url, png)
            return f"answered after {time.monotonic() - started:.1f} s"
        except PredictionFailed as failure:
            last = str(failure).split(": ", 1)[-1][:60]
            time.sleep(2)
    return f"not answered in {USER_WAITS} s ({last})"


def summary(outcomes) -> str:
    return "; ".join(f"{count:,} × {outcome}" for outcome, count in outcomes.most_common(3))


def unread_calls(checkout: Path, seconds: float) -> list[str]:
    png = BROWSER_COMPOSITE.read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        process, url = start(checkout, Path(folder))
        try:
            outcomes, _ = flood_unread_calls(url, seconds)
            user = user_after_flood(url, png)
            live = httpx.get(f"{url}/health/live").status_code
        finally:
            stop(process)
    return [summary(outcomes), user, str(live)]


def uploads(checkout: Path) -> list[str]:
    with tempfile.TemporaryDirectory() as folder:
        process, url = start(checkout, Path(folder))
        try:
            outcomes, seconds = flood_uploads(url, 40, 10 * 2**20)
            kept = folder_bytes(Path(folder) / "gradio") / 2**20
            health = httpx.get(f"{url}/health").status_code
        finally:
            stop(process)
    return [f"{summary(outcomes)} in {seconds:.1f} s", f"{kept:.0f} MB", str(health)]


def corrections(checkout: Path) -> list[str]:
    png = BROWSER_COMPOSITE.read_bytes()
    stopping, predictions = threading.Event(), []

    def predict(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not stopping.is_set():
                predictions.append(client.post("/predict", content=png,
                                               headers={"Content-Type": "image/png"}).status_code)

    with tempfile.TemporaryDirectory() as folder:
        process, url = start(checkout, Path(folder))
        predictor = threading.Thread(target=predict, args=(url,))
        predictor.start()
        try:
            outcomes, seconds = flood_corrections(url, png, 1000, ["203.0.113.7"])
        finally:
            stopping.set()
            predictor.join()
            stop(process)
        kept = len(correction_paths(Path(folder) / "feedback"))
    answered = sum(status == 200 for status in predictions)
    return [f"{kept:,} kept of 1,000 in {seconds:.1f} s", summary(outcomes),
            f"{answered:,} of {len(predictions):,} answered"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="a checkout of the app as it was (git worktree add)")
    parser.add_argument("--seconds", type=float, default=15, help="how long the unread calls go on")
    args = parser.parse_args()
    checkouts = [("now", REPO)] + ([("before", args.before.resolve())] if args.before else [])
    attacks = [
        (f"{args.seconds:g} s of unread Gradio calls", ["calls", "a user's prediction after", "/health/live"],
         lambda checkout: unread_calls(checkout, args.seconds)),
        ("40 uploads of 10 MB", ["uploads", "upload folder after", "/health"], uploads),
        ("1,000 corrections from one client", ["kept", "answers", "predictions meanwhile"], corrections),
    ]
    for title, columns, attack in attacks:
        rows = [[name, *attack(checkout)] for name, checkout in checkouts]
        print(f"\n{title}\n\n{markdown_table(['app', *columns], rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
