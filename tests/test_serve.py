"""`medicalrec serve`: Datasette over the KB, started as a user starts it (a subprocess on a free
localhost port) and read with httpx: pages, the JSON API, canned views that agree with the KB,
provenance links, the refusal of every write in the default mode, and the curation page of
`--curate` (CSRF token, one transaction per decision, recorded with who, seen by `kb export`)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from medicalrec.kb import ExperimentRecord, KnowledgeBase, MeasurementRecord, PaperRecord, Provenance, db, schema
from medicalrec.kb.serve_metadata import CHARTS, build_metadata, chart_url, schema_text, status_meanings
from medicalrec.kb.serve_plugin import NO_TOKEN, READ_ONLY, _is_local

SEED = db.seed_path()
TIMEOUT = 120  # seconds: CI machines are shared; the views are quick, the machine may not be
get = functools.partial(httpx.get, timeout=TIMEOUT)
post = functools.partial(httpx.post, timeout=TIMEOUT)
request = functools.partial(httpx.request, timeout=TIMEOUT)
SNIPPET = "Table 3: PneuNet reaches 94.20% accuracy on the test set"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(kb: Path, *extra: str, env_home: Path) -> Iterator[str]:
    """`medicalrec serve --kb KB` in a subprocess; yields its base URL once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != db.ENV_VAR}
    env["XDG_DATA_HOME"] = str(env_home)
    env_home.mkdir(parents=True, exist_ok=True)
    log_path = env_home / f"serve-{port}.log"  # a file, not a pipe nobody reads: a full pipe blocks the server
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-c", "from medicalrec.cli import main; main()", "serve", "--kb", str(kb),
         "--port", str(port), *extra],
        stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise AssertionError(f"serve exited with {process.returncode}: {log_path.read_text()}")
            try:
                if httpx.get(f"{base}/-/versions.json", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer within 90 s: {log_path.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extracted_kb(path: Path) -> KnowledgeBase:
    """A KB with one extracted paper: three numbers wait for review, one is accepted."""
    kb = KnowledgeBase.create(path)
    table = Provenance("table", page=3, snippet=SNIPPET, source_url="https://example.org/pneunet")
    pending = dict(split="test", review_status="needs_review", confidence=0.6)
    kb.save_paper(
        PaperRecord(sha256="f" * 64, title="PneuNet for pneumonia", source_file="pneunet.pdf", origin="extract",
                    doi="10.1234/pneunet"),
        [ExperimentRecord("PneuNet", "Chest X-Ray Images (Pneumonia)", measurements=[
            MeasurementRecord("accuracy", 0.942, table, **pending),
            MeasurementRecord("f1", 0.93, table, average="macro", **pending),
            MeasurementRecord("auc", 0.97, table, **pending),
            MeasurementRecord("recall", 0.95, table, split="test"),
        ])])
    kb.engine.dispose()  # no connection left open: the server sees a checkpointed file
    return kb


def waiting(path: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return {metric: mid for mid, metric in conn.execute(
            "SELECT id, metric FROM measurements WHERE review_status = 'needs_review'")}


def exported(cli, path: Path) -> list[dict]:
    result = cli("kb", "export", "--layout", "tuples", "--format", "json", "--kb", path)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory) -> Iterator[str]:
    with running_server(SEED, env_home=tmp_path_factory.mktemp("xdg")) as base:
        yield base


# ---------------------------------------------------------------- options and metadata

@pytest.mark.parametrize("args, line", [
    (("--kb", "{tmp}/none.db"), "Error: no KB at {tmp}/none.db: create one with `medicalrec kb init --kb"
                                " {tmp}/none.db` or pass another --kb"),
    (("--curate",), "Error: --curate writes review decisions and the bundled seed KB is read-only: pass --kb PATH"
                    " of a KB you may write"),
    (("--kb", "{tmp}/kb.db", "--curate", "--host", "0.0.0.0"),
     "Error: --curate serves only this machine and --host 0.0.0.0 is not a loopback address: drop --host"
     " (default 127.0.0.1)"),
    (("--port", "70000"), "Error: --port 70000 is not a TCP port: pass a number from 1 to 65535"),
])
def test_bad_options_are_one_line_errors(cli, tmp_path, args, line):
    KnowledgeBase.create(tmp_path / "kb.db").engine.dispose()
    result = cli("serve", *(a.format(tmp=tmp_path) for a in args))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == line.format(tmp=tmp_path)


def test_metadata_is_read_from_the_schema_and_the_kb_file():
    meanings = status_meanings(schema_text())
    assert set(meanings) == set(schema.STATUSES)
    with contextlib.closing(sqlite3.connect(f"file:{SEED}?mode=ro", uri=True)) as conn:
        metadata = build_metadata(conn)
        kb_meta = metadata["databases"]["kb"]
        tables = kb_meta["tables"]
        assert tables["papers"]["description_html"].startswith("One row per publication.")
        for status, meaning in meanings.items():  # every missing-value status explained where the values are
            assert f"<code>{status}</code>" in tables["feature_values"]["description_html"]
            assert status in tables["feature_values"]["columns"]["status"]
        assert tables["experiment_wide"]["facets"] == ["domain", "modality", "model_family", "dataset", "origin"]
        for table, entry in tables.items():  # facets only on columns the file has
            columns = {row[1] for row in conn.execute(f"PRAGMA table_xinfo([{table}])")}
            assert set(entry.get("facets", [])) <= columns, table
        for name, query in kb_meta["queries"].items():  # every canned view runs on the seed
            params = {p: ("1" if p == "experiment_id" else "") for p in query.get("params", [])}
            conn.execute(query["sql"], params).fetchall()
    assert {"bench_layout", "best_result", "missingness", "validated_vs_published", "papers_with_status",
            "needs_review", "accuracy_by_family"} <= set(kb_meta["queries"])
    assert all(chart["query"] in kb_meta["queries"] for chart in CHARTS)


def test_only_loopback_clients_count_as_local():
    assert _is_local(type("R", (), {"scope": {"client": ("127.0.0.1", 5000)}})())
    assert _is_local(type("R", (), {"scope": {"client": ("::1", 5000)}})())
    assert not _is_local(type("R", (), {"scope": {"client": ("192.168.1.20", 5000)}})())
    assert not _is_local(type("R", (), {"scope": {}})())


# ---------------------------------------------------------------- the read-only server

def test_home_page_explains_the_kb_and_links_views_and_charts(seed_server):
    page = get(f"{seed_server}/kb")
    assert page.status_code == 200
    assert "Why a value is missing" in page.text and "not_applicable" in page.text
    assert "/kb/best_result" in page.text and "g.mark=circle" in page.text
    assert "Served read-only" in page.text
    versions = get(f"{seed_server}/-/plugins.json").json()
    assert {"medicalrec.kb.serve_plugin", "datasette-vega"} <= {p["name"] for p in versions}


def test_table_json_has_the_facets_and_the_kb_counts(seed_server):
    with contextlib.closing(sqlite3.connect(f"file:{SEED}?mode=ro", uri=True)) as conn:
        families = dict(conn.execute("SELECT m.family, COUNT(*) FROM experiments e JOIN models m"
                                     " ON m.id = e.model_id GROUP BY 1"))
        n_experiments = conn.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]
    data = get(f"{seed_server}/kb/experiment_wide.json?_size=1&_facet_size=100").json()
    assert data["filtered_table_rows_count"] == n_experiments
    facet = {item["value"]: item["count"] for item in data["facet_results"]["model_family"]["results"]}
    assert facet == families
    assert {"domain", "modality", "dataset", "origin"} <= set(data["facet_results"])
    resnets = get(f"{seed_server}/kb/experiment_wide.json?model_family=ResNet&_shape=array&_size=max").json()
    assert len(resnets) == families["ResNet"] and {r["model_family"] for r in resnets} == {"ResNet"}


def test_best_result_is_the_highest_accepted_figure_with_its_source(seed_server):
    rows = get(f"{seed_server}/kb/best_result.json?_shape=array&_size=max&metric=auc").json()
    assert rows and {r["metric"] for r in rows} == {"auc"}
    with contextlib.closing(sqlite3.connect(f"file:{SEED}?mode=ro", uri=True)) as conn:
        for row in rows[:25]:
            best = conn.execute(
                "SELECT MAX(ms.value), COUNT(*) FROM measurements ms JOIN experiments e ON e.id = ms.experiment_id"
                " JOIN models m ON m.id = e.model_id WHERE ms.metric = 'auc' AND ms.review_status = 'accepted'"
                " AND m.name = ? AND e.id IN (SELECT experiment_id FROM feature_values WHERE feature = 'domain'"
                " AND value_text = ?)", (row["model"], row["domain"])).fetchone()
            assert (row["value"], row["n_results"]) == best, row
            source = conn.execute("SELECT COUNT(*) FROM measurements WHERE experiment_id = ? AND metric = 'auc'"
                                  " AND value = ?", (row["experiment_id"], row["value"])).fetchone()[0]
            assert source == 1 and row["source_url"], row


def test_every_value_links_to_its_provenance(seed_server):
    page = get(f"{seed_server}/kb/best_result?_size=5").text
    ids = re.findall(r'href="/kb/provenance\?experiment_id=(\d+)"', page)
    assert ids, page[:2000]
    provenance = get(f"{seed_server}/kb/provenance.json?_shape=array&experiment_id={ids[0]}").json()
    assert {r["kind"] for r in provenance} == {"feature", "measurement"}
    assert len([r for r in provenance if r["kind"] == "feature"]) == len(schema.FEATURES)
    assert all(r["source_url"] or r["doi"] for r in provenance)
    papers = get(f"{seed_server}/kb/papers?_size=5").text
    assert 'href="https://doi.org/10.' in papers


def test_chart_links_point_at_canned_queries_with_rows(seed_server):
    for chart in CHARTS[:2]:
        url = chart_url(chart, seed_server)
        rows = get(url.split("#")[0].replace(f"/{chart['query']}", f"/{chart['query']}.json")
                         + "?_shape=array").json()
        assert rows and chart["chart"]["x_column"] in rows[0] and chart["chart"]["y_column"] in rows[0]


@pytest.mark.parametrize("method, path", [
    ("POST", "/kb/measurements"),
    ("POST", "/kb/best_result"),
    ("POST", "/kb/-/create"),
    ("POST", "/kb/measurements/-/insert"),
    ("POST", "/kb/measurements/1/-/update"),
    ("POST", "/kb/measurements/1/-/delete"),
    ("POST", "/kb/measurements/-/drop"),
    ("POST", "/-/medicalrec/review"),
    ("PUT", "/kb/measurements/1"),
    ("DELETE", "/kb/measurements/1"),
    ("PATCH", "/kb/papers/1"),
])
def test_default_mode_refuses_every_write_route(seed_server, method, path):
    before = digest(SEED)
    response = request(method, f"{seed_server}{path}", data={"id": "1", "action": "accept"})
    assert (response.status_code, response.text) == (405, READ_ONLY)
    assert digest(SEED) == before


def test_default_mode_has_no_review_page(seed_server):
    assert get(f"{seed_server}/-/medicalrec/review").status_code == 404


@pytest.mark.parametrize("sql", [
    "UPDATE measurements SET value = 0",
    "DELETE FROM papers",
    "ATTACH DATABASE '/tmp/x.db' AS x",
    "INSERT INTO papers (title) VALUES ('x')",
    "PRAGMA query_only = 0",
    "select 1; update measurements set value = 0",
])
def test_default_mode_refuses_sql_that_writes(seed_server, sql):
    before = digest(SEED)
    response = get(f"{seed_server}/kb.json", params={"sql": sql})
    assert response.status_code == 400, response.text[:300]
    assert response.json()["ok"] is False
    html_page = get(f"{seed_server}/kb", params={"sql": sql})
    assert html_page.status_code == 400
    assert digest(SEED) == before


# ---------------------------------------------------------------- curation

def test_curate_accept_edit_reject_through_the_browser_route(cli, tmp_path):
    path = tmp_path / "kb.db"
    extracted_kb(path)
    ids = waiting(path)
    assert set(ids) == {"accuracy", "f1", "auc"} and exported(cli, path) and len(exported(cli, path)) == 1

    with running_server(path, env_home=tmp_path / "xdg") as base:  # the default mode first: no route
        assert get(f"{base}/-/medicalrec/review").status_code == 404
        assert get(f"{base}/kb/needs_review.json?_shape=array").json()[0]["snippet"] == SNIPPET
    assert waiting(path) == ids

    with running_server(path, "--curate", "--by", "alice", env_home=tmp_path / "xdg") as base, \
            httpx.Client(base_url=base, timeout=TIMEOUT) as browser:
        page = browser.get("/-/medicalrec/review")
        assert page.status_code == 200 and SNIPPET in page.text and "pneunet.pdf" in page.text
        token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)

        # A cross-site form carries no cookie (SameSite=Lax), and asgi-csrf would let that through.
        forged = post(f"{base}/-/medicalrec/review", data={"id": ids["accuracy"], "action": "accept"})
        assert (forged.status_code, forged.text) == (403, NO_TOKEN)
        wrong = browser.post("/-/medicalrec/review", data={"csrftoken": "x" + token, "id": ids["accuracy"],
                                                           "action": "accept"})
        assert wrong.status_code == 403
        assert waiting(path) == ids

        accepted = browser.post("/-/medicalrec/review", data={"csrftoken": token, "id": ids["accuracy"],
                                                              "action": "accept"})
        assert accepted.status_code == 302
        edited = browser.post("/-/medicalrec/review", data={
            "csrftoken": token, "id": ids["f1"], "action": "edit", "value": "0.915", "metric": "f1",
            "average": "weighted", "split": "test", "note": "table 3 says weighted"})
        assert edited.status_code == 302
        rejected = browser.post("/-/medicalrec/review", data={"csrftoken": token, "id": ids["auc"],
                                                              "action": "reject", "note": "caption figure"})
        assert rejected.status_code == 302
        again = browser.post("/-/medicalrec/review", data={"csrftoken": token, "id": ids["auc"], "action": "accept"},
                             follow_redirects=True)
        assert "measurement {} was already rejected".format(ids["auc"]) in again.text  # said, nothing changed
        assert browser.get("/-/medicalrec/review?_json=1").json()["items"] == []

    assert waiting(path) == {}
    facts = {(t["metric"], t["average"]): t["value"] for t in exported(cli, path)}
    assert facts == {("recall", ""): 0.95, ("accuracy", ""): 0.942, ("f1", "weighted"): 0.915}
    with contextlib.closing(sqlite3.connect(path)) as conn:
        log = conn.execute("SELECT measurement_id, action, who, note FROM review_log ORDER BY id").fetchall()
    assert log == [(ids["accuracy"], "accept", "alice", None), (ids["f1"], "edit", "alice", "table 3 says weighted"),
                   (ids["auc"], "reject", "alice", "caption figure")]


def test_a_kb_with_an_unchecked_write_ahead_log_is_served_read_only_not_immutable(tmp_path):
    from medicalrec.kb.serve import plan

    path = tmp_path / "kb.db"
    kb = KnowledgeBase.create(path)  # the engine stays open: its writes sit in kb.db-wal
    with kb.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
        conn.exec_driver_sql("INSERT INTO http_cache (url, status_code, body, fetched_at) VALUES ('u', 200, '', 'now')")
        conn.commit()
        assert plan(str(path)).mode == "read-only"  # immutable would not see the row in the WAL
    kb.engine.dispose()  # the last connection checkpoints and removes the WAL
    assert plan(str(path)).mode == "immutable"


def test_the_cli_starts_without_importing_datasette():
    code = "import sys, medicalrec.cli; print('datasette' in sys.modules, 'uvicorn' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
