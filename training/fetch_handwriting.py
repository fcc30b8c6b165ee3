"""The handwriting folder (HANDWRITING_DIR) made from the two public archives of real people's pen strokes.

    python -m training.fetch_handwriting --out handwriting              # downloads both archives, converts
    python -m training.fetch_handwriting --raw RAW --out handwriting    # converts archives already downloaded

It writes the five files training/strokes.py (the writers' digits) and training/negatives.py (letters and
symbols) read, each a gzipped JSON list of {"label", "source", "writer", "strokes"}, in the tablet's units with
y up, the same records as the shipped model was trained on:
- UNIPEN train_r01_v07 (Guyon et al., ICPR 1994; Unipen Consortium 1999, doi:10.5281/zenodo.1195803), from
  Zenodo, else its GitHub copy GreenCappuccino/train_r01_v07: sections 1a (digits), 1b, 1c and 1d (upper case,
  lower case, symbols). The labs cea, pri and tos are left out (their segment labels do not match their
  strokes), and so are segments with a missing or empty block, only single points, or bounds within a block.
  A label ends at its second quote, so `"\\""` (a quote) reads as a backslash, as it was trained.
- UCI's Pen-Based Recognition of Handwritten Digits (Alpaydin & Alimoglu 1998), dataset 81: its original
  trajectories, pendigits-orig.tra and .tes (in UCI's zip as Unix-compressed .Z files).
Both are CC BY 4.0: credit them wherever the data, or a model trained on it, is used or shipped.

RAW is what a download unpacks: RAW/unipen/ the UNIPEN archive (a folder holding data/1a…1d/<lab>/…/*.dat and
include/, at any depth) and RAW/pendigits/ pendigits-orig.tra and .tes, or their .Z. Unpacked, UNIPEN takes
about 0.5 GB. tests/data/handwriting-raw holds a sample of both and what it converts to.
"""

import argparse
import gzip
import json
import re
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from training.negatives import CHARACTER_FILES
from training.strokes import DIGIT_FILES

ZENODO_RECORD = "https://zenodo.org/api/records/1195803"  # UNIPEN train_r01_v07: the record's JSON names its archive
UNIPEN_MIRROR = "https://github.com/GreenCappuccino/train_r01_v07/archive/refs/heads/main.zip"
PENDIGITS_ZIP = "https://archive.ics.uci.edu/static/public/81/pen+based+recognition+of+handwritten+digits.zip"
SECTIONS = {"1a": DIGIT_FILES["unipen"], "1b": CHARACTER_FILES["uppercase"], "1c": CHARACTER_FILES["lowercase"],
            "1d": CHARACTER_FILES["symbols"]}  # UNIPEN section -> the file it becomes
PENDIGITS_PARTS = ("tra", "tes")  # pendigits-orig.<part>
DIGIT_LABELS = set("0123456789")  # what section 1a keeps, as ints
LEFT_OUT_LABS = {"cea", "pri", "tos"}  # their segment indices do not match their labels (checked by eye)
SEGMENT = re.compile(r'\.SEGMENT\s+\S+\s+(\S+)\s+\S+\s+"(.*?)"')  # its blocks, its label
BLOCKS = re.compile(r"\d+(-\d+)?(,\d+(-\d+)?)*")  # "73", "169-170", "12,14"; not "380:2-381:5" (within blocks)
TIMEOUT = 60  # seconds a download may wait for the next byte
OFFLINE = ("Offline? Download the archives by hand, unpack them as RAW/unipen/ and RAW/pendigits/, then run\n"
           "    python -m training.fetch_handwriting --raw RAW --out DIR")


def pen_blocks(lines: list[str]) -> list[list[list[int]]]:
    """The `.PEN_DOWN` blocks of a UNIPEN file, in order: the x y (integers) of each line up to the next
    dot-command; the other columns (time, pressure) are dropped."""
    blocks, block = [], None
    for line in lines:
        if line.startswith("."):
            block = [] if line.startswith(".PEN_DOWN") else None
            if block is not None:
                blocks.append(block)
        elif block is not None and line.split():
            x, y = line.split()[:2]
            block.append([int(float(x)), int(float(y))])
    return blocks


def read_lines(path: Path) -> list[str]:
    """A UNIPEN file's lines, read as Latin-1: some labs' comments hold bytes that are not UTF-8."""
    return path.read_text(encoding="latin-1").splitlines()


def block_indices(spec: str) -> list[int] | None:
    """The 0-based pen-down blocks a segment names ("73", "169-170", "12,14"), or None for any other form."""
    if not BLOCKS.fullmatch(spec):
        return None
    indices = []
    for part in spec.split(","):
        first, _, last = part.partition("-")
        indices += range(int(first), int(last or first) + 1)
    return indices


