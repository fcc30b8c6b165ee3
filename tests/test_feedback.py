"""Corrections ("Wrong? It was…") as users send them, to real servers: kept only when sent, as the 28x28
picture the model saw with the digit meant and answered, one intact file each even from two replicas at
once; a "not a digit" answer corrected like a wrong digit; turned away with a clear message (and counted) when off,
full, the disk is full or the folder unusable, while predictions go on. The browser's click is in
tests/test_browser.py; training on them in tests/test_feedback_training.py.
"""

import ast
import json
import re
import shutil
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image, PngImagePlugin

from app.contract import NOT_A_DIGIT
from app.corrections import (
    FIELDS,
    TEXT_KEY,
    CorrectionsStore,
    NotKept,
    UnreadableCorrection,
    correction_paths,
    encode,
    new_correction,
    read_correction,
    summary,
)
from app.preprocess import preprocess
from tests.support.drawing import browser_png, drawn_canvases
from tests.support.gradio_api import sketch, sketchpad_value
from tests.support.manifests import needs_kubectl, render
from tests.support.paths import BROWSER_COMPOSITE, REPO
from tests.support.replicas import Replicas
from tests.support.server import metric_samples, run_app, stop_app

SEVEN = BROWSER_COMPOSITE.read_bytes()  # a 7 drawn in Chromium


def send(url: str, picture: bytes, digit, **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/feedback", params={"digit": digit}, files={"file": ("digit.png", picture, "image/png")},
                      timeout=30, **kwargs)


def predict_ok(url: str) -> bool:
    response = httpx.post(f"{url}/predict", content=SEVEN, headers={"content-type": "image/png"}, timeout=30)
    return response.status_code == 200 and response.json()["digit"] == "7"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """python -m app keeping corrections in a folder of its own: (URL, folder)."""
    folder = tmp_path_factory.mktemp("feedback-server")
    process, url = run_app(folder, FEEDBACK_DIR=str(folder / "corrections"))
    yield url, folder / "corrections"
    if died := stop_app(process):
        pytest.fail(f"the server died: {died}")


@pytest.fixture
def store(served):
    """The served folder, emptied before each test."""
    url, folder = served
    for path in correction_paths(folder):
        path.unlink()
    return url, folder


def test_a_correction_keeps_the_picture_the_model_saw_and_what_it_answered(store):
    url, folder = store
    before = metric_samples(url)
    response = send(url, SEVEN, 1)
    assert response.status_code == 201, response.text
    told = response.json()
    assert (told["meant"], told["answered"], told["verdict"]) == ("1", "7", "wrong")
    assert told["message"] == "Thank you: kept as a 1 (the model read 7). It will help the next training."
    [path] = correction_paths(folder)
    assert path.name == told["record"] and sorted(p.name for p in folder.iterdir()) == [path.name]  # no temp file
    record = read_correction(path)
    seen = preprocess(sketchpad_value(SEVEN))
    assert np.array_equal(record.picture, (seen[..., 0] * 255).round().astype(np.uint8))  # MNIST's format
    prediction = httpx.post(f"{url}/predict", content=SEVEN, headers={"content-type": "image/png"}).json()
    assert record.probability == pytest.approx(prediction["top"][0]["probability"], abs=1e-6)
    assert record.model_sha256 == httpx.get(f"{url}/health").json()["model"]["sha256"]
    assert (record.meant, record.answered) == (1, 7)
    with Image.open(path) as image:  # what the file holds, and nothing else: no address, no header
        assert set(json.loads(image.text[TEXT_KEY])) == set(FIELDS)
    after = metric_samples(url)
    key = ("digits_feedback_total", (("answered", "7"), ("meant", "1"), ("verdict", "wrong")))
    assert after[key] - before.get(key, 0) == 1


def test_a_correction_agreeing_with_the_answer_is_a_confirmation(store):
    url, folder = store
    response = send(url, SEVEN, "7")
    assert response.status_code == 201 and response.json()["verdict"] == "right"
    assert read_correction(correction_paths(folder)[0]).verdict == "right"
    key = ("digits_feedback_total", (("answered", "7"), ("meant", "7"), ("verdict", "right")))
    assert metric_samples(url)[key] >= 1


