"""A person reviews the users' corrections before they are trained on: a contact sheet, then a decision.

    python -m training.review feedback                   # the sheet of the records waiting: feedback/review.html
    python -m training.review feedback --accept 3f2a9c01 5be07d4e --reject 77b0e4d2   # the command the sheet shows

New records wait for review in FEEDBACK_DIR itself, where the app writes them (app/feedback.py, which owns
the folder's layout). The sheet is one self-contained HTML page (pictures inline, no network): the records
grouped by the digit meant, each enlarged with the model's answer, its probability and a short id; the
suspicious ones flagged (SURE, BURST_*, REPEATS below) and set to reject. A click switches a record between
accept and reject, and the page shows the command to paste, naming every record it shows.

A decision moves each record it names, with one atomic rename and under the same name (so its training or
validation split stays), into FEEDBACK_DIR/accepted/ (what training reads: training.data.load_corrections)
or FEEDBACK_DIR/rejected/ (kept aside, never trained on, never deleted). It never means "the whole folder":
records that arrived after the sheet was made stay waiting. A name no longer waiting is reported, and the
others are moved all the same (exit status 1); a move never replaces a file; the app's hidden temporary
files are never records.
"""

import argparse
import base64
import bisect
import html
import io
import os
import re
import shlex
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from app.contract import CLASS_NAMES, IMAGE_SIZE, NUM_DIGITS
from app.feedback import ACCEPTED, REJECTED, SUFFIX, Record, count_records, record_paths
from training.data import read_records

SHEET_FILE = "review.html"  # the sheet's default place, in FEEDBACK_DIR: not *.png, so never taken for a record
ID_LENGTH = 8  # a record's id: the first hex digits of the random part of its name
SURE = 0.99  # the model answered with at least this probability, and the user said it was another digit
BURST_RECORDS = 10  # this many records of one (meant, answered) pair...
BURST_SECONDS = 3600  # ...within an hour: sent by a script, or by one person set on a label
REPEATS = 3  # the very same picture (every pixel) this many times: sent by a script, not drawn
SHOWN = 3 * IMAGE_SIZE  # each 28x28 picture is shown as 84x84 screen pixels, each of its pixels a 3x3 square
REASONS = {  # what a flag means, shown on the sheet and counted in the summary
    "sure": f"the model was sure (≥ {SURE:.0%}) and was overruled",
    "burst": f"in a burst (≥ {BURST_RECORDS} of one digit meant and answered within {BURST_SECONDS // 60} minutes)",
    "repeat": f"a repeated picture (the same pixels ≥ {REPEATS} times)",
}
RANDOM_PART = re.compile(r"-([0-9a-f]{32})" + re.escape(SUFFIX) + "$")  # the app's names end in a uuid4's hex


def record_id(name: str) -> str:
    """A record's short id: the first ID_LENGTH hex digits of its name's random part; for a name the app did
    not make, the name without its suffix. The same name always gives the same id."""
    found = RANDOM_PART.search(name)
    return found.group(1)[:ID_LENGTH] if found else name.removesuffix(SUFFIX)


# --- what looks suspicious ---

def sure_and_overruled(records: list[tuple[str, Record]]) -> set[str]:
    """Corrections of an answer the model was sure of: a real mistake of the model is rare there."""
    return {name for name, record in records if record.meant != record.answered and record.probability >= SURE}


def seconds(time: str) -> float | None:
    """A record's time (ISO 8601) in seconds, or None when it is not a time."""
    try:
        return datetime.fromisoformat(time).timestamp()
    except ValueError:
        return None


def bursts(records: list[tuple[str, Record]]) -> set[str]:
    """Records in a window of BURST_SECONDS holding at least BURST_RECORDS of their (meant, answered) pair."""
    pairs = defaultdict(list)
    for name, record in records:
        if (when := seconds(record.time)) is not None:
            pairs[record.meant, record.answered].append((when, name))
    found = set()
    for timed in pairs.values():
        timed.sort()
        times = [when for when, _ in timed]
        covered = np.zeros(len(times) + 1, int)  # +1 where a burst's window starts, -1 after it ends
        for start, when in enumerate(times):
            end = bisect.bisect_right(times, when + BURST_SECONDS)
            if end - start >= BURST_RECORDS:
                covered[start] += 1
                covered[end] -= 1
        found.update(name for (_, name), inside in zip(timed, np.cumsum(covered[:-1]), strict=True) if inside)
    return found


def repeated_pictures(records: list[tuple[str, Record]]) -> set[str]:
    """Records whose picture, every pixel of it, at least REPEATS records share."""
    same = defaultdict(list)
    for name, record in records:
        same[record.picture.tobytes()].append(name)
    return {name for names in same.values() if len(names) >= REPEATS for name in names}


def suspicions(records: list[tuple[str, Record]]) -> dict[str, list[str]]:
    """Why each suspicious record is suspicious (keys of REASONS); records not named look ordinary."""
    found = defaultdict(list)
    for reason, names in (("sure", sure_and_overruled(records)), ("burst", bursts(records)),
                          ("repeat", repeated_pictures(records))):
        for name in names:
            found[name].append(reason)
    return dict(found)


