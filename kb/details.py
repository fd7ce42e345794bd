"""`kb show`: one paper, model or dataset with its experiments, measurements and provenance.

Lookups accept what a person would type: a paper by DOI, ref_id or a piece of its title; a model
or dataset by any alias. An unknown name is an error that suggests the closest known names.
"""

from __future__ import annotations

import difflib
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import text

from . import normalize
from .db import ACCEPTED, KBError, measurement_order
from .records import normalize_doi
from .schema import FEATURES, METRICS
from .store import KnowledgeBase

SHOW_KINDS = ("paper", "model", "dataset")
_ENTITY = {
    "model": ("models", "model_aliases", "model_id"),
    "dataset": ("datasets", "dataset_aliases", "dataset_id"),
}


def _rows(kb: KnowledgeBase, sql: str, **params) -> list[dict[str, Any]]:
    with kb.engine.connect() as conn:
        result = conn.execute(text(sql), params)
        return [dict(row._mapping) for row in result]


def _suggest(name: str, candidates: dict[str, str]) -> str:
    """' did you mean A, B?' from {spelling: canonical}, or '' when nothing is close."""
    close = difflib.get_close_matches(name.lower(), list(candidates), n=8, cutoff=0.6)
    names = list(dict.fromkeys(candidates[c] for c in close))[:3]
    return f": did you mean {', '.join(names)}?" if names else ""


# ---------------------------------------------------------------- lookups

def find_entity(kb: KnowledgeBase, kind: str, name: str) -> dict[str, Any]:
    """The model or dataset `name` names (any alias, or its exact name); KBError otherwise."""
    table, alias_table, fk = _ENTITY[kind]
    aliases = dict((row["alias_key"], row["id"]) for row in _rows(
        kb, f"SELECT a.alias_key, a.{fk} AS id FROM {alias_table} a"))
    entity_id = next((aliases[k] for k in normalize.candidate_keys(name) if k in aliases), None)
    if entity_id is None:
        found = _rows(kb, f"SELECT id FROM {table} WHERE name = :n COLLATE NOCASE", n=name.strip())
        entity_id = found[0]["id"] if found else None
    if entity_id is None:
        spellings = {row["name"].lower(): row["name"] for row in _rows(kb, f"SELECT name FROM {table}")}
        spellings.update({row["alias"].lower(): row["name"] for row in _rows(
            kb, f"SELECT a.alias, t.name FROM {alias_table} a JOIN {table} t ON t.id = a.{fk}")})
        raise KBError(f"unknown {kind} {name!r}{_suggest(name, spellings)}"
                      f" (`medicalrec kb query \"SELECT name FROM {table}\"` lists them all)")
    entity = _rows(kb, f"SELECT * FROM {table} WHERE id = :i", i=entity_id)[0]
    entity["aliases"] = [row["alias"] for row in _rows(
        kb, f"SELECT alias FROM {alias_table} WHERE {fk} = :i ORDER BY alias", i=entity_id)]
    return entity


def find_paper(kb: KnowledgeBase, query: str) -> dict[str, Any]:
    """The one paper whose DOI or ref_id is `query`, or whose title contains it."""
    query = query.strip()
    exact = _rows(kb, "SELECT * FROM papers WHERE doi = :doi OR ref_id = :q COLLATE NOCASE OR sha256 = :q",
                  doi=normalize_doi(query) or "", q=query)
    matches = exact or _rows(kb, "SELECT * FROM papers WHERE title LIKE :t ORDER BY id", t=f"%{query}%")
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(m["ref_id"] or m["doi"] or f"paper-{m['id']}" for m in matches[:5])
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        raise KBError(f"{query!r} matches {len(matches)} papers ({listed}{more}): give a DOI or ref_id")
    spellings: dict[str, str] = {}
    for row in _rows(kb, "SELECT ref_id, doi, title FROM papers"):
        label = row["ref_id"] or row["doi"]
        for value in (row["ref_id"], row["doi"], row["title"]):
            if value and label:
                spellings[value.lower()] = label
    raise KBError(f"no paper matches {query!r}{_suggest(query, spellings)}"
                  " (search by DOI, ref_id or a piece of the title)")


