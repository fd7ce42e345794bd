"""Faults `medicalrec extract` must survive: hostile PDFs (fixtures/make_fault_pdfs.py), files over a
time or memory limit, dying workers, odd paths, and the batch killed mid-way (SIGTERM, SIGKILL)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Optional

import pytest
from fpdf import FPDF

from conftest import REPO
from medicalrec.errors import UserError
from medicalrec.extract import PdfProblem, batch, read_pdf
from medicalrec.extract.workers import KILL_GRACE_S, Limits

PDFS = REPO / "fixtures" / "pdfs"
GOOD = ("paper_pneumonia_cxr.pdf", "paper_skin_lesion_transposed.pdf", "paper_breast_us_permissions.pdf")


def _load_make_fault_pdfs():
    spec = importlib.util.spec_from_file_location("make_fault_pdfs", REPO / "fixtures" / "make_fault_pdfs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAULTS = _load_make_fault_pdfs().FAULTS


@pytest.fixture(scope="module")
def fault_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    _load_make_fault_pdfs().build_all(folder)
    return folder


# ---------------------------------------------------------------- the fault corpus, end to end

def test_every_fault_pdf_gets_a_status_within_its_limits(kb, fault_dir):
    limits = Limits(seconds=30)
    started = time.monotonic()
    outcomes = batch.run_batch([fault_dir], kb, extract=partial(batch.extract_path, limits=limits), limits=limits)
    by_name = {o.source_file: o for o in outcomes}
    assert set(by_name) == set(FAULTS)
    for name, (_, allowed, tried) in FAULTS.items():
        outcome = by_name[name]
        assert outcome.status in allowed, f"{name} ({tried}): {outcome.status}: {outcome.reason}"
        assert outcome.seconds <= limits.seconds + 1, f"{name} took {outcome.seconds} s"
        if outcome.failed:
            assert outcome.reason and "\n" not in outcome.reason and "Traceback" not in outcome.reason
    assert time.monotonic() - started < 120
    stored = {row.source_file: row.status for row in kb.file_statuses()}
    assert stored == {name: o.status for name, o in by_name.items()}


def test_a_million_token_content_stream_is_too_large_at_once(fault_dir):
    started = time.monotonic()
    with pytest.raises(PdfProblem) as info:
        read_pdf(fault_dir / "huge_content_stream.pdf", max_page_content_bytes=Limits().page_content_bytes)
    assert time.monotonic() - started < 5  # pypdf alone spends minutes on it
    assert info.value.status == "too_large"
    assert "page 1's content stream is over 15" in info.value.reason and "limit 4 MB" in info.value.reason


def test_the_time_limit_interrupts_pypdf_inside_a_real_page(kb, fault_dir):
    # With the content-size check out of the way, pypdf parses a million drawing operators for ~30 s.
    limits = Limits(seconds=2, page_content_bytes=1 << 30)
    started = time.monotonic()
    (outcome,) = batch.run_batch([fault_dir / "huge_vector_page.pdf"], kb,
                                 extract=partial(batch.extract_path, limits=limits), limits=limits)
    assert time.monotonic() - started < 10
    assert outcome.status == "timeout" and "2 s limit" in outcome.reason


def test_the_character_limit_stops_reading_and_names_the_option():
    with pytest.raises(PdfProblem) as info:
        read_pdf(PDFS / "paper_pneumonia_cxr.pdf", max_chars=1000)
    assert info.value.status == "too_large"
    assert "over 1,000 characters of text by page 1 of 2 (limit --max-chars 1000)" in info.value.reason


@pytest.mark.parametrize("name, words", [
    ("self_referencing_contents.pdf", "/Contents refers to an array, not a content stream"),
    ("contents_is_the_page.pdf", "/Contents refers to a DictionaryObject"),
])
def test_self_referencing_page_content_is_malformed_not_a_scan(fault_dir, name, words):
    with pytest.raises(PdfProblem) as info:
        read_pdf(fault_dir / name)
    assert info.value.status == "corrupt"
    assert words in info.value.reason and "page tree or content is malformed" in info.value.reason
    assert "OCR" not in info.value.reason


@pytest.mark.parametrize("name, status, words", [
    ("zero_bytes.pdf", "empty", "empty file (0 bytes): re-download or re-export it"),
    ("header_only.pdf", "corrupt", "truncated or damaged PDF (9 bytes;"),
    ("truncated_in_a_stream.pdf", "corrupt", "the download or copy was cut short; re-download it"),
    ("page_tree_loop.pdf", "corrupt", "malformed page tree (PdfReadError: Detected cyclic page references.)"),
    ("deep_page_tree.pdf", "corrupt", "malformed page tree (LimitReachedError: Maximum page tree depth"),
    ("decompression_bomb.pdf", "too_large", "a stream is over pypdf's size limits (a decompression bomb"),
])
def test_broken_files_get_a_one_line_reason_naming_the_fix(fault_dir, name, status, words):
    with pytest.raises(PdfProblem) as info:
        read_pdf(fault_dir / name)
    assert (info.value.status, "\n" in str(info.value)) == (status, False)
    assert words in info.value.reason


def test_a_fifo_a_broken_link_and_a_folder_are_named_for_what_they_are(tmp_path):
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    with pytest.raises(PdfProblem) as info:
        read_pdf(fifo)  # never opened: opening a FIFO blocks until a writer comes
    assert (info.value.status, info.value.reason) == (
        "not_pdf", "not a regular file but a named pipe (FIFO): pass the PDF file itself")
    link = tmp_path / "gone.pdf"
    link.symlink_to(tmp_path / "moved-away.pdf")
    with pytest.raises(PdfProblem, match="a broken symbolic link"):
        read_pdf(link)
    with pytest.raises(UserError, match="is a folder: pass PDF files"):
        read_pdf(tmp_path)


def test_a_fifo_named_on_the_command_line_gets_a_status_and_the_batch_goes_on(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENALEX_API_KEY", raising=False)
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    result = cli("extract", fifo, PDFS / "bad_empty.pdf", "--kb", tmp_path / "e.db", "--offline", "--json")
    assert result.exit_code == 1
    rows = {row["source_file"]: (row["status"], row["reason"]) for row in json.loads(result.stdout)}
    assert rows == {"pipe.pdf": ("not_pdf", "not a regular file but a named pipe (FIFO): pass the PDF file itself"),
                    "bad_empty.pdf": ("empty", "empty file (0 bytes): re-download or re-export it")}


# ---------------------------------------------------------------- limits and dying workers (stand-in extractors)

@dataclass
class NoResult:
    """The shape of pipeline.DocumentResult with nothing found."""

    title: Optional[str] = None
    doi: Optional[str] = None
    year: Optional[int] = None
    experiments: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def misbehaving_extract(path: str) -> batch.Extraction:
    """What a file's name asks for: run long, eat memory, die, hang where no signal reaches."""
    name = Path(path).name
    if name.startswith("slow"):
        time.sleep(60)
    elif name.startswith("hog"):
        hoard = []
        while True:
            hoard.append(bytearray(8 << 20))
            time.sleep(0.01)
    elif name.startswith("dies"):
        os.kill(os.getpid(), signal.SIGKILL)
    elif name.startswith("swallows"):
        try:
            time.sleep(60)
        except BaseException:  # noqa: BLE001 -- as a finalizer or a GC callback drops what it raises
            pass
        time.sleep(60)
    elif name.startswith("stuck"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # like C code that never returns to Python
        time.sleep(60)
    return batch.Extraction(path, "0" * 64, n_pages=1, result=NoResult())


def _inputs(tmp_path, *names):
    for name in names:
        shutil.copyfile(PDFS / "bad_empty.pdf", tmp_path / name)
    return [tmp_path / name for name in names]


def test_time_and_memory_limits_in_process_stop_one_file_not_the_batch(kb, tmp_path):
    limits = Limits(seconds=1, memory_mb=200)
    started = time.monotonic()
    outcomes = batch.run_batch(_inputs(tmp_path, "slow.pdf", "hog.pdf", "swallows.pdf", "fine.pdf"), kb,
                               extract=misbehaving_extract, limits=limits)
    assert time.monotonic() - started < 20
    by_name = {o.source_file: o for o in outcomes}
    assert by_name["slow.pdf"].status == "timeout"
    assert by_name["slow.pdf"].reason.startswith("extraction took longer than the 1 s limit")
    assert "--max-seconds" in by_name["slow.pdf"].reason
    assert by_name["hog.pdf"].status == "too_large"
    assert "more than the 200 MB memory limit: raise --max-memory" in by_name["hog.pdf"].reason
    assert by_name["swallows.pdf"].status == "timeout"  # the alarm rang again after the first was dropped
    assert by_name["fine.pdf"].status == "no_results"
    assert {r.source_file: r.status for r in kb.file_statuses()} == {
        "slow.pdf": "timeout", "hog.pdf": "too_large", "swallows.pdf": "timeout", "fine.pdf": "no_results"}


def test_worker_processes_enforce_limits_and_survive_dead_and_stuck_workers(kb, tmp_path):
    limits = Limits(seconds=1, memory_mb=200)
    names = ("slow.pdf", "hog.pdf", "dies.pdf", "stuck.pdf", "fine1.pdf", "fine2.pdf")
    started = time.monotonic()
    outcomes = batch.run_batch(_inputs(tmp_path, *names), kb, workers=2, extract=misbehaving_extract, limits=limits)
    assert time.monotonic() - started < 90
    by_name = {o.source_file: o for o in outcomes}
    assert {name: by_name[name].status for name in names} == {
        "slow.pdf": "timeout", "hog.pdf": "too_large", "dies.pdf": "error", "stuck.pdf": "timeout",
        "fine1.pdf": "no_results", "fine2.pdf": "no_results"}
    assert "killed by SIGKILL" in by_name["dies.pdf"].reason
    # stuck with SIGALRM blocked: the parent stopped it once the limit and the grace period had passed
    assert by_name["stuck.pdf"].seconds >= 1 + KILL_GRACE_S - 0.5
    assert len(kb.file_statuses()) == len(names)


# ---------------------------------------------------------------- paths that are not what a program expects

def test_non_utf8_names_and_symlink_loops(kb, tmp_path):
    root = tmp_path / "papers"
    (root / "sub").mkdir(parents=True)
    odd = os.fsdecode(b"caf\xe9 r\xe9sultats.pdf")
    shutil.copyfile(PDFS / "paper_pneumonia_cxr.pdf", root / odd)
    shutil.copyfile(PDFS / "paper_skin_lesion_transposed.pdf", root / "sub" / "skin.pdf")
    (root / "sub" / "up").symlink_to(root)  # a loop: sub/up/sub/up/...
    (root / "again").symlink_to(root / "sub")  # a second way into sub
    started = time.monotonic()
    for pattern in ([root], [str(root / "**" / "*.pdf")], [str(root / "**")]):
        found = batch.collect_inputs(pattern)
        assert sorted(p.name for p in found) == sorted([odd, "skin.pdf"]), pattern
    assert time.monotonic() - started < 5
    outcomes = batch.run_batch([root], kb, extract=misbehaving_extract)
    assert sorted(o.source_file for o in outcomes) == ["caf\\xe9 r\\xe9sultats.pdf", "skin.pdf"]
    assert all(o.status == "no_results" for o in outcomes)
    assert "caf\\xe9 r\\xe9sultats.pdf" in {row.source_file for row in kb.file_statuses()}


def test_non_utf8_name_through_the_cli(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENALEX_API_KEY", raising=False)
    odd = tmp_path / os.fsdecode(b"\xff\xfepaper.pdf")
    shutil.copyfile(PDFS / "paper_pneumonia_cxr.pdf", odd)
    result = cli("extract", odd, "--kb", tmp_path / "e.db", "--offline", "--json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["source_file"] == "\\xff\\xfepaper.pdf" and row["status"] == "ok"
    table = cli("extract", odd, "--kb", tmp_path / "e.db", "--offline")  # the rich table prints it too
    assert table.exit_code == 0 and "medicalrec extract" in table.stdout


# ---------------------------------------------------------------- killing `medicalrec extract --workers 2`

def _long_paper(path: Path, number: int, pages: int = 8) -> None:
    """A text-heavy synthetic paper: enough prose to keep a worker busy for a few seconds."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    sentence = (f"Study {number}: the ResNet-50 network pretrained on ImageNet was fine-tuned on 5,856 chest "
                "radiographs resized to 224x224 pixels, and reached 91.35% accuracy on the held-out test set. ")
    for page in range(pages):
        pdf.add_page()
        pdf.multi_cell(0, 5, f"Section {page + 1}. " + sentence * 22)
    path.write_bytes(bytes(pdf.output()))


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _extract_command(*args) -> list[str]:
    script = Path(sys.executable).parent / "medicalrec"
    head = [str(script)] if script.exists() else [sys.executable, "-c", "from medicalrec.cli import main; main()"]
    return head + ["extract", *map(str, args)]


def _file_statuses(db: Path) -> dict[str, str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return dict(conn.execute("SELECT source_file, status FROM file_status"))
    except sqlite3.Error:
        return {}


@pytest.mark.slow  # two real `medicalrec extract` runs: each loads spaCy in a parent and two workers
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc (Linux)")
@pytest.mark.parametrize("kill_with", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_extract_mid_batch_leaves_no_workers_and_a_consistent_kb(tmp_path, kill_with):
    papers = tmp_path / "papers"
    papers.mkdir()
    for name in GOOD:
        shutil.copyfile(PDFS / name, papers / name)
    for number in range(3):
        _long_paper(papers / f"long_{number}.pdf", number)
    db = tmp_path / "kill.db"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    env.pop("OPENALEX_API_KEY", None)
    command = _extract_command(papers, "--kb", db, "--offline", "--workers", "2", "--json")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while time.monotonic() < deadline and process.poll() is None:
            workers |= _descendants(process.pid)
            if len(workers) >= 2 and _file_statuses(db):
                break
            time.sleep(0.2)
        assert process.poll() is None, "the batch ended before it could be killed mid-way"
        done_before = _file_statuses(db)
        assert 0 < len(done_before) < 6
        workers |= _descendants(process.pid)
        process.send_signal(kill_with)
        process.wait(timeout=30)
        gone_by = time.monotonic() + 10
        while time.monotonic() < gone_by and any(_alive(pid) for pid in workers):
            time.sleep(0.2)
        assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the parent"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        stored = dict(conn.execute("SELECT source_file, status FROM file_status"))
        papers_stored = {row[0] for row in conn.execute("SELECT source_file FROM papers")}
    for name, status in done_before.items():  # what was done before the kill keeps its status
        assert stored[name] == status
    # A paper and its file status are two transactions: a kill between them leaves a paper whose
    # status the re-run records (as unchanged) -- never a status that claims a paper not stored.
    assert {name for name, status in stored.items() if status in ("ok", "no_results")} <= papers_stored

    # One process this time: the point is that the KB takes the rest, not the pool again.
    rerun = subprocess.run([*command[:-3], "--workers", "1", "--json"], env=env, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode(errors="replace")[-2000:]
    rows = json.loads(rerun.stdout)
    assert len(rows) == 6 and {row["status"] for row in rows} <= {"ok", "no_results"}
    assert sum(row["reason"] == batch.UNCHANGED for row in rows) >= len([s for s in done_before.values()
                                                                        if s in ("ok", "no_results")])
    assert len(_file_statuses(db)) == 6
    with sqlite3.connect(db) as conn:
        assert {row[0] for row in conn.execute("SELECT source_file FROM papers")} == set(_file_statuses(db))
