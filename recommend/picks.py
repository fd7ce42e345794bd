"""`recommend --objective performance`: picks the user can train, each with its reason and its cost.

- A pick is a concrete architecture (a named catalogue model, not a family label, not an ensemble,
  not "Other"); family labels and bespoke designs still shape the ranking (they are ranked items the
  network learns from) but are listed only with `--include-families`. `--max-params` keeps picks
  whose parameter count is known and at most that many millions.
- Expected rank: the ranker is trained with a pairwise logistic loss, so sigma(s_j - s_i) is its
  chance that j beats i; a pick's expected rank among the listed picks is 1 + the sum of those
  chances over the other listed picks.
- Pareto view: a pick is on the front when no other pick has both fewer (or equal) parameters and a
  better (or equal) expected rank, one of them strictly. Picks of unknown size are left off the front.
- Order: picks measured on similar tasks first (by score), then the others (by score), flagged.
- Evidence: the comparison groups of similar tasks (same dataset, else same domain, else same
  modality) that measured the pick: on how many it was best and top-3, with their sources. A pick no
  similar comparison measured says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
import pandas as pd

from .catalogue import Catalogue, family_label
from .comparisons import comparison_frame
from .evidence import reference_of

NOT_PICKS = frozenset({"Ensemble", "Other"})  # families whose members are not one trainable architecture


def _family_names() -> frozenset:
    from ..kb.normalize import MODEL_FAMILIES

    return frozenset(MODEL_FAMILIES) | {family_label(f) for f in MODEL_FAMILIES}


FAMILY_NAMES = _family_names()  # a model row named after a family ("ResNet") says which family, not which net
MAX_SOURCES = 3


@dataclass
class PickEvidence:
    scope: str  # "dataset", "domain", "modality" or "KB": which comparisons count as similar tasks
    n_tasks: int  # similar comparison groups that measured this pick
    n_best: int
    n_top3: int
    sources: list[str] = field(default_factory=list)
    sentence: str = ""


@dataclass
class Pick:
    rank: int
    model: str
    family: str
    params_millions: Optional[float]
    expected_rank: float
    score: float
    pareto: bool
    is_family_label: bool
    evidence: PickEvidence

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_concrete(item: str, catalogue: Catalogue) -> bool:
    """A named architecture: not a family's label ("Custom CNN", "ResNet", "Vision Transformer" — even
    when a paper wrote that very name), not an ensemble, not "Other"."""
    family = catalogue.family_of.get(item)
    return item in catalogue.named_models and family not in NOT_PICKS and item != family_label(family) \
        and item not in FAMILY_NAMES


def expected_ranks(scores: np.ndarray) -> np.ndarray:
    diff = scores[None, :] - scores[:, None]  # [i, j] = s_j - s_i
    beats = 1.0 / (1.0 + np.exp(-np.clip(diff, -50, 50)))
    np.fill_diagonal(beats, 0.0)
    return 1.0 + beats.sum(axis=1)


def pareto_front(params: list[Optional[float]], ranks: list[float]) -> list[bool]:
    front = []
    for i, (p, r) in enumerate(zip(params, ranks)):
        if p is None:
            front.append(False)
            continue
        dominated = any(q is not None and q <= p and s <= r and (q < p or s < r)
                        for j, (q, s) in enumerate(zip(params, ranks)) if j != i)
        front.append(not dominated)
    return front


class ComparisonIndex:
    """The KB's comparison groups with their task context and sources, built once per recommender."""

    def __init__(self, experiments: pd.DataFrame, catalogue: Catalogue) -> None:
        frame = experiments.reset_index(drop=True)
        self.comps = comparison_frame(frame, catalogue)
        rows = self.comps["row"].to_numpy(dtype=np.int64) if len(self.comps) else np.zeros(0, np.int64)
        for column in ("dataset", "domain", "modality"):
            values = frame[column].to_numpy(dtype=object) if column in frame else np.full(len(frame), None, object)
            self.comps[column] = values[rows] if len(rows) else []
        by_row = {}
        for r in np.unique(rows):  # one context row per group: a few hundred lookups, not one per item
            record = frame.iloc[int(r)]
            source = reference_of(record.to_dict())
            if not source and isinstance(record.get("benchmark_task"), str):
                source = f"benchmark {record['benchmark_task']}"
            by_row[int(r)] = source or str(record.get("paper_key", ""))
        self.comps["source"] = [by_row[int(r)] for r in rows]

    def similar(self, task: Mapping[str, Any]) -> tuple[str, pd.DataFrame]:
        """(scope, the comparison rows of similar tasks); memoised per scope value (asked often)."""
        blocks = self.__dict__.setdefault("_blocks", {})
        for scope in ("dataset", "domain", "modality"):
            value = task.get(scope)
            if value is not None and len(self.comps):
                if (scope, value) not in blocks:
                    blocks[(scope, value)] = self.comps[self.comps[scope] == value]
                block = blocks[(scope, value)]
                if len(block):
                    return scope, block
        return "KB", self.comps

    def evidence_for(self, scope: str, block: pd.DataFrame, items: list[str]) -> list[PickEvidence]:
        """evidence() for several items, from one grouping of the block (kept per block: asked often)."""
        key = id(block)  # similar() hands out the same block object for the same scope value
        cache = self.__dict__.setdefault("_by_item", {})
        if key not in cache:
            cache[key] = {item: rows for item, rows in block.groupby("item", sort=False)}
        empty = block.iloc[:0]
        return [self.evidence(scope, cache[key].get(item, empty), item) for item in items]

    def evidence(self, scope: str, block: pd.DataFrame, item: str) -> PickEvidence:
        mine = block[block["item"] == item]
        n_tasks = int(mine["group"].nunique())
        if n_tasks == 0:
            where = "in the KB" if scope == "KB" else f"on a task of the same {scope}"
            return PickEvidence(scope, 0, 0, 0, [], f"no evidence: no comparison {where} measured {item}; "
                                                    f"ranked from its family, size and usage")
        n_best = int((mine["rank"] == 1).sum())
        n_top3 = int((mine["rank"] <= 3).sum())
        best_first = mine.sort_values(["rank", "score"], ascending=[True, False])
        sources = list(dict.fromkeys(s for s in best_first["source"] if s))[:MAX_SOURCES]
        where = "similar tasks" if scope != "KB" else "tasks in the KB (none similar)"
        return PickEvidence(scope, n_tasks, n_best, n_top3, sources,
                            f"on {n_tasks} {where if n_tasks > 1 else where.replace('tasks', 'task')} {item} was best "
                            f"in {n_best}, top-3 in {n_top3}")