def experiments_detail(kb: KnowledgeBase, where: str, **params) -> list[dict[str, Any]]:
    """Experiments matching `where` (SQL on e/p/m/d), each with features and measurements."""
    experiments = _rows(
        kb,
        "SELECT e.id AS experiment_id, p.ref_id, p.doi, p.title, m.name AS model, m.curated AS model_curated,"
        " d.name AS dataset, e.model_raw, e.dataset_raw, e.setting, e.origin, e.notes, e.curation_flags"
        " FROM experiments e JOIN papers p ON p.id = e.paper_id JOIN models m ON m.id = e.model_id"
        f" LEFT JOIN datasets d ON d.id = e.dataset_id WHERE {where} ORDER BY e.id", **params)
    if not experiments:
        return []
    by_id = {e["experiment_id"]: {**e, "features": {}, "measurements": []} for e in experiments}
    ids = ",".join(str(i) for i in by_id)
    for row in _rows(kb, f"SELECT * FROM feature_values WHERE experiment_id IN ({ids})"):
        value = row["value_text"] if row["value_text"] is not None else row["value_num"]
        if value is not None and FEATURES[row["feature"]] == "int":
            value = int(value)
        by_id[row["experiment_id"]]["features"][row["feature"]] = {
            "value": value, "status": row["status"], "reason": row["reason"], "method": row["method"],
            "page": row["page"], "snippet": row["snippet"], "source_url": row["source_url"],
            "confidence": row["confidence"]}
    # Accepted measurements only: `kb show` presents facts; `kb review` shows the others.
    for row in _rows(kb, f"SELECT * FROM measurements WHERE experiment_id IN ({ids}) AND {ACCEPTED}"
                         f" ORDER BY metric, {measurement_order()}"):
        by_id[row["experiment_id"]]["measurements"].append(
            {k: row[k] for k in ("metric", "average", "value", "split", "method", "page", "snippet", "source_url",
                                 "confidence", "reviewed_by", "reviewed_at")})
    for detail in by_id.values():
        detail["features"] = {name: detail["features"][name] for name in FEATURES if name in detail["features"]}
    return list(by_id.values())


def show(kb: KnowledgeBase, kind: str, name: str) -> dict[str, Any]:
    """{"kind", "<kind>": entity, "experiments": [...]} for `kb show`."""
    if kind == "paper":
        paper = find_paper(kb, name)
        return {"kind": kind, "paper": paper, "experiments": experiments_detail(kb, "e.paper_id = :i", i=paper["id"])}
    entity = find_entity(kb, kind, name)
    column = "e.model_id" if kind == "model" else "e.dataset_id"
    return {"kind": kind, kind: entity, "experiments": experiments_detail(kb, f"{column} = :i", i=entity["id"])}


# ---------------------------------------------------------------- rendering

def render_show(detail: dict[str, Any], console: Console) -> None:
    kind = detail["kind"]
    header = Table(show_header=False, title=f"{kind} {detail[kind].get('name') or detail[kind].get('ref_id') or ''}")
    header.add_column("field")
    header.add_column("value", overflow="fold")
    for key, value in detail[kind].items():
        if value not in (None, "", []):
            header.add_row(key, escape(", ".join(value) if isinstance(value, list) else str(value)))
    header.add_row("experiments", str(len(detail["experiments"])))
    console.print(header)
    if kind == "paper":
        for experiment in detail["experiments"]:
            _render_experiment(experiment, console)
    else:
        _render_experiment_list(detail["experiments"], console, other="dataset" if kind == "model" else "model")


def _provenance(item: dict[str, Any]) -> str:
    page = f" p.{item['page']}" if item["page"] else ""
    said = item.get("snippet") or item.get("reason")
    return escape(item["method"] + page + (f": {said}" if said else ""))


def _render_experiment(experiment: dict[str, Any], console: Console) -> None:
    title = f"{experiment['model_raw']} on {experiment['dataset_raw'] or 'an unnamed dataset'}"
    if experiment["setting"]:
        title += f" ({experiment['setting']})"
    items = [*experiment["features"].values(), *experiment["measurements"]]
    sources = sorted({item["source_url"] for item in items if item["source_url"]})
    table = Table(title=escape(title), title_justify="left", caption=escape("source: " + ", ".join(sources)) if sources else None,
                  caption_justify="left")
    for column in ("feature / metric", "value", "status / split", "provenance"):
        table.add_column(column, overflow="fold")
    for name, f in experiment["features"].items():
        value = escape(str(f["value"])) if f["value"] is not None else ""
        status = f["status"] if f["value"] is not None else f"[dim]{f['status']}[/dim]"
        table.add_row(name, value, status, _provenance(f))
    for m in experiment["measurements"]:
        metric = f"{m['metric']} ({m['average']})" if m["average"] else m["metric"]
        table.add_row(f"[bold]{metric}[/bold]", f"{m['value']:.4g}", m["split"], _provenance(m))
    console.print(table)


_METRIC_HEADERS = {"accuracy": "acc", "precision": "prec", "recall": "rec", "specificity": "spec"}


def _render_experiment_list(experiments: list[dict[str, Any]], console: Console, other: str) -> None:
    table = Table(title="Experiments")
    metrics = [m for m in METRICS if any(x["metric"] == m for e in experiments for x in e["measurements"])]
    for column in ("paper", other, "setting"):
        table.add_column(column, overflow="fold", min_width=10)
    for metric in metrics:
        table.add_column(_METRIC_HEADERS.get(metric, metric))
    table.add_column("source", max_width=28, overflow="ellipsis")
    for e in experiments:
        values: dict[str, float] = {}
        for m in e["measurements"]:  # the first is the one to show (db.measurement_order)
            values.setdefault(m["metric"], m["value"])
        source = next((m["source_url"] for m in e["measurements"] if m["source_url"]), "")
        raw = e[f"{other}_raw"] or e[other] or ""
        table.add_row(escape(e["ref_id"] or e["doi"] or ""), escape(raw), escape(e["setting"]),
                      *(f"{values[m]:.4g}" if m in values else "" for m in metrics), escape(source))
    console.print(table)