def test_a_record_answers_a_digit_or_not_a_digit_and_means_a_digit(tmp_path):
    """`answered` may be 0-10 (10: not a digit), `meant` only 0-9, in a new record and in a file read back."""
    picture = np.zeros((28, 28, 1), np.float32)
    record = new_correction(picture, 4, NOT_A_DIGIT, 0.97, "sha")
    assert record.verdict == "wrong"
    (tmp_path / "kept.png").write_bytes(encode(record))
    assert read_correction(tmp_path / "kept.png").answered == NOT_A_DIGIT
    with pytest.raises(ValueError, match="0-9"):
        new_correction(picture, NOT_A_DIGIT, 4, 0.97, "sha")  # nobody means "not a digit": they would not correct
    with pytest.raises(ValueError, match="0-9 or 10"):
        new_correction(picture, 4, 11, 0.97, "sha")
    for field, value in (("meant", 10), ("answered", 11)):
        text = PngImagePlugin.PngInfo()
        text.add_text(TEXT_KEY, json.dumps({**{name: getattr(record, name) for name in FIELDS}, field: value}))
        Image.fromarray(record.picture, mode="L").save(tmp_path / f"{field}.png", pnginfo=text)
        with pytest.raises(UnreadableCorrection, match=f"{field}.png: the "):
            read_correction(tmp_path / f"{field}.png")


def test_the_thanks_say_an_8_and_a_7():
    picture = np.zeros((28, 28), np.uint8)
    assert summary(new_correction(picture, 8, 7, 0.9, "sha"), "x.png")["message"].startswith("Thank you: kept as an 8")
    assert summary(new_correction(picture, 7, 1, 0.9, "sha"), "x.png")["message"].startswith("Thank you: kept as a 7")


def test_the_gradio_api_keeps_what_gradio_client_sends(store, tmp_path):
    url, folder = store
    (tmp_path / "seven.png").write_bytes(SEVEN)
    client = Client(url, verbose=False)
    kept = client.predict(sketch(tmp_path / "seven.png"), 4, api_name="/feedback")
    assert (kept["meant"], kept["answered"], kept["verdict"]) == ("4", "7", "wrong")
    assert [path.name for path in correction_paths(folder)] == [kept["record"]]
    for meant in (10, 11):  # 10 is "not a digit"'s class, never a digit meant
        with pytest.raises(AppError, match="9"):
            client.predict(sketch(tmp_path / "seven.png"), meant, api_name="/feedback")
    with pytest.raises(AppError, match="0-9"):
        client.predict(sketch(tmp_path / "seven.png"), 2.5, api_name="/feedback")
    with pytest.raises(AppError, match="nothing to correct: send the picture of one digit with the digit meant"):
        client.predict(sketchpad_value(), 3, api_name="/feedback")
    assert len(correction_paths(folder)) == 1


def blank_png() -> bytes:
    return browser_png(Image.new("RGBA", (800, 800), (0, 0, 0, 0)))


@pytest.mark.parametrize("picture, digit, status, says", [
    (b"not a picture", 3, 400, "Could not read the image"),
    (None, 3, 422, "Nothing to read: nothing drawn: the picture is blank, so nothing to correct: send the"),
    (SEVEN, 12, 422, "less than or equal to 9"),
    (SEVEN, "seven", 422, "valid integer"),
    (SEVEN, -1, 422, "greater than or equal to 0"),
])
def test_bad_input_gets_a_clear_error_and_nothing_is_kept(store, picture, digit, status, says):
    url, folder = store
    response = send(url, blank_png() if picture is None else picture, digit)
    assert response.status_code == status and says in response.text, response.text
    assert correction_paths(folder) == []


def test_a_correction_without_its_digit_is_not_kept(store):
    url, folder = store
    response = httpx.post(f"{url}/feedback", content=SEVEN, headers={"content-type": "image/png"})
    assert response.status_code == 422 and "digit" in response.text
    assert correction_paths(folder) == []


