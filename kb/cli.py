"""`medicalrec kb`: the analysts' commands, a thin layer over medicalrec.kb."""

from __future__ import annotations

import typer

from ..output import KBOption, console
from .store import KnowledgeBase

app = typer.Typer(help="Query and curate the knowledge base.\n\nExample: medicalrec kb stats --json", no_args_is_help=True)


@app.command()
def init(kb: KBOption = None) -> None:
    """Create (or migrate) a KB file.

    Example: medicalrec kb init --kb my.db
    """
    store = KnowledgeBase.open(kb, write=True)
    console.print(f"KB ready: {store.location.describe()}")
