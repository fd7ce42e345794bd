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
from .store import KnowledgeBase

app = typer.Typer(help="Query and curate the knowledge base.\n\nExample: medicalrec kb stats --json", no_args_is_help=True)


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

Metrics may be fractions or percentages (a value above 1 is a percentage). An empty cell is stored as `not_reported`. Bad rows are reported as `line N: reason` and skipped; the exit code is then 1 (2 when the file is unusable).

Example: medicalrec kb import literature.csv --kb my.db --dry-run
"""


@app.command("import", help=_IMPORT_HELP)
def import_(
    file: Annotated[Path, typer.Argument(help="A UTF-8 CSV file in the curated or the bench layout.", show_default=False)],
    kb: KBOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file and count what would be added; write nothing.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List the model and dataset names the catalogues do not know.")] = False,
    as_json: JsonOption = False,
) -> None:
    from .importers import import_file

    if dry_run:
        location = resolve(kb)
        store = KnowledgeBase.open(kb) if location.path.exists() else KnowledgeBase.in_memory()
        note(f"Dry run against {store.location.describe() if location.path.exists() else 'an empty KB'}: nothing is written")
    else:
        store = open_kb(kb, write=True)
    report = import_file(store, file, dry_run=dry_run)
    for problem in report.problems:
        err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(report.to_dict())
    else:
        _print_import_summary(report, verbose)
    if report.problems:
        raise typer.Exit(1)


def _print_import_summary(report, verbose: bool) -> None:
    verb = "would add" if report.dry_run else "added"
    rows = [
        ("layout", report.layout), ("rows", report.rows), ("rows failed", report.rows_failed),
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
) -> None:
    """Export the KB's experiments (curated/bench layouts, which `kb import` reads back) or its measurements (tuples).

    Example: medicalrec kb export --layout tuples --format json --output tuples.json
    """
    from .exporters import export as write_export

    store = open_kb(kb)
    if output is None:
        write_export(store, sys.stdout, layout=layout.value, fmt=fmt.value)
        return
    try:
        with output.open("w", encoding="utf-8", newline="") as fh:
            n = write_export(store, fh, layout=layout.value, fmt=fmt.value)
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
