"""`medicalrec extract`: a thin layer over medicalrec.extract.batch (no spaCy or torch at start-up)."""

from __future__ import annotations

from typing import List, Optional

import typer
from typing_extensions import Annotated

from ..errors import UserError
from ..output import JsonOption, KBOption, console, err_console, print_json
from .workers import DEFAULT_CHARS, DEFAULT_MEMORY_MB, DEFAULT_SECONDS, Limits


def register(app: typer.Typer) -> None:
    app.command("extract")(extract)


def extract(
    paths: Annotated[Optional[List[str]], typer.Argument(
        help="PDF files, folders (every *.pdf below them) or globs.", show_default=False)] = None,
    kb: KBOption = None,
    doi: Annotated[Optional[str], typer.Option(
        "--doi", help="The paper's DOI: overrides the one found in a single PDF; without a PDF, extracts "
                      "from the OpenAlex abstract.", show_default=False)] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Do not ask OpenAlex for metadata.")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Extract in N worker processes.")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Re-extract files already in the KB unchanged.")] = False,
    min_confidence: Annotated[Optional[float], typer.Option(
        "--min-confidence", min=0.0, max=1.0,
        help="Accept results whose scorer confidence reaches this; the rest wait for review (medicalrec kb review). "
             "Default: the threshold the shipped scorer was cross-validated at.", show_default=False)] = None,
    max_seconds: Annotated[float, typer.Option(
        "--max-seconds", min=1.0, help="Per-file time limit; a file over it gets status timeout.")] = DEFAULT_SECONDS,
    max_chars: Annotated[int, typer.Option(
        "--max-chars", min=1000, help="Per-file limit on characters of text; over it: status too_large.")] = DEFAULT_CHARS,
    max_memory: Annotated[int, typer.Option(
        "--max-memory", min=64, help="Per-file memory limit in MB (growth over the loaded pipeline); over it: status "
                                     "too_large.")] = DEFAULT_MEMORY_MB,
    executor: Annotated[str, typer.Option(
        "--executor", help="local (this machine, --workers processes), or ray: each file a Ray task "
                           "(pip install 'medicalrec[ray]'); the KB is written here alone.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(
        "--ray-address", help="With --executor ray: join this cluster (default: start a local one).",
        show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Extract experiments (model, dataset, features, metrics) from PDFs into the KB.

    Each file gets a status (ok, no_results, not_pdf, empty, corrupt, encrypted, no_text_layer, too_large, timeout, error) and a one-line reason; a file over a --max-* limit stops there and the batch goes on. Exit code 1 when any file failed.

    Set OPENALEX_API_KEY to add bibliographic metadata from OpenAlex.

    Example: medicalrec extract papers/ --kb my.db --offline --workers 2
    """
    from ..executor import check_executor
    from ..kb import KnowledgeBase
    from . import batch, openalex

    check_executor(executor)
    if not paths and not doi:
        raise UserError("nothing to extract: pass PDF files or folders, or --doi DOI to read a paper's "
                        "OpenAlex abstract")
    config = openalex.OpenAlexConfig.from_env()
    if not paths and offline:
        raise UserError("--doi without a PDF reads the abstract from OpenAlex: drop --offline or pass the PDF")
    if not paths and not config.api_key:
        raise UserError(f"{openalex.API_KEY_ENV} is not set: --doi without a PDF needs OpenAlex; set it "
                        "or pass the PDF")

    store = KnowledgeBase.open(kb, write=True)
    client = openalex.connect(offline=offline, kb=store, notify=_note, config=config)
    try:
        if paths:
            limits = Limits(seconds=max_seconds, chars=max_chars, memory_mb=max_memory)
            outcomes = _run_with_progress(paths, store, workers=workers, force=force, doi=doi, client=client,
                                          min_confidence=min_confidence, limits=limits, executor=executor,
                                          ray_address=ray_address)
        else:
            outcomes = [batch.extract_doi(doi, store, client)]
    finally:
        if client is not None:
            client.close()

    if as_json:
        print_json([o.as_dict() for o in outcomes])
    else:
        console.print(_table(outcomes))
    _note(_summary(outcomes, store.location.describe()))
    if any(o.failed for o in outcomes):
        raise typer.Exit(1)


def _note(message: str) -> None:
    """output.note, but kept on one line whatever the terminal width (and no markup in paths)."""
    err_console.print(message, style="dim", soft_wrap=True, markup=False, highlight=False)


def _run_with_progress(paths, store, *, workers, force, doi, client, min_confidence=None, limits=None,
                       executor="local", ray_address=None):
    from functools import partial

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from . import batch

    progress = Progress(TextColumn("extracting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.fields[last]}"), console=err_console, transient=True,
                        disable=not err_console.is_terminal)
    task = progress.add_task("extract", total=None, last="")
    with progress:
        return batch.run_batch(
            paths, store, workers=workers, force=force, doi=doi, openalex=client,
            on_start=lambda total: progress.update(task, total=total),
            on_file=lambda o: progress.update(task, advance=1, last=f"{o.source_file}: {o.status}"),
            extract=partial(batch.extract_path, min_confidence=min_confidence, limits=limits),
            limits=limits, executor=executor, ray_address=ray_address,
        )


def _table(outcomes):
    from rich.table import Table

    table = Table(title="medicalrec extract")
    table.add_column("file", overflow="fold", ratio=3)
    table.add_column("status", no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=4)
    for header in ("pages", "experiments", "measurements", "to review"):
        table.add_column(header, justify="right", no_wrap=True)
    for o in outcomes:
        style = "red" if o.failed else None
        table.add_row(o.source_file, o.status, o.reason or "", "" if o.n_pages is None else str(o.n_pages),
                      str(o.n_experiments), str(o.n_measurements), str(o.n_needs_review), style=style)
    return table


def _summary(outcomes, where: str) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    experiments = sum(o.n_experiments for o in outcomes)
    measurements = sum(o.n_measurements for o in outcomes)
    waiting = sum(o.n_needs_review for o in outcomes)
    files = "file" if len(outcomes) == 1 else "files"
    review = f" ({waiting} more wait for review: medicalrec kb review)" if waiting else ""
    return (f"{len(outcomes)} {files} ({parts}); {experiments} experiments, {measurements} measurements{review}"
            f" in {where}")
