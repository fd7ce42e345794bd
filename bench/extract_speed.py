"""How fast is `extract` offline, against pypdf's bare text extraction of the same PDFs?

Times read_pdf + extract_document (the whole offline pipeline, spaCy warmed first), read_pdf
alone, and `PdfReader(p).pages[i].extract_text()` on the real PDFs in ../shared/fixtures/pdfs, and prints
pages per second for both and their ratio (target: the pipeline takes at most 2x pypdf's time).
CPU time is reported beside wall time: on a shared machine it is the steadier of the two.

Usage: python bench/extract_speed.py [--folder DIR] [--verbose]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = REPO.parent / "shared" / "fixtures" / "pdfs"
TARGET_RATIO = 2.0


@dataclass
class Timing:
    pages: int = 0
    wall: float = 0.0
    cpu: float = 0.0

    def add(self, other: "Timing") -> None:
        self.pages += other.pages
        self.wall += other.wall
        self.cpu += other.cpu


def timed(fn) -> tuple[object, Timing]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, Timing(0, time.perf_counter() - wall, time.process_time() - cpu)


def raw_pypdf(path: Path) -> int:
    from pypdf import PdfReader

    reader = PdfReader(path)
    for i in range(len(reader.pages)):
        reader.pages[i].extract_text()
    return len(reader.pages)


def read_only(path: Path) -> int:
    from medicalrec.extract.pdf import read_pdf

    return len(read_pdf(path).pages)


def whole_pipeline(path: Path) -> int:
    from medicalrec.extract.pdf import read_pdf
    from medicalrec.extract.pipeline import extract_document

    document = read_pdf(path)
    extract_document(document)
    return len(document.pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="folder of PDFs (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="print one line per file")
    args = parser.parse_args(argv)

    pdfs = sorted(args.folder.glob("*.pdf")) if args.folder.is_dir() else []
    if not pdfs:
        print(f"no PDFs in {args.folder}: this benchmark needs ../shared/fixtures/pdfs beside the repository "
              "(or pass --folder DIR)", file=sys.stderr)
        return 1
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # repair notices are not the point here

    from medicalrec.extract.pipeline import build_pipeline

    _, warm = timed(lambda: (build_pipeline(), whole_pipeline(REPO / "fixtures" / "pdfs" / "paper_pneumonia_cxr.pdf")))
    for path in pdfs:  # the OS file cache, not the first contender, pays for the disk
        path.read_bytes()
    print(f"spaCy pipeline warmed in {warm.wall:.2f} s (not counted); {len(pdfs)} PDFs from {args.folder}")

    raw_total, read_total, ours_total = Timing(), Timing(), Timing()
    rows = []
    for path in pdfs:
        pages, raw = timed(lambda: raw_pypdf(path))
        _, read = timed(lambda: read_only(path))
        _, ours = timed(lambda: whole_pipeline(path))
        raw.pages = read.pages = ours.pages = pages
        raw_total.add(raw)
        read_total.add(read)
        ours_total.add(ours)
        rows.append((path.name, pages, raw, read, ours))

    if args.verbose:
        print(f"{'file':56} {'pages':>5} {'pypdf s':>8} {'read_pdf s':>10} {'extract s':>9} {'ratio':>6}  (CPU s)")
        for name, pages, raw, read, ours in rows:
            print(f"{name[:56]:56} {pages:5d} {raw.cpu:8.3f} {read.cpu:10.3f} {ours.cpu:9.3f} {ours.cpu / raw.cpu:6.2f}")

    pages = raw_total.pages
    print(f"pages: {pages}")
    print(f"raw pypdf extract_text:            {pages / raw_total.wall:7.1f} pages/s wall"
          f"  ({raw_total.wall:.2f} s wall, {raw_total.cpu:.2f} s CPU)")
    print(f"read_pdf alone:                    {pages / read_total.wall:7.1f} pages/s wall"
          f"  ({read_total.wall:.2f} s wall, {read_total.cpu:.2f} s CPU)")
    print(f"read_pdf + extract_document:       {pages / ours_total.wall:7.1f} pages/s wall"
          f"  ({ours_total.wall:.2f} s wall, {ours_total.cpu:.2f} s CPU)")
    ratio_wall = ours_total.wall / raw_total.wall
    ratio_cpu = ours_total.cpu / raw_total.cpu
    verdict = "meets" if ratio_cpu <= TARGET_RATIO else "misses"
    print(f"ratio (pipeline / pypdf): {ratio_wall:.2f}x wall, {ratio_cpu:.2f}x CPU -> {verdict} the "
          f"<= {TARGET_RATIO:g}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
