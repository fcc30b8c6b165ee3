"""A user gets the handwriting folder with one command (training/fetch_handwriting.py): the public archives'
sample (tests/data/handwriting-raw) converts to exactly the records the folder holds, training's loaders read
the files, the download path unpacks the archives as published (served here by a real HTTP server), and an
offline machine is told what to do."""

import functools
import gzip
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import REPO
from training.fetch_handwriting import SECTIONS, convert, fetch, uncompress
from training.negatives import CHARACTER_FILES, negatives_set, read_characters
from training.strokes import DIGIT_FILES, load_writers, read_digits

SAMPLE = REPO / "tests" / "data" / "handwriting-raw"
EXPECTED = json.loads((SAMPLE / "expected.json").read_text())  # {"unipen 1a": [records], ..., "pendigits": [...]}
FILES = {f"unipen {section}": name for section, name in SECTIONS.items()} | {"pendigits": DIGIT_FILES["pendigits"]}


def read(folder: Path) -> dict[str, list[dict]]:
    """The records of each file written, by expected.json's section names."""
    return {section: json.loads(gzip.decompress((Path(folder) / name).read_bytes())) for section, name in FILES.items()}


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("handwriting")
    convert(SAMPLE, out)
    return out


def test_the_sample_converts_to_exactly_the_records_expected(converted):
    include = (SAMPLE / "unipen" / "include" / "aga" / "data" / "amywldrp.dat").read_text()
    assert '\n"""\n' in include and '\n"\\"\n' in include  # the unescaped quotes a parser must survive
    assert set(EXPECTED) == set(FILES)
    assert read(converted) == EXPECTED


def test_the_files_are_compact_json_gzipped_without_a_timestamp_so_a_rerun_writes_the_same_bytes(converted, tmp_path):
    convert(SAMPLE, tmp_path)
    for name in FILES.values():
        data = (converted / name).read_bytes()
        assert data[:4] == b"\x1f\x8b\x08\x00" and data[4:8] == bytes(4)  # gzip, no name, mtime 0
        records = json.loads(gzip.decompress(data))
        assert gzip.decompress(data) == json.dumps(records, separators=(",", ":")).encode()
        assert (tmp_path / name).read_bytes() == data


def test_training_reads_the_files_written(converted):
    digits = read_digits(converted)
    assert len(digits) == len(EXPECTED["unipen 1a"]) + len(EXPECTED["pendigits"])
    characters = read_characters(converted, like_digits=True)
    assert {c["kind"].split(":")[0] for c in characters} == set(CHARACTER_FILES)
    # Every writer of the sample falls on the training side of the split.
    writers = load_writers(converted, which=("training",))["training"]
    assert writers["images"].shape[1:] == (28, 28) and 0 < len(writers["labels"]) <= len(digits)
    negatives = negatives_set(converted, ("training",), workers=1, sizes={"training": (100, 1)})["training"]
    assert {"unipen-uppercase", "unipen-lowercase", "generated"} <= set(negatives["datasets"])


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_unipen_quirks_are_left_out_as_when_the_model_was_trained(tmp_path):
    blocks = "".join(f".PEN_DOWN\n{points}.PEN_UP\n" for points in ("1 2 5\n3 4 6\n", "", "7 8\n", "9 10\n11 12\n"))
    segments = {"1a": ['0 ? "1"', '1 ? "2"', '9 ? "3"', '2 ? "4"', '0:1-0:3 ? "5"', '0,3 ? "A"', '0,3 OK "7"'],
                "1d": ['3 ? "\\""', '0-1 ? "+"']}
    for lab in ("lab", "cea"):
        write(tmp_path / "unipen" / "include" / lab / "data" / "w.dat", '.LEXICON\n"""\n"\\"\n' + blocks)
        for section, lines in segments.items():
            write(tmp_path / "unipen" / "data" / section / lab / "w.dat", f".INCLUDE {lab}/data/w.dat\n"
                  + "".join(f".SEGMENT CHARACTER {line}\n" for line in lines))
    convert(tmp_path, tmp_path / "out")
    one, three = [[1, 2], [3, 4]], [[9, 10], [11, 12]]  # blocks 0 and 3; 1 is empty, 2 a single point
    writer = "lab/lab/data/w.dat"  # no .WRITER_ID: the include path
    # Kept: whole blocks with a line in them. Left out: an empty or missing block, a single point, bounds
    # within a block, a letter among the digits, the lab cea. A label ends at its second quote.
    assert read(tmp_path / "out")["unipen 1a"] == [
        {"label": 1, "source": "lab", "writer": writer, "strokes": [one]},
        {"label": 7, "source": "lab", "writer": writer, "strokes": [one, three]}]
    assert read(tmp_path / "out")["unipen 1d"] == [{"label": "\\", "source": "lab", "writer": writer,
                                                    "strokes": [three]}]


def test_unix_compress_files_as_uci_ships_them_are_read():
    assert uncompress((SAMPLE / "pendigits-orig.tra.Z").read_bytes()) == (
        SAMPLE / "pendigits" / "pendigits-orig.tra").read_bytes()
    with pytest.raises(ValueError, match="not a .Z"):
        uncompress(b"plain text")


