"""A user's task (CLI options or a dict from another stage), checked against the KB before ranking.

Every problem is one line that names the flag to fix, with the accepted values where they come
from the KB (its domains and modalities), so `medicalrec recommend` never guesses silently.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Mapping, Optional

import pandas as pd

from ..errors import UserError
from ..kb.normalize import lookup, name_key
from .features import DERIVED, TASK_ALIASES

# The CLI flag behind each task key (so library errors name what the user typed).
FLAGS: dict[str, str] = {
    "domain": "--domain", "modality": "--modality", "dataset": "--dataset", "n_classes": "--classes",
    "n_samples": "--samples", "n_train": "--train", "n_test": "--test", "n_val": "--val", "k_fold": "--k-fold",
    "width": "--width", "height": "--height", "channels": "--channels", "augmentation": "--augmentation",
    "pretrained": "--pretrained", "year": "--year",
}
COUNTS = ("n_classes", "n_samples", "n_train", "n_test", "n_val", "k_fold", "width", "height", "channels", "year")
YES_NO = ("augmentation", "pretrained")


def _accepted(values: pd.Series) -> list[str]:
    return sorted({str(v) for v in values.dropna() if str(v).strip()}, key=str.casefold)


def _match(value: str, accepted: list[str]) -> Optional[str]:
    key = name_key(value)
    for candidate in accepted:
        if name_key(candidate) == key:
            return candidate
    return None


def normalise_task(task: Mapping[str, Any], experiments: pd.DataFrame,
                   dataset_aliases: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """The task with canonical keys and KB spellings; raises UserError naming the flag at fault.

    - domain / modality must be values the KB holds (matched case- and punctuation-insensitively);
    - dataset is mapped to its canonical name when the KB knows an alias, and then fills a missing
      domain / modality from the KB's rows for that dataset; an unknown dataset is kept (it reads
      as an unseen value, not an error: new datasets appear every month);
    - counts must be positive whole numbers; yes/no flags must say yes or no;
    - year defaults to the current year: we recommend for a task started now.
    """
    clean: dict[str, Any] = {}
    for key, value in task.items():
        name = TASK_ALIASES.get(key, key)
        if name not in FLAGS or name in DERIVED:
            raise UserError(f"unknown task field {key!r}; expected one of {', '.join(sorted(FLAGS))}")
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        clean[name] = value

    for name in COUNTS:
        if name in clean:
            clean[name] = _positive_int(name, clean[name])
    for name in YES_NO:
        if name in clean:
            text = str(clean[name]).strip().lower()
            if text in ("true", "1"):
                text = "yes"
            if text in ("false", "0"):
                text = "no"
            if text not in ("yes", "no"):
                raise UserError(f"{FLAGS[name]} takes yes or no, got {clean[name]!r}")
            clean[name] = text

    if "dataset" in clean:
        clean["dataset"] = _canonical_dataset(str(clean["dataset"]).strip(), experiments, dataset_aliases or {})
        rows = experiments[experiments["dataset"] == clean["dataset"]] if "dataset" in experiments else experiments.iloc[:0]
        for name in ("domain", "modality"):
            if name not in clean and not rows.empty and rows[name].notna().any():
                clean[name] = rows[name].dropna().mode().iloc[0]

    for name in ("domain", "modality"):
        if name in clean:
            accepted = _accepted(experiments[name]) if name in experiments else []
            match = _match(str(clean[name]), accepted)
            if match is None:
                shown = ", ".join(accepted) if accepted else "(none: the KB has no experiments)"
                raise UserError(f"unknown {name} {clean[name]!r} for {FLAGS[name]}; the KB has: {shown}")
            clean[name] = match

    if not any(name in clean for name in ("domain", "modality", "dataset")):
        raise UserError("describe the task: pass at least one of --domain, --modality or --dataset")
    clean.setdefault("year", _dt.date.today().year)
    return clean


def _positive_int(name: str, value: Any) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{FLAGS[name]} must be a positive whole number, got {value!r}") from None
    if number <= 0 or number != int(number):
        raise UserError(f"{FLAGS[name]} must be a positive whole number, got {value!r}")
    return int(number)


def _canonical_dataset(raw: str, experiments: pd.DataFrame, aliases: Mapping[str, str]) -> str:
    canonical = lookup(raw, dict(aliases))
    if canonical:
        return canonical
    known = _accepted(experiments["dataset"]) if "dataset" in experiments else []
    return _match(raw, known) or raw
