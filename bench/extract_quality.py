"""How well does `extract` read results and features, against the hand-made gold annotations?

Runs read_pdf + extract_document on the PDF of every fixtures/gold/<stem>.json (from
../shared/fixtures/pdfs) and prints, separately for the tuning and the holdout papers:

- tuple precision / recall / F1. A predicted (model, metric, value) matches a gold tuple when
  the metric is equal, the value is within 0.005 of the gold value or of one of its
  `alt_values`, and the models are the same: equal `name_key`s, or the same canonical model,
  or both "proposed". A name's canonical model is the KB alias index's entry for it (its
  parenthetical settings stripped, as the KB does), else the catalogue model the name starts
  with ("ResNet-style CNN (w/ aug)" -> ResNet). Matching is greedy and one-to-one, closest
  values first. A predicted name is "<model> (<setting>)" when the experiment has a setting.
- per-feature accuracy, on the paper-level features the pipeline reports (`DocumentResult.features`,
  all 14, also for a paper without results): the most common value among the paper's experiments
  (ties to the paper's own model), `is_proposed` "yes" when any experiment is the paper's own model;
  without experiments, what the paper's statements give. (A result without `features` falls back
  to the same majority over its experiments.) A gold null is matched only by a missing prediction.

Usage: python bench/extract_quality.py [--split tuning|holdout|all] [--json] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLD = REPO / "fixtures" / "gold"
PDFS = REPO.parent / "shared" / "fixtures" / "pdfs"
TOLERANCE = 0.005


def predicted_tuples(result) -> list[dict]:
    rows = []
    for experiment in result.experiments:
        name = f"{experiment.model} ({experiment.setting})" if experiment.setting else experiment.model
        for m in experiment.measurements:
            rows.append({"model": name, "metric": m.metric, "value": m.value, "split": m.split,
                         "page": m.provenance.page, "snippet": m.provenance.snippet})
    return rows


class ModelMatcher:
    def __init__(self) -> None:
        from medicalrec.kb import KnowledgeBase

        self.index = KnowledgeBase.in_memory().model_alias_index()

    def canonical(self, name: str):
        from medicalrec.extract import gazetteers
        from medicalrec.kb.normalize import lookup

        found = lookup(name, self.index)
        if found:
            return found
        base = name.split("(")[0]
        terms = gazetteers.find_model_terms(base)
        if terms and terms[0][0] <= 1:  # the name starts with a catalogue model
            return lookup(base[terms[0][0]:terms[0][1]], self.index) or terms[0][2]
        return None

    def same(self, a: str, b: str) -> bool:
        from medicalrec.kb.normalize import name_key

        if name_key(a) == name_key(b):
            return True
        if name_key(a).startswith("proposed") and name_key(b).startswith("proposed"):
            return True
        ca, cb = self.canonical(a), self.canonical(b)
        return ca is not None and ca == cb


def match_tuples(predicted: list[dict], gold: list[dict], matcher: ModelMatcher) -> list[tuple[int, int]]:
    candidates = []
    for i, p in enumerate(predicted):
        for j, g in enumerate(gold):
            if p["metric"] != g["metric"] or not matcher.same(p["model"], g["model"]):
                continue
            distance = min(abs(p["value"] - v) for v in [g["value"], *g.get("alt_values", [])])
            if distance <= TOLERANCE + 1e-9:
                candidates.append((distance, i, j))
    used_p, used_g, pairs = set(), set(), []
    for distance, i, j in sorted(candidates):
        if i in used_p or j in used_g:
            continue
        used_p.add(i)
        used_g.add(j)
        pairs.append((i, j))
    return pairs


def paper_features(result) -> dict:
    from medicalrec.kb import FEATURES

    if getattr(result, "features", None):
        # The pipeline's own paper-level features (present even when it found no results).
        return {name: result.features[name].value if result.features[name].has_value else None
                for name in FEATURES}
    values = {}
    for name in FEATURES:
        found = [e.features[name].value for e in result.experiments
                 if name in e.features and e.features[name].value is not None]
        if name == "is_proposed":
            values[name] = "yes" if "yes" in found else (found[0] if found else None)
        else:
            values[name] = Counter(found).most_common(1)[0][0] if found else None
    return values


def same_feature(predicted, gold) -> bool:
    if gold is None:
        return predicted is None
    if predicted is None:
        return False
    if isinstance(gold, (int, float)) and not isinstance(gold, bool):
        try:
            return int(float(predicted)) == int(gold)
        except (TypeError, ValueError):
            return False
    return str(predicted).strip().lower() == str(gold).strip().lower()


def evaluate(gold_path: Path, matcher: ModelMatcher) -> dict:
    from medicalrec.extract.pdf import read_pdf
    from medicalrec.extract.pipeline import extract_document

    gold = json.loads(gold_path.read_text(encoding="utf-8"))
    pdf = PDFS / gold["source_file"]
    started = time.perf_counter()
    result = extract_document(read_pdf(pdf))
    seconds = time.perf_counter() - started
    predicted = predicted_tuples(result)
    pairs = match_tuples(predicted, gold["tuples"], matcher)
    features = paper_features(result)
    feature_hits = {name: same_feature(features.get(name), value) for name, value in gold["features"].items()}
    matched_p = {i for i, _ in pairs}
    matched_g = {j for _, j in pairs}
    return {
        "paper": gold_path.stem, "split": gold["split"], "seconds": round(seconds, 2),
        "predicted": len(predicted), "gold": len(gold["tuples"]), "matched": len(pairs),
        "false_positives": [predicted[i] for i in range(len(predicted)) if i not in matched_p],
        "false_negatives": [gold["tuples"][j] for j in range(len(gold["tuples"])) if j not in matched_g],
        "features": {name: {"predicted": features.get(name), "gold": gold["features"][name], "ok": ok}
                     for name, ok in feature_hits.items()},
    }


def summarise(papers: list[dict]) -> dict:
    predicted = sum(p["predicted"] for p in papers)
    gold = sum(p["gold"] for p in papers)
    matched = sum(p["matched"] for p in papers)
    precision = matched / predicted if predicted else 0.0
    recall = matched / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_feature: dict[str, list[bool]] = {}
    for p in papers:
        for name, row in p["features"].items():
            per_feature.setdefault(name, []).append(row["ok"])
    hits = [ok for oks in per_feature.values() for ok in oks]
    return {
        "papers": len(papers), "predicted": predicted, "gold": gold, "matched": matched,
        "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
        "feature_accuracy": round(sum(hits) / len(hits), 3) if hits else 0.0,
        "per_feature": {name: round(sum(oks) / len(oks), 3) for name, oks in per_feature.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("tuning", "holdout", "all"), default="all")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--verbose", action="store_true", help="list each paper's misses and false positives")
    args = parser.parse_args(argv)
    if not PDFS.is_dir():
        print(f"error: {PDFS} is absent: the third-party PDFs are only beside CI's clone (../shared)", file=sys.stderr)
        return 2
    gold_files = sorted(GOLD.glob("*.json"))
    if not gold_files:
        print(f"error: no gold files in {GOLD}", file=sys.stderr)
        return 2
    matcher = ModelMatcher()
    from medicalrec.extract.pipeline import build_pipeline

    build_pipeline()
    papers = []
    for path in gold_files:
        split = json.loads(path.read_text(encoding="utf-8"))["split"]
        if args.split != "all" and split != args.split:
            continue
        if not (PDFS / f"{path.stem}.pdf").exists():
            print(f"warning: {path.stem}.pdf not in {PDFS}; skipped", file=sys.stderr)
            continue
        papers.append(evaluate(path, matcher))
    report = {split: summarise([p for p in papers if p["split"] == split])
              for split in ("tuning", "holdout") if any(p["split"] == split for p in papers)}
    if args.json:
        print(json.dumps({"summary": report, "papers": papers if args.verbose else None}, indent=2, default=str))
        return 0
    for p in papers:
        ok = sum(row["ok"] for row in p["features"].values())
        print(f"{p['split']:8} {p['paper'][:60]:60} tuples {p['matched']:2}/{p['gold']:2} gold,"
              f" {p['predicted']:2} predicted; features {ok}/{len(p['features'])}; {p['seconds']:.1f}s")
        if args.verbose:
            for row in p["false_negatives"]:
                print(f"    miss  {row['model']} | {row['metric']} = {row['value']} (p{row['page']})")
            for row in p["false_positives"]:
                print(f"    extra {row['model']} | {row['metric']} = {row['value']} (p{row['page']}) "
                      f"<- {row['snippet'][:90]!r}")
            for name, row in p["features"].items():
                if not row["ok"]:
                    print(f"    feature {name}: predicted {row['predicted']!r}, gold {row['gold']!r}")
    for split, s in report.items():
        print(f"\n{split}: {s['papers']} papers; tuples P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}"
              f" ({s['matched']} matched, {s['predicted']} predicted, {s['gold']} gold);"
              f" feature accuracy {s['feature_accuracy']:.3f}")
        print("  per feature: " + ", ".join(f"{k} {v:.2f}" for k, v in s["per_feature"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
