"""`validate --datasets a,b,c --models m1,m2 --seeds N`: every (dataset, model, seed) run, resumable.

Every run is a `RunSpec` (plain values, so it pickles onto a Ray worker) handed to
`medicalrec.executor`; `train_job` runs on the worker and returns a plain dict; the driver alone
writes: first a line to the run ledger (`sweep-ledger.jsonl` in the run directory), then the KB.
A re-run of the same sweep reads the ledger and trains only what is not in it, so an interrupted
sweep resumes without redoing finished runs; an interrupted run itself continues from its last
checkpoint (sweeps always resume; `--fresh` starts everything again). A run's ledger key is
what makes it that run: dataset, size, model, seed, epochs, batch size and the data file's md5
(not the device: a finished CPU run is not redone because a GPU appeared).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

from ..errors import UserError
from ..executor import Job, check_executor, run_jobs
from . import compare as comparing
from .architectures import REGISTRY, Skipped
from .datasets import check_size, get_dataset
from .runner import (RunRecord, ValidationReport, ValidationRequest, _check_numbers, _choose_models,
                     _resolve_models, may_record, open_store, run_directory)
from .writeback import published_with_fallback, record_run

LEDGER_NAME = "sweep-ledger.jsonl"


@dataclass
class SweepRequest(ValidationRequest):
    datasets: list[str] = field(default_factory=list)
    fresh: bool = False  # ignore the ledger and the checkpoints: train every run again
    executor: str = "local"
    ray_address: Optional[str] = None


@dataclass(frozen=True)
class RunSpec:
    dataset: str  # medmnist flag
    size: int
    model: str  # canonical KB name
    seed: int
    epochs: int
    batch_size: int
    md5: str  # of the data file the driver checked
    device: str = "auto"
    threads: Optional[int] = None
    data_root: Optional[str] = None
    verify: bool = True
    out: Optional[str] = None
    resume: bool = True
    checkpoint_seconds: float = 60.0
    compile: bool = False

    def key(self) -> str:
        return json.dumps([self.dataset, self.size, self.model, self.seed, self.epochs, self.batch_size, self.md5])

    def label(self) -> str:
        return f"{self.dataset} {self.model} seed {self.seed}"


# ------------------------------------------------------------------ on the worker
@lru_cache(maxsize=2)
def _arrays(flag: str, size: int, data_root: Optional[str], verify: bool):
    from .data import load_arrays

    return load_arrays(get_dataset(flag), size, data_root, verify=verify)


def train_job(spec: RunSpec) -> dict:
    """One run, wherever it executes; returns plain values only (they cross Ray's object store)."""
    from .runner import _train_one

    arrays = _arrays(spec.dataset, spec.size, spec.data_root, spec.verify)
    if arrays.check is not None and arrays.check.md5 != spec.md5:
        raise UserError(f"{arrays.path} changed during the sweep (md5 {arrays.check.md5}, the driver checked "
                        f"{spec.md5}): re-run the sweep")
    request = ValidationRequest(dataset=spec.dataset, epochs=spec.epochs, size=spec.size, device=spec.device,
                                batch_size=spec.batch_size, resume=spec.resume, out=spec.out,
                                threads=spec.threads, checkpoint_seconds=spec.checkpoint_seconds,
                                compile=spec.compile)
    result = _train_one(REGISTRY[spec.model], arrays, request, spec.seed, lambda _: None, interrupt_as_error=False)
    return {"spec": asdict(spec), "result": asdict(result)}


# ------------------------------------------------------------------ the ledger
class Ledger:
    """Finished runs, one JSON line each, appended by the driver only (fsync'd: a kill loses at most
    the run in flight)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, dict]:
        done: dict[str, dict] = {}
        if not self.path.exists():
            return done
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                    done[RunSpec(**entry["spec"]).key()] = entry
                except (ValueError, KeyError, TypeError):  # a line cut by a kill mid-write
                    continue
        return done

    def append(self, entry: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


# ------------------------------------------------------------------ the report
@dataclass
class DatasetReport(ValidationReport):
    comparisons: dict[str, dict[str, comparing.Comparison]] = field(default_factory=dict)
    failed: list[dict] = field(default_factory=list)
    reused: int = 0  # runs taken from the ledger, not trained this time

    def as_json(self) -> dict:
        payload = super().as_json()
        summary = self.summary()
        for row in summary:
            row["comparisons"] = {m: c.as_dict() for m, c in self.comparisons.get(row["model"], {}).items()}
        payload.update(summary=summary, failed=self.failed, reused_from_ledger=self.reused)
        return payload


@dataclass
class SweepReport:
    reports: list[DatasetReport]
    ledger: str
    trained: int
    reused: int

    def as_json(self) -> list[dict]:
        return [report.as_json() for report in self.reports]


def run_sweep(request: SweepRequest, progress: Callable[[str], None] = lambda _: None,
              bar: Optional[Callable[[int, int, str], None]] = None) -> SweepReport:
    """Plan every (dataset, model, seed) run, skip the finished ones, execute the rest, record each."""
    from .verify import check_file

    if not request.datasets:
        raise UserError("--datasets is empty: pass flags separated by commas, e.g. --datasets breastmnist,retinamnist")
    datasets = list(dict.fromkeys(get_dataset(name) for name in request.datasets))
    size = check_size(request.size)
    _check_numbers(request)
    check_executor(request.executor)
    from .train import resolve_device

    resolve_device(request.device)
    data_root = Path(request.data_root).expanduser() if request.data_root else None
    from .data import default_root

    checks = {}
    root = data_root or default_root()
    for dataset in datasets:  # every file before any training: a sweep does not die at its last dataset
        path = root / dataset.file_name(size)
        if not path.exists():
            raise UserError(f"{dataset.file_name(size)} not found in {root}: expected md5 {dataset.md5(size)} from "
                            f"{dataset.url(size)}; put it there, pass --data-root DIR, or drop {dataset.flag} "
                            f"from --datasets")
        checks[dataset.flag] = check_file(dataset, size, path, request.verify)
    ledger = Ledger(run_directory(request.out) / LEDGER_NAME)
    done = {} if request.fresh else ledger.read()
    writable = {d.flag: may_record(checks[d.flag], request, progress) for d in datasets}
    store = open_store(request.kb, any(writable.values()))

    plans, specs = [], []
    for dataset in datasets:
        choices, recommended = _choose_models(replace(request, dataset=dataset.flag), store, dataset, size)
        trainable, skipped = _resolve_models(choices, size, store)
        runnable = []
        for arch in trainable:
            reason = arch.cannot_train(dataset.n_samples["train"])
            if reason:
                skipped.append(Skipped(arch.name, reason))
            else:
                runnable.append(arch)
        plans.append((dataset, runnable, skipped, recommended))
        for arch in runnable:
            for seed in range(request.seeds):
                specs.append(RunSpec(
                    dataset.flag, size, arch.name, seed, request.epochs if arch.is_torch else 0,
                    request.batch_size, checks[dataset.flag].md5, request.device,
                    request.threads or (1 if request.executor == "ray" else None),
                    str(data_root) if data_root else None, request.verify,
                    str(run_directory(request.out)), not request.fresh, request.checkpoint_seconds,
                    request.compile))
    if not specs:
        reasons = "; ".join(s.reason for _, _, skipped, _ in plans for s in skipped) or "no models"
        raise UserError(f"none of the models can be trained here ({reasons}): pass --models with some of "
                        f"{', '.join(REGISTRY)}")

    outcomes: dict[str, dict] = {}
    errors: dict[str, str] = {}
    reused = {spec.key() for spec in specs if spec.key() in done}
    for spec in specs:
        if spec.key() in reused:
            outcomes[spec.key()] = done[spec.key()]
    todo = [spec for spec in specs if spec.key() not in reused]
    total = len(specs)
    if bar:
        bar(len(reused), total, f"{len(reused)} finished runs taken from {ledger.path}" if reused else "starting")
    if reused:
        progress(f"{len(reused)} of {total} runs already finished (ledger {ledger.path}); training {len(todo)}")
    jobs = [Job(spec.key(), train_job, spec) for spec in todo]
    finished = len(reused)
    restore = _stop_on_sigterm()
    try:
        for outcome in run_jobs(jobs, request.executor, address=request.ray_address,
                                cpus_per_job=request.threads or 1):
            spec: RunSpec = outcome.job.arg
            finished += 1
            if outcome.ok:
                ledger.append(outcome.value)  # the ledger first: the KB record is redone from it on resume
                outcomes[spec.key()] = outcome.value
                r = outcome.value["result"]
                message = f"{spec.label()}: test ACC {r['test_acc']:.3f}, AUC {r['test_auc']:.3f} in {r['seconds']:.0f}s"
            else:
                errors[spec.key()] = outcome.error
                message = f"{spec.label()}: failed: {outcome.error}"
            progress(message)
            if bar:
                bar(finished, total, message)
    except KeyboardInterrupt:
        raise UserError(f"interrupted after {finished} of {total} runs; the finished ones are kept in "
                        f"{ledger.path}: re-run the same command to train only the rest") from None
    finally:
        restore()
    if errors and len(errors) == total:
        first = next(iter(errors.values()))
        raise UserError(f"all {total} runs failed; the first: {first}")
    return _report(plans, specs, outcomes, errors, reused, checks, writable, store, size, ledger,
                   len(todo) - len(errors))


def _stop_on_sigterm() -> Callable[[], None]:
    """SIGTERM (a scheduler's stop, `kill`) ends a sweep like Ctrl-C: the same message, the ledger kept.
    Returns the function that puts the previous handler back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _report(plans, specs, outcomes, errors, reused, checks, writable, store, size, ledger, trained) -> SweepReport:
    from .train import TrainResult

    reports = []
    for dataset, runnable, skipped, recommended in plans:
        published, published_from = published_with_fallback(store, dataset.canonical, size)
        all_figures, figures_from = comparing.published_with_seed(store, dataset.canonical, size)
        scores = {item["model"]: item["score"] for item in recommended}
        runs, failed = [], []
        for spec in (s for s in specs if s.dataset == dataset.flag):
            if spec.key() in errors:
                failed.append({"model": spec.model, "seed": spec.seed, "error": errors[spec.key()]})
                continue
            entry = outcomes.get(spec.key())
            if entry is None:
                continue
            result = TrainResult(**entry["result"])
            experiment_id = None
            if writable[dataset.flag]:
                # idempotent: a run taken from the ledger replaces its own earlier record
                experiment_id = record_run(store, dataset, size, spec.model, spec.seed, result, checks[dataset.flag])
            runs.append(RunRecord(spec.model, spec.seed, result, experiment_id, published.get(spec.model, {}),
                                  scores.get(spec.model)))
        report = DatasetReport(dataset, size, runs, skipped, store.location.describe(),
                               published_from or figures_from, recommended, failed=failed,
                               reused=sum(1 for s in specs if s.dataset == dataset.flag and s.key() in reused))
        for model in dict.fromkeys(run.model for run in runs):
            mine = [run.result for run in runs if run.model == model]
            report.comparisons[model] = comparing.compare(
                all_figures.get(model, []), [r.test_acc for r in mine], [r.test_auc for r in mine])
        reports.append(report)
    return SweepReport(reports, str(ledger.path), trained, len(reused))