# --- the contact sheet ---

STYLE = """
body { font: 14px system-ui, sans-serif; margin: 0 1em 2em; background: #f4f4f4; }
#decision { position: sticky; top: 0; background: #fff; padding: .5em 0; border-bottom: 1px solid #ccc; z-index: 1; }
#command { white-space: pre-wrap; word-break: break-all; max-height: 6em; overflow: auto; background: #222;
           color: #eee; padding: .4em; margin: .3em 0; font-size: 12px; }
h2 { margin: 1em 0 .3em; font-size: 18px; } h2 small { font-weight: normal; color: #555; }
.grid { display: flex; flex-wrap: wrap; gap: 6px; }
.record { margin: 0; padding: 3px; width: min-content; background: #fff; border: 3px solid #2a2; cursor: pointer;
          font-size: 11px; text-align: center; user-select: none; }
.record img { display: block; image-rendering: pixelated; }
.record.reject { border-color: #c22; background: #fdd; }
.record.reject img { opacity: .45; }
.record .flags { color: #b40; font-weight: bold; }
.record code { color: #555; }
.legend span { margin-right: 1.5em; }
"""

SCRIPT = """
const records = [...document.querySelectorAll(".record")];
function update() {
  const accept = records.filter(r => !r.classList.contains("reject")).map(r => r.dataset.id);
  const reject = records.filter(r => r.classList.contains("reject")).map(r => r.dataset.id);
  document.getElementById("command").textContent = document.body.dataset.command
    + (accept.length ? " --accept " + accept.join(" ") : "") + (reject.length ? " --reject " + reject.join(" ") : "");
  document.getElementById("counts").textContent = `accept ${accept.length}, reject ${reject.length}`;
}
for (const r of records) r.addEventListener("click", () => { r.classList.toggle("reject"); update(); });
document.getElementById("copy").addEventListener("click", () => {
  const command = document.getElementById("command");
  getSelection().selectAllChildren(command);
  if (navigator.clipboard) navigator.clipboard.writeText(command.textContent);
});
update();
"""


