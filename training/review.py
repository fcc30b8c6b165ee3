"""A person reviews the users' corrections before they are trained on: a contact sheet, then a decision.

    python -m training.review feedback                   # the sheet of the corrections waiting: feedback/review.html
    python -m training.review feedback --accept 3f2a9c01 5be07d4e --reject 77b0e4d2   # the command the sheet shows

New corrections wait for review in FEEDBACK_DIR itself, where the app writes them (app/corrections.py, which
owns the folder's layout). The sheet is one self-contained HTML page (pictures inline, no network): the corrections
grouped by the digit meant, each enlarged with the model's answer, its probability and a short id; the
suspicious ones flagged (the reasons are at the end of this help) and set to reject. A click switches a
correction between accept and reject, and the page shows the command to paste, naming every correction it
shows; the terminal shows that command as the sheet starts (flagged ones rejected, the others accepted).

A decision moves each correction it names, with one atomic rename and under the same name (so its training or
validation split stays), into FEEDBACK_DIR/accepted/ (what training reads: training.data.load_corrections)
or FEEDBACK_DIR/rejected/ (kept aside, never trained on, never deleted). It never means "the whole folder":
corrections that arrived after the sheet was made stay waiting. A name no longer waiting is reported, and the
others are moved all the same (exit status 1); a move never replaces a file; the app's hidden temporary
files are never corrections.
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
from app.corrections import ACCEPTED, REJECTED, SUFFIX, Correction, correction_paths, count_corrections
from training.data import read_records

SHEET_FILE = "review.html"  # the sheet's default place, in FEEDBACK_DIR: not *.png, so never taken for a correction
ID_LENGTH = 8  # a correction's id: the first hex digits of the random part of its name
SURE = 0.99  # the model answered with at least this probability, and the user said it was another digit
BURST_CORRECTIONS = 10  # this many corrections of one (meant, answered) pair...
BURST_SECONDS = 3600  # ...within an hour: sent by a script, or by one person set on a label
REPEATS = 3  # the very same picture (every pixel) this many times: sent by a script, not drawn
SHOWN = 3 * IMAGE_SIZE  # each 28x28 picture is shown as 84x84 screen pixels, each of its pixels a 3x3 square
REASONS = {  # what a flag means, shown on the sheet and counted in the summary
    "sure": f"the model was sure (≥ {SURE:.0%}) and was overruled",
    "burst": f"in a burst (≥ {BURST_CORRECTIONS} of one digit meant and answered within {BURST_SECONDS // 60} minutes)",
    "repeat": f"a repeated picture (the same pixels ≥ {REPEATS} times)",
}
RANDOM_PART = re.compile(r"-([0-9a-f]{32})" + re.escape(SUFFIX) + "$")  # the app's names end in a uuid4's hex


def correction_id(name: str) -> str:
    """A correction's short id: the first ID_LENGTH hex digits of its name's random part; for a name the app did
    not make, the name without its suffix. The same name always gives the same id."""
    found = RANDOM_PART.search(name)
    return found.group(1)[:ID_LENGTH] if found else name.removesuffix(SUFFIX)


# --- what looks suspicious ---

def count(number: int, noun: str = "correction") -> str:
    """ "1 correction", "2 corrections"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def sure_and_overruled(corrections: list[tuple[str, Correction]]) -> set[str]:
    """Corrections of an answer the model was sure of: a real mistake of the model is rare there."""
    return {name for name, correction in corrections
            if correction.meant != correction.answered and correction.probability >= SURE}


def seconds(time: str) -> float | None:
    """A correction's time (ISO 8601) in seconds, or None when it is not a time."""
    try:
        return datetime.fromisoformat(time).timestamp()
    except ValueError:
        return None


def bursts(corrections: list[tuple[str, Correction]]) -> set[str]:
    """Corrections in a window of BURST_SECONDS holding at least BURST_CORRECTIONS of their (meant, answered) pair."""
    pairs = defaultdict(list)
    for name, correction in corrections:
        if (when := seconds(correction.time)) is not None:
            pairs[correction.meant, correction.answered].append((when, name))
    found = set()
    for timed in pairs.values():
        timed.sort()
        times = [when for when, _ in timed]
        covered = np.zeros(len(times) + 1, int)  # +1 where a burst's window starts, -1 after it ends
        for start, when in enumerate(times):
            end = bisect.bisect_right(times, when + BURST_SECONDS)
            if end - start >= BURST_CORRECTIONS:
                covered[start] += 1
                covered[end] -= 1
        found.update(name for (_, name), inside in zip(timed, np.cumsum(covered[:-1]), strict=True) if inside)
    return found


def repeated_pictures(corrections: list[tuple[str, Correction]]) -> set[str]:
    """Corrections whose picture, every pixel of it, at least REPEATS corrections share."""
    same = defaultdict(list)
    for name, correction in corrections:
        same[correction.picture.tobytes()].append(name)
    return {name for names in same.values() if len(names) >= REPEATS for name in names}


