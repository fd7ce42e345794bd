"""OpenAlex: URL building, parsing, retries, caching and lookups, all replayed offline."""

from __future__ import annotations

import json
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from conftest import shared_path
from medicalrec.extract import openalex as oa
from medicalrec.kb import PaperRecord
from openalex_replay import CHEM_TITLE, OWN_FIXTURES, SKIN_TITLE, Replay, own_routes, public_url, shared_routes

KEYED = oa.OpenAlexConfig(api_key="test-key", mailto="lab@example.org", backoff=1.0, max_retries=3)


def make(routes, *, kb=None, config=KEYED):
    replay = Replay(routes)
    sleeps: list[float] = []
    return oa.OpenAlex(config, kb=kb, transport=replay.transport, sleep=sleeps.append), replay, sleeps


@pytest.fixture
def shared_dir():
    return shared_path("fixtures", "openalex")


# ---------------------------------------------------------------- URLs

def test_urls_match_the_recorded_request_uris(shared_dir):
    sources = (shared_dir / "SOURCES.md").read_text()
    assert oa.work_url_by_doi("10.1073/pnas.1414271111") in sources
    assert oa.work_url_by_doi("https://doi.org/10.1016/J.XGEN.2025.100814") in sources
    assert oa.title_search_url(CHEM_TITLE) in sources


def test_title_search_url_keeps_filter_syntax_out_of_the_title():
    url = oa.title_search_url("ChemCrow: tools, agents | more")
    query = httpx.URL(url).params["filter"]
    assert query == "title.search:ChemCrow tools agents more"


def test_credentials_travel_with_the_request_but_not_in_the_cache_key(kb):
    client, replay, _ = make(own_routes(), kb=kb)
    client.work_by_doi("10.5555/jsmi.2023.0412")
    sent = replay.requests[0].url
    assert sent.params["api_key"] == "test-key" and sent.params["mailto"] == "lab@example.org"
    _, rows = kb.query("SELECT url FROM http_cache")
    assert rows == [(oa.work_url_by_doi("10.5555/jsmi.2023.0412"),)]
    assert "api_key" not in rows[0][0]


def test_search_filter_survives_added_credentials(kb):
    client, replay, _ = make(own_routes(), kb=kb)
    works = client.search_title(SKIN_TITLE)
    assert len(works) == 3
    assert replay.requests[0].url.params["filter"].startswith("title.search:Comparing")


def test_bad_doi_names_the_flag():
    with pytest.raises(oa.UserError, match="--doi"):
        oa.work_url_by_doi("   ")


# ---------------------------------------------------------------- parsing

def test_abstract_rebuilt_from_inverted_index(shared_dir):
    work = json.loads((shared_dir / "work_by_doi_10.1073_pnas.1414271111.json").read_text())
    abstract = oa.abstract_from_inverted_index(work["abstract_inverted_index"])
    positions = sum(len(p) for p in work["abstract_inverted_index"].values())
    assert abstract.startswith("Significance The inadequate")
    assert len(abstract.split()) == positions


def test_abstract_words_are_ordered_by_position_not_by_key_order():
    assert oa.abstract_from_inverted_index({"world": [1], "hello": [0, 2]}) == "hello world hello"
    assert oa.abstract_from_inverted_index(None) is None
    assert oa.abstract_from_inverted_index({}) is None


def test_parse_real_work(shared_dir):
    work = oa.parse_work(json.loads((shared_dir / "work_by_doi_10.1073_pnas.1414271111.json").read_text()))
    assert work.openalex_id == "W2109415576"
    assert work.doi == "10.1073/pnas.1414271111"
    assert work.year == 2014
    assert work.venue == "Proceedings of the National Academy of Sciences"
    assert work.authors[0] == "Eleftherios Makris"
    assert not work.is_preprint


def test_parse_work_without_abstract(shared_dir):
    raw = json.loads((shared_dir / "work_by_doi_10.1016_j.xgen.2025.100814_no_abstract.json").read_text())
    work = oa.parse_work(raw)
    assert work.abstract is None
    assert work.title.startswith("High-throughput screening")
    assert work.paper_fields()["abstract"] is None


