"""Two replicas behind the Service, as `kubectl apply -k kustomize/overlays/local` runs them.

Two real `python -m app` processes behind tests/support/balancer.py, which gives each new connection a pod
the way kube-proxy does for the Service rendered from the local overlay: at random, or per client address
with its `sessionAffinity: ClientIP`. Each simulated user connects from an address of its own (127.0.0.2,
127.0.0.3, ...; the browser from 127.0.0.1). Proved:
- gradio_client users, plain HTTP with a new connection for every request, and the real browser (draw,
  read, clear) get every prediction through the Service: none fails of 100 or more for each kind of client;
  the users are spread over both pods, and each stays on one;
- the same Service without its affinity makes those predictions fail, so this check can fail;
- a pod that dies (SIGKILL) mid-use costs each of its users at most one failed call, and their next
  predictions are answered by the other pod; the browser page goes on without a reload and shows no error;
- a rolling update's termination under load (leave the Service, the preStop sleep, SIGTERM): only calls
  caught half-way by the switch fail, at most one per user, each with an error and none hanging; every
  connection made after the switch goes to the other pod; the old pod exits 0 within uvicorn's drain with
  a clean log, because the session heartbeat streams that pages and gradio_clients hold open no longer keep
  the drain waiting until its timeout.

    python -m pytest tests/test_replicas.py
"""

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import expect

from app.__main__ import GRACEFUL_SHUTDOWN_SECONDS
from app.corrections import correction_paths
from tests.support.browser import ONE, SEVEN, ZERO, clear_canvas, draw, expect_empty, expect_reads, open_app
from tests.support.caller import Caller
from tests.support.drawing import drawn_canvases
from tests.support.gradio_api import PredictionFailed, predict_http, request_from
from tests.support.manifests import container, needs_kubectl, render
from tests.support.replicas import KUBELET_SECONDS, Replicas
from tests.support.server import metric_families

pytestmark = needs_kubectl

USERS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
BROWSER = "127.0.0.1"
SEED = 4  # the balancer's first four random picks fall two on each pod, so the users are spread over both
USER_PAUSE = 1.5  # seconds between a user's calls when a pod dies: longer than the Service takes to drop it
CALL_TIMEOUT = 10  # seconds: a call still unanswered by then hangs (gradio_client waits forever)


@pytest.fixture(scope="module")
def local_overlay() -> dict:
    return render("local")[1]


@pytest.fixture(scope="module")
def canvases(mnist_slice, tmp_path_factory) -> list[tuple[str, bytes, str]]:
    """(file, PNG, digit): MNIST test digits drawn as Chromium's Sketchpad sends them."""
    folder = tmp_path_factory.mktemp("canvases")
    drawn = []
    for index, (png, digit) in enumerate(drawn_canvases(40, seed=3, mnist=mnist_slice)):
        (folder / f"{index}.png").write_bytes(png)
        drawn.append((str(folder / f"{index}.png"), png, digit))
    return drawn


@pytest.fixture
def replicas(tmp_path, local_overlay):
    """Two pods sharing one corrections folder, as the overlay's claim makes them (replicas.corrections)."""
    with Replicas(tmp_path, local_overlay["Service"]["spec"], seed=SEED,
                  FEEDBACK_DIR=str(tmp_path / "corrections")) as replicas:
        replicas.corrections = tmp_path / "corrections"
        yield replicas


def repeated(canvases, count: int) -> list[tuple[str, bytes, str]]:
    return list(itertools.islice(itertools.cycle(canvases), count))


def calls(canvases, count: int) -> list[tuple[str, str]]:
    """What a gradio_client user (tests/support/caller.py) is given: (file, digit), `count` of them."""
    return [(path, digit) for path, _, digit in repeated(canvases, count)]


def read_over_gradio_http(url: str, png: bytes, address: str) -> str:
    return predict_http(url, png, address, timeout=CALL_TIMEOUT)["label"]


def read_over_rest(url: str, png: bytes, address: str) -> str:
    """POST /predict, on a new connection from `address`."""
    response = request_from(url, "POST", "/predict", address, CALL_TIMEOUT,
                            files={"file": ("digit.png", png, "image/png")})
    return response.json()["digit"]


def http_user(url: str, address: str, canvases, read=read_over_gradio_http) -> list[dict]:
    """A program calling over plain HTTP from `address`, each request on a new connection."""
    records = []
    for _, png, digit in canvases:
        record = {"digit": digit, "label": None, "error": None, "started": time.monotonic()}
        try:
            record["label"] = read(url, png, address)
        except PredictionFailed as error:
            record["error"] = str(error)
        record["ended"] = time.monotonic()
        records.append(record)
    return records


