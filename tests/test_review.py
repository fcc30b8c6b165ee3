"""A person reviews the corrections before training (training/review.py): the contact sheet of the corrections
waiting, its flags, and the decision that moves each named correction into accepted/ or rejected/, safely while
the app goes on writing. Corrections are written with the app's own CorrectionsStore and new_correction."""

import base64
import dataclasses
import io
import shlex
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from app.corrections import (
    ACCEPTED,
    REJECTED,
    CorrectionsStore,
    NotKept,
    correction_paths,
    count_corrections,
    new_correction,
    read_correction,
)
from tests.support.paths import REPO
from training import review
from training.data import load_corrections

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # when the corrections below were sent, give or take


def keep(folder, picture, meant: int, answered: int, probability: float = 0.6, minutes: float = 0) -> str:
    """One correction kept the way the app keeps it, as if sent `minutes` after START; its file name."""
    correction = new_correction(picture, meant, answered, probability, "0" * 64)
    sent = (START + timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return CorrectionsStore(folder, max_waiting=100_000).keep(dataclasses.replace(correction, time=sent))


def ordinary(folder, mnist_slice, count: int = 30) -> list[str]:
    """Corrections nothing is wrong with: each a different drawing, an unsure model, at most 3 of a pair, hours
    apart."""
    x, y = mnist_slice.x_test, mnist_slice.y_test
    return [keep(folder, x[i], int(y[i]), (int(y[i]) + 1 + i % 2) % 10, 0.5, minutes=90 * i) for i in range(count)]


class Sheet(HTMLParser):
    """The contact sheet as a browser reads it: its corrections (by the token the command names them with: the
    digit block they are in, their classes, id, flags, picture, caption and title), its links to anything, and
    whether every element is closed."""

    VOID = {"meta", "img", "br"}

    def __init__(self, text: str):
        super().__init__()
        self.corrections, self.external, self.open, self.digit, self.current, self.scripts = {}, [], [], None, None, []
        self.command = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag not in self.VOID:
            self.open.append(tag)
        for name in ("src", "href"):
            if name in attrs and not attrs[name].startswith("data:"):
                self.external.append(attrs[name])
        if tag == "body":
            self.command = attrs["data-command"]
        if tag == "script":
            self.scripts.append(attrs)
        if tag == "figure":
            self.current = {"digit": self.digit, "classes": attrs["class"].split(), "token": attrs["data-id"],
                            "title": attrs["title"], "text": ""}
        if tag == "img" and self.current is not None:
            self.current["src"] = attrs["src"]

    def handle_endtag(self, tag):
        assert self.open and self.open.pop() == tag, f"</{tag}> closes nothing open"
        if tag == "figure":
            self.corrections[self.current["token"]] = self.current
            self.current = None

    def handle_data(self, data):
        if self.open and self.open[-1] == "h2" and data.startswith("meant "):
            self.digit = int(data.split()[1])
        if self.current is not None:
            if self.open[-1] == "code":
                self.current["id"] = data
            if self.open[-1] == "span":
                self.current["flags"] = data.split()
            self.current["text"] += " " + data


def sheet_of(folder) -> tuple[Sheet, str]:
    """Make the sheet of `folder` as the command does; (the parsed page, the summary printed)."""
    summary = review.make_sheet(folder, folder / review.SHEET_FILE)
    return Sheet((folder / review.SHEET_FILE).read_text(encoding="utf-8")), summary


def flags_of(sheet: Sheet, names: list[str]) -> list[list[str]]:
    return [sheet.corrections[review.correction_id(name)].get("flags", []) for name in names]


# --- the sheet ---

def test_the_sheet_groups_the_records_by_digit_meant_with_answer_probability_and_id(tmp_path, mnist_slice):
    names = ordinary(tmp_path, mnist_slice)
    sheet, _ = sheet_of(tmp_path)
    assert set(sheet.corrections) == {review.correction_id(name) for name in names}
    for path in correction_paths(tmp_path):
        shown = sheet.corrections[review.correction_id(path.name)]
        correction = read_correction(path)
        assert shown["digit"] == correction.meant
        assert f"read {correction.answered} · {correction.probability:.1%}" in shown["text"]
        assert path.name in shown["title"] and correction.time in shown["title"]
        assert "reject" not in shown["classes"] and "flags" not in shown  # ordinary: to accept, unflagged


def test_the_sheet_is_self_contained_html_showing_the_very_pictures(tmp_path, mnist_slice):
    names = ordinary(tmp_path, mnist_slice, count=12)
    sheet_of(tmp_path)
    text = (tmp_path / review.SHEET_FILE).read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "http://" not in text and "https://" not in text
    sheet = Sheet(text)  # every element closed in order
    assert not sheet.open and not sheet.external and sheet.scripts == [{}]  # one inline script, nothing fetched
    for name in names:
        src = sheet.corrections[review.correction_id(name)]["src"]
        assert src.startswith("data:image/png;base64,")
        shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))
        np.testing.assert_array_equal(shown, read_correction(tmp_path / name).picture)


