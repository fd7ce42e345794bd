"""Curators' tools: which names the catalogues do not know (`kb unmatched`), and teaching the KB
a new alias (`kb alias`) so that experiments already stored under it move to the canonical entity."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from . import normalize
from .details import find_entity
from .store import KnowledgeBase

_ENTITY = {
    "model": ("models", "model_aliases", "model_id", "model_raw"),
    "dataset": ("datasets", "dataset_aliases", "dataset_id", "dataset_raw"),
}


def unmatched_names(kb: KnowledgeBase) -> list[tuple[str, str, int, int]]:
    """(kind, name, experiments, papers) for every uncurated model and dataset experiments use,
    most used first."""
    rows: list[tuple[str, str, int, int]] = []
    for kind, (table, _, fk, _) in _ENTITY.items():
        with kb.engine.connect() as conn:
            rows.extend((kind, *row) for row in conn.execute(text(
                f"SELECT t.name, COUNT(*), COUNT(DISTINCT e.paper_id) FROM experiments e JOIN {table} t"
                f" ON t.id = e.{fk} WHERE NOT t.curated GROUP BY t.id ORDER BY COUNT(*) DESC, t.name")))
    return rows


@dataclass
class AliasResult:
    canonical: str
    relinked: int = 0
    conflicts: int = 0  # experiments left in place: the paper already has this one under the canonical name


def add_alias(kb: KnowledgeBase, kind: str, alias: str, canonical: str) -> AliasResult:
    """Record the alias, then move experiments whose raw name now resolves to `canonical` (which
    may itself be given by any alias).

    An experiment stays where it is when moving it would duplicate one the paper already has
    (same dataset, model and setting); entities left without experiments are removed, unless
    curated.
    """
    canonical = find_entity(kb, kind, canonical)["name"]
    kb.add_alias(kind, alias, canonical)
    table, alias_table, fk, raw_column = _ENTITY[kind]
    key = normalize.name_key(alias)
    result = AliasResult(canonical=canonical)
    with kb.engine.begin() as conn:
        index = dict(conn.execute(text(f"SELECT alias_key, {fk} FROM {alias_table}")).fetchall())
        target = conn.execute(text(f"SELECT id FROM {table} WHERE name = :n"), {"n": canonical}).scalar_one()
        experiments = conn.execute(text(
            f"SELECT id, paper_id, model_id, dataset_id, setting, {raw_column} FROM experiments"
            f" WHERE {fk} IS NOT :t AND {raw_column} IS NOT NULL"), {"t": target}).fetchall()
        for experiment in experiments:
            keys = normalize.candidate_keys(experiment[5])
            if key not in keys or next(index[k] for k in keys if k in index) != target:
                continue
            moved = dict(experiment._mapping, **{fk: target})
            clash = conn.execute(text(
                "SELECT 1 FROM experiments WHERE paper_id = :paper_id AND model_id = :model_id"
                " AND dataset_id IS :dataset_id AND setting = :setting"), moved).first()
            if clash:
                result.conflicts += 1
                continue
            conn.execute(text(f"UPDATE experiments SET {fk} = :t WHERE id = :i"), {"t": target, "i": experiment.id})
            result.relinked += 1
        conn.execute(text(
            f"DELETE FROM {table} WHERE NOT curated AND id NOT IN (SELECT {fk} FROM experiments WHERE {fk} IS NOT NULL)"
            f" AND id NOT IN (SELECT {fk} FROM {alias_table})"))
    return result
