"""`kb stats`: what the KB holds and, per feature, how often it is known.

`collect_stats` returns (and `kb stats --json` prints) this shape:

    {
      "kb": "<which KB>",
      "counts": {"papers", "experiments", "measurements", "measurements_needs_review",
                 "measurements_rejected", "models", "models_unmatched", "datasets",
                 "datasets_unmatched", "experiments_without_dataset", "validated_experiments",
                 "validation_runs", "files", "catalogue_models", "catalogue_datasets"},
      "experiments_by_origin": {"import": n, "extract": n, ...},
      "by_source_kind": {"literature"|"benchmark"|"validated": {"experiments": n, "measurements": n,
                         "measurements_duplicate": n}},
      "measurements_by_metric": {"accuracy": n, ...},
      "feature_status_shares": {"<feature>": {"reported": f, "derived": f, "not_reported": f,
                                              "not_applicable": f, "ambiguous": f, "extraction_failed": f}}
    }

`measurements` and `measurements_by_metric` count accepted measurements (the facts);
`measurements_needs_review` those waiting for a curator (`medicalrec kb review`), `measurements_rejected`
those a curator turned down.
`by_source_kind` splits experiments and accepted measurements by `experiments.source_kind`; a
measurement linked in `fact_links` repeats a figure another one holds (`measurements_duplicate`),
so `measurements - measurements_duplicate` counts each published figure once. `models` / `datasets` count the entities experiments use; `*_unmatched`
those of them outside the curated catalogues. Shares are fractions of all experiments (each feature's six shares sum to 1).
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from .schema import FEATURES, SOURCE_KINDS, STATUSES
from .store import KnowledgeBase

_COUNTS = {
    "papers": "SELECT COUNT(*) FROM papers",
    "experiments": "SELECT COUNT(*) FROM experiments",
    "measurements": "SELECT COUNT(*) FROM measurements WHERE review_status = 'accepted'",
    "measurements_needs_review": "SELECT COUNT(*) FROM measurements WHERE review_status = 'needs_review'",
    "measurements_rejected": "SELECT COUNT(*) FROM measurements WHERE review_status = 'rejected'",
    "models": "SELECT COUNT(DISTINCT model_id) FROM experiments",
    "models_unmatched": "SELECT COUNT(DISTINCT e.model_id) FROM experiments e JOIN models m ON m.id = e.model_id"
                        " WHERE NOT m.curated",
    "datasets": "SELECT COUNT(DISTINCT dataset_id) FROM experiments",
    "datasets_unmatched": "SELECT COUNT(DISTINCT e.dataset_id) FROM experiments e"
                          " JOIN datasets d ON d.id = e.dataset_id WHERE NOT d.curated",
    "experiments_without_dataset": "SELECT COUNT(*) FROM experiments WHERE dataset_id IS NULL",
    "validated_experiments": "SELECT COUNT(*) FROM experiments WHERE origin = 'validated'",
    "validation_runs": "SELECT COUNT(*) FROM validation_runs",
    "files": "SELECT COUNT(*) FROM file_status",
    "catalogue_models": "SELECT COUNT(*) FROM models WHERE curated",
    "catalogue_datasets": "SELECT COUNT(*) FROM datasets WHERE curated",
}


def collect_stats(kb: KnowledgeBase) -> dict[str, Any]:
    with kb.engine.connect() as conn:
        counts = {name: conn.execute(text(sql)).scalar_one() for name, sql in _COUNTS.items()}
        by_origin = dict(conn.execute(text(
            "SELECT origin, COUNT(*) FROM experiments GROUP BY origin ORDER BY COUNT(*) DESC")).fetchall())
        by_metric = dict(conn.execute(text(
            "SELECT metric, COUNT(*) FROM measurements WHERE review_status = 'accepted'"
            " GROUP BY metric ORDER BY COUNT(*) DESC")).fetchall())
        status_counts = conn.execute(text(
            "SELECT feature, status, COUNT(*) FROM feature_values GROUP BY feature, status")).fetchall()
        by_kind = {kind: {"experiments": 0, "measurements": 0, "measurements_duplicate": 0} for kind in SOURCE_KINDS}
        for kind, n in conn.execute(text("SELECT source_kind, COUNT(*) FROM experiments GROUP BY source_kind")):
            by_kind.setdefault(kind, {"experiments": 0, "measurements": 0, "measurements_duplicate": 0})["experiments"] = n
        for kind, n, duplicate in conn.execute(text(
                "SELECT e.source_kind, COUNT(*), SUM(ms.id IN (SELECT measurement_id FROM fact_links))"
                " FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
                " WHERE ms.review_status = 'accepted' GROUP BY e.source_kind")):
            by_kind[kind]["measurements"], by_kind[kind]["measurements_duplicate"] = n, duplicate or 0
    experiments = counts["experiments"]
    shares = {feature: {status: 0.0 for status in STATUSES} for feature in FEATURES}
    for feature, status, n in status_counts:
        if feature in shares and experiments:
            shares[feature][status] = n / experiments
    return {
        "kb": kb.location.describe(),
        "counts": counts,
        "experiments_by_origin": by_origin,
        "by_source_kind": by_kind,
        "measurements_by_metric": by_metric,
        "feature_status_shares": shares,
    }


_SHORT_STATUS = {"not_reported": "not reported", "not_applicable": "n/a", "extraction_failed": "failed"}


def render_stats(stats: dict[str, Any], console: Console) -> None:
    """The stats as two tables: what the KB holds, then how often each feature is known."""
    counts = stats["counts"]
    summary = Table(title="Knowledge base", show_header=False)
    summary.add_column("what")
    summary.add_column("count", justify="right")
    for name, value in counts.items():
        summary.add_row(name.replace("_", " "), str(value))
    for origin, n in stats["experiments_by_origin"].items():
        summary.add_row(f"experiments from {origin}", str(n))
    for kind, n in stats["by_source_kind"].items():
        duplicate = f" ({n['measurements_duplicate']} repeat a figure held elsewhere)" if n["measurements_duplicate"] else ""
        summary.add_row(f"{kind} experiments / measurements", f"{n['experiments']} / {n['measurements']}{duplicate}")
    for metric, n in stats["measurements_by_metric"].items():
        summary.add_row(f"{metric} measurements", str(n))
    console.print(summary)
    if counts["measurements_needs_review"]:
        console.print(f"{counts['measurements_needs_review']} measurements wait for review:"
                      " `medicalrec kb review` lists them", markup=False, highlight=False)
    coverage = Table(title=f"Feature status, % of {counts['experiments']} experiments",
                     caption="n/a = not applicable, failed = extraction failed")
    coverage.add_column("feature")
    for status in STATUSES:
        coverage.add_column(_SHORT_STATUS.get(status, status), justify="right")
    for feature, shares in stats["feature_status_shares"].items():
        coverage.add_row(feature, *(f"{100 * shares[s]:.1f}" if shares[s] else "·" for s in STATUSES))
    console.print(coverage)