def choose_picks(scores: np.ndarray, catalogue: Catalogue, params: Mapping[str, float], index: ComparisonIndex,
                 task: Mapping[str, Any], top: int, include_families: bool = False,
                 max_params: Optional[float] = None) -> tuple[list[Pick], dict[str, Any]]:
    """The top picks for one task's catalogue scores, and what was left out and why."""
    left_out = {"family_labels_and_ensembles": 0, "unknown_size": 0, "over_max_params": 0}
    candidates = []
    for column, item in enumerate(catalogue.items):
        if item == "Other":
            continue
        concrete = is_concrete(item, catalogue)
        if not concrete and not include_families:
            left_out["family_labels_and_ensembles"] += 1
            continue
        size = params.get(item)
        if max_params is not None:
            if size is None:
                left_out["unknown_size"] += 1
                continue
            if size > max_params:
                left_out["over_max_params"] += 1
                continue
        candidates.append(column)
    if not candidates:
        return [], left_out
    cand = np.asarray(candidates)
    scope, block = index.similar(task)
    # Items measured on similar tasks first: a model compared only elsewhere (e.g. pathology foundation
    # models on a dermoscopy task) was never compared with this task's usual models, so its score
    # against them is an extrapolation; it follows, flagged "no evidence".
    measured = set(block["item"]) if len(block) else set()
    proven = np.array([catalogue.items[c] in measured for c in cand])
    order = np.lexsort((cand, -scores[cand], ~proven))[: int(top)]
    chosen = cand[order]
    ranks = expected_ranks(scores[chosen])  # among the listed picks: "where would it finish among these"
    sizes = [params.get(catalogue.items[c]) for c in chosen]
    front = pareto_front(sizes, [float(r) for r in ranks])
    picks = []
    evidence = index.evidence_for(scope, block, [catalogue.items[c] for c in chosen])
    for position, column in enumerate(chosen):
        item = catalogue.items[column]
        picks.append(Pick(rank=position + 1, model=item, family=catalogue.family_of[item], params_millions=sizes[position],
                          expected_rank=round(float(ranks[position]), 2), score=round(float(scores[column]), 4),
                          pareto=bool(front[position]), is_family_label=not is_concrete(item, catalogue),
                          evidence=evidence[position]))
    left_out["candidates"] = int(len(cand))
    return picks, left_out