def unipen_root(folder: Path) -> Path:
    """The folder holding data/1a and include/ in an unpacked UNIPEN archive, at any depth."""
    for data in sorted(Path(folder).glob("**/data/1a")):
        if (data.parent.parent / "include").is_dir():
            return data.parent.parent
    raise SystemExit(f"{folder}: no UNIPEN archive here (a folder with data/1a and include/)")


def unipen_section(root: Path, section: str) -> list[dict]:
    """The characters of one UNIPEN section, file by file: each segment cut from the pen-down blocks of the
    files its data file includes; the writer is their .WRITER_ID, else the included file's path. Digits (1a)
    are ints, the other characters strings."""
    records, includes = [], {}  # include path -> (writer, blocks)
    for path in sorted((root / "data" / section).glob("*/**/*.dat")):
        lab = path.relative_to(root / "data" / section).parts[0]
        if lab in LEFT_OUT_LABS:
            continue
        lines, blocks, writer = read_lines(path), [], None
        for name in [line.split()[1] for line in lines if line.startswith(".INCLUDE")]:
            if name not in includes:
                included = read_lines(root / "include" / name)
                ids = [line.split()[1] for line in included if line.startswith(".WRITER_ID")]
                includes[name] = (ids[0] if ids else name, pen_blocks(included))
            if includes[name][1]:
                writer, blocks = writer or includes[name][0], blocks + includes[name][1]
        for match in filter(None, map(SEGMENT.match, lines)):
            indices, label = block_indices(match[1]), match[2]
            if indices is None or (section == "1a" and label not in DIGIT_LABELS):
                continue
            strokes = [blocks[i] for i in indices if i < len(blocks)]
            if len(strokes) < len(indices) or not all(strokes) or max(map(len, strokes)) < 2:
                continue
            records.append({"label": int(label) if section == "1a" else label, "source": lab,
                            "writer": f"{lab}/{writer}", "strokes": strokes})
    return records


def pendigits_part(text: str, part: str) -> list[dict]:
    """The digits of one file of UCI's original pen digits: each `.SEGMENT DIGIT` with the blocks after it, the
    writer from its `.COMMENT <digit> <writer> <points>`."""
    records = []
    for chunk in re.split(r"^(?=\.SEGMENT)", text, flags=re.MULTILINE)[1:]:
        lines = chunk.splitlines()
        writer = next(line.split()[2] for line in lines if line.startswith(".COMMENT"))
        strokes = [block for block in pen_blocks(lines) if block]
        if strokes:
            records.append({"label": int(SEGMENT.match(lines[0])[2]), "source": "pendigits", "strokes": strokes,
                            "writer": f"pendigits/{part}-{writer}"})
    return records


def pendigits(folder: Path) -> list[dict]:
    """The digits of each part of UCI's pen digits in `folder` (pendigits-orig.<part>, or its .Z); a part
    missing is left out, saying so."""
    records = []
    for part in PENDIGITS_PARTS:
        path, packed = Path(folder) / f"pendigits-orig.{part}", Path(folder) / f"pendigits-orig.{part}.Z"
        if path.exists():
            records += pendigits_part(path.read_text(encoding="latin-1"), part)
        elif packed.exists():
            records += pendigits_part(uncompress(packed.read_bytes()).decode("latin-1"), part)
        else:
            print(f"{path}: missing, left out")
    return records


