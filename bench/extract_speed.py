"""How fast is `extract` offline, against pypdf's bare text extraction of the same PDFs?

Two ways, on every PDF of ../shared/fixtures/pdfs and pdfs_more (46 files):
- in-process: read_pdf + extract_document per file (spaCy warmed first), against
  `PdfReader(p).pages[i].extract_text()`;
- the whole command, as a user runs it: `medicalrec extract FOLDER --offline --workers 1 --force`
  into a fresh KB, start-up, OpenAlex-free metadata and KB writes included, CPU time of the child
  process (target: at most 2x pypdf's CPU time on the same files).
It also prints the pages per second of each text backend: pypdf plain text, pdfium plain text, and
pdfium positioned words (what the table reader uses). CPU time is reported beside wall time: on a
shared machine it is the steadier of the two.

Usage: python bench/extract_speed.py [--folder DIR ...] [--verbose]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "fixtures"
DEFAULT_FOLDERS = (SHARED / "pdfs", SHARED / "pdfs_more")
TARGET_RATIO = 2.0


@dataclass
class Timing:
    pages: int = 0
    wall: float = 0.0
    cpu: float = 0.0

    def add(self, pages: int, wall: float, cpu: float) -> None:
        self.pages += pages
        self.wall += wall
        self.cpu += cpu

    def line(self, name: str) -> str:
        rate = self.pages / self.wall if self.wall else 0.0
        return f"{name:38} {rate:6.1f} pages/s wall  ({self.wall:6.2f} s wall, {self.cpu:6.2f} s CPU)"


def timed(fn, path: Path, into: Timing) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    pages = fn(path)
    into.add(pages, time.perf_counter() - wall, time.process_time() - cpu)


def raw_pypdf(path: Path) -> int:
    from pypdf import PdfReader

    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    for page in reader.pages:
        page.extract_text()
    return len(reader.pages)


def raw_pdfium(path: Path) -> int:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path), password="")
    for index in range(len(document)):
        textpage = document[index].get_textpage()
        textpage.get_text_range()
    return len(document)


def pdfium_words(path: Path) -> int:
    from medicalrec.extract.layout import read_grids

    return sum(1 for _ in read_grids(path, password=""))


def whole_pipeline(path: Path) -> int:
    from medicalrec.extract.pdf import read_pdf
    from medicalrec.extract.pipeline import extract_document

    document = read_pdf(path)
    extract_document(document)
    return len(document.pages)


def whole_command(pdfs: list[Path]) -> tuple[float, float, str]:
    """(wall, CPU) seconds of `medicalrec extract` over a folder holding links to `pdfs`."""
    executable = Path(sys.executable).with_name("medicalrec")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pdfs"
        folder.mkdir()
        for pdf in pdfs:
            os.symlink(pdf.resolve(), folder / pdf.name)
        command = [str(executable), "extract", str(folder), "--kb", str(Path(tmp) / "speed.db"), "--offline",
                   "--workers", "1", "--force"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = next((line for line in done.stdout.splitlines()[::-1] if " files (" in line), done.stderr[-200:])
    return wall, cpu, summary.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, action="append", help="folder of PDFs (default: both shared folders)")
    parser.add_argument("--verbose", action="store_true", help="print one line per file")
    args = parser.parse_args(argv)
    folders = args.folder or list(DEFAULT_FOLDERS)
    pdfs = sorted(p for folder in folders if folder.is_dir() for p in folder.glob("*.pdf"))
    if not pdfs:
        print(f"no PDFs in {', '.join(map(str, folders))}: this benchmark needs ../shared/fixtures beside the "
              "repository (or pass --folder DIR)", file=sys.stderr)
        return 1
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # repair notices are not the point here

    from medicalrec.extract.pipeline import build_pipeline

    build_pipeline()
    timings = {name: Timing() for name in ("pypdf", "pdfium", "words", "pipeline")}
    for path in pdfs:
        timed(raw_pypdf, path, timings["pypdf"])
        timed(raw_pdfium, path, timings["pdfium"])
        timed(pdfium_words, path, timings["words"])
        timed(whole_pipeline, path, timings["pipeline"])
        if args.verbose:
            print(f"{path.name[:60]:60} pipeline total so far {timings['pipeline'].cpu:6.1f} s CPU")
    pages = timings["pypdf"].pages
    print(f"{len(pdfs)} PDFs, {pages} pages ({', '.join(str(f) for f in folders)})")
    print(timings["pypdf"].line("raw pypdf extract_text:"))
    print(timings["pdfium"].line("raw pdfium text:"))
    print(timings["words"].line("pdfium positioned words + lines:"))
    print(timings["pipeline"].line("read_pdf + extract_document:"))
    in_process = timings["pipeline"].cpu / timings["pypdf"].cpu
    wall, cpu, summary = whole_command(pdfs)
    whole = cpu / timings["pypdf"].cpu
    print(f"{'medicalrec extract (whole command):':38} {pages / wall:6.1f} pages/s wall  ({wall:6.2f} s wall, "
          f"{cpu:6.2f} s CPU)  -> {summary}")
    verdict = "meets" if whole <= TARGET_RATIO else "misses"
    print(f"ratio to raw pypdf CPU: in-process pipeline {in_process:.2f}x, whole command {whole:.2f}x"
          f" -> {verdict} the <= {TARGET_RATIO:g}x target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