def test_the_digit_may_come_as_a_form_field_as_curl_users_send_it(store, tmp_path):
    """curl -F file=@d.png -F digit=7 .../feedback: kept; the query and the field must not disagree."""
    url, folder = store
    (tmp_path / "d.png").write_bytes(SEVEN)
    if shutil.which("curl"):  # curl itself, as the README shows it
        said = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-F", "file=@d.png", "-F", "digit=7",
                               f"{url}/feedback"], cwd=tmp_path, capture_output=True, text=True, timeout=30).stdout
    else:
        response = httpx.post(f"{url}/feedback", files={"file": ("d.png", SEVEN, "image/png")}, data={"digit": "7"})
        said = f"{response.text}\n{response.status_code}"
    body, status = said.rsplit("\n", 1)
    assert status == "201" and json.loads(body)["meant"] == "7", said
    assert len(correction_paths(folder)) == 1
    form = {"file": ("digit.png", SEVEN, "image/png")}
    for params, data, says in [({}, {"digit": "seven"}, "form field `digit`: the digit meant must be one of 0-9"),
                               ({}, {"digit": "10"}, "must be one of 0-9"),
                               ({"digit": 1}, {"digit": "7"}, "the query says digit 1 and the form field 7"),
                               ({}, {}, "the form field `digit` (curl -F digit=7)")]:
        response = httpx.post(f"{url}/feedback", params=params, files=form, data=data, timeout=30)
        assert response.status_code == 422 and says in response.json()["detail"], response.text
    assert len(correction_paths(folder)) == 1
    schema = httpx.get(f"{url}/openapi.json", timeout=30).json()["paths"]["/feedback"]["post"]
    assert "digit" in schema["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]


def readme_examples() -> list:
    """The answers the README shows under its calls ("# {...}", "# 201 {...}"), with each elided value (…) as None."""
    shown = re.findall(r"^# (?:201 )?(\{.*\})$", (REPO / "README.md").read_text(), re.MULTILINE)
    return [ast.literal_eval(re.sub(r"(?<=[:,\[ ])…", "None", text)) for text in shown]


def shape(value):
    """The keys of an answer, nested: what an example must show as the server does."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return [shape(value[0])] if isinstance(value, list) and value else None


def test_the_readme_shows_the_answers_as_the_server_gives_them(store, tmp_path):
    """The README's examples of /predict, gradio_client and /feedback have the keys the server answers, and show
    no figure that a new model changes (a probability, a checksum): they cannot go stale."""
    url, _ = store
    (tmp_path / "seven.png").write_bytes(SEVEN)
    form = {"file": ("digit.png", SEVEN, "image/png")}
    real = [httpx.post(f"{url}/predict", files=form, timeout=30).json(),
            Client(url, verbose=False).predict(sketch(tmp_path / "seven.png"), api_name="/predict"),
            httpx.post(f"{url}/feedback", files=form, data={"digit": "1"}, timeout=30).json()]
    examples = readme_examples()
    assert sorted(map(repr, map(shape, examples))) == sorted(map(repr, map(shape, real)))  # in any order
    shown = json.dumps(examples)
    assert not re.search(r"\d\.\d|[0-9a-f]{8}", shown), f"a figure that changes with the model: {shown}"


def test_nothing_is_kept_without_a_correction(store, tmp_path):
    url, folder = store
    assert predict_ok(url)
    (tmp_path / "seven.png").write_bytes(SEVEN)
    assert Client(url, verbose=False).predict(sketch(tmp_path / "seven.png"), api_name="/predict")["label"] == "7"
    assert correction_paths(folder) == []


def test_a_full_store_keeps_no_new_corrections_and_serving_goes_on(tmp_path):
    process, url = run_app(tmp_path, FEEDBACK_MAX_RECORDS="2")
    try:
        assert [send(url, SEVEN, digit).status_code for digit in (1, 2)] == [201, 201]
        turned_away = send(url, SEVEN, 3)
        assert turned_away.status_code == 507 and "full (2 corrections)" in turned_away.text
        assert predict_ok(url)
        assert metric_samples(url)[("digits_feedback_refused_total", (("reason", "full"),))] == 1
        assert [read_correction(path).meant for path in correction_paths(tmp_path / "feedback")] == [1, 2]
    finally:
        assert stop_app(process) is None


@pytest.fixture
def small_disk(tmp_path):
    """A 12 KB tmpfs: room for two records (a tmpfs page each) and a few directory entries."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"full-disk check skipped: cannot mount a tmpfs here (needs root): {mounted.stderr!r}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_keeps_no_new_corrections_keeps_the_others_intact_and_serving_goes_on(tmp_path, small_disk):
    process, url = run_app(tmp_path, FEEDBACK_DIR=str(small_disk))
    try:
        statuses = [send(url, SEVEN, digit % 10).status_code for digit in range(8)]
        assert 201 in statuses and statuses[-1] == 507, statuses
        assert "disk" in send(url, SEVEN, 9).text
        assert predict_ok(url)
        kept = correction_paths(small_disk)
        assert len(kept) == statuses.count(201)
        assert all(read_correction(path).answered == 7 for path in kept)  # each whole
        assert sorted(p.name for p in small_disk.iterdir()) == [p.name for p in kept]  # no half record left
    finally:
        assert stop_app(process) is None


def test_an_unusable_folder_and_corrections_off_are_told_with_a_clear_message(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "broken").mkdir()
    (tmp_path / "off").mkdir()
    broken, broken_url = run_app(tmp_path / "broken", FEEDBACK_DIR=str(tmp_path / "a-file" / "feedback"))
    off, off_url = run_app(tmp_path / "off", FEEDBACK_DIR="")
    try:
        response = send(broken_url, SEVEN, 1)
        assert response.status_code == 503 and "could not be kept" in response.text
        assert metric_samples(broken_url)[("digits_feedback_refused_total", (("reason", "storage_error"),))] == 1
        response = send(off_url, SEVEN, 1)
        assert response.status_code == 503 and "not kept on this server" in response.text
        (tmp_path / "seven.png").write_bytes(SEVEN)
        with pytest.raises(AppError, match="not kept on this server"):
            Client(off_url, verbose=False).predict(sketch(tmp_path / "seven.png"), 1, api_name="/feedback")
        assert metric_samples(off_url)[("digits_feedback_refused_total", (("reason", "off"),))] == 2
        assert predict_ok(broken_url) and predict_ok(off_url)
    finally:
        assert stop_app(broken) is None and stop_app(off) is None


def test_a_record_is_renamed_into_place_whole(tmp_path, monkeypatch):
    """A crash between writing and renaming leaves only a hidden temporary file, which is no record."""
    store = CorrectionsStore(tmp_path, max_waiting=10)
    record = new_correction(np.zeros((28, 28, 1), np.float32), 3, 5, 0.9, "sha")
    name = store.keep(record)
    kept = read_correction(tmp_path / name)
    assert np.array_equal(kept.picture, record.picture) and (kept.meant, kept.answered) == (3, 5)

    def crash(source, destination):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("app.corrections.os.replace", crash)
    with pytest.raises(NotKept, match="could not be kept"):
        store.keep(record)
    (tmp_path / ".20261130T000000000000Z-3-abc.png.tmp").write_bytes(b"\x89PNG half")  # as a SIGKILL leaves it
    assert correction_paths(tmp_path) == [tmp_path / name]


@needs_kubectl
def test_two_replicas_write_corrections_to_one_folder_at_once(tmp_path, mnist_slice):
    """40 corrections from 8 users at once through the local overlay's Service, over both pods: all kept,
    each in a file of its own, intact, with the digit its user meant."""
    shared = tmp_path / "shared"
    pictures = [(png, int(digit)) for png, digit in drawn_canvases(40, seed=0, mnist=mnist_slice)]
    users = [f"127.0.0.{2 + index % 8}" for index in range(len(pictures))]

    def correct(args):
        (picture, digit), user = args
        transport = httpx.HTTPTransport(local_address=user)  # kube-proxy tells clients apart by address
        with httpx.Client(transport=transport, timeout=60) as client:
            return client.post(f"{replicas.url}/feedback", params={"digit": digit},
                               files={"file": ("digit.png", picture, "image/png")})

    service = render("local")[1]["Service"]["spec"]
    with Replicas(tmp_path, service, FEEDBACK_DIR=str(shared), LOG_LEVEL="info") as replicas:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(correct, zip(pictures, users, strict=True)))
        logs = [replicas.log(endpoint) for endpoint in replicas.processes]
    assert [response.status_code for response in responses] == [201] * len(pictures)
    assert all("correction kept" in log for log in logs)  # both pods wrote
    kept = {path.name: read_correction(path) for path in correction_paths(shared)}
    assert sorted(kept) == sorted(response.json()["record"] for response in responses)
    assert Counter(record.meant for record in kept.values()) == Counter(digit for _, digit in pictures)
    assert sorted(path.name for path in shared.iterdir()) == sorted(kept)  # nothing half-written
