"""Does the learned resolver settle a paper's conflicting counts better than giving up on them?

For each gold paper, every statement of a count (n_samples, n_train, n_test, n_val, n_classes,
k_fold) is read once by the pipeline. The resolver is trained with papers grouped into K folds
(no paper on both sides; its threshold chosen by an inner grouped CV on the training papers) and
the six counts of each held-out paper are resolved with and without it, then compared with gold.
The held-out figure is the one to quote; the in-sample one is printed beside it.

    python bench/feature_resolver.py --cv 5 [--cache /tmp/evidence.pkl] [--train] [--verbose]

`--train` also fits on all papers and writes extract/data/resolver.json.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract_quality import gold_with_pdfs, pdf_of, same_feature  # noqa: E402

THRESHOLDS = tuple(x / 100 for x in range(10, 91, 5))


def collect(stems: list[str], cache: Path | None) -> dict[str, list]:
    """The feature statements of each paper, from one pipeline run."""
    from medicalrec.extract.pdf import read_pdf
    from medicalrec.extract.pipeline import extract_document

    key = {stem: pdf_of(stem).stat().st_mtime for stem in stems}
    if cache and cache.exists():
        stored = pickle.loads(cache.read_bytes())
        if stored.get("key") == key:
            return stored["evidence"]
    evidence = {}
    for stem in stems:
        evidence[stem] = extract_document(read_pdf(pdf_of(stem))).evidence
    if cache:
        cache.write_bytes(pickle.dumps({"key": key, "evidence": evidence}))
    return evidence


def labelled_rows(evidence: list, gold: dict) -> tuple[list[dict], list[int]]:
    from medicalrec.extract.resolver import RESOLVED_FEATURES, value_rows

    rows, labels = [], []
    for feature in RESOLVED_FEATURES:
        for value, row in value_rows(feature, evidence).items():
            rows.append(row)
            labels.append(int(same_feature(value, gold["features"].get(feature))))
    return rows, labels


def resolved(evidence: list, resolver) -> dict:
    from medicalrec.extract.features import paper_features
    from medicalrec.extract.resolver import RESOLVED_FEATURES

    fields = paper_features(evidence, method="sentence", resolver=resolver)
    return {name: fields[name].value if fields[name].has_value else None for name in RESOLVED_FEATURES}


def accuracy(stems: list[str], evidence: dict, gold: dict, resolver) -> tuple[int, int, list[str]]:
    right = total = 0
    misses = []
    for stem in stems:
        for name, value in resolved(evidence[stem], resolver).items():
            ok = same_feature(value, gold[stem]["features"].get(name))
            right += ok
            total += 1
            if not ok:
                misses.append(f"{stem[:50]:50s} {name:10s} gold={gold[stem]['features'].get(name)!r} got={value!r}")
    return right, total, misses


def folds_of(stems: list[str], k: int, seed: int) -> dict[str, int]:
    order = sorted(stems)
    random.Random(seed).shuffle(order)
    return {stem: index % k for index, stem in enumerate(order)}


def train(stems: list[str], evidence: dict, gold: dict, *, inner: int = 3, seed: int = 0):
    """A resolver fit on `stems`, its threshold the best by grouped CV within `stems` alone."""
    from medicalrec.extract.resolver import fit_resolver

    def fit(train_stems, threshold=0.5, trained_on=None):
        rows, labels = [], []
        for stem in train_stems:
            r, y = labelled_rows(evidence[stem], gold[stem])
            rows += r
            labels += y
        return fit_resolver(rows, labels, threshold=threshold, trained_on=trained_on)

    inner_folds = folds_of(stems, inner, seed + 1)
    scores = {t: 0 for t in THRESHOLDS}
    for fold in range(inner):
        model = fit([s for s in stems if inner_folds[s] != fold])
        for threshold in THRESHOLDS:
            model.threshold = threshold
            scores[threshold] += accuracy([s for s in stems if inner_folds[s] == fold], evidence, gold, model)[0]
    # Ties go to the threshold nearest 0.5.
    threshold = max(THRESHOLDS, key=lambda t: (scores[t], -abs(t - 0.5)))
    return fit(stems, threshold, {"papers": len(stems), "inner_cv_threshold": threshold})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cv", type=int, default=5, help="folds, grouped by paper (default 5)")
    parser.add_argument("--cache", type=Path, help="keep the feature statements here between runs")
    parser.add_argument("--train", action="store_true", help="also fit on all papers and write extract/data/resolver.json")
    parser.add_argument("--verbose", action="store_true", help="list the held-out misses")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    gold = gold_with_pdfs()
    if gold is None:
        return 2
    stems = sorted(gold)
    started = time.perf_counter()
    evidence = collect(stems, args.cache)
    folds = folds_of(stems, args.cv, args.seed)
    held_right = rule_right = total = 0
    per_fold, misses = [], []
    for fold in range(args.cv):
        test = [s for s in stems if folds[s] == fold]
        model = train([s for s in stems if folds[s] != fold], evidence, gold, seed=args.seed)
        right, n, missed = accuracy(test, evidence, gold, model)
        rules = accuracy(test, evidence, gold, None)[0]
        held_right += right
        rule_right += rules
        total += n
        per_fold.append(right / n)
        misses += missed
    full = train(stems, evidence, gold, seed=args.seed)
    in_sample = accuracy(stems, evidence, gold, full)[0]
    figures = {
        "papers": len(stems), "counts_scored": total,
        "rules_only_accuracy": round(rule_right / total, 3),
        "held_out_accuracy": round(held_right / total, 3),
        "held_out_fold_mean": round(statistics.mean(per_fold), 3),
        "held_out_fold_sd": round(statistics.pstdev(per_fold), 3),
        "in_sample_accuracy": round(in_sample / total, 3),
        "shipped_threshold": full.threshold,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.train:
        from medicalrec.extract.resolver import RESOLVER_PATH

        RESOLVER_PATH.write_text(full.to_json(), encoding="utf-8")
        print(f"wrote {RESOLVER_PATH} (threshold {full.threshold:.2f})", file=sys.stderr)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    if args.verbose:
        print("\n".join(misses))
    print(f"six counts x {len(stems)} papers ({total} values): rules alone {figures['rules_only_accuracy']:.3f};"
          f" with the resolver, HELD-OUT (grouped {args.cv}-fold CV by paper) {figures['held_out_accuracy']:.3f}"
          f" (per fold {figures['held_out_fold_mean']:.3f} ± {figures['held_out_fold_sd']:.3f});"
          f" in-sample (not a quality claim) {figures['in_sample_accuracy']:.3f}; shipped threshold"
          f" {full.threshold:.2f}; {figures['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