def data_uri(picture: np.ndarray) -> str:
    """The picture as an inline PNG (its pixels only: nothing else a record file may carry)."""
    buffer = io.BytesIO()
    Image.fromarray(picture, mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def command_tokens(names: list[str]) -> dict[str, str]:
    """What the command calls each record: its id, or its full name when another shown record has that id."""
    ids = Counter(record_id(name) for name in names)
    return {name: shlex.quote(record_id(name) if ids[record_id(name)] == 1 else name) for name in names}


def record_html(name: str, record: Record, reasons: list[str], token: str) -> str:
    """One record: the picture, the model's answer and probability, the short id, the flags."""
    title = "\n".join([name, record.time, *(REASONS[reason] for reason in reasons)])
    flags = f'<br><span class="flags">{" ".join(reasons)}</span>' if reasons else ""
    return (f'<figure class="record{" reject" if reasons else ""}" data-id="{html.escape(token)}" '
            f'title="{html.escape(title)}"><img src="{data_uri(record.picture)}" width="{SHOWN}" height="{SHOWN}" '
            'alt="">'
            f"<figcaption>read {CLASS_NAMES[record.answered]} · {record.probability:.1%}<br>"
            f"<code>{html.escape(record_id(name))}</code>{flags}</figcaption></figure>")


def digit_html(digit: int, records: list[tuple[str, Record]], flags: dict[str, list[str]],
               tokens: dict[str, str]) -> str:
    """The block of one digit meant: its flagged records first, then by the digit answered, then by time."""
    records = sorted(records, key=lambda item: (item[0] not in flags, item[1].answered, item[0]))
    flagged = sum(name in flags for name, _ in records)
    figures = "".join(record_html(name, record, flags.get(name, []), tokens[name]) for name, record in records)
    return (f"<section><h2>meant {digit} <small>{len(records)} records, {flagged} flagged</small></h2>"
            f'<div class="grid">{figures or "none"}</div></section>')


def contact_sheet(folder: Path, records: list[tuple[str, Record]], flags: dict[str, list[str]]) -> str:
    """The whole page, self-contained: styles, pictures and script inline."""
    tokens = command_tokens([name for name, _ in records])
    by_digit = defaultdict(list)
    for name, record in records:
        by_digit[record.meant].append((name, record))
    blocks = "".join(digit_html(digit, by_digit[digit], flags, tokens) for digit in range(NUM_DIGITS))
    legend = "".join(f"<span><b>{reason}</b>: {html.escape(text)}</span>" for reason, text in REASONS.items())
    command = f"python -m training.review {shlex.quote(str(folder))}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Review: {len(records)} corrections</title>
<style>{STYLE}</style></head>
<body data-command="{html.escape(command)}">
<div id="decision"><b>{len(records)} records wait for review in {html.escape(str(folder))}.</b>
Green: accept (trained on); red: reject (kept aside). Flagged records start as reject; click a record to
switch it. Then paste this command (<span id="counts"></span>) <button id="copy">select and copy</button>
<pre id="command"></pre><div class="legend">{legend}</div></div>
{blocks}
<script>{SCRIPT}</script>
</body></html>
"""


def summary(folder: Path, records: list[tuple[str, Record]], flags: dict[str, list[str]], unreadable: list[str],
            sheet: Path) -> str:
    """One paragraph: how many wait, per digit meant, how many are flagged and why, where the sheet is."""
    if not records:
        text = f"No record waits for review in {folder}."
    else:
        per_digit = Counter(record.meant for _, record in records)
        reasons = Counter(reason for found in flags.values() for reason in found)
        text = (f"{len(records)} records wait for review in {folder}, by digit meant: "
                + ", ".join(f"{digit}: {per_digit[digit]}" for digit in range(NUM_DIGITS)) + ". "
                + f"{len(flags)} flagged, set to reject on the sheet"
                + "".join(f"; {count}: {REASONS[reason]}" for reason, count in reasons.items()) + ".")
    if unreadable:
        text += f" {len(unreadable)} unreadable files are not shown (first: {unreadable[0]})."
    return text + f" Contact sheet: {sheet}"


def make_sheet(folder: Path, out: Path) -> str:
    """Write the contact sheet of the records waiting in `folder` to `out`; the summary."""
    readable, unreadable = read_records(record_paths(folder))
    records = [(path.name, record) for path, record in readable]
    flags = suspicions(records)
    out.write_text(contact_sheet(folder, records, flags), encoding="utf-8")
    return summary(folder, records, flags, unreadable, out)


# --- the decision ---

def by_id(folder: Path) -> dict[str, list[str]]:
    """The names of the records in `folder`, by full name and by id."""
    names = defaultdict(list)
    for path in record_paths(folder):
        names[path.name].append(path.name)
        names[record_id(path.name)].append(path.name)
    return names


def resolve(folder: Path, given: list[str]) -> tuple[dict[str, str], list[str]]:
    """The waiting records the ids or names in `given` stand for ({given: name}), and why each other is not one."""
    waiting, reviewed = by_id(folder), {to: by_id(folder / to) for to in (ACCEPTED, REJECTED)}
    found, problems = {}, []
    for token in dict.fromkeys(given):  # each once, in order
        names = waiting.get(token, [])
        if len(names) == 1:
            found[token] = names[0]
        elif names:
            problems.append(f"{token}: {len(names)} records waiting have this id; name each by its file name")
        else:
            elsewhere = [to for to, names in reviewed.items() if token in names]
            problems.append(f"{token}: not waiting for review"
                            + (f" (already in {elsewhere[0]}/)" if elsewhere else " (no such record)"))
    return found, problems


def move(folder: Path, name: str, to: str) -> str | None:
    """Move the waiting record `name` into folder/to/ under the same name; None, or why it stayed."""
    target = folder / to / name
    target.parent.mkdir(exist_ok=True)
    if target.exists():  # os.rename would replace it
        return f"{name}: {to}/{name} exists already; left waiting"
    try:
        os.rename(folder / name, target)
    except FileNotFoundError:
        return f"{name}: no longer waiting (moved meanwhile)"
    return None


def decide(folder: Path, accept: list[str], reject: list[str]) -> tuple[Counter, list[str]]:
    """Move the records named to accept into accepted/ and those named to reject into rejected/: how many went
    where, and what was not done and why. A record named on both sides stays waiting."""
    accepted, problems = resolve(folder, accept)
    rejected, more = resolve(folder, reject)
    problems += more
    both = set(accepted.values()) & set(rejected.values())
    problems += [f"{name}: named to accept and to reject; left waiting" for name in sorted(both)]
    moved = Counter()
    for to, names in ((ACCEPTED, accepted.values()), (REJECTED, rejected.values())):
        for name in dict.fromkeys(names):
            if name in both:
                continue
            problem = move(folder, name, to)
            if problem:
                problems.append(problem)
            else:
                moved[to] += 1
    return moved, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the corrections folder (FEEDBACK_DIR)")
    parser.add_argument("--out", type=Path, help=f"where to write the contact sheet (default: FOLDER/{SHEET_FILE})")
    parser.add_argument("--accept", nargs="+", action="extend", default=[], metavar="ID",
                        help="records to accept (ids or file names): moved to FOLDER/accepted/, trained on")
    parser.add_argument("--reject", nargs="+", action="extend", default=[], metavar="ID",
                        help="records to reject (ids or file names): moved to FOLDER/rejected/, kept aside")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: not a folder; expected the corrections folder (FEEDBACK_DIR)")
    if args.out and args.out.name.endswith(SUFFIX):
        parser.error(f"--out {args.out}: a {SUFFIX} file would be taken for a record")
    if not (args.accept or args.reject):
        print(make_sheet(args.folder, args.out or args.folder / SHEET_FILE))
        return 0
    moved, problems = decide(args.folder, args.accept, args.reject)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{moved[ACCEPTED]} records accepted (into {args.folder / ACCEPTED}), {moved[REJECTED]} rejected (into "
          f"{args.folder / REJECTED}); {count_records(args.folder)} wait for review")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