def test_each_kind_of_suspicion_is_flagged_and_set_to_reject(tmp_path, mnist_slice):
    x = mnist_slice.x_train
    usual = ordinary(tmp_path, mnist_slice)
    sure = [keep(tmp_path, x[i], 1, 7, probability=0.995, minutes=600 * i) for i in range(2)]
    unsure = [keep(tmp_path, x[2], 1, 7, probability=0.98, minutes=3000)]
    sure_and_right = [keep(tmp_path, x[3], 7, 7, probability=0.999, minutes=3100)]  # a confirmation
    burst = [keep(tmp_path, x[10 + i], 3, 8, minutes=4000 + 6 * i) for i in range(review.BURST_CORRECTIONS)]  # 54 min
    slow = [keep(tmp_path, x[30 + i], 4, 9, minutes=5000 + 7 * i) for i in range(review.BURST_CORRECTIONS)]  # 63 min
    few = [keep(tmp_path, x[50 + i], 5, 6, minutes=6000 + i) for i in range(review.BURST_CORRECTIONS - 1)]
    repeated = [keep(tmp_path, x[70], 2, (3 + i) % 10, minutes=7000 + 200 * i) for i in range(review.REPEATS)]
    twice = [keep(tmp_path, x[71], 2, 0 + i, minutes=8000 + 200 * i) for i in range(review.REPEATS - 1)]
    sheet, summary = sheet_of(tmp_path)

    assert flags_of(sheet, sure) == [["sure"]] * 2
    assert flags_of(sheet, burst) == [["burst"]] * review.BURST_CORRECTIONS
    assert flags_of(sheet, repeated) == [["repeat"]] * review.REPEATS
    assert not any(flags_of(sheet, usual + unsure + sure_and_right + slow + few + twice))
    for name in usual + sure + burst + repeated:
        classes = sheet.corrections[review.correction_id(name)]["classes"]
        assert ("reject" in classes) == (name not in usual)
    assert "15 flagged" in summary
    assert f"2: {review.REASONS['sure']}" in summary and f"10: {review.REASONS['burst']}" in summary
    assert f"3: {review.REASONS['repeat']}" in summary


