"""How well does `extract` read results and features from papers it has not been trained on?

Every fixtures/gold/<stem>.json names a PDF in ../shared/fixtures/pdfs or pdfs_more. The script
1. runs the pipeline once per paper to collect its candidates, and labels each against the gold
   (a candidate is right when the metric is equal, the value within 0.005 of the gold value or an
   `alt_value`, and the models the same: equal `name_key`s, the same canonical model, or both
   "proposed");
2. `--cv K`: splits the papers into K folds (grouped by paper: no paper's candidates on both
   sides), trains the scorer on K-1 folds with its threshold chosen by an inner grouped CV on
   those folds only (and the count resolver of `feature_resolver.py` on the same folds), and runs the whole pipeline on each held-out paper with that fold's scorer.
   Held-out tuple P/R/F1 (pooled, per fold mean ± sd, per-paper mean) and feature accuracy are
   the headline; the in-sample figure (trained and scored on all papers) is printed beside it;
3. `--train`: fits the scorer on all papers, threshold from the grouped CV, and writes
   extract/data/scorer.json plus its training rows (extract/data/scorer_training.csv.gz).

Predicted tuples are the accepted measurements only (those waiting for review are not counted).

Usage: python bench/extract_quality.py --cv 5 [--train] [--json] [--verbose] [--cache FILE]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import pickle
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOLD = REPO / "fixtures" / "gold"
SHARED = REPO.parent / "shared" / "fixtures"
PDF_DIRS = (SHARED / "pdfs", SHARED / "pdfs_more")
TOLERANCE = 0.005


# ------------------------------------------------------------------------------------ matching
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
        if ca is not None or cb is not None:
            return ca == cb
        # Neither is a catalogue model: the names as written before their settings, as the KB
        # does for catalogue names ("Model A" is "Model A (baseline CNN)").
        base_a, base_b = name_key(a.split("(")[0]), name_key(b.split("(")[0])
        return bool(base_a) and base_a == base_b


def _value_distance(p: dict, g: dict) -> float:
    return min(abs(p["value"] - v) for v in [g["value"], *g.get("alt_values", [])])


def _compatible(p: dict, g: dict, matcher: ModelMatcher) -> bool:
    if p["metric"] != g["metric"] or _value_distance(p, g) > TOLERANCE + 1e-9:
        return False
    if g.get("average") and p.get("average") and g["average"] != p["average"]:
        return False
    return matcher.same(p["model"], g["model"])


def match_tuples(predicted: list[dict], gold: list[dict], matcher: ModelMatcher) -> list[tuple[int, int]]:
    """Greedy one-to-one matching, closest values first."""
    candidates = sorted((_value_distance(p, g), i, j) for i, p in enumerate(predicted) for j, g in enumerate(gold)
                        if _compatible(p, g, matcher))
    used_p, used_g, pairs = set(), set(), []
    for _, i, j in candidates:
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
            pairs.append((i, j))
    return pairs


def label_candidates(candidates, gold: list[dict], matcher: "ModelMatcher") -> list[int]:
    """1 for a candidate that states a gold tuple: its metric and value, under a model name the
    gold accepts. Where no candidate of the paper names that tuple's model acceptably, the metric
    and value alone count: the scorer then still learns that the number is one of the paper's own
    results (naming it is the generator's job), and a right number is not taught as a wrong one."""
    def states(c, g) -> bool:
        if c.metric != g["metric"] or min(abs(c.value - v) for v in [g["value"], *g.get("alt_values", [])]) > TOLERANCE + 1e-9:
            return False
        return not (g.get("average") and c.average and g["average"] != c.average)
    nameable = [any(states(c, g) and matcher.same(c.model, g["model"]) for c in candidates) for g in gold]
    labels = []
    for c in candidates:
        labels.append(int(any(states(c, g) and (matcher.same(c.model, g["model"]) or not named)
                              for g, named in zip(gold, nameable))))
    return labels


def _as_tuple(c) -> dict:
    return {"model": c.model, "metric": c.metric, "value": c.value, "average": c.average}


# ------------------------------------------------------------------------------------ pipeline
def pdf_of(stem: str) -> Path | None:
    return next((d / f"{stem}.pdf" for d in PDF_DIRS if (d / f"{stem}.pdf").exists()), None)


def gold_with_pdfs() -> dict[str, dict] | None:
    """The gold files whose PDF is in ../shared, by stem; None, after one line on stderr, when
    ../shared is absent."""
    if not all(d.is_dir() for d in PDF_DIRS):
        print(f"error: {SHARED} is absent: the third-party PDFs are only beside CI's clone (../shared)", file=sys.stderr)
        return None
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(GOLD.glob("*.json"))
            if pdf_of(p.stem) is not None}


