"""Benchmark rows mapped onto KB fields: one mapper per layout shape (kb/benchmark_sources.py
declares what each column means). A mapper returns `BenchRow`s, raises `RowSkip` for a row a
README rule leaves out, or `RowError` for a cell it cannot read (reported with its line)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Optional

from .benchmark_sources import (
    EVA_MODELS, EVA_SEGMENTATION, EVA_TASKS, EVA_TEST_SUFFIX, MEDMNIST_ARCHITECTURES, MEDMNIST_CLASSES,
    MEDMNIST_DATASETS, MEDMNIST_FINISHED, MEDMNIST_PRETRAINING_SOURCES, MEDMNIST_RESNET, MEDMNIST_TRAIN_PER_CLASS,
    PATHBENCH_TASKS, SLAMPAI_DATASETS, SLAMPAI_FULL_SHOT, SLAMPAI_MODELS, SLAMPAI_NON_MEDICAL, XRV_DATASETS,
    XRV_MODELS, XRV_NOT_EVALUATED, XRV_PARAMS_COLUMN, Layout,
)


@dataclass
class BenchRow:
    """One result of a benchmark file, mapped onto KB fields (before entities are resolved)."""

    line: int
    row_key: str  # identifies the row across re-imports (run id, path, model x column)
    model_raw: str
    model: str
    dataset_raw: str
    dataset: str
    task: str
    metrics: list[tuple[str, str, str, float, str]]  # metric, average, split, value, source column
    scheme: str
    resolution: Optional[int] = None
    shots: Optional[int] = None
    pretraining: Optional[str] = None
    hyperparams: dict = field(default_factory=dict)
    seed: Optional[int] = None
    run_id: Optional[str] = None
    label: Optional[str] = None
    sweep: Optional[str] = None
    val_loss: Optional[float] = None
    is_best_on_val: Optional[int] = None
    is_aggregate: bool = False
    aggregate_table: str = ""  # which of the authors' tables: one figure may appear in two of them
    n_classes: Optional[int] = None
    n_classes_reason: str = ""
    n_train: Optional[int] = None
    n_train_reason: str = ""
    notes: Optional[str] = None

    @cached_property
    def setting(self) -> str:
        """The protocol as the experiment's setting: what tells this row apart from the other rows
        of the same model on the same dataset. Built from values only, so a re-import finds it."""
        parts = [self.scheme + (f"@{self.resolution}px" if self.resolution else "")]
        if self.shots is not None:
            parts.append(f"shots={self.shots}")
        if self.pretraining:
            parts.append(f"pretrain={self.pretraining}")
        parts += [f"{k}={v}" for k, v in sorted(self.hyperparams.items())]
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        if self.label:
            parts.append(f"label={self.label}")
        if self.is_aggregate:
            parts.append(f"authors' table {self.aggregate_table}".strip())
        return ", ".join(parts)


class RowError(ValueError):
    """A cell the layout cannot read: the row is reported with its line and skipped."""


class RowSkip(Exception):
    """A row a README rule leaves out (failed run, duplicate line, non-medical control...)."""


def _fraction(cell: str, column: str, *, percent: bool = False) -> float:
    try:
        value = float(cell)
    except ValueError:
        raise RowError(f"{column} {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise RowError(f"{column} {cell!r} is not a finite number")
    if percent:
        if not 1.0 < value <= 100.0:
            raise RowError(f"{column} {cell!r} is not a percentage in (1, 100], as this table's values are")
        value = round(value / 100.0, 12)
    if not 0.0 <= value <= 1.0:
        raise RowError(f"{column} {cell!r} is outside [0, 1]")
    return value


def _number(cell: str, column: str, kind=float):
    try:
        value = float(cell)
    except ValueError:
        raise RowError(f"{column} {cell!r} is not a number") from None
    if kind is int:
        if not value.is_integer():
            raise RowError(f"{column} {cell!r} is not a whole number")
        return int(value)
    return value


def _metrics_of(layout: Layout, values: dict[str, str], line: int, split: str = "test") -> list:
    metrics = []
    for column, (metric, average) in layout.metrics.items():
        cell = values.get(column, "").strip()
        if cell in ("", "NA", "NaN", "nan"):
            continue
        metrics.append((metric, average, split, _fraction(cell, column), column))
    return metrics


def map_pathbench(layout: Layout, values: dict[str, str], line: int, source: str) -> BenchRow:
    task = values["Task_short"].strip()
    if task not in PATHBENCH_TASKS:
        raise RowError(f"Task_short {task!r} is not a PathBench task kb/benchmark_sources.py declares")
    dataset, n_classes = PATHBENCH_TASKS[task]
    binary = values.get("binary_multi", "").strip()
    if binary == "binary" and n_classes != 2:
        raise RowError(f"binary_multi says binary but {task!r} is declared with {n_classes} classes")
    model_raw = values["ModelName_short"].strip()
    metrics = _metrics_of(layout, values, line)
    if not metrics:
        raise RowError("no metric value in the row")
    domain = values.get("ModelDomain", "").strip()
    category = values.get("ModelCategory", "").strip()
    return BenchRow(
        line=line, row_key=f"{model_raw}|{task}", model_raw=model_raw, model=model_raw, dataset_raw=task,
        dataset=dataset, task=f"{source}/{task}/{layout.training_scheme}", metrics=metrics,
        scheme=layout.training_scheme, resolution=layout.resolution,
        pretraining=f"{domain} ({category})" if domain else None, n_classes=n_classes,
        n_classes_reason=f"binary_multi={binary}; Classes text (kb/benchmark_sources.py PATHBENCH_TASKS)",
        notes=values.get("Slide_vs_patch_classification", "").strip() or None)


def map_medmnist_run(layout: Layout, values: dict[str, str], line: int, source: str) -> BenchRow:
    status = values["Status"].strip()
    if status != MEDMNIST_FINISHED:
        raise RowSkip(f"{status} run (no metrics)")
    flag, target = values["source_flag"].strip(), values["target_flag"].strip()
    if target not in MEDMNIST_DATASETS:
        raise RowError(f"target_flag {target!r} is not a MedMNIST dataset")
    if flag in MEDMNIST_ARCHITECTURES:
        model, pretraining = MEDMNIST_ARCHITECTURES[flag], "imagenet"
    elif flag in MEDMNIST_PRETRAINING_SOURCES:
        model, pretraining = MEDMNIST_RESNET, flag
    else:
        raise RowError(f"source_flag {flag!r} is neither an architecture nor a pretraining source")
    hyper = {name: _number(values[name].strip(), name, int if name in ("batch_size", "epochs") else float)
             for name in ("batch_size", "lr", "momentum", "wd", "epochs") if name in values}
    metrics = _metrics_of(layout, values, line)
    for column, metric in (("val_auc", "auc"), ("val_acc", "accuracy")):
        cell = values.get(column, "").strip()
        if cell:
            metrics.append((metric, "", "val", _fraction(cell, column), column))
    if not any(m[2] == "test" for m in metrics):
        raise RowError("a FINISHED run without test_auc or test_acc")
    val_loss = values["val_loss"].strip()
    task = f"{source}/{target}/fine_tune@224/{MEDMNIST_TRAIN_PER_CLASS}-per-class"
    n_classes = MEDMNIST_CLASSES[target]
    return BenchRow(
        line=line, row_key=values["Run ID"].strip(), model_raw=flag, model=model, dataset_raw=target,
        dataset=MEDMNIST_DATASETS[target], task=task, metrics=metrics, scheme=layout.training_scheme,
        resolution=layout.resolution, shots=MEDMNIST_TRAIN_PER_CLASS, pretraining=pretraining, hyperparams=hyper,
        run_id=values["Run ID"].strip(), sweep=f"{task}|{model}|{pretraining}",
        val_loss=_number(val_loss, "val_loss") if val_loss else None, n_classes=n_classes,
        n_classes_reason="README §2 (n_classes by target)", n_train=MEDMNIST_TRAIN_PER_CLASS * n_classes,
        n_train_reason=f"{MEDMNIST_TRAIN_PER_CLASS} training images per class x {n_classes} classes (README §2)")


def map_slampai(layout: Layout, values: dict[str, str], line: int, source: str) -> BenchRow:
    metric_name = values["metric"].strip()
    if metric_name in layout.ignored_metrics:
        raise RowSkip(f"{metric_name}: {layout.ignored_metrics[metric_name]}")
    if metric_name not in layout.metrics:
        raise RowError(f"metric {metric_name!r} is not one the slampai layout maps")
    dataset_raw = values["dataset"].strip()
    if dataset_raw in SLAMPAI_NON_MEDICAL:
        raise RowSkip(f"natural-image control ({dataset_raw}), not medical")
    if dataset_raw not in SLAMPAI_DATASETS:
        raise RowError(f"dataset {dataset_raw!r} is not one the slampai layout maps")
    dataset, n_classes, resolution = SLAMPAI_DATASETS[dataset_raw]
    pretrained_model = values["pretrained_model"].strip()
    prefix, _, arch = pretrained_model.rpartition("_")
    if arch not in SLAMPAI_MODELS or not prefix:
        raise RowError(f"pretrained_model {pretrained_model!r} is not <pretraining>_bit50x1 or _bit152x4")
    shot_cell = values["shot"].strip()
    if shot_cell == SLAMPAI_FULL_SHOT:
        shots, n_train, n_train_reason = None, None, "full training set (size not in the file)"
    else:
        match = re.fullmatch(r"(\d+)_shot", shot_cell)
        if not match:
            raise RowError(f"shot {shot_cell!r} is not N_shot or full_shot")
        shots = int(match.group(1))
        n_train, n_train_reason = shots * n_classes, f"{shots} images per class x {n_classes} classes"
    metric, average = layout.metrics[metric_name]
    value = _fraction(values["metric_value"].strip(), "metric_value")
    return BenchRow(
        line=line, row_key=values["path"].strip(), model_raw=pretrained_model, model=SLAMPAI_MODELS[arch],
        dataset_raw=dataset_raw, dataset=dataset, task=f"{source}/{dataset_raw}/fine_tune/{shot_cell}",
        metrics=[(metric, average, "test", value, f"metric_value ({metric_name})")], scheme=layout.training_scheme,
        resolution=resolution, shots=shots, pretraining=prefix, seed=_number(values["seed"].strip(), "seed", int),
        hyperparams={"last_step": _number(values["last_step"].strip(), "last_step", int)}, n_classes=n_classes,
        n_classes_reason="README §3", n_train=n_train, n_train_reason=n_train_reason)


LONG_MAPPERS: dict[str, Callable[[Layout, dict, int, str], BenchRow]] = {
    "pathbench": map_pathbench, "medmnist_runs": map_medmnist_run, "slampai": map_slampai}


def wide_rows(layout: Layout, header: list[str], line: int, cells: list[str], source: str) -> list[BenchRow]:
    """The cells of one row of a wide table (eva's leaderboard, the MedMNIST authors' tables)."""
    values = dict(zip(header, (c.strip() for c in cells)))
    rows: list[BenchRow] = []
    if layout.name == "eva":
        model_raw = values["model"]
        if model_raw not in EVA_MODELS:
            raise RowError(f"model {model_raw!r} is not an eva model kb/benchmark_sources.py declares")
        by_task: dict[str, BenchRow] = {}
        for column, cell in values.items():
            if column == "model" or column not in layout.known or cell == "":
                continue
            if column in EVA_SEGMENTATION:
                continue  # segmentation (Dice), not classification: named once per file by import_file
            task = column[: -len(EVA_TEST_SUFFIX)] if column.endswith(EVA_TEST_SUFFIX) else column
            split = "test" if column.endswith(EVA_TEST_SUFFIX) else "val"
            dataset, n_classes, scheme, resolution, n_train = EVA_TASKS[task]
            row = by_task.get(task)
            if row is None:
                row = by_task[task] = BenchRow(
                    line=line, row_key=f"{model_raw}|{task}", model_raw=model_raw, model=EVA_MODELS[model_raw],
                    dataset_raw=task, dataset=dataset, task=f"{source}/{task}/{scheme}", metrics=[], scheme=scheme,
                    resolution=resolution, pretraining="pathology foundation model (frozen)", n_classes=n_classes,
                    n_classes_reason="eva docs/datasets (README §5)", n_train=n_train,
                    n_train_reason="eva docs/datasets (README §5)",
                    notes="mean over 5 runs (patch) or 20 runs (slide)")
            row.metrics.append(("balanced_accuracy", "", split, _fraction(cell, column), column))
        rows.extend(by_task.values())
        return rows
    # medmnist_aggregate: `source` is an architecture (AUCs_model.csv, percent) or a pretraining
    # source of a ResNet-18 (AUCs_dataset.csv, fraction).
    flag = values["source"]
    if flag in MEDMNIST_ARCHITECTURES:
        model, pretraining, percent = MEDMNIST_ARCHITECTURES[flag], "imagenet", True
    elif flag in MEDMNIST_PRETRAINING_SOURCES:
        model, pretraining, percent = MEDMNIST_RESNET, flag, False
    else:
        raise RowError(f"source {flag!r} is neither an architecture nor a pretraining source")
    for column, cell in values.items():
        if column in ("", "source") or column not in MEDMNIST_DATASETS or cell == "":
            continue
        task = f"{source}/{column}/fine_tune@224/{MEDMNIST_TRAIN_PER_CLASS}-per-class"
        n_classes = MEDMNIST_CLASSES[column]
        rows.append(BenchRow(
            line=line, row_key=f"{flag}|{column}", model_raw=flag, model=model, dataset_raw=column,
            dataset=MEDMNIST_DATASETS[column], task=task,
            metrics=[("auc", "", "test", _fraction(cell, column, percent=percent), column)],
            scheme=layout.training_scheme, resolution=layout.resolution, shots=MEDMNIST_TRAIN_PER_CLASS,
            pretraining=pretraining, is_aggregate=True, aggregate_table="by model" if percent else "by pretraining",
            n_classes=n_classes, n_classes_reason="README §2",
            n_train=MEDMNIST_TRAIN_PER_CLASS * n_classes, n_train_reason="100 training images per class (README §2)",
            notes="test AUC of the run with the lowest val_loss (authors' table)"))
    return rows


def markdown_rows(layout: Layout, line: int, cells: list[str], source: str) -> list[BenchRow]:
    heading, columns, values = cells[0], json.loads(cells[1]), cells[2:]
    if heading not in XRV_DATASETS:
        raise RowError(f"section {heading!r} is not a torchxrayvision dataset kb/benchmark_sources.py declares")
    model_raw = values[0]
    if model_raw not in XRV_MODELS:
        raise RowError(f"model {model_raw!r} is not a torchxrayvision model kb/benchmark_sources.py declares")
    model, resolution, pretraining = XRV_MODELS[model_raw]
    labels = [(c, v) for c, v in zip(columns[1:], values[1:]) if c != XRV_PARAMS_COLUMN]
    rows = []
    for label, cell in labels:
        if cell in (XRV_NOT_EVALUATED, ""):
            continue
        rows.append(BenchRow(
            line=line, row_key=f"{heading}|{model_raw}|{label}", model_raw=model_raw, model=model, dataset_raw=heading,
            dataset=XRV_DATASETS[heading], task=f"{source}/{heading}/{label}",
            metrics=[("auc", "", "test", _fraction(cell, label), label)], scheme=layout.training_scheme,
            resolution=resolution, pretraining=pretraining, label=label, n_classes=2,
            n_classes_reason="one binary label of a multi-label set",
            notes="20% of each dataset; the 'all' models may have trained on it (README §7)"))
    return rows