def assert_all_answered_right(records: list[dict], at_least: int) -> None:
    assert len(records) >= at_least
    failed = [record for record in records if record["error"]]
    assert not failed, f"{len(failed)} of {len(records)} failed, e.g. {failed[:3]}"
    right = sum(record["label"] == record["digit"] for record in records)
    assert right >= 0.95 * len(records), f"{right} of {len(records)} read right"


def assert_each_user_on_one_pod_and_both_pods_used(replicas: Replicas, users: list[str]) -> None:
    pods = {user: replicas.balancer.endpoints_of(user) for user in users}
    assert all(len(endpoints) == 1 for endpoints in pods.values()), pods
    assert set().union(*pods.values()) == set(replicas.processes), f"a pod served no one: {pods}"


def test_the_local_service_keeps_each_client_address_on_one_pod(local_overlay):
    """What the rest of this module relies on, stated on its own: a failure here explains failures below."""
    assert local_overlay["Deployment"]["spec"]["replicas"] == 2
    assert local_overlay["Service"]["spec"]["sessionAffinity"] == "ClientIP"


def test_gradio_client_users_get_every_prediction_from_two_replicas(replicas, canvases):
    users = [Caller(replicas.url, address, calls(canvases, 30), timeout=CALL_TIMEOUT) for address in USERS]
    records = [record for user in users for record in user.finish()]
    assert_all_answered_right(records, at_least=100)
    assert_each_user_on_one_pod_and_both_pods_used(replicas, USERS)


def test_plain_http_with_a_new_connection_per_request_gets_every_prediction(replicas, canvases):
    with ThreadPoolExecutor(len(USERS)) as pool:
        per_user = pool.map(lambda address: http_user(replicas.url, address, repeated(canvases, 25)), USERS)
    assert_all_answered_right([record for records in per_user for record in records], at_least=100)
    assert_each_user_on_one_pod_and_both_pods_used(replicas, USERS)


def test_without_the_affinity_the_same_predictions_fail(tmp_path, local_overlay, canvases):
    """Each prediction is three requests; at random, most of them reach a pod that lacks the upload or event."""
    spec = {key: value for key, value in local_overlay["Service"]["spec"].items()
            if not key.startswith("sessionAffinity")}
    with Replicas(tmp_path, spec, seed=SEED) as replicas:
        records = http_user(replicas.url, USERS[0], canvases[:20])
    failed = [record for record in records if record["error"]]
    assert len(failed) >= len(records) / 4, f"only {len(failed)} of {len(records)} failed without affinity"


def served(endpoint) -> dict[str, float]:
    """What one pod's /metrics counts: predictions answered, nothing-to-read answers, failures, 4xx and 5xx."""
    families = metric_families(f"http://{endpoint[0]}:{endpoint[1]}")

    def total(name: str, keep=lambda labels: True) -> float:
        return sum(sample.value for sample in families[name].samples
                   if sample.name.endswith("_total") and keep(sample.labels))

    return {"answered": total("digits_predictions") + total("digits_nothing_to_read"),
            "failed": total("digits_prediction_errors"),
            "http_errors": total("digits_http_responses", lambda labels: int(labels["status"]) >= 400)}


def test_post_predict_needs_no_affinity(tmp_path, local_overlay, canvases):
    """The stateless way in: one request per prediction, so any pod can answer any of them."""
    spec = {key: value for key, value in local_overlay["Service"]["spec"].items()
            if not key.startswith("sessionAffinity")}
    with Replicas(tmp_path, spec, seed=SEED) as replicas:
        with ThreadPoolExecutor(len(USERS)) as pool:
            per_user = pool.map(lambda address: http_user(replicas.url, address, repeated(canvases, 25),
                                                           read=read_over_rest), USERS)
            records = [record for user_records in per_user for record in user_records]
        assert all(replicas.balancer.endpoints_of(user) == set(replicas.processes) for user in USERS)
    assert_all_answered_right(records, at_least=100)


def test_the_browser_draws_reads_and_clears_through_two_replicas(replicas, browser):
    """Digit after digit until the pods have answered 100 of the page's predictions: one when a stroke ends,
    one when the canvas is cleared (answered with nothing to read). Every tenth is corrected with a click
    ("Wrong? It was…"), and each correction lands in the shared folder."""
    with open_app(browser, replicas.url) as page:
        digits = 0
        while sum(served(pod)["answered"] for pod in replicas.processes) < 100:
            digit, strokes = [("1", ONE), ("7", SEVEN)][digits % 2]  # few mouse moves: each is slow (software WebGL)
            draw(page, strokes)
            expect_reads(page, digit)
            if digits % 10 == 0:
                page.locator("#meant").get_by_role("button", name="4", exact=True).click()
                expect(page.get_by_text(f"kept as a 4 (the model read {digit})")).to_be_visible()
                assert len(correction_paths(replicas.corrections)) == digits // 10 + 1
            clear_canvas(page)
            expect_empty(page)
            digits += 1
        expect(page.locator(".toast-body")).to_have_count(0)
    counts = {pod: served(pod) for pod in replicas.processes}
    assert not any(count["failed"] or count["http_errors"] for count in counts.values()), counts
    assert len(replicas.balancer.endpoints_of(BROWSER)) == 1, "the page's connections reached two pods"