def test_the_sheets_command_names_every_record_shown_and_does_what_it_shows(tmp_path, mnist_slice):
    usual = ordinary(tmp_path, mnist_slice, count=8)
    flagged = [keep(tmp_path, mnist_slice.x_train[i], 1, 7, probability=0.999) for i in range(3)]
    sheet, summary = sheet_of(tmp_path)
    accept = [shown["token"] for shown in sheet.corrections.values() if "reject" not in shown["classes"]]
    reject = [shown["token"] for shown in sheet.corrections.values() if "reject" in shown["classes"]]
    command = shlex.split(sheet.command) + ["--accept", *accept, "--reject", *reject]  # as the page's script joins
    shown = " ".join(shlex.split(summary.splitlines()[-1])).split(" --reject ")  # the terminal shows it too
    assert shown[0].split(" --accept ")[0] == " ".join(command[:4])
    assert sorted(shown[0].split(" --accept ")[1].split()) == sorted(accept)
    assert sorted(shown[1].split()) == sorted(reject)
    assert command[:4] == ["python", "-m", "training.review", str(tmp_path)]
    done = subprocess.run([sys.executable, *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in correction_paths(tmp_path / ACCEPTED)) == sorted(usual)
    assert sorted(path.name for path in correction_paths(tmp_path / REJECTED)) == sorted(flagged)
    assert count_corrections(tmp_path) == 0
    assert "8 corrections accepted" in done.stdout and "3 rejected" in done.stdout
    assert "0 corrections wait for review" in done.stdout


def test_ids_shared_by_two_records_are_never_guessed(tmp_path, mnist_slice):
    [name] = ordinary(tmp_path, mnist_slice, count=1)
    twin = name[:-36] + name[-36:-28] + "f" * 24 + ".png"  # the same first 8 hex digits
    (tmp_path / twin).write_bytes((tmp_path / name).read_bytes())
    sheet, _ = sheet_of(tmp_path)
    assert sorted(sheet.corrections) == sorted([name, twin])  # the command names both in full
    assert {shown["id"] for shown in sheet.corrections.values()} == {review.correction_id(name)}
    moved, problems = review.decide(tmp_path, [review.correction_id(name)], [])
    assert not moved and problems == [f"{review.correction_id(name)}: 2 corrections waiting have this id; name each by "
                                      "its file name"]
    moved, problems = review.decide(tmp_path, [name], [twin])
    assert (moved[ACCEPTED], moved[REJECTED], problems) == (1, 1, [])


# --- the decision ---

def test_accept_and_reject_move_the_named_records_and_only_them(tmp_path, mnist_slice):
    names = ordinary(tmp_path, mnist_slice, count=10)
    contents = {name: (tmp_path / name).read_bytes() for name in names}
    moved, problems = review.decide(tmp_path, [review.correction_id(n) for n in names[:4]] + [names[4]], names[5:7])
    assert (moved[ACCEPTED], moved[REJECTED], problems) == (5, 2, [])
    for folder, expected in ((tmp_path / ACCEPTED, names[:5]), (tmp_path / REJECTED, names[5:7]),
                             (tmp_path, names[7:])):
        assert sorted(path.name for path in correction_paths(folder)) == sorted(expected)
        for name in expected:
            assert (folder / name).read_bytes() == contents[name]  # the same file, the same name


def test_a_name_no_longer_waiting_is_reported_and_the_others_are_moved(tmp_path, mnist_slice, capsys):
    names = ordinary(tmp_path, mnist_slice, count=6)
    assert review.decide(tmp_path, [names[0]], [names[1]])[1] == []
    temporary = tmp_path / f".{names[5]}.tmp"
    temporary.write_bytes(b"half a correction")  # the app's temporary file, mid-write
    args = [str(tmp_path), "--accept", review.correction_id(names[0]), "0123abcd", names[2], temporary.name,
            "--reject", names[1], names[3], names[4], "--accept", names[4]]
    assert review.main(args) == 1
    err = capsys.readouterr().err
    assert f"{review.correction_id(names[0])}: not waiting for review (already in accepted/)" in err
    assert f"{names[1]}: not waiting for review (already in rejected/)" in err
    assert "0123abcd: not waiting for review (no such correction)" in err
    assert f"{temporary.name}: not waiting for review (no such correction)" in err
    assert f"{names[4]}: named to accept and to reject; left waiting" in err
    assert temporary.read_bytes() == b"half a correction"
    assert sorted(path.name for path in correction_paths(tmp_path)) == sorted([names[4], names[5]])
    assert (tmp_path / ACCEPTED / names[2]).is_file() and (tmp_path / REJECTED / names[3]).is_file()


def test_a_move_never_replaces_a_file(tmp_path, mnist_slice):
    [name] = ordinary(tmp_path, mnist_slice, count=1)
    (tmp_path / ACCEPTED).mkdir()
    (tmp_path / ACCEPTED / name).write_bytes(b"already here")
    waiting = (tmp_path / name).read_bytes()
    moved, problems = review.decide(tmp_path, [name], [])
    assert not moved and problems == [f"{name}: {ACCEPTED}/{name} exists already; left waiting"]
    assert (tmp_path / ACCEPTED / name).read_bytes() == b"already here" and (tmp_path / name).read_bytes() == waiting


def test_records_the_app_writes_during_a_review_stay_waiting(tmp_path, mnist_slice):
    shown = ordinary(tmp_path, mnist_slice, count=200)
    written, stop = [], threading.Event()

    def app_writes():  # the app keeps corrections meanwhile, each to a hidden temporary name, then renamed
        store = CorrectionsStore(tmp_path, max_waiting=100_000)
        while not stop.is_set() or len(written) < 20:
            written.append(store.keep(new_correction(mnist_slice.x_train[len(written) % 400], 1, 7, 0.5, "0" * 64)))

    writer = threading.Thread(target=app_writes)
    writer.start()
    try:
        while len(written) < 5:  # the app is writing
            stop.wait(0.001)
        moved, problems = review.decide(tmp_path, [review.correction_id(name) for name in shown[::2]], shown[1::2])
    finally:
        stop.set()
        writer.join()
    assert (moved[ACCEPTED], moved[REJECTED], problems) == (100, 100, [])
    assert sorted(path.name for path in correction_paths(tmp_path)) == sorted(written)  # all there, none moved
    assert not [path for path in tmp_path.iterdir() if path.name.endswith(".tmp")]  # every write completed
    assert len(correction_paths(tmp_path / ACCEPTED)) + len(correction_paths(tmp_path / REJECTED)) == len(shown)


def test_the_apps_cap_counts_the_records_waiting_for_review_only(tmp_path, mnist_slice):
    store = CorrectionsStore(tmp_path, max_waiting=3)
    names = [store.keep(new_correction(mnist_slice.x_test[i], 1, 2, 0.5, "0" * 64)) for i in range(3)]
    with pytest.raises(NotKept, match=r"full \(3 corrections\)"):
        store.keep(new_correction(mnist_slice.x_test[3], 1, 2, 0.5, "0" * 64))
    review.decide(tmp_path, names[:1], names[1:2])
    store.keep(new_correction(mnist_slice.x_test[3], 1, 2, 0.5, "0" * 64))  # room again
    assert count_corrections(tmp_path) == 2


def test_training_reads_what_the_review_accepted(tmp_path, mnist_slice):
    names = ordinary(tmp_path, mnist_slice, count=20)
    review.decide(tmp_path, names[:12], names[12:16])
    corrections = load_corrections(tmp_path)
    read = [*corrections["training"]["names"], *corrections["validation"]["names"]]
    assert sorted(read) == sorted(names[:12])


# --- the command ---

def review_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training.review", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_the_command_makes_the_sheet_and_says_what_waits(tmp_path, mnist_slice):
    ordinary(tmp_path, mnist_slice, count=20)
    for i in range(3):
        keep(tmp_path, mnist_slice.x_train[i], 1, 7, probability=0.999, minutes=10_000 + 600 * i)
    (tmp_path / "broken.png").write_bytes(b"not a PNG")
    done = review_command(str(tmp_path))
    assert done.returncode == 0, done.stderr
    per_digit = np.bincount(mnist_slice.y_test[:20], minlength=10) + np.eye(10, dtype=int)[1] * 3
    assert f"23 corrections wait for review in {tmp_path}, by digit meant: " in done.stdout
    assert ", ".join(f"{digit}: {count}" for digit, count in enumerate(per_digit)) in done.stdout
    assert f"3 flagged, set to reject on the sheet; 3: {review.REASONS['sure']}." in done.stdout
    assert "1 unreadable file is not shown (first: broken.png" in done.stdout
    assert f"Contact sheet: {tmp_path / review.SHEET_FILE}\n" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith(f"python -m training.review {tmp_path} --accept ")
    assert count_corrections(tmp_path) == 24  # the sheet is not taken for a correction

    elsewhere = review_command(str(tmp_path), "--out", str(tmp_path / "elsewhere.html"))
    assert elsewhere.returncode == 0 and (tmp_path / "elsewhere.html").read_text().startswith("<!DOCTYPE html>")
    as_correction = review_command(str(tmp_path), "--out", str(tmp_path / "sheet.png"))
    assert as_correction.returncode == 2 and "would be taken for a correction" in as_correction.stderr
    missing = review_command(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def test_the_sheet_of_an_empty_folder_says_so(tmp_path):
    sheet, summary = sheet_of(tmp_path)
    assert not sheet.corrections and summary.startswith(f"No correction waits for review in {tmp_path}.")


def test_the_help_says_why_a_correction_is_flagged():
    done = review_command("--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m training.review")
    assert all(text in done.stdout for text in review.REASONS.values())


def test_one_correction_is_said_in_the_singular(tmp_path, mnist_slice):
    [name] = ordinary(tmp_path, mnist_slice, count=1)
    assert review_command(str(tmp_path)).stdout.startswith(f"1 correction waits for review in {tmp_path}")
    done = review_command(str(tmp_path), "--accept", review.correction_id(name))
    assert done.stdout.startswith("1 correction accepted") and "0 corrections wait for review" in done.stdout