def test_parse_own_fixture_for_the_synthetic_paper():
    work = oa.parse_work(json.loads((OWN_FIXTURES / "work_by_doi_10.5555_jsmi.2023.0412.json").read_text()))
    assert work.year == 2023 and work.venue == "Journal of Synthetic Medical Imaging"
    assert work.authors == ["Ana Rivera", "Bo Chen", "Chidi Okafor"]
    assert "Kermany chest X-ray dataset" in work.abstract


def test_title_match_prefers_the_journal_version_over_the_preprint(shared_dir):
    raw = json.loads((shared_dir / "works_title_search_augmenting_llms_chemistry_tools.json").read_text())
    works = [oa.parse_work(w) for w in raw["results"]]
    assert any(w.is_preprint for w in works)
    best = oa.best_title_match(CHEM_TITLE, works, 0.9)
    assert best.openalex_id == "W4396723768" and not best.is_preprint


def test_identical_preprint_title_ranked_first_still_loses():
    raw = json.loads((OWN_FIXTURES / "works_title_search_skin_lesion_ham10000.json").read_text())
    works = [oa.parse_work(w) for w in raw["results"]]
    assert works[0].is_preprint and works[0].title == works[1].title  # the trap the fixture sets
    best = oa.best_title_match(SKIN_TITLE.upper() + ".", works, 0.9)
    assert best.doi == "10.5555/wsd.2022.17"


def test_unrelated_titles_do_not_match():
    raw = json.loads((OWN_FIXTURES / "works_title_search_skin_lesion_ham10000.json").read_text())
    works = [oa.parse_work(w) for w in raw["results"]]
    assert oa.best_title_match("Pneumonia detection in chest radiographs", works, 0.9) is None


# ---------------------------------------------------------------- fetching, retries, cache

def test_lookup_by_doi_then_cached(kb, shared_dir):
    client, replay, _ = make(shared_routes(shared_dir), kb=kb)
    first = client.lookup(doi="10.1073/PNAS.1414271111", title="ignored when the DOI is found")
    assert first.via == "doi" and first.work.openalex_id == "W2109415576"
    assert len(replay.requests) == 1
    again, replay_again, _ = make(shared_routes(shared_dir), kb=kb)
    second = again.lookup(doi="10.1073/pnas.1414271111")
    assert second.work.title == first.work.title
    assert replay_again.requests == []  # a re-run asks nothing twice


def test_lookup_falls_back_to_title_search_when_doi_is_unknown(kb):
    client, replay, _ = make(own_routes(), kb=kb)
    found = client.lookup(doi="10.5555/unknown.doi", title=SKIN_TITLE)
    assert found.via == "title" and found.work.doi == "10.5555/wsd.2022.17"
    assert "not in OpenAlex" in found.note
    assert len(replay.requests) == 2
    # the 404 is cached too
    _, rows = kb.query("SELECT status_code FROM http_cache WHERE url = :u",
                       {"u": oa.work_url_by_doi("10.5555/unknown.doi")})
    assert rows == [(404,)]


def test_lookup_without_doi_or_usable_title_asks_nothing():
    client, replay, _ = make({})
    found = client.lookup(doi=None, title="Results")
    assert found.work is None and found.note
    assert replay.requests == []


def test_retry_after_429_then_success():
    url = oa.work_url_by_doi("10.5555/jsmi.2023.0412")
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}),
                    httpx.Response(200, content=(OWN_FIXTURES / "work_by_doi_10.5555_jsmi.2023.0412.json").read_bytes())])
    client, replay, sleeps = make({url: lambda request: next(answers)})
    work = client.work_by_doi("10.5555/jsmi.2023.0412")
    assert work.openalex_id == "W5555000412"
    assert sleeps == [7.0]
    assert len(replay.requests) == 2


def test_exponential_backoff_on_5xx_without_retry_after():
    url = oa.work_url_by_doi("10.5555/x")
    answers = iter([httpx.Response(503), httpx.Response(502), httpx.Response(500), httpx.Response(200, json={"id": "W1"})])
    client, _, sleeps = make({url: lambda request: next(answers)})
    assert client.get_json(url) == {"id": "W1"}
    assert sleeps == [1.0, 2.0, 4.0]


