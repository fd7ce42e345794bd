"""Output options shared by every command (declared once, sqlite-utils style): a rich table by
default, `--json` or `--csv` for scripting."""

from __future__ import annotations

import csv
import json
import math
import sys
from typing import Any, Iterable, Optional, Sequence

import typer
from rich.console import Console
from rich.table import Table
from typing_extensions import Annotated

console = Console()
err_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]
KBOption = Annotated[
    Optional[str],
    typer.Option("--kb", help="KB file. Default: $MEDICALREC_KB, else the user data dir's KB, else the bundled seed (read-only).",
                 show_default=False),
]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=_plain) + "\n")


def emit_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, as_json: bool = False,
              as_csv: bool = False, title: Optional[str] = None) -> None:
    rows = [tuple(_plain(v) for v in row) for row in rows]
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv")
    if as_json:
        print_json([dict(zip(columns, row)) for row in rows])
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    else:
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(str(column), overflow="fold")
        for row in rows:
            table.add_row(*("" if v is None else _format_cell(v) for v in row))
        console.print(table)


def _format_cell(value: Any) -> str:
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.4g}"
    return str(value)


def note(message: str) -> None:
    """A side note for humans (stderr, so --json/--csv output stays clean)."""
    err_console.print(message, style="dim", markup=False, highlight=False, soft_wrap=True)