def test_the_browser_goes_on_when_its_pod_dies(replicas, browser):
    with open_app(browser, replicas.url) as page:
        draw(page, ONE)
        expect_reads(page, "1")
        clear_canvas(page)
        expect_empty(page)
        pod = replicas.balancer.pinned(BROWSER)
        (other,) = set(replicas.processes) - {pod}

        def pod_dies_and_leaves_the_service():
            """While the user draws. A stroke that ends before the Service drops the pod goes unanswered."""
            replicas.kill(pod)
            deadline = time.monotonic() + 10 * KUBELET_SECONDS
            while pod in replicas.balancer.ready:
                assert time.monotonic() < deadline, "the dead pod stayed in the Service"
                time.sleep(0.05)

        draw(page, SEVEN, midway=pod_dies_and_leaves_the_service)
        expect_reads(page, "7")
        sevens = httpx.get(f"http://{other[0]}:{other[1]}/metrics").text
        assert 'digits_predictions_total{digit="7"}' in sevens, "the 7 was not read by the other pod"
        expect(page.locator(".toast-body")).to_have_count(0)  # no error shown: the page just went on
        clear_canvas(page)
        expect_empty(page)
        draw(page, ZERO)
        expect_reads(page, "0")
    assert replicas.balancer.pinned(BROWSER) == other


def test_a_pod_that_dies_costs_each_of_its_users_at_most_one_call(replicas, canvases):
    assert KUBELET_SECONDS < USER_PAUSE, "a user calling faster would also meet the dead pod before it leaves"
    users = [Caller(replicas.url, address, calls(canvases, 10), pause=USER_PAUSE, timeout=CALL_TIMEOUT)
             for address in USERS]
    deadline = time.monotonic() + 120
    while not all(user.answered() >= 3 for user in users):
        assert time.monotonic() < deadline, [user.records for user in users]
        time.sleep(0.05)
    pod = replicas.balancer.pinned(USERS[0])
    on_pod = [user for user in users if replicas.balancer.pinned(user.address) == pod]
    replicas.kill(pod)
    killed = time.monotonic()
    for user in users:
        records = user.finish()
        failed = [record for record in records if record["error"]]
        assert len(records) == 10 and len(failed) <= (1 if user in on_pod else 0), records
        assert all(record["ended"] >= killed for record in failed), failed
        assert replicas.balancer.pinned(user.address) != pod


def test_a_rolling_update_moves_users_on_cleanly(replicas, canvases, local_overlay):
    pre_stop = container(local_overlay)["lifecycle"]["preStop"]["sleep"]["seconds"]
    users = [Caller(replicas.url, address, calls(canvases, 400), timeout=CALL_TIMEOUT) for address in USERS]
    http_records: dict[str, list[dict]] = {f"127.0.0.{10 + n}": [] for n in range(2)}
    stop = threading.Event()

    def http_load(address: str) -> None:
        index = 0
        while not stop.is_set():
            http_records[address] += http_user(replicas.url, address, [canvases[index % len(canvases)]])
            index += 1

    http_users = [threading.Thread(target=http_load, args=(address,)) for address in http_records]
    for thread in http_users:
        thread.start()
    deadline = time.monotonic() + 120
    while not all(user.answered() >= 5 for user in users):
        assert time.monotonic() < deadline, [user.records[-3:] for user in users]
        time.sleep(0.05)

    pod = replicas.balancer.pinned(USERS[0])
    switched = time.monotonic()
    status, drain_seconds, connections_before = replicas.terminate(pod, pre_stop)
    time.sleep(2)
    stop.set()
    for thread in http_users:
        thread.join()
    per_user = [user.stop() for user in users]

    assert status == 0
    assert drain_seconds < GRACEFUL_SHUTDOWN_SECONDS, "the drain waited for streams that never end"
    log = replicas.log(pod)
    assert "timeout graceful shutdown exceeded" not in log and "Traceback" not in log, log[-3000:]
    new = {key: count - connections_before[key] for key, count in replicas.balancer.connections.items()}
    assert not any(count for (_, endpoint), count in new.items() if endpoint == pod), "new connections to the old pod"

    for records in [*per_user, *http_records.values()]:
        failed = [record for record in records if record["error"]]
        assert len(failed) <= 1, failed
        assert all(record["started"] < switched < record["ended"] for record in failed), failed
        assert not any("Timeout" in record["error"] for record in failed), failed
    answered_after = [r for records in per_user for r in records if r["started"] > switched and not r["error"]]
    assert len(answered_after) >= 20