def archive_members(prefix: str) -> dict[str, bytes]:
    """The sample's UNIPEN files as an archive holds them under `prefix`, with a section the conversion skips."""
    members = {f"{prefix}{path.relative_to(SAMPLE / 'unipen')}": path.read_bytes()
               for path in sorted((SAMPLE / "unipen").rglob("*")) if path.is_file()}
    return members | {f"{prefix}data/2/aga/amywldrp.dat": b".VERSION 1.0\n", f"{prefix}README": b"the CD-ROM\n"}


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path):
    """A real HTTP server on a free port serving archives laid out as published: a Zenodo record's JSON and
    its .tgz, the GitHub copy's zip, UCI's zip (the .Z originals beside the feature tables). Its base URL."""
    site = tmp_path / "site"
    (site / "api" / "records").mkdir(parents=True)
    with tarfile.open(site / "unipen-CDROM-train_r01_v07.tgz", "w:gz") as tgz:
        for name, data in archive_members("CDROM/train_r01_v07/").items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tgz.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(site / "main.zip", "w") as mirror:
        for name, data in archive_members("train_r01_v07-main/").items():
            mirror.writestr(name, data)
    packed = (SAMPLE / "pendigits-orig.tra.Z").read_bytes()
    with zipfile.ZipFile(site / "pendigits.zip", "w") as uci:
        for name in ("pendigits-orig.tra.Z", "pendigits-orig.tes.Z"):
            uci.writestr(name, packed)
        uci.writestr("pendigits.tra", "47,100,27,81,57,37,26,0,0,23,56,53,100,90,40,98,8\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=site))
    base = f"http://127.0.0.1:{server.server_port}"
    tgz = site / "unipen-CDROM-train_r01_v07.tgz"
    (site / "api" / "records" / "1195803").write_text(json.dumps({"files": [
        {"key": "README.txt", "size": 9, "links": {"self": f"{base}/README.txt"}},
        {"key": tgz.name, "size": tgz.stat().st_size, "links": {"self": f"{base}/{tgz.name}"}}]}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield base
    server.shutdown()
    server.server_close()


def expected_with_both_parts() -> dict[str, list[dict]]:
    """expected.json, with the served tes part (the same bytes as tra) read as writers of its own."""
    tes = [{**record, "writer": record["writer"].replace("/tra-", "/tes-")} for record in EXPECTED["pendigits"]]
    return EXPECTED | {"pendigits": EXPECTED["pendigits"] + tes}


def test_the_download_unpacks_the_zenodo_record_and_ucis_zip_into_what_convert_reads(served, tmp_path):
    fetch(tmp_path / "raw", [f"{served}/api/records/1195803"], f"{served}/pendigits.zip")
    assert not (tmp_path / "raw" / "unipen" / "CDROM" / "train_r01_v07" / "data" / "2").exists()  # not read
    convert(tmp_path / "raw", tmp_path / "out")
    assert read(tmp_path / "out") == expected_with_both_parts()


def test_the_download_falls_back_to_the_github_copy(served, tmp_path, capsys):
    fetch(tmp_path / "raw", [f"{served}/gone.tgz", f"{served}/main.zip"], f"{served}/pendigits.zip")
    assert "cannot download" in capsys.readouterr().out
    convert(tmp_path / "raw", tmp_path / "out")
    assert read(tmp_path / "out") == expected_with_both_parts()


def test_offline_the_command_says_what_failed_and_how_to_convert_by_hand(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(SystemExit) as stop:
        fetch(tmp_path, [f"{closed}/api/records/1195803", f"{closed}/main.zip"], f"{closed}/pendigits.zip")
    message = str(stop.value)
    assert f"{closed}/main.zip" in message and "refused" in message.lower()
    assert "python -m training.fetch_handwriting --raw RAW --out DIR" in message


def test_the_command_converts_downloaded_archives(tmp_path):
    run = subprocess.run([sys.executable, "-m", "training.fetch_handwriting", "--raw", str(SAMPLE),
                          "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(FILES.values())
    assert f"{tmp_path / DIGIT_FILES['unipen']}: 14 characters by 1 writers" in run.stdout
    assert "pendigits-orig.tes: missing, left out" in run.stdout  # the sample has no tes part


# --- the full data, when HANDWRITING_DIR (and HANDWRITING_RAW_DIR) name it ---

def test_the_samples_records_are_the_full_folders(handwriting_dir):
    full = read(Path(handwriting_dir))
    for section, records in EXPECTED.items():
        keys = {json.dumps(record) for record in full[section]}
        assert all(json.dumps(record) in keys for record in records), section


def test_the_full_archives_convert_to_the_full_folder(handwriting_dir, tmp_path):
    """About 2 minutes: RAW/unipen (Zenodo's archive or the GitHub copy, unpacked) and RAW/pendigits."""
    if not (raw := os.environ.get("HANDWRITING_RAW_DIR")):
        pytest.skip("full-data check skipped: set HANDWRITING_RAW_DIR to the raw archives unpacked "
                    "(RAW/unipen, RAW/pendigits)")
    convert(Path(raw), tmp_path)
    for name in FILES.values():
        assert gzip.decompress((tmp_path / name).read_bytes()) == gzip.decompress(
            (Path(handwriting_dir) / name).read_bytes()), name
