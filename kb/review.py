"""Curators' review of measurements (`medicalrec kb review`).

An extractor stores the numbers it is unsure of as `needs_review`; they are not facts until a
curator accepts them (as read, or edited). Only `accepted` measurements reach the views, exports,
stats and the recommender. Every action is one transaction and writes one `review_log` row per
measurement with who, when (UTC) and the row before and after, so any number's history can be
told. Only measurements waiting for review can be acted on: a decision is changed by a new
extraction, not silently overwritten.
"""

from __future__ import annotations

import getpass
import json
from typing import Any, Iterable, Optional

from sqlalchemy import text
from sqlalchemy.engine import Connection

from . import db
from .db import KBError
from .schema import AVERAGES, METRICS, SPLITS, utcnow
from .store import KnowledgeBase

REVIEW_COLUMNS = ("id", "source_file", "title", "page", "snippet", "model_raw", "dataset_raw", "setting", "metric",
                  "average", "split", "value", "confidence")
# What review_log keeps of a measurement before and after an action: enough to tell which number
# it was even after a re-extraction has replaced the row (measurement_id then becomes NULL).
LOGGED_FIELDS = ("experiment_id", "metric", "average", "split", "value", "confidence", "review_status",
                 "reviewed_by", "reviewed_at")
_LISTS_THEM = "`medicalrec kb review` lists the ids waiting for review"


def current_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError) as exc:  # no LOGNAME/USER and no passwd entry, as in some containers
        raise KBError("cannot tell who is reviewing: pass --by NAME") from exc


def check_min_confidence(minimum: Optional[float]) -> None:
    if minimum is not None and not 0.0 <= minimum <= 1.0:
        raise KBError(f"--min-confidence {minimum:g} is outside [0, 1]: pass a confidence between 0 and 1")


def review_queue(kb: KnowledgeBase, min_confidence: Optional[float] = None,
                 limit: Optional[int] = None) -> list[dict[str, Any]]:
    """The measurements waiting for review, one dict per measurement with REVIEW_COLUMNS as keys,
    paper by paper and page by page (the order a curator reads the PDFs in)."""
    check_min_confidence(min_confidence)
    if limit is not None and limit < 1:
        raise KBError(f"--limit {limit} is not a positive number: pass --limit 1 or more")
    with kb.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT ms.id, p.source_file, p.title, ms.page, ms.snippet, e.model_raw, e.dataset_raw, e.setting,"
            " ms.metric, ms.average, ms.split, ms.value, ms.confidence"
            " FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id JOIN papers p ON p.id = e.paper_id"
            " WHERE ms.review_status = 'needs_review' AND (:minimum IS NULL OR ms.confidence >= :minimum)"
            " ORDER BY COALESCE(p.source_file, p.title, ''), p.id, ms.page IS NULL, ms.page, ms.id"
            " LIMIT :limit"), {"minimum": min_confidence, "limit": -1 if limit is None else limit})
        return [dict(row._mapping) for row in rows]


def accept(kb: KnowledgeBase, ids: Iterable[int], who: Optional[str] = None) -> list[int]:
    """Accept the measurements as read; returns their ids."""
    return _decide(kb, ids, "accepted", "accept", who, None)


def reject(kb: KnowledgeBase, ids: Iterable[int], who: Optional[str] = None, note: Optional[str] = None) -> list[int]:
    """Reject the measurements (they stay in the KB, out of every fact); returns their ids."""
    return _decide(kb, ids, "rejected", "reject", who, note)


def edit(kb: KnowledgeBase, id: int, who: Optional[str] = None, *, value: Optional[float] = None,
         metric: Optional[str] = None, average: Optional[str] = None, split: Optional[str] = None,
         note: Optional[str] = None) -> dict[str, Any]:
    """Correct a measurement and accept it; returns the row after the edit (LOGGED_FIELDS and id)."""
    kb._require_writable()
    changes = _checked_changes(value=value, metric=metric, average=average, split=split)
    if not changes:
        raise KBError(f"nothing to edit in measurement {id}: pass --value, --metric, --average or --split"
                      f" (or accept it as read with `medicalrec kb review accept {id}`)")
    who = _reviewer(who)
    at = utcnow()
    with db.write_transaction(kb.engine) as conn:
        before = _pending(conn, [int(id)])[int(id)]
        after = {**before, **changes, "review_status": "accepted", "reviewed_by": who, "reviewed_at": at}
        clash = conn.execute(text(
            "SELECT id FROM measurements WHERE experiment_id = :experiment_id AND metric = :metric"
            " AND average = :average AND split = :split AND id != :id"), after).scalar()
        if clash is not None:
            raise KBError(f"measurement {id} cannot become {_label(after)}: measurement {clash} of the same experiment"
                          " already is; reject one of the two instead")
        conn.execute(text(
            "UPDATE measurements SET value = :value, metric = :metric, average = :average, split = :split,"
            " review_status = :review_status, reviewed_by = :reviewed_by, reviewed_at = :reviewed_at"
            " WHERE id = :id"), after)
        _log(conn, "edit", who, at, before, after, note)
    return after


