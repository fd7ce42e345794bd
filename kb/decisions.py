"""Curators' decisions survive a re-extraction (`extract --force`).

Re-extracting a paper replaces its extracted rows; a measurement a curator accepted, rejected or
edited would come back as the scorer left it. Before the old rows go, each decision is keyed by
the measurement as the extractor first read it (an edit's first review_log row holds that);
after the new rows land, a re-read measurement with the same key gets the decision back (an
edit's corrected values included) and its review_log history is attached to it again. All of it
runs inside `KnowledgeBase.save_paper`'s one transaction.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlmodel import Session

# A measurement as its extractor read it: what a re-extraction reads again, whatever a curator
# made of it since.
_READ_AS = ("model_raw", "dataset_raw", "setting", "metric", "average", "split", "value")


def _read_as(row: dict) -> tuple:
    return tuple(round(row[k], 9) if k == "value" and row[k] is not None else (row[k] or "") for k in _READ_AS)


def curators_decisions(s: Session, paper_id: int, origin: str) -> dict[tuple, dict]:
    """The curator's decision on each measurement of the paper's `origin` rows, keyed by the
    measurement as it was first read (an edit's first review_log row holds that)."""
    rows = s.execute(text(
        "SELECT ms.id, e.model_raw, e.dataset_raw, e.setting, ms.metric, ms.average, ms.split, ms.value,"
        " ms.review_status, ms.reviewed_by, ms.reviewed_at FROM measurements ms"
        " JOIN experiments e ON e.id = ms.experiment_id"
        " WHERE e.paper_id = :p AND e.origin = :o AND ms.reviewed_by IS NOT NULL"),
        {"p": paper_id, "o": origin}).mappings().all()
    decisions = {}
    for row in rows:
        logs = s.execute(text("SELECT id, before_json FROM review_log WHERE measurement_id = :m ORDER BY id"),
                         {"m": row["id"]}).all()
        first = dict(row)
        if logs:
            before = json.loads(logs[0][1])
            first.update({k: before[k] for k in ("metric", "average", "split", "value") if k in before})
        decisions[_read_as(first)] = {"row": dict(row), "log_ids": [log_id for log_id, _ in logs]}
    return decisions


def carry_decisions(s: Session, paper_id: int, origin: str, decisions: dict[tuple, dict]) -> int:
    """Give each re-read measurement the decision its earlier reading had (an edit's corrected
    values included) and re-attach its review_log history; returns how many were carried."""
    fresh = s.execute(text(
        "SELECT ms.id, ms.experiment_id, e.model_raw, e.dataset_raw, e.setting, ms.metric, ms.average, ms.split,"
        " ms.value FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
        " WHERE e.paper_id = :p AND e.origin = :o"), {"p": paper_id, "o": origin}).mappings().all()
    carried = 0
    for row in fresh:
        decision = decisions.pop(_read_as(row), None)
        if decision is None:
            continue
        kept = decision["row"]
        clash = s.execute(text(
            "SELECT 1 FROM measurements WHERE experiment_id = :e AND metric = :m AND average = :a AND split = :sp"
            " AND id != :id"), {"e": row["experiment_id"], "m": kept["metric"], "a": kept["average"],
                                "sp": kept["split"], "id": row["id"]}).first()
        if clash:  # the edit moved it onto a measurement this reading has as well: leave it for review
            continue
        s.execute(text(
            "UPDATE measurements SET metric = :metric, average = :average, split = :split, value = :value,"
            " review_status = :review_status, reviewed_by = :reviewed_by, reviewed_at = :reviewed_at WHERE id = :id"),
            {**{k: kept[k] for k in ("metric", "average", "split", "value", "review_status", "reviewed_by",
                                     "reviewed_at")}, "id": row["id"]})
        for log_id in decision["log_ids"]:
            s.execute(text("UPDATE review_log SET measurement_id = :m WHERE id = :l"), {"m": row["id"], "l": log_id})
        carried += 1
    return carried