def suspicions(corrections: list[tuple[str, Correction]]) -> dict[str, list[str]]:
    """Why each suspicious correction is suspicious (keys of REASONS); corrections not named look ordinary."""
    found = defaultdict(list)
    for reason, names in (("sure", sure_and_overruled(corrections)), ("burst", bursts(corrections)),
                          ("repeat", repeated_pictures(corrections))):
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
.correction { margin: 0; padding: 3px; width: min-content; background: #fff; border: 3px solid #2a2; cursor: pointer;
          font-size: 11px; text-align: center; user-select: none; }
.correction img { display: block; image-rendering: pixelated; }
.correction.reject { border-color: #c22; background: #fdd; }
.correction.reject img { opacity: .45; }
.correction .flags { color: #b40; font-weight: bold; }
.correction code { color: #555; }
.legend span { margin-right: 1.5em; }
"""

SCRIPT = """
const corrections = [...document.querySelectorAll(".correction")];
function update() {
  const accept = corrections.filter(r => !r.classList.contains("reject")).map(r => r.dataset.id);
  const reject = corrections.filter(r => r.classList.contains("reject")).map(r => r.dataset.id);
  document.getElementById("command").textContent = document.body.dataset.command
    + (accept.length ? " --accept " + accept.join(" ") : "") + (reject.length ? " --reject " + reject.join(" ") : "");
  document.getElementById("counts").textContent = `accept ${accept.length}, reject ${reject.length}`;
}
for (const r of corrections) r.addEventListener("click", () => { r.classList.toggle("reject"); update(); });
document.getElementById("copy").addEventListener("click", () => {
  const command = document.getElementById("command");
  getSelection().selectAllChildren(command);
  if (navigator.clipboard) navigator.clipboard.writeText(command.textContent);
});
update();
"""


def data_uri(picture: np.ndarray) -> str:
    """The picture as an inline PNG (its pixels only: nothing else a correction file may carry)."""
    buffer = io.BytesIO()
    Image.fromarray(picture, mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def command_tokens(names: list[str]) -> dict[str, str]:
    """What the command calls each correction: its id, or its full name when another shown correction has that id."""
    ids = Counter(correction_id(name) for name in names)
    return {name: shlex.quote(correction_id(name) if ids[correction_id(name)] == 1 else name) for name in names}


def correction_html(name: str, correction: Correction, reasons: list[str], token: str) -> str:
    """One correction: the picture, the model's answer and probability, the short id, the flags."""
    title = "\n".join([name, correction.time, *(REASONS[reason] for reason in reasons)])
    flags = f'<br><span class="flags">{" ".join(reasons)}</span>' if reasons else ""
    return (f'<figure class="correction{" reject" if reasons else ""}" data-id="{html.escape(token)}" '
            f'title="{html.escape(title)}"><img src="{data_uri(correction.picture)}" width="{SHOWN}" height="{SHOWN}" '
            'alt="">'
            f"<figcaption>read {CLASS_NAMES[correction.answered]} · {correction.probability:.1%}<br>"
            f"<code>{html.escape(correction_id(name))}</code>{flags}</figcaption></figure>")


def digit_html(digit: int, corrections: list[tuple[str, Correction]], flags: dict[str, list[str]],
               tokens: dict[str, str]) -> str:
    """The block of one digit meant: its flagged corrections first, then by the digit answered, then by time."""
    corrections = sorted(corrections, key=lambda item: (item[0] not in flags, item[1].answered, item[0]))
    flagged = sum(name in flags for name, _ in corrections)
    figures = "".join(correction_html(name, correction, flags.get(name, []), tokens[name])
                      for name, correction in corrections)
    return (f"<section><h2>meant {digit} <small>{count(len(corrections))}, {flagged} flagged</small></h2>"
            f'<div class="grid">{figures or "none"}</div></section>')


def contact_sheet(folder: Path, corrections: list[tuple[str, Correction]], flags: dict[str, list[str]]) -> str:
    """The whole page, self-contained: styles, pictures and script inline."""
    tokens = command_tokens([name for name, _ in corrections])
    by_digit = defaultdict(list)
    for name, correction in corrections:
        by_digit[correction.meant].append((name, correction))
    blocks = "".join(digit_html(digit, by_digit[digit], flags, tokens) for digit in range(NUM_DIGITS))
    legend = "".join(f"<span><b>{reason}</b>: {html.escape(text)}</span>" for reason, text in REASONS.items())
    command = f"python -m training.review {shlex.quote(str(folder))}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Review: {count(len(corrections))}</title>
<style>{STYLE}</style></head>
<body data-command="{html.escape(command)}">
<div id="decision"><b>{waiting(len(corrections))} for review in {html.escape(str(folder))}.</b>
Green: accept (trained on); red: reject (kept aside). Flagged corrections start as reject; click a correction to
switch it. Then paste this command (<span id="counts"></span>) <button id="copy">select and copy</button>
<pre id="command"></pre><div class="legend">{legend}</div></div>
{blocks}
<script>{SCRIPT}</script>
</body></html>
"""


def summary(folder: Path, corrections: list[tuple[str, Correction]], flags: dict[str, list[str]], unreadable: list[str],
            sheet: Path) -> str:
    """One paragraph: how many wait, per digit meant, how many are flagged and why, where the sheet is."""
    if not corrections:
        text = f"No correction waits for review in {folder}."
    else:
        per_digit = Counter(correction.meant for _, correction in corrections)
        reasons = Counter(reason for found in flags.values() for reason in found)
        text = (f"{waiting(len(corrections))} for review in {folder}, by digit meant: "
                + ", ".join(f"{digit}: {per_digit[digit]}" for digit in range(NUM_DIGITS)) + ". "
                + f"{len(flags)} flagged, set to reject on the sheet"
                + "".join(f"; {count}: {REASONS[reason]}" for reason, count in reasons.items()) + ".")
    if unreadable:
        text += (f" {count(len(unreadable), 'unreadable file')} {'is' if len(unreadable) == 1 else 'are'} not shown "
                 f"(first: {unreadable[0]}).")
    text += f" Contact sheet: {sheet}"
    if corrections:
        text += "\nThe sheet's command, as it starts (flagged ones rejected, the others accepted):\n" + \
            decision_command(folder, [name for name, _ in corrections], set(flags))
    return text


def waiting(number: int) -> str:
    """ "1 correction waits", "2 corrections wait"."""
    return f"{count(number)} {'waits' if number == 1 else 'wait'}"


def decision_command(folder: Path, names: list[str], rejected: set[str]) -> str:
    """The command that accepts `names` but those in `rejected`, and rejects those: what the sheet's script
    shows before any click."""
    tokens = command_tokens(names)
    accept = [tokens[name] for name in names if name not in rejected]
    reject = [tokens[name] for name in names if name in rejected]
    return (f"python -m training.review {shlex.quote(str(folder))}"
            + (" --accept " + " ".join(accept) if accept else "") + (" --reject " + " ".join(reject) if reject else ""))


def make_sheet(folder: Path, out: Path) -> str:
    """Write the contact sheet of the corrections waiting in `folder` to `out`; the summary."""
    readable, unreadable = read_records(correction_paths(folder))
    corrections = [(path.name, correction) for path, correction in readable]
    flags = suspicions(corrections)
    out.write_text(contact_sheet(folder, corrections, flags), encoding="utf-8")
    return summary(folder, corrections, flags, unreadable, out)


# --- the decision ---

def by_id(folder: Path) -> dict[str, list[str]]:
    """The names of the corrections in `folder`, by full name and by id."""
    names = defaultdict(list)
    for path in correction_paths(folder):
        names[path.name].append(path.name)
        names[correction_id(path.name)].append(path.name)
    return names


def resolve(folder: Path, given: list[str]) -> tuple[dict[str, str], list[str]]:
    """The waiting corrections the ids or names in `given` stand for ({given: name}), and why each other is not one."""
    waiting, reviewed = by_id(folder), {to: by_id(folder / to) for to in (ACCEPTED, REJECTED)}
    found, problems = {}, []
    for token in dict.fromkeys(given):  # each once, in order
        names = waiting.get(token, [])
        if len(names) == 1:
            found[token] = names[0]
        elif names:
            problems.append(f"{token}: {len(names)} corrections waiting have this id; name each by its file name")
        else:
            elsewhere = [to for to, names in reviewed.items() if token in names]
            problems.append(f"{token}: not waiting for review"
                            + (f" (already in {elsewhere[0]}/)" if elsewhere else " (no such correction)"))
    return found, problems


def move(folder: Path, name: str, to: str) -> str | None:
    """Move the waiting correction `name` into folder/to/ under the same name; None, or why it stayed."""
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
    """Move the corrections named to accept into accepted/ and those named to reject into rejected/: how many went
    where, and what was not done and why. A correction named on both sides stays waiting."""
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
    flagged = "\n".join(f"  {reason}: {text}" for reason, text in REASONS.items())
    parser = argparse.ArgumentParser(prog="python -m training.review", description=__doc__,
                                     epilog=f"A correction is flagged when\n{flagged}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the corrections folder (FEEDBACK_DIR)")
    parser.add_argument("--out", type=Path, help=f"where to write the contact sheet (default: FOLDER/{SHEET_FILE})")
    parser.add_argument("--accept", nargs="+", action="extend", default=[], metavar="ID",
                        help="corrections to accept (ids or file names): moved to FOLDER/accepted/, trained on")
    parser.add_argument("--reject", nargs="+", action="extend", default=[], metavar="ID",
                        help="corrections to reject (ids or file names): moved to FOLDER/rejected/, kept aside")
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: not a folder; expected the corrections folder (FEEDBACK_DIR)")
    if args.out and args.out.name.endswith(SUFFIX):
        parser.error(f"--out {args.out}: a {SUFFIX} file would be taken for a correction")
    if not (args.accept or args.reject):
        print(make_sheet(args.folder, args.out or args.folder / SHEET_FILE))
        return 0
    moved, problems = decide(args.folder, args.accept, args.reject)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{count(moved[ACCEPTED])} accepted (into {args.folder / ACCEPTED}), {moved[REJECTED]} rejected (into "
          f"{args.folder / REJECTED}); {waiting(count_corrections(args.folder))} for review")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
