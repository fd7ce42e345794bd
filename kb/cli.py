"""`medicalrec kb`: the analysts' commands, a thin layer over medicalrec.kb."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from ..errors import UserError
from ..output import CsvOption, JsonOption, KBOption, console, emit_rows, err_console, note, print_json
from .db import resolve, user_kb_path
from .layouts import BENCH, CURATED
from .schema import METRICS, SPLITS
from .store import KnowledgeBase

app = typer.Typer(help="Query and curate the knowledge base.\n\nExample: medicalrec kb stats --json", no_args_is_help=True)

MinConfidenceOption = Annotated[Optional[float], typer.Option(
    "--min-confidence", help="Only measurements with at least this confidence (0 to 1).", show_default=False)]


class ShowKind(str, Enum):
    paper = "paper"
    model = "model"
    dataset = "dataset"


class EntityKind(str, Enum):
    model = "model"
    dataset = "dataset"


class ExportLayout(str, Enum):
    curated = "curated"
    bench = "bench"
    tuples = "tuples"


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"


def open_kb(kb: Optional[str], *, write: bool = False) -> KnowledgeBase:
    """Open the KB a command was pointed at and say which one it is (on stderr)."""
    if write and resolve(kb).is_seed:
        note(f"The bundled seed KB is read-only: copying it to {user_kb_path()} and writing there "
             "(pass --kb to write elsewhere).")
    store = KnowledgeBase.open(kb, write=write)
    note(f"Using {store.location.describe()}")
    return store


@app.command()
def init(kb: KBOption = None) -> None:
    """Create (or migrate) a KB file.

    Example: medicalrec kb init --kb my.db
    """
    store = open_kb(kb, write=True)
    console.print(f"KB ready: {store.location.describe()}", markup=False, highlight=False)


_IMPORT_HELP = f"""Import published results from a CSV file; re-importing a file adds nothing.

The layout is detected from the header: columns in any order, ref_id and model (Ref and Model) required.

curated: {", ".join(CURATED.columns)}

bench (MedicalRec-Bench): {", ".join(BENCH.columns)}

