"""The Datasette plugin of `medicalrec serve`: provenance links in cells, and the curation page.

The curation routes exist only when `serve --curate` attached a `Curation` to the Datasette
instance; they answer only clients on this machine, every POST carries Datasette's CSRF token
(asgi-csrf refuses one without it), and every decision goes through kb/review.py, one transaction
each, recorded in review_log with who and when."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import quote

from datasette import hookimpl
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from .db import KBError
from .schema import AVERAGES, FEATURES, METRICS, SPLITS
from .serve_metadata import DATABASE
from .store import KnowledgeBase

REVIEW_PATH = "/-/medicalrec/review"
LOCAL_ONLY = "the review queue answers only this machine: open it from a browser on the server"
READ_ONLY = ("medicalrec serve is read-only: nothing can be written through it"
             " (curators start `medicalrec serve --kb PATH --curate` and use /-/medicalrec/review)")
NO_TOKEN = "this form has no CSRF token: reload the review page and submit it from there"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_COOKIE = "ds_csrftoken"  # Datasette's asgi-csrf cookie


@dataclass
class Curation:
    """What `serve --curate` hands the plugin: the writable KB and who decides."""

    kb: KnowledgeBase
    curator: str


def curation_of(datasette: Any) -> Optional[Curation]:
    return getattr(datasette, "medicalrec_curation", None)


# ---------------------------------------------------------------- provenance links

def _row_value(row: Any, key: str) -> Any:
    try:
        return row[key]
    except (KeyError, IndexError):
        return None


def _provenance_link(experiment_id: Any, label: Any, datasette: Any) -> Markup:
    url = datasette.urls.path(f"/{DATABASE}/provenance?experiment_id={int(experiment_id)}")
    return Markup(f'<a href="{escape(url)}" title="provenance of experiment {int(experiment_id)}">{escape(label)}</a>')


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if database != DATABASE or value is None or value == "":
        return None
    if column == "doi" and isinstance(value, str):
        return Markup(f'<a href="https://doi.org/{escape(quote(value, safe="/:;()"))}">{escape(value)}</a>')
    if column == "source_url" and isinstance(value, str) and value.startswith(("http://", "https://")):
        return Markup(f'<a href="{escape(value)}" rel="nofollow">{escape(value)}</a>')
    if column == "source_file" and isinstance(value, str):
        url = datasette.urls.table(DATABASE, "papers") + "?source_file=" + quote(value)
        return Markup(f'<a href="{escape(url)}" title="papers read from this file">{escape(value)}</a>')
    experiment_id = _row_value(row, "experiment_id")
    if column == "experiment_id" and table in (None, "experiment_wide") and isinstance(value, int):
        return _provenance_link(value, value, datasette)
    # A feature or metric of an experiment: the value links to the page, snippet and source it came from.
    if table in (None, "experiment_wide") and isinstance(experiment_id, int) and (
            column in METRICS or column in FEATURES or column == "value"):
        return _provenance_link(experiment_id, value, datasette)
    return None


# ---------------------------------------------------------------- curation

def _is_local(request: Any) -> bool:
    client = request.scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return client[0] == "localhost"


def _changed(item: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """The fields of an edit form that differ from the stored measurement."""
    changes: dict[str, Any] = {}
    raw_value = (form.get("value") or "").strip()
    if raw_value:
        try:
            value = float(raw_value)
        except ValueError as exc:
            raise KBError(f"value {raw_value!r} is not a number: enter a fraction (93% is 0.93)") from exc
        if value != item["value"]:
            changes["value"] = value
    for field in ("metric", "average", "split"):
        if field in form and form[field] != item[field]:
            changes[field] = form[field]
    return changes


async def review_page(datasette, request):
    curation = curation_of(datasette)
    if curation is None:
        return Response.text("not found", status=404)
    if not _is_local(request):
        return Response.text(LOCAL_ONLY, status=403)
    items = await asyncio.to_thread(curation.kb.review_queue)
    if request.args.get("_json"):
        return Response.json({"curator": curation.curator, "items": items})
    return Response.html(await datasette.render_template(
        "medicalrec_review.html",
        {"items": items, "curator": curation.curator, "metrics": METRICS, "splits": SPLITS, "averages": AVERAGES,
         "action_path": REVIEW_PATH},
        request=request))


async def review_action(datasette, request):
    curation = curation_of(datasette)
    if curation is None:
        return Response.text("not found", status=404)
    if not _is_local(request):
        return Response.text(LOCAL_ONLY, status=403)
    form = dict(await request.post_vars())
    # asgi-csrf checks the token only when the request carries cookies; a cross-site form POST
    # (SameSite=Lax cookies stay home) carries none, so the token and its cookie are required here.
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or form.get("csrftoken") != cookie:
        return Response.text(NO_TOKEN, status=403)
    try:
        message = await asyncio.to_thread(_decide, curation, form)
        datasette.add_message(request, message, datasette.INFO)
    except KBError as exc:  # a bad id, an item already decided, a value out of range: said, nothing changed
        datasette.add_message(request, str(exc), datasette.ERROR)
    return Response.redirect(datasette.urls.path(REVIEW_PATH))


def _decide(curation: Curation, form: dict[str, str]) -> str:
    try:
        measurement_id = int(form.get("id", ""))
    except ValueError as exc:
        raise KBError("no measurement id in the form: reload the review page") from exc
    action = form.get("action", "")
    note = (form.get("note") or "").strip() or None
    kb, who = curation.kb, curation.curator
    if action == "accept":
        kb.accept([measurement_id], who=who)
        return f"accepted measurement {measurement_id} (by {who})"
    if action == "reject":
        kb.reject([measurement_id], who=who, note=note)
        return f"rejected measurement {measurement_id} (by {who})"
    if action == "edit":
        pending = {row["id"]: row for row in kb.review_queue()}
        if measurement_id not in pending:
            raise KBError(f"measurement {measurement_id} is not waiting for review: only the ids this page lists"
                          " can be edited")
        after = kb.edit(measurement_id, who=who, note=note, **_changed(pending[measurement_id], form))
        return (f"edited and accepted measurement {measurement_id}: {after['metric']} {after['value']:g}"
                f" ({after['split']}) (by {who})")
    raise KBError(f"unknown action {action!r}: use the accept, reject or edit button")


async def review_route(datasette, request):
    if request.method == "POST":
        return await review_action(datasette, request)
    return await review_page(datasette, request)


@hookimpl
def asgi_wrapper(datasette):
    """Refuse every method but GET/HEAD/OPTIONS before Datasette sees it, except the review form's
    POST in curation mode: a write is impossible whatever route a later Datasette may add."""

    def wrap(app):
        async def read_only(scope, receive, send):
            allowed = scope["type"] != "http" or scope["method"] in SAFE_METHODS or (
                curation_of(datasette) is not None and scope["path"] == REVIEW_PATH)
            if allowed:
                return await app(scope, receive, send)
            await send({"type": "http.response.start", "status": 405,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"allow", b"GET, HEAD")]})
            await send({"type": "http.response.body", "body": READ_ONLY.encode()})

        return read_only

    return wrap


@hookimpl
def register_routes(datasette):
    if curation_of(datasette) is None:
        return []  # read-only: the write route does not exist at all
    return [(r"^/-/medicalrec/review$", review_route)]