def run_paper(pdf: Path, scorer, resolver=None):
    from medicalrec.extract.pdf import read_pdf
    from medicalrec.extract.pipeline import extract_document

    return extract_document(read_pdf(pdf), scorer=scorer, resolver=resolver)


def predicted_tuples(result) -> list[dict]:
    rows = []
    for experiment in result.experiments:
        name = f"{experiment.model} ({experiment.setting})" if experiment.setting else experiment.model
        for m in experiment.measurements:
            if m.review_status == "accepted":
                rows.append({"model": name, "metric": m.metric, "value": m.value, "split": m.split,
                             "average": m.average, "page": m.provenance.page, "snippet": m.provenance.snippet})
    return rows


def paper_features(result) -> dict:
    from medicalrec.kb import FEATURES

    return {name: result.features[name].value if result.features[name].has_value else None for name in FEATURES}


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


def _tuple_scores(predicted: list[dict], gold: dict, matcher: ModelMatcher) -> dict:
    pairs = match_tuples(predicted, gold["tuples"], matcher)
    matched_p, matched_g = {i for i, _ in pairs}, {j for _, j in pairs}
    return {"predicted": len(predicted), "gold": len(gold["tuples"]), "matched": len(pairs),
            "false_positives": [predicted[i] for i in range(len(predicted)) if i not in matched_p],
            "false_negatives": [gold["tuples"][j] for j in range(len(gold["tuples"])) if j not in matched_g]}


def score_paper(result, gold: dict, matcher: ModelMatcher) -> dict:
    features = paper_features(result)
    return {**_tuple_scores(predicted_tuples(result), gold, matcher),
            "features": {name: {"predicted": features.get(name), "gold": value, "ok": same_feature(features.get(name), value)}
                         for name, value in gold["features"].items()}}


def score_candidates_only(candidates, scorer, gold: dict, matcher: ModelMatcher) -> dict:
    """Tuples as the pipeline would keep them, from cached candidates (features are not rerun)."""
    import copy

    from medicalrec.extract.pipeline import select_candidates

    kept = [c for c in select_candidates(copy.deepcopy(candidates), scorer) if c.accepted]
    predicted = [{"model": f"{c.model} ({c.setting})" if c.setting else c.model, "metric": c.metric,
                  "value": c.value, "split": c.split, "average": c.average, "page": c.page, "snippet": c.snippet}
                 for c in kept]
    return {**_tuple_scores(predicted, gold, matcher), "features": {}}


