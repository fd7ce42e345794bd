"""How often are the 14 paper-level features right, and why is each miss wrong?

Runs `extract_document` on each gold paper's PDF (the shipped scorer and resolver, nothing cached,
so every code change shows), compares `DocumentResult.features` with the gold "features" (null in
gold: the pipeline must report nothing) and prints per-feature accuracy and each miss with the
predicted field's status, reason and snippet.

The papers are split once, by a fixed seed, into a dev half (where rules are tuned) and a check
half (looked at only for the figure): sorted stems shuffled with random.Random(7), first 23 dev.
Both halves are tuning-set figures for the shipped resolver (it was trained on all 46 papers);
`bench/extract_quality.py --cv 5` gives the held-out figure.

    python bench/feature_accuracy.py [--half dev|check|all] [--papers SUBSTR ...] [--quiet] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract_quality import gold_with_pdfs, paper_features, pdf_of, run_paper, same_feature  # noqa: E402

SPLIT_SEED = 7


def halves(stems: list[str]) -> dict[str, list[str]]:
    order = sorted(stems)
    random.Random(SPLIT_SEED).shuffle(order)
    middle = len(order) // 2
    return {"dev": sorted(order[:middle]), "check": sorted(order[middle:])}


def _describe(field) -> str:
    provenance = field.provenance
    snippet = " ".join(str(provenance.snippet or "").split())[:110] if provenance else ""
    page = provenance.page if provenance else None
    return f"[{field.status}] {field.reason or ''} p{page} {snippet!r}"


def score(stems: list[str], gold: dict[str, dict], verbose: bool) -> dict:
    per_feature: dict[str, list[bool]] = {}
    rows = {}
    for stem in stems:
        result = run_paper(pdf_of(stem), scorer=None)  # None: the shipped scorer and resolver
        predicted = paper_features(result)
        rows[stem] = {}
        for name, expected in gold[stem]["features"].items():
            ok = same_feature(predicted.get(name), expected)
            per_feature.setdefault(name, []).append(ok)
            rows[stem][name] = {"predicted": predicted.get(name), "gold": expected, "ok": ok}
            if not ok and verbose:
                print(f"  MISS {stem[:48]:48s} {name:12s} gold={expected!r:28} got={predicted.get(name)!r:10}"
                      f" {_describe(result.features[name])}")
    hits = [ok for oks in per_feature.values() for ok in oks]
    return {"papers": len(stems), "accuracy": round(sum(hits) / len(hits), 3) if hits else 0.0,
            "per_feature": {name: round(sum(oks) / len(oks), 3) for name, oks in per_feature.items()},
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--half", choices=("dev", "check", "all"), default="all")
    parser.add_argument("--papers", nargs="*", help="only stems containing one of these substrings")
    parser.add_argument("--quiet", action="store_true", help="figures only, no misses")
    parser.add_argument("--json", type=Path, help="also write the per-paper rows here")
    args = parser.parse_args(argv)
    gold = gold_with_pdfs()
    if gold is None:
        return 2
    split = halves(list(gold))
    order = ("check", "dev") if args.half == "all" else (args.half,)
    started = time.perf_counter()
    report = {}
    for half in order:
        stems = [s for s in split[half] if not args.papers or any(p in s for p in args.papers)]
        if not stems:
            continue
        print(f"== {half} half ({len(stems)} papers)")
        figures = score(stems, gold, verbose=not args.quiet)
        report[half] = figures
        print(f"{half}: feature accuracy {figures['accuracy']:.3f} over {figures['papers']} papers")
        print("  " + ", ".join(f"{k} {v:.2f}" for k, v in figures["per_feature"].items()))
    if len(report) == 2:
        rows = [row for figures in report.values() for paper in figures["rows"].values() for row in paper.values()]
        print(f"all: feature accuracy {sum(r['ok'] for r in rows) / len(rows):.3f} over "
              f"{sum(f['papers'] for f in report.values())} papers (tuning-set figure)")
    print(f"{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