Metrics may be fractions or percentages, decided per metric column within each paper: a % sign or a value of 2 or more makes the column percentages, and then a bare value of 1 or less in it is ambiguous and refused (so is a bare value between 1 and 2). Counts must lie in a plausible range (medicalrec/kb/values.py). An empty cell is stored as `not_reported`. Bad rows are reported as `line N: reason` and skipped (a row whose quotes cannot be balanced costs that line only); rows read = rows stored + rows failed. A row already in the KB (same reference id, model, dataset, features, metrics and notes) is not added again, however the rows are split across files. The exit code is 1 when a row failed (2 when the file is unusable); warnings (a paper's rows disagreeing on its title) do not change it.

Benchmark result tables (PathBench, MedMNIST transferability, SLAMPAI, eva, torchxrayvision; layouts in medicalrec/kb/benchmark_sources.py) are recognised by their header; a folder imports every file whose layout is recognised and names each file it skips and why.

Example: medicalrec kb import literature.csv --kb my.db --dry-run

Example: medicalrec kb import ../shared/data/benchmarks --kb my.db
"""


@app.command("import", help=_IMPORT_HELP)
def import_(
    file: Annotated[Path, typer.Argument(help="A UTF-8 CSV file in the curated or the bench layout, or a benchmark table or folder of them (e.g. ../shared/data/benchmarks).", show_default=False)],
    kb: KBOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file and count what would be added; write nothing.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List the model and dataset names the catalogues do not know.")] = False,
    as_json: JsonOption = False,
) -> None:
    from .benchmarks import is_benchmark_file
    from .importers import import_file

    if is_benchmark_file(file):  # a folder, or a benchmark table (kb/benchmark_sources.py layouts)
        _import_benchmarks(file, kb, dry_run, as_json)
        return
    if dry_run:
        location = resolve(kb)
        store = KnowledgeBase.open(kb) if location.path.exists() else KnowledgeBase.in_memory()
        note(f"Dry run against {store.location.describe() if location.path.exists() else 'an empty KB'}: nothing is written")
    else:
        store = open_kb(kb, write=True)
    report = import_file(store, file, dry_run=dry_run)
    for problem in sorted(report.problems + report.warnings, key=lambda p: p.line):
        err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_import_summary(report, verbose)
    if report.problems:
        raise typer.Exit(1)


def _import_benchmarks(path: Path, kb: Optional[str], dry_run: bool, as_json: bool) -> None:
    from rich.progress import Progress

    from .benchmarks import import_benchmarks, render_benchmark_import

    if dry_run:
        location = resolve(kb)
        store = KnowledgeBase.open(kb) if location.path.exists() else KnowledgeBase.in_memory()
        note("Dry run: nothing is written")
    else:
        store = open_kb(kb, write=True)
    with Progress(console=err_console, transient=True) as progress:
        task = progress.add_task("importing", total=None)
        report = import_benchmarks(store, path, dry_run=dry_run,
                                   on_file=lambda f: progress.update(task, description=f"importing {f.name}"))
    for problem in report.problems:
        err_console.print(problem, markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(report.to_dict())
    else:
        render_benchmark_import(report, console)
    if report.problems:
        raise typer.Exit(1)


def _print_import_summary(report, verbose: bool) -> None:
    verb = "would add" if report.dry_run else "added"
    rows = [
        ("layout", report.layout), ("rows", report.rows), ("rows stored", report.rows_stored),
        ("rows failed", report.rows_failed), ("warnings", len(report.warnings)),
        ("papers in file", report.papers_in_file), (f"papers {verb}", report.papers_added),
        (f"experiments {verb}", report.experiments_added),
        ("experiments skipped (already present)", report.experiments_skipped),
        (f"measurements {verb}", report.measurements_added),
        ("unmatched model names", len(report.unmatched_models)),
        ("unmatched dataset names", len(report.unmatched_datasets)),
    ]
    emit_rows(["", "count"], rows, title=f"Import of {Path(report.file).name}")
    if verbose:
        for kind, names in (("model", report.unmatched_models), ("dataset", report.unmatched_datasets)):
            if names:
                emit_rows([f"unmatched {kind} name", "rows"], names.most_common())
    elif report.unmatched_models or report.unmatched_datasets:
        note("--verbose lists the unmatched names; `medicalrec kb alias` maps one to a catalogue entry.")


@app.command()
def export(
    kb: KBOption = None,
    layout: Annotated[ExportLayout, typer.Option("--layout", help="curated / bench: the import layouts; "
                                                 "tuples: one record per measurement with its provenance.")] = ExportLayout.curated,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or json.")] = ExportFormat.csv,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.",
                                                   show_default=False)] = None,
    min_confidence: MinConfidenceOption = None,
    no_escape_formulas: Annotated[bool, typer.Option(
        "--no-escape-formulas", help="Write CSV cells exactly as stored. By default a text cell starting with "
        "= + - @ tab or CR gets a leading ' so a spreadsheet shows it instead of running it; plain numbers "
        "(-0.5) are never changed, and `kb import` removes the ' again.")] = False,
) -> None:
    """Export the KB's experiments (curated/bench layouts, which `kb import` reads back) or its measurements (tuples).

    Only accepted measurements are exported (see `kb review`). CSV output is safe to open in a
    spreadsheet (formula cells escaped) unless --no-escape-formulas is given.

    Example: medicalrec kb export --layout tuples --format json --min-confidence 0.8 --output tuples.json
    """
    from .exporters import export as write_export
    from .review import check_min_confidence

    check_min_confidence(min_confidence)  # before --output is created
    store = open_kb(kb)
    if output is None:
        write_export(store, sys.stdout, layout=layout.value, fmt=fmt.value, min_confidence=min_confidence,
                     escape_formulas=not no_escape_formulas)
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as fh:
            n = write_export(store, fh, layout=layout.value, fmt=fmt.value, min_confidence=min_confidence,
                             escape_formulas=not no_escape_formulas)
    except OSError as exc:
        raise UserError(f"cannot write {output} ({exc.strerror}): pass another --output") from exc
    note(f"Wrote {n} rows to {output}")


@app.command()
def stats(kb: KBOption = None, as_json: JsonOption = False) -> None:
    """What the KB holds, and per feature the share of experiments in each status.

    Counts papers, experiments, measurements, models, datasets and validated experiments; for each
    feature, the share reported, derived, not reported, not applicable, ambiguous or failed to extract.
    The --json shape is documented in medicalrec/kb/stats.py.

    Example: medicalrec kb stats --json
    """
    from .stats import collect_stats, render_stats

    result = collect_stats(open_kb(kb))
    if as_json:
        print_json(result)
    else:
        render_stats(result, console)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A read-only statement (SELECT, WITH, EXPLAIN, PRAGMA).", show_default=False)],
    kb: KBOption = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Run a read-only SQL query (the experiment_wide view has one row per experiment).

    Example: medicalrec kb query "SELECT model, COUNT(*) n FROM experiment_wide GROUP BY model ORDER BY n DESC LIMIT 5"
    """
    columns, rows = open_kb(kb).query(sql)
    emit_rows(columns, rows, as_json=as_json, as_csv=as_csv)


@app.command()
def show(
    kind: Annotated[ShowKind, typer.Argument(help="paper, model or dataset.", show_default=False)],
    name: Annotated[str, typer.Argument(help="A paper's DOI, ref_id or part of its title; a model's or dataset's "
                                             "name or any alias.", show_default=False)],
    kb: KBOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a paper, model or dataset with its experiments, measurements and their provenance.

    Example: medicalrec kb show model resnet18
    """
    from .details import render_show, show as show_detail

    detail = show_detail(open_kb(kb), kind.value, name)
    if as_json:
        print_json(detail)
    else:
        render_show(detail, console)


@app.command()
def alias(
    kind: Annotated[EntityKind, typer.Argument(help="model or dataset.", show_default=False)],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="The other name, as papers write it.", show_default=False)],
    canonical: Annotated[str, typer.Argument(help="The KB's name it stands for.", show_default=False)],
    kb: KBOption = None,
) -> None:
    """Teach the KB that ALIAS names CANONICAL; experiments already stored under ALIAS move to it.

    Example: medicalrec kb alias model "Pre-trained ViT" "Vision Transformer"
    """
    from .curate import add_alias

    result = add_alias(open_kb(kb, write=True), kind.value, alias_name, canonical)
    console.print(f"{kind.value} alias {alias_name!r} -> {result.canonical!r}: {result.relinked} experiment(s) re-linked",
                  markup=False, highlight=False)
    if result.conflicts:
        note(f"{result.conflicts} experiment(s) stayed: their paper already has one under {canonical!r}"
             " for the same dataset and setting.")


@app.command()
def unmatched(kb: KBOption = None, as_json: JsonOption = False, as_csv: CsvOption = False) -> None:
    """Model and dataset names in the KB that the curated catalogues do not know, most used first.

    Example: medicalrec kb unmatched --csv > unmatched.csv
    """
    from .curate import unmatched_names

    emit_rows(["kind", "name", "experiments", "papers"], unmatched_names(open_kb(kb)), as_json=as_json, as_csv=as_csv)


# ---------------------------------------------------------------- review

review_app = typer.Typer()
app.add_typer(review_app, name="review")

IdsArgument = Annotated[list[int], typer.Argument(metavar="ID...", help="Measurement ids, as `kb review` lists them.",
                                                  show_default=False)]
ByOption = Annotated[Optional[str], typer.Option("--by", help="Who reviews (kept in review_log). Default: your login name.",
                                                 show_default=False)]
NoteOption = Annotated[Optional[str], typer.Option("--note", help="Why, kept in review_log.", show_default=False)]
_QUEUE_COLUMNS = ("id", "file", "page", "model", "dataset", "setting", "metric", "average", "split", "value",
                  "confidence", "snippet")


@review_app.callback(invoke_without_command=True)
def review(
    ctx: typer.Context,
    kb: KBOption = None,
    min_confidence: MinConfidenceOption = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Show at most this many.", show_default=False)] = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """List the measurements waiting for review; accept, reject or edit them with the sub-commands.

    Only accepted measurements are facts (views, exports, stats, the recommender).

    The list runs paper by paper, page by page; every decision is logged, with who and when, in review_log.

    Example: medicalrec kb review --kb my.db --min-confidence 0.5 --limit 20
    """
    if ctx.invoked_subcommand is not None:
        return
    rows = open_kb(kb).review_queue(min_confidence=min_confidence, limit=limit)
    emit_rows(_QUEUE_COLUMNS, [
        (r["id"], r["source_file"] or r["title"], r["page"], r["model_raw"], r["dataset_raw"], r["setting"],
         r["metric"], r["average"], r["split"], r["value"], r["confidence"], r["snippet"]) for r in rows],
        as_json=as_json, as_csv=as_csv, title="Measurements waiting for review")
    if not rows and not (as_json or as_csv):
        note("Nothing waits for review.")


def _done(verb: str, ids: list[int], by: Optional[str]) -> None:
    from .review import current_user

    listed = ", ".join(str(i) for i in ids)
    console.print(f"{verb} {len(ids)} measurement(s): {listed} (by {by or current_user()})", markup=False,
                  highlight=False, soft_wrap=True)


@review_app.command("accept")
def review_accept(ids: IdsArgument, kb: KBOption = None, by: ByOption = None) -> None:
    """Accept measurements as read: they become facts.

    Example: medicalrec kb review accept 12 13 --kb my.db --by alice
    """
    store = open_kb(kb, write=True)
    _done("accepted", store.accept(ids, who=by), by)


@review_app.command("reject")
def review_reject(ids: IdsArgument, kb: KBOption = None, by: ByOption = None, note_: NoteOption = None) -> None:
    """Reject measurements: they stay in the KB, logged, but out of every fact.

    Example: medicalrec kb review reject 14 --kb my.db --note "a cited result, not the paper's own"
    """
    store = open_kb(kb, write=True)
    _done("rejected", store.reject(ids, who=by, note=note_), by)


@review_app.command("edit")
def review_edit(
    measurement_id: Annotated[int, typer.Argument(metavar="ID", help="A measurement id, as `kb review` lists them.",
                                                  show_default=False)],
    kb: KBOption = None,
    value: Annotated[Optional[float], typer.Option("--value", help="The value as a fraction (93% is 0.93).",
                                                   show_default=False)] = None,
    metric: Annotated[Optional[str], typer.Option("--metric", help="One of " + ", ".join(METRICS) + ".",
                                                  show_default=False)] = None,
    average: Annotated[Optional[str], typer.Option("--average", help="macro, weighted, micro, or '' when the "
                                                   "source does not say.", show_default=False)] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="One of " + ", ".join(SPLITS) + ".",
                                                 show_default=False)] = None,
    by: ByOption = None,
    note_: NoteOption = None,
) -> None:
    """Correct a measurement and accept it (value, metric, average, split).

    Example: medicalrec kb review edit 15 --value 0.93 --metric f1 --average macro --split test --kb my.db
    """
    store = open_kb(kb, write=True)
    after = store.edit(measurement_id, who=by, value=value, metric=metric, average=average, split=split, note=note_)
    average_text = f", {after['average']}" if after["average"] else ""
    console.print(f"edited and accepted measurement {measurement_id}: {after['metric']}{average_text} = "
                  f"{after['value']:g} ({after['split']} split, by {after['reviewed_by']})", markup=False,
                  highlight=False, soft_wrap=True)