# ------------------------------------------------------------------------------------ figures
def prf(matched: int, predicted: int, gold: int) -> tuple[float, float, float]:
    precision = matched / predicted if predicted else (1.0 if not gold else 0.0)
    recall = matched / gold if gold else (1.0 if not predicted else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def summarise(papers: list[dict]) -> dict:
    predicted = sum(p["predicted"] for p in papers)
    gold = sum(p["gold"] for p in papers)
    matched = sum(p["matched"] for p in papers)
    precision, recall, f1 = prf(matched, predicted, gold)
    per_paper = [prf(p["matched"], p["predicted"], p["gold"]) for p in papers]
    hits = [row["ok"] for p in papers for row in p["features"].values()]
    per_feature: dict[str, list[bool]] = {}
    for p in papers:
        for name, row in p["features"].items():
            per_feature.setdefault(name, []).append(row["ok"])
    return {
        "papers": len(papers), "predicted": predicted, "gold": gold, "matched": matched,
        "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
        "per_paper_mean_f1": round(statistics.mean(f for _, _, f in per_paper), 3) if per_paper else 0.0,
        "per_paper_mean_precision": round(statistics.mean(p for p, _, _ in per_paper), 3) if per_paper else 0.0,
        "per_paper_mean_recall": round(statistics.mean(r for _, r, _ in per_paper), 3) if per_paper else 0.0,
        "feature_accuracy": round(sum(hits) / len(hits), 3) if hits else 0.0,
        "per_feature": {name: round(sum(oks) / len(oks), 3) for name, oks in per_feature.items()},
    }


# ------------------------------------------------------------------------------------ training
def folds_of(stems: list[str], k: int, seed: int = 0) -> dict[str, int]:
    order = sorted(stems)
    random.Random(seed).shuffle(order)
    return {stem: index % k for index, stem in enumerate(order)}


def _weights(rows_by_paper: dict[str, tuple[list, list]], stems) -> list[float]:
    # Each paper counts about alike: a paper with hundreds of table cells does not drown the rest.
    out = []
    for stem in stems:
        n = len(rows_by_paper[stem][0])
        out.extend([min(1.0, 150.0 / max(n, 1))] * n)
    return out


# Paper-bagged scorer (SCORER_BAGS=N): chosen on fold seeds 1 and 2; not the shipped default yet.
BAGS = int(os.environ.get("SCORER_BAGS", "1"))


def _groups(rows_by_paper: dict, stems) -> list[str]:
    return [stem for stem in stems for _ in rows_by_paper[stem][0]]


def train(rows_by_paper: dict, gold_counts: dict[str, int], stems: list[str], *, inner: int = 4, seed: int = 0):
    """A scorer fit on `stems`, its threshold chosen by grouped CV within `stems` alone."""
    from medicalrec.extract.scorer import best_threshold, fit_scorer

    names = sorted({name for stem in stems for row in rows_by_paper[stem][0] for name in row})
    inner_folds = folds_of(stems, min(inner, len(stems)), seed + 1)
    per_paper = []
    for fold in range(min(inner, len(stems))):
        train_stems = [s for s in stems if inner_folds[s] != fold]
        test_stems = [s for s in stems if inner_folds[s] == fold]
        rows = [r for s in train_stems for r in rows_by_paper[s][0]]
        ys = [y for s in train_stems for y in rows_by_paper[s][1]]
        if len(set(ys)) < 2:
            continue
        model = fit_scorer(rows, ys, weights=_weights(rows_by_paper, train_stems), feature_names=names, seed=seed,
                           groups=_groups(rows_by_paper, train_stems), bags=BAGS)
        for s in test_stems:
            per_paper.append(([model.probability(r) for r in rows_by_paper[s][0]], rows_by_paper[s][1], gold_counts[s]))
    threshold, inner_f1 = best_threshold(per_paper)
    rows = [r for s in stems for r in rows_by_paper[s][0]]
    ys = [y for s in stems for y in rows_by_paper[s][1]]
    scorer = fit_scorer(rows, ys, weights=_weights(rows_by_paper, stems), feature_names=names, threshold=threshold,
                        trained_on={"papers": len(stems), "candidates": len(rows), "positives": int(sum(ys)),
                                    "inner_cv_per_paper_f1_at_threshold": round(inner_f1, 3)}, seed=seed,
                        groups=_groups(rows_by_paper, stems), bags=BAGS)
    return scorer


def train_resolver(stems: list[str], evidence: dict[str, list], gold_docs: dict[str, dict], *, seed: int = 0):
    """The count resolver fit on `stems` alone (bench/feature_resolver.py holds its training)."""
    from feature_resolver import train as fit

    return fit(stems, evidence, gold_docs, seed=seed)


def collect(gold_docs: dict[str, dict], matcher: ModelMatcher, cache: Path | None) -> dict:
    """Candidates (features) and labels per paper, from one run of the pipeline without a scorer."""
    key = {stem: pdf_of(stem).stat().st_mtime for stem in gold_docs} | {"cache_layout": 2}
    if cache and cache.exists():
        stored = pickle.loads(cache.read_bytes())
        if stored.get("key") == key:
            return stored["rows"]
    rows_by_paper = {}
    for stem in sorted(gold_docs):
        result = run_paper(pdf_of(stem), scorer=None)
        labels = label_candidates(result.candidates, gold_docs[stem]["tuples"], matcher)
        rows_by_paper[stem] = ([c.features for c in result.candidates], labels, result.candidates, result.evidence)
    if cache:
        cache.write_bytes(pickle.dumps({"key": key, "rows": rows_by_paper}))
    return rows_by_paper


def write_training(rows_by_paper: dict, path: Path) -> None:
    names = sorted({name for rows, *_ in rows_by_paper.values() for row in rows for name in row})
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["paper", "label", *names])
        for stem, (rows, labels, *_) in sorted(rows_by_paper.items()):
            for row, label in zip(rows, labels):
                writer.writerow([stem, label, *(round(row.get(n, 0.0), 4) for n in names)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cv", type=int, default=5, help="folds, grouped by paper (default 5)")
    parser.add_argument("--train", action="store_true", help="also fit on all papers and write extract/data/scorer.json")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--verbose", action="store_true", help="list each paper's misses and false positives")
    parser.add_argument("--cache", type=Path, help="keep the unscored candidates here between runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true",
                        help="score the cached candidates only (no second pipeline run; features not scored)")
    args = parser.parse_args(argv)
    gold_docs = gold_with_pdfs()
    if gold_docs is None:
        return 2
    if not gold_docs:
        print(f"error: no gold files with a PDF in {GOLD}", file=sys.stderr)
        return 2
    from medicalrec.extract.pipeline import build_pipeline

    build_pipeline()
    matcher = ModelMatcher()
    started = time.perf_counter()
    rows_by_paper = collect(gold_docs, matcher, args.cache)
    gold_counts = {stem: len(doc["tuples"]) for stem, doc in gold_docs.items()}
    stems = sorted(gold_docs)
    folds = folds_of(stems, args.cv, args.seed)
    papers, per_fold = [], []
    evidence = {stem: rows_by_paper[stem][3] for stem in stems}
    for fold in range(args.cv):
        train_stems = [s for s in stems if folds[s] != fold]
        scorer = train(rows_by_paper, gold_counts, train_stems, seed=args.seed)
        # The count resolver is trained on the same papers as the scorer, never on the held-out ones.
        resolver = train_resolver(train_stems, evidence, gold_docs, seed=args.seed)
        fold_papers = []
        for stem in [s for s in stems if folds[s] == fold]:
            if args.fast:
                scored = score_candidates_only(rows_by_paper[stem][2], scorer, gold_docs[stem], matcher)
            else:
                scored = score_paper(run_paper(pdf_of(stem), scorer, resolver), gold_docs[stem], matcher)
            scored.update(paper=stem, fold=fold, threshold=scorer.threshold)
            fold_papers.append(scored)
        papers.extend(fold_papers)
        per_fold.append(summarise(fold_papers))
    held_out = summarise(papers)
    held_out["fold_f1_mean"] = round(statistics.mean(f["f1"] for f in per_fold), 3)
    held_out["fold_f1_sd"] = round(statistics.pstdev(f["f1"] for f in per_fold), 3)
    held_out["fold_precision_mean"] = round(statistics.mean(f["precision"] for f in per_fold), 3)
    held_out["fold_recall_mean"] = round(statistics.mean(f["recall"] for f in per_fold), 3)
    held_out["fold_feature_accuracy_mean"] = round(statistics.mean(f["feature_accuracy"] for f in per_fold), 3)
    held_out["fold_feature_accuracy_sd"] = round(statistics.pstdev(f["feature_accuracy"] for f in per_fold), 3)
    full = train(rows_by_paper, gold_counts, stems, seed=args.seed)
    full_resolver = train_resolver(stems, evidence, gold_docs, seed=args.seed)
    if args.fast:
        in_sample = summarise([dict(score_candidates_only(rows_by_paper[s][2], full, gold_docs[s], matcher), paper=s)
                               for s in stems])
    else:
        in_sample = summarise([dict(score_paper(run_paper(pdf_of(s), full, full_resolver), gold_docs[s], matcher), paper=s)
                               for s in stems])
    if args.train:
        from medicalrec.extract.scorer import SCORER_PATH

        SCORER_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCORER_PATH.write_text(full.to_json(), encoding="utf-8")
        write_training(rows_by_paper, SCORER_PATH.with_name("scorer_training.csv.gz"))
        print(f"wrote {SCORER_PATH} (threshold {full.threshold:.2f}, {full.trained_on})", file=sys.stderr)
    seconds = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps({"held_out": held_out, "in_sample": in_sample, "folds": args.cv, "seconds": seconds,
                          "papers": papers if args.verbose else None}, indent=2, default=str))
        return 0
    for p in sorted(papers, key=lambda p: prf(p["matched"], p["predicted"], p["gold"])[2]):
        ok = sum(row["ok"] for row in p["features"].values())
        f1 = prf(p["matched"], p["predicted"], p["gold"])[2]
        print(f"fold {p['fold']} {p['paper'][:58]:58} tuples {p['matched']:3}/{p['gold']:3} gold, {p['predicted']:3}"
              f" predicted, F1 {f1:.2f}; features {ok}/{len(p['features'])}")
        if args.verbose:
            for row in p["false_negatives"][:12]:
                print(f"    miss  {row['model']} | {row['metric']} = {row['value']} (p{row['page']})")
            for row in p["false_positives"][:12]:
                print(f"    extra {row['model']} | {row['metric']} = {row['value']} (p{row['page']}) "
                      f"<- {str(row['snippet'])[:80]!r}")
    for title, s in (("HELD-OUT (grouped CV by paper)", held_out), ("in-sample (trained on all; not a quality claim)", in_sample)):
        print(f"\n{title}: {s['papers']} papers; tuples P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}"
              f" ({s['matched']} matched, {s['predicted']} predicted, {s['gold']} gold); per-paper mean F1"
              f" {s['per_paper_mean_f1']:.3f}; feature accuracy {s['feature_accuracy']:.3f}")
        if "fold_f1_mean" in s:
            print(f"  per fold: F1 {s['fold_f1_mean']:.3f} ± {s['fold_f1_sd']:.3f}, P {s['fold_precision_mean']:.3f},"
                  f" R {s['fold_recall_mean']:.3f}, features {s['fold_feature_accuracy_mean']:.3f}"
                  f" ± {s['fold_feature_accuracy_sd']:.3f}")
        print("  per feature: " + ", ".join(f"{k} {v:.2f}" for k, v in s["per_feature"].items()))
    print(f"\n{args.cv}-fold grouped CV over {len(stems)} papers in {seconds} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