def uncompress(data: bytes) -> bytes:
    """Unix `compress` data (.Z, LZW), decompressed: UCI ships the original pen digits so, and Python reads no
    .Z. Codes are little-endian, 9 bits wide growing to the header's maximum, written in groups of 8; when the
    width grows or the table is cleared (code 256), the rest of the group is padding."""
    if data[:2] != b"\x1f\x9d":
        raise ValueError("not a .Z (compress) file")
    max_bits, block_mode = data[2] & 0x1F, bool(data[2] & 0x80)
    first = 257 if block_mode else 256  # the first code free: 256 clears the table in block mode
    table = [bytes([byte]) for byte in range(256)] + [b""] * (first - 256)
    out, previous, bits, position = bytearray(), None, 9, 3
    while position < len(data):
        if bits < max_bits and len(table) > (1 << bits) - 1:
            bits += 1
        chunk = data[position:position + bits]
        position += bits
        group = int.from_bytes(chunk, "little")
        for index in range(len(chunk) * 8 // bits):
            code = (group >> (index * bits)) & ((1 << bits) - 1)
            if block_mode and code == 256:
                del table[first:]
                previous, bits = None, 9
                break
            if code < len(table):
                entry = table[code]
            elif code == len(table) and previous is not None:
                entry = table[previous] + table[previous][:1]
            else:
                raise ValueError("corrupt .Z data")
            out += entry
            if previous is not None and len(table) < 1 << max_bits:
                table.append(table[previous] + entry[:1])
            previous = code
            if bits < max_bits and len(table) > (1 << bits) - 1:
                break
    return bytes(out)


def convert(raw: Path, out: Path) -> None:
    """The five files made from RAW (unipen/ and pendigits/, as a download unpacks them), written into `out`:
    compact JSON, gzipped with no timestamp, so the same archives give the same bytes."""
    root = unipen_root(Path(raw) / "unipen")
    files = {name: unipen_section(root, section) for section, name in SECTIONS.items()}
    files[DIGIT_FILES["pendigits"]] = pendigits(Path(raw) / "pendigits")
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, records in files.items():
        text = json.dumps(records, separators=(",", ":"))
        (Path(out) / name).write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))
        print(f"{Path(out) / name}: {len(records)} characters by {len({r['writer'] for r in records})} writers")


def archive_url(url: str) -> str:
    """`url` itself, or for a Zenodo record's API address, the download address of its archive (.tgz, .tar.gz
    or .zip; the largest)."""
    if "/api/records/" not in url:
        return url
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        files = json.load(response)["files"]
    files = list(files["entries"].values()) if isinstance(files, dict) else files
    archives = [file for file in files if file["key"].endswith((".tgz", ".tar.gz", ".zip"))]
    if not archives:
        raise ValueError("the record lists no archive")
    chosen = max(archives, key=lambda file: file.get("size", 0))
    return chosen["links"].get("content") or chosen["links"]["self"]


def download(urls: list[str], path: Path) -> Path:
    """The first of `urls` that downloads, saved as `path`; if none does, a SystemExit saying why and what to
    do offline."""
    failures = []
    for url in urls:
        try:
            url = archive_url(url)
            print(f"downloading {url}", flush=True)
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(path, "wb") as file:
                shutil.copyfileobj(response, file, 1 << 20)
            print(f"  {path.stat().st_size / 1e6:.1f} MB", flush=True)
            return path
        except (OSError, ValueError, KeyError) as error:
            failures.append(f"{url}: {getattr(error, 'reason', None) or error}")
            print(f"  cannot download {failures[-1]}", flush=True)
    raise SystemExit("cannot download " + "; ".join(failures) + "\n" + OFFLINE)


def unipen_member(name: str) -> bool:
    """Whether the conversion reads this member of the UNIPEN archive: the sections' segment lists, the include
    files."""
    return re.search(r"(^|/)(data/1[abcd]|include)/", name) is not None


def fetch(raw: Path, unipen_urls=(ZENODO_RECORD, UNIPEN_MIRROR), pendigits_url: str = PENDIGITS_ZIP) -> None:
    """Both archives downloaded and unpacked into `raw` as convert reads them (RAW/unipen, RAW/pendigits).
    UNIPEN comes from the first of `unipen_urls` that downloads."""
    Path(raw).mkdir(parents=True, exist_ok=True)
    archive = download(list(unipen_urls), Path(raw) / "unipen-archive")
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as opened:
            opened.extractall(Path(raw) / "unipen", filter(unipen_member, opened.namelist()))
    else:
        with tarfile.open(archive) as opened:
            for member in opened:
                if member.isfile() and unipen_member(member.name):
                    opened.extract(member, Path(raw) / "unipen", filter="data")
    archive.unlink()
    (Path(raw) / "pendigits").mkdir(exist_ok=True)
    with zipfile.ZipFile(download([pendigits_url], Path(raw) / "pendigits.zip")) as opened:
        for name in opened.namelist():
            if Path(name).name.startswith("pendigits-orig."):
                (Path(raw) / "pendigits" / Path(name).name).write_bytes(opened.read(name))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.fetch_handwriting", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="the handwriting folder to write (HANDWRITING_DIR)")
    parser.add_argument("--raw", help="convert the archives unpacked here (RAW/unipen, RAW/pendigits) rather "
                        "than downloading them")
    args = parser.parse_args(argv)
    if args.raw:
        convert(Path(args.raw), Path(args.out))
        return
    with tempfile.TemporaryDirectory(prefix="handwriting-raw-") as raw:
        fetch(Path(raw))
        convert(Path(raw), Path(args.out))


if __name__ == "__main__":
    main()