def test_retry_after_as_http_date_is_honoured_and_capped():
    url = oa.work_url_by_doi("10.5555/x")
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    far = format_datetime(datetime.now(timezone.utc) + timedelta(hours=2), usegmt=True)
    answers = iter([httpx.Response(429, headers={"Retry-After": later}),
                    httpx.Response(429, headers={"Retry-After": far}), httpx.Response(200, json={})])
    client, _, sleeps = make({url: lambda request: next(answers)})
    client.get_json(url)
    assert 25 <= sleeps[0] <= 30
    assert sleeps[1] == KEYED.max_backoff


def test_gives_up_after_max_retries_with_one_line_error(kb):
    url = oa.work_url_by_doi("10.5555/x")
    client, replay, sleeps = make({url: httpx.Response(503)}, kb=kb)
    with pytest.raises(oa.OpenAlexError, match="HTTP 503 4 times") as info:
        client.get_json(url)
    assert "\n" not in str(info.value)
    assert len(replay.requests) == KEYED.max_retries + 1 and len(sleeps) == KEYED.max_retries
    assert kb.cache_get(url) is None  # failures are not cached


def test_network_errors_are_retried_then_reported():
    calls = []

    def refuse(request):
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    client = oa.OpenAlex(KEYED, transport=httpx.MockTransport(refuse), sleep=lambda s: None)
    with pytest.raises(oa.OpenAlexError, match="unreachable .*--offline"):
        client.work_by_doi("10.5555/x")
    assert len(calls) == KEYED.max_retries + 1


def test_refused_key_names_the_variable():
    url = oa.work_url_by_doi("10.5555/x")
    client, replay, sleeps = make({url: httpx.Response(403)})
    with pytest.raises(oa.OpenAlexError, match="OPENALEX_API_KEY"):
        client.get_json(url)
    assert len(replay.requests) == 1 and sleeps == []


# ---------------------------------------------------------------- configuration

def test_config_from_env():
    config = oa.OpenAlexConfig.from_env({"OPENALEX_API_KEY": "k", "OPENALEX_MAILTO": "me@x.org"}, timeout=3.0)
    assert (config.api_key, config.mailto, config.timeout) == ("k", "me@x.org", 3.0)
    assert oa.OpenAlexConfig.from_env({}).auth_params() == {}


def test_connect_without_key_notices_once_and_goes_offline():
    notices: list[str] = []
    client = oa.connect(offline=False, notify=notices.append, config=oa.OpenAlexConfig())
    assert client is None
    assert notices == [oa.NO_KEY_NOTICE]
    assert "--offline" in notices[0]


def test_connect_offline_is_silent_and_keyed_connects():
    notices: list[str] = []
    assert oa.connect(offline=True, notify=notices.append, config=KEYED) is None
    assert notices == []
    client = oa.connect(offline=False, notify=notices.append, config=KEYED)
    assert isinstance(client, oa.OpenAlex) and notices == []
    client.close()


def test_apply_work_keeps_the_pdf_doi_and_fills_the_rest():
    work = oa.parse_work(json.loads((OWN_FIXTURES / "work_by_doi_10.5555_jsmi.2023.0412.json").read_text()))
    paper = PaperRecord(sha256="abc", doi="10.5555/from.the.pdf", title="pdf title")
    oa.apply_work(paper, work)
    assert paper.doi == "10.5555/from.the.pdf"
    assert paper.title.startswith("Transfer Learning") and paper.year == 2023
    assert paper.openalex_id == "W5555000412" and paper.authors[1] == "Bo Chen"
    assert paper.source_url == "https://doi.org/10.5555/jsmi.2023.0412"


def test_public_url_helper_matches_client_urls():
    url = httpx.URL(oa.title_search_url(SKIN_TITLE)).copy_merge_params({"api_key": "x"})
    assert public_url(url) == oa.title_search_url(SKIN_TITLE)
