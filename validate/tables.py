"""What `validate --datasets` and `validate multitask` print: a rich progress bar while runs finish,
then one table (mean ± std over seeds, every published figure, the difference, within-spread)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..output import console, err_console, note


@contextmanager
def sweep_bar(label: str = "runs") -> Iterator:
    """A callback `bar(done, total, message)` drawing a progress bar on stderr (stdout stays clean for --json)."""
    progress = Progress(TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=err_console, transient=False)
    task = None

    def bar(done: int, total: int, message: str) -> None:
        nonlocal task
        if task is None:  # started at the first run, so an error before any run stays one line
            progress.start()
            task = progress.add_task(message, total=total)
        progress.update(task, completed=done, total=total, description=message[:70])

    try:
        yield bar
    finally:
        if task is not None:
            progress.stop()


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _published(comparison) -> str:
    if comparison is None or not comparison.figures:
        return ""
    if len(comparison.figures) == 1:
        return f"{comparison.low:.3f}"
    return f"{comparison.low:.3f}–{comparison.high:.3f} (n={len(comparison.figures)})"


def _within(comparison) -> str:
    return "" if comparison is None or comparison.within is None else ("yes" if comparison.within else "no")


def _delta(comparison) -> str:
    return "" if comparison is None or comparison.delta is None else f"{comparison.delta:+.3f}"


def print_table(table: Table) -> None:
    # rich crops columns that do not fit; a table wider than the terminal is printed whole instead
    needed = Measurement.get(console, console.options.update_width(500), table).maximum
    (console if needed <= console.width else Console(width=needed)).print(table)


def print_sweep(report) -> None:
    seeds = max((row["seeds"] for r in report.reports for row in r.summary()), default=1)
    size = report.reports[0].size if report.reports else 28
    table = Table(title=f"validate sweep at {size} px: test metrics, mean±std over {seeds} seed(s), "
                        f"against every published figure in the KB", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ["dataset", "model", "runs", "epochs", "ACC", "pub. ACC", "Δ ACC", "in", "AUC", "pub. AUC",
               "Δ AUC", "in", "train s"]
    for header in columns:
        table.add_column(header, justify="left" if header in ("dataset", "model") else "right", no_wrap=True)
    sources = set()
    for dataset_report in report.reports:
        for row in dataset_report.summary():
            comparisons = dataset_report.comparisons.get(row["model"], {})
            acc, auc = comparisons.get("accuracy"), comparisons.get("auc")
            for c in (acc, auc):
                sources.update(f.source for f in (c.figures if c else []))
            epochs = {run.result.epochs for run in dataset_report.runs if run.model == row["model"]}
            table.add_row(dataset_report.dataset.canonical, row["model"], str(row["seeds"]),
                          ",".join(map(str, sorted(epochs))),
                          f"{row['acc']:.3f}±{row['acc_std']:.3f}", _published(acc), _delta(acc), _within(acc),
                          f"{row['auc']:.3f}±{row['auc_std']:.3f}", _published(auc), _delta(auc), _within(auc),
                          f"{row['seconds']:.0f}")
    if table.row_count:
        print_table(table)
    for dataset_report in report.reports:
        for skipped in dataset_report.skipped:
            console.print(f"skipped {dataset_report.dataset.flag} {skipped.model}: {skipped.reason}",
                          markup=False, highlight=False)
        for failure in dataset_report.failed:
            console.print(f"failed {dataset_report.dataset.flag} {failure['model']} seed {failure['seed']}: "
                          f"{failure['error']}", markup=False, highlight=False)
    note("Δ: our mean minus the mean of the published figures; in: our mean±std overlaps the published "
         "[min, max]" + (f"; published figures from {', '.join(sorted(sources))}" if sources else
                         "; no published figures in the KB for these cells"))
    failed = sum(len(r.failed) for r in report.reports)
    note(f"{report.trained} run{'' if report.trained == 1 else 's'} trained, {report.reused} taken from the "
         f"ledger {report.ledger}, {failed} failed; "
         + (f"runs recorded in the {report.reports[0].kb}"
            if any(run.experiment_id is not None for r in report.reports for run in r.runs)
            else "nothing written to the KB"))


def print_multitask(payload: dict, single: Optional[dict] = None) -> None:
    title = (f"multi-task ({len(payload['datasets'])} datasets, shared backbone {payload.get('model', '')}, "
             f"{payload['epochs']} epochs trained) on {payload['device']}")
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ["dataset", "MT macro-F1", "MT ACC", "MT AUC"] + (["ST macro-F1", "ST ACC", "ST AUC"] if single else [])
    for header in columns:
        table.add_column(header, justify="left" if header == "dataset" else "right", no_wrap=True)
    for flag in payload["datasets"]:
        ours = payload["per_dataset"][flag]
        row = [flag, _fmt(ours["macro_f1"]), _fmt(ours["test_acc"]), _fmt(ours["test_auc"])]
        if single:
            theirs = single["per_dataset"].get(flag, {})
            row += [_fmt(theirs.get("macro_f1")), _fmt(theirs.get("test_acc")), _fmt(theirs.get("test_auc"))]
        table.add_row(*row)
    row = ["harmonic mean", _fmt(payload["harmonic_mean_macro_f1"]), "", ""]
    if single:
        row += [_fmt(single["harmonic_mean_macro_f1"]), "", ""]
    table.add_row(*row)
    print_table(table)
    if payload["missing"]:
        note(f"missing (not under --data-root): {', '.join(payload['missing'])}")
    for line in payload.get("notes", []):
        note(line)
    if single:
        epochs = ", ".join(f"{f} {e}" for f, e in zip(single["datasets"], single["epochs"]))
        note(f"single-task: the same backbone trained per dataset with the same epochs, patience and batch size "
             f"(epochs trained: {epochs}; {single['seconds']:.0f}s in all; multi-task {payload['seconds']:.0f}s)")
