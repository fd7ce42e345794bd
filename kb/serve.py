"""`medicalrec serve`: the KB in a browser, on Datasette.

Read-only by default: the KB file is opened immutable (or read-only while another process holds
its write-ahead log), Datasette accepts only SELECT statements, and this project adds no write
route. `--curate` adds one page, /-/medicalrec/review, where a curator on this machine accepts,
rejects or edits the measurements that `extract` left waiting for review.

Datasette is imported inside the functions: the CLI starts without it.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer
from sqlalchemy.exc import DBAPIError
from typing_extensions import Annotated

from ..errors import UserError
from ..output import KBOption, note
from . import db

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_PORT = 8001
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServePlan:
    """What `serve` will open and how: decided before Datasette is imported."""

    location: db.KBLocation
    mode: str  # immutable | read-only | curate
    host: str
    port: int
    curator: Optional[str] = None

    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plan(kb: Optional[str] = None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, curate: bool = False,
         curator: Optional[str] = None) -> ServePlan:
    """Check the KB and the options; a problem is a UserError naming the fix."""
    if not 0 < port < 65536:
        raise UserError(f"--port {port} is not a TCP port: pass a number from 1 to 65535")
    location = db.resolve(kb)
    if not location.path.exists():
        raise UserError(f"no KB at {location.path}: create one with `medicalrec kb init --kb {location.path}`"
                        " or pass another --kb")
    try:
        engine = db.make_engine(location.path, readonly=True)
        version = db.current_version(engine)
        engine.dispose()
    except (OSError, sqlite3.Error, DBAPIError) as exc:
        raise UserError(db.open_error(location, exc)) from exc
    if version == 0:
        raise UserError(db.not_a_kb(location))
    if curate:
        if location.is_seed:
            raise UserError("--curate writes review decisions and the bundled seed KB is read-only:"
                            " pass --kb PATH of a KB you may write")
        if not is_loopback(host):
            raise UserError(f"--curate serves only this machine and --host {host} is not a loopback address:"
                            " drop --host (default 127.0.0.1)")
        from .review import current_user

        who = curator.strip() if curator and curator.strip() else current_user()
        return ServePlan(location, "curate", host, port, who)
    wal = location.path.with_name(location.path.name + "-wal")
    # An immutable open ignores a write-ahead log, so rows a writer has not checkpointed would be invisible.
    mode = "read-only" if wal.exists() and wal.stat().st_size > 0 else "immutable"
    return ServePlan(location, mode, host, port)


def build(serve_plan: ServePlan) -> Any:
    """The Datasette instance for a plan (not started)."""
    from datasette.app import Datasette
    from datasette.database import Database
    from datasette.plugins import pm

    from . import serve_plugin
    from .serve_metadata import DATABASE, build_metadata

    if not pm.is_registered(serve_plugin):
        pm.register(serve_plugin, name="medicalrec")
    curation = None
    if serve_plan.mode == "curate":
        from .store import KnowledgeBase

        # Opening for writing migrates the KB first, so Datasette reads the schema the writes use.
        curation = serve_plugin.Curation(KnowledgeBase.open(serve_plan.location.path, write=True),
                                         serve_plan.curator or "")
    conn = sqlite3.connect(f"file:{serve_plan.location.path}?mode=ro", uri=True)
    try:
        metadata = build_metadata(conn, curate=curation is not None)
    finally:
        conn.close()
    datasette = Datasette(metadata=metadata, template_dir=str(TEMPLATES),
                          settings={"sql_time_limit_ms": 3000, "facet_time_limit_ms": 500})
    datasette.add_database(
        Database(datasette, path=str(serve_plan.location.path), is_mutable=serve_plan.mode != "immutable"),
        name=DATABASE)
    datasette.medicalrec_curation = curation
    return datasette


def run(serve_plan: ServePlan) -> None:
    import uvicorn

    datasette = build(serve_plan)
    what = {"immutable": "read-only (immutable)", "read-only": "read-only (the KB has a write-ahead log, so it is"
            " not opened immutable)", "curate": f"curation mode, decisions recorded as {serve_plan.curator}"}
    note(f"Serving {serve_plan.location.describe()}, {what[serve_plan.mode]}")
    typer.echo(f"medicalrec serve: {serve_plan.url()}  (Ctrl+C stops)")
    uvicorn.run(datasette.app(), host=serve_plan.host, port=serve_plan.port, log_level="warning", lifespan="on")


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        kb: KBOption = None,
        port: Annotated[int, typer.Option("--port", help="TCP port to listen on.")] = DEFAULT_PORT,
        host: Annotated[str, typer.Option("--host", help="Address to listen on; 0.0.0.0 serves the whole network"
                                          " (read-only mode only).")] = DEFAULT_HOST,
        curate: Annotated[bool, typer.Option("--curate", help="Add the review queue, where a curator on this machine"
                                             " accepts, rejects or edits extracted measurements.")] = False,
        by: Annotated[Optional[str], typer.Option("--by", help="Who reviews in --curate mode (kept in review_log)."
                                                  " Default: your login name.", show_default=False)] = None,
    ) -> None:
        """Browse the KB in a browser (Datasette): faceted tables, SQL, canned views, charts, provenance.

        Read-only unless --curate. Example: medicalrec serve --kb kb.db --port 8001
        """
        run(plan(kb, host=host, port=port, curate=curate, curator=by))
