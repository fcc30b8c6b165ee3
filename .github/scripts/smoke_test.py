"""Smoke-test a deployed app: /health says ready, and one real drawing is read right.

    python .github/scripts/smoke_test.py http://localhost [--wait 120]

Needs only gradio_client. The drawing is tests/data/browser_composite.png, a 7 drawn with the mouse
in Chromium. Waits up to --wait seconds for /health (a new LoadBalancer can take a while), then exits
0, or 1 with the reason.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

DRAWING = Path(__file__).resolve().parents[2] / "tests" / "data" / "browser_composite.png"
DRAWN_DIGIT = "7"


def wait_until_ready(url: str, seconds: float) -> dict:
    """The /health answer once it says ready; RuntimeError when it has not within `seconds`."""
    deadline, last = time.monotonic() + seconds, "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                health = json.load(response)
                if health.get("status") == "ready":
                    return health
                last = f"status {health.get('status')!r}"
        except (urllib.error.URLError, OSError, ValueError) as error:
            last = str(error)
        time.sleep(2)
    raise RuntimeError(f"{url}/health was not ready within {seconds:.0f} s ({last})")


def read_drawing(url: str) -> dict:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False, analytics_enabled=False)
    job = client.submit({"background": None, "layers": [], "composite": handle_file(str(DRAWING))},
                        api_name="/predict")
    return job.result(timeout=60)  # gradio_client waits forever when its requests reach different pods


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the app's address, e.g. http://localhost")
    parser.add_argument("--wait", type=float, default=120, help="seconds to wait for /health (default 120)")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    try:
        health = wait_until_ready(url, args.wait)
        result = read_drawing(url)
    except Exception as error:  # any failure is the answer: say it and fail
        print(f"smoke test failed: {error}", file=sys.stderr)
        return 1
    if result.get("label") != DRAWN_DIGIT:
        print(f"smoke test failed: a drawn {DRAWN_DIGIT} was read as {result.get('label')!r}", file=sys.stderr)
        return 1
    print(f"smoke test passed: {url} serves model {health['model']['sha256'][:12]} "
          f"(test accuracy {health['model']['test_accuracy']}), and read a drawn {DRAWN_DIGIT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