def history(kb: KnowledgeBase, measurement_id: Optional[int] = None) -> list[dict[str, Any]]:
    """review_log rows (all, or one measurement's), oldest first, with before/after decoded."""
    with kb.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT * FROM review_log WHERE :m IS NULL OR measurement_id = :m ORDER BY id"), {"m": measurement_id})
        entries = [dict(row._mapping) for row in rows]
    for entry in entries:
        entry["before"] = json.loads(entry.pop("before_json"))
        entry["after"] = json.loads(entry.pop("after_json"))
    return entries


# ---------------------------------------------------------------- internals

def _decide(kb: KnowledgeBase, ids: Iterable[int], status: str, action: str, who: Optional[str],
            note: Optional[str]) -> list[int]:
    kb._require_writable()
    wanted = list(dict.fromkeys(int(i) for i in ids))
    if not wanted:
        raise KBError(f"no measurement ids given: pass one or more IDs ({_LISTS_THEM})")
    who = _reviewer(who)
    at = utcnow()
    with db.write_transaction(kb.engine) as conn:
        rows = _pending(conn, wanted)
        for measurement_id in wanted:
            before = rows[measurement_id]
            after = {**before, "review_status": status, "reviewed_by": who, "reviewed_at": at}
            conn.execute(text("UPDATE measurements SET review_status = :review_status, reviewed_by = :reviewed_by,"
                              " reviewed_at = :reviewed_at WHERE id = :id"), after)
            _log(conn, action, who, at, before, after, note)
    return wanted


def _reviewer(who: Optional[str]) -> str:
    if who is None:
        return current_user()
    if not who.strip():
        raise KBError("--by is empty: pass --by NAME")
    return who.strip()


def _checked_changes(**fields: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    value = fields["value"]
    if value is not None:
        if not 0.0 <= float(value) <= 1.0:  # NaN fails this too
            raise KBError(f"value {float(value):g} is not a fraction in [0, 1]: pass --value as a fraction (93% is 0.93)")
        changes["value"] = float(value)
    allowed = {"metric": METRICS, "split": SPLITS}
    for name in ("metric", "split"):
        if fields[name] is not None:
            if fields[name] not in allowed[name]:
                raise KBError(f"unknown {name} {fields[name]!r}: pass --{name} as one of {', '.join(allowed[name])}")
            changes[name] = fields[name]
    if fields["average"] is not None:
        if fields["average"] not in AVERAGES:
            raise KBError(f"unknown average {fields['average']!r}: pass --average as one of"
                          f" {', '.join(AVERAGES[1:])}, or '' when the source does not say")
        changes["average"] = fields["average"]
    return changes


def _pending(conn: Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The measurements `ids`, all of which must wait for review; KBError (naming every bad id) otherwise."""
    marks = ", ".join(str(i) for i in ids)  # ints by construction
    rows = {row.id: dict(row._mapping) for row in conn.execute(text(
        f"SELECT id, {', '.join(LOGGED_FIELDS)} FROM measurements WHERE id IN ({marks})"))}
    unknown = [i for i in ids if i not in rows]
    if unknown:
        listed = ", ".join(str(i) for i in unknown)
        what = f"measurement with id {listed}" if len(unknown) == 1 else f"measurements with ids {listed}"
        raise KBError(f"no {what}: {_LISTS_THEM}")
    done = [i for i in ids if rows[i]["review_status"] != "needs_review"]
    if done:
        if len(done) == 1:
            which = f"measurement {done[0]} was already {rows[done[0]]['review_status']}"
        else:
            which = "measurements " + ", ".join(f"{i} ({rows[i]['review_status']})" for i in done) + " were already reviewed"
        raise KBError(f"{which}: only the ids `medicalrec kb review` lists can be accepted, rejected or edited")
    return rows


def _log(conn: Connection, action: str, who: str, at: str, before: dict[str, Any], after: dict[str, Any],
         note: Optional[str]) -> None:
    conn.execute(text(
        "INSERT INTO review_log (measurement_id, action, who, at, before_json, after_json, note)"
        " VALUES (:m, :action, :who, :at, :before, :after, :note)"),
        {"m": before["id"], "action": action, "who": who, "at": at, "note": note,
         "before": json.dumps({k: before[k] for k in LOGGED_FIELDS}),
         "after": json.dumps({k: after[k] for k in LOGGED_FIELDS})})


def _label(row: dict[str, Any]) -> str:
    return f"{row['metric']} ({row['average'] or 'average not stated'}, {row['split']} split)"
