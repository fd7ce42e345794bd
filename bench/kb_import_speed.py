"""How long `kb import` takes for the curated literature table, into a fresh KB file and again
(the idempotent re-import), and how long the curated export takes. Prints measured figures.

Run: .venv/bin/python bench/kb_import_speed.py [CSV]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from medicalrec.kb import KnowledgeBase
from medicalrec.kb.exporters import export_text
from medicalrec.kb.importers import import_file

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "literature" / "medrec_literature.csv"


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not source.is_file():
        sys.exit(f"{source} not found: pass a CSV path (the default lives in ../shared)")
    with tempfile.TemporaryDirectory() as folder:
        kb = KnowledgeBase.open(Path(folder) / "bench.db", write=True)
        for label in ("first import", "re-import"):
            start = time.perf_counter()
            report = import_file(kb, source)
            seconds = time.perf_counter() - start
            print(f"{label}: {report.rows} rows, {report.experiments_added} experiments added, "
                  f"{report.experiments_skipped} skipped in {seconds:.2f} s ({report.rows / seconds:.0f} rows/s)")
        start = time.perf_counter()
        text = export_text(kb, layout="curated")
        print(f"curated export: {text.count(chr(10)) - 1} rows in {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
