"""How long `kb import` of the benchmark folder takes into a fresh KB file, and again (the
idempotent re-import), per source. Prints measured figures.

Run: .venv/bin/python bench/kb_benchmark_import_speed.py [FOLDER]   (default ../shared/data/benchmarks)
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from medicalrec.kb import KnowledgeBase
from medicalrec.kb.benchmarks import import_benchmarks

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "benchmarks"


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not folder.is_dir():
        sys.exit(f"{folder} not found: pass a benchmarks folder (the default lives in ../shared)")
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase.open(Path(tmp) / "bench.db", write=True)
        for label in ("first import", "re-import"):
            seconds_by_source: dict[str, float] = defaultdict(float)
            last: list = [time.perf_counter(), None]

            def on_file(path: Path) -> None:
                now = time.perf_counter()
                if last[1] is not None:
                    seconds_by_source[last[1]] += now - last[0]
                last[0], last[1] = now, path.relative_to(folder).parts[0]

            start, cpu = time.perf_counter(), time.process_time()
            report = import_benchmarks(kb, folder, on_file=on_file)
            total, cpu = time.perf_counter() - start, time.process_time() - cpu
            seconds_by_source[last[1]] += time.perf_counter() - last[0]  # the last file, and the linking
            rows = sum(f.rows for f in report.files)
            added = sum(f.experiments_added for f in report.files)
            # CPU seconds as well: on a machine shared with other jobs the wall clock mostly measures them.
            print(f"{label}: {rows} rows, {added} experiments added in {total:.1f} s wall, {cpu:.1f} s CPU"
                  f" ({rows / total:.0f} rows/s);"
                  f" {report.fact_links_added} duplicate facts linked")
            for source, t in sorted(report.by_source().items()):
                print(f"  {source}: {t['rows']} rows, {t['rows_imported']} imported, {t['rows_skipped']} left out by a"
                      f" README rule, {t['rows_failed']} failed, {t['experiments_added']} experiments added"
                      f" ({seconds_by_source[source]:.1f} s)")
        counts = kb.counts()
        print(f"KB: {counts['experiments']} experiments, {counts['measurements']} measurements,"
              f" {counts['feature_values']} feature values; {(Path(tmp) / 'bench.db').stat().st_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
