"""OpenAlex metadata for extracted papers, pyalex style: one config object, one client factory,
URL building kept apart from fetching.

URLs are built without credentials; `api_key` and `mailto` are added when a request is sent, so
the KB's HTTP cache is keyed by the public URL and a re-run (or another user's key) asks
nothing twice. Fetching retries 429 and 5xx answers with exponential backoff, honouring
Retry-After; the sleep function is injected so tests never wait.
"""

from __future__ import annotations

import json
import os
import re
import time
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from difflib import SequenceMatcher
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Callable, Mapping, Optional
from urllib.parse import quote, urlencode

import httpx

from ..errors import UserError
from ..kb.records import PaperRecord, normalize_doi

if TYPE_CHECKING:
    from ..kb import KnowledgeBase

OPENALEX_URL = "https://api.openalex.org"
API_KEY_ENV = "OPENALEX_API_KEY"
MAILTO_ENV = "OPENALEX_MAILTO"
NO_KEY_NOTICE = f"{API_KEY_ENV} is not set: skipping OpenAlex metadata (use --offline to silence)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Sleep = Callable[[float], None]


class OpenAlexError(UserError):
    """OpenAlex could not answer; the message is one line that says what to do."""


@dataclass(frozen=True)
class OpenAlexConfig:
    base_url: str = OPENALEX_URL
    api_key: Optional[str] = None
    mailto: Optional[str] = None  # OpenAlex's "polite pool": a contact address for the operators
    timeout: float = 20.0  # seconds per request
    max_retries: int = 4  # further tries after the first, for 429 / 5xx / network errors
    backoff: float = 1.0  # first retry delay in seconds; doubled on each retry
    max_backoff: float = 60.0
    min_title_similarity: float = 0.9  # a title-search hit below this is another paper

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides) -> "OpenAlexConfig":
        config = cls(api_key=environ.get(API_KEY_ENV) or None, mailto=environ.get(MAILTO_ENV) or None)
        return replace(config, **overrides)

    def auth_params(self) -> dict[str, str]:
        params = {"api_key": self.api_key, "mailto": self.mailto}
        return {k: v for k, v in params.items() if v}


def make_client(config: OpenAlexConfig, transport: Optional[httpx.BaseTransport] = None) -> httpx.Client:
    """The one place an HTTP client for OpenAlex is made (tests pass an httpx.MockTransport)."""
    agent = f"medicalrec/{_version()}" + (f" (mailto:{config.mailto})" if config.mailto else "")
    return httpx.Client(timeout=httpx.Timeout(config.timeout), transport=transport, follow_redirects=True,
                        headers={"User-Agent": agent, "Accept": "application/json"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("medicalrec")
    except PackageNotFoundError:
        return "dev"


# ---------------------------------------------------------------- URLs (no credentials in them)

def work_url_by_doi(doi: str, base_url: str = OPENALEX_URL) -> str:
    cleaned = normalize_doi(doi)
    if not cleaned:
        raise UserError(f"{doi!r} is not a DOI: pass --doi like 10.1038/nature21056")
    return f"{base_url}/works/https://doi.org/{quote(cleaned, safe='')}"


def title_search_url(title: str, base_url: str = OPENALEX_URL) -> str:
    # "," separates filters and "|" means OR inside one, so neither may reach the search text.
    cleaned = " ".join(re.sub(r"[,|:;]", " ", title).split())
    return f"{base_url}/works?" + urlencode({"filter": f"title.search:{cleaned}"})


# ---------------------------------------------------------------- parsing

def abstract_from_inverted_index(index: Optional[Mapping[str, list[int]]]) -> Optional[str]:
    """OpenAlex ships abstracts as {word: [positions]}; put the words back in order."""
    if not index:
        return None
    by_position = {position: word for word, positions in index.items() for position in positions}
    text = " ".join(by_position[p] for p in sorted(by_position))
    return text or None


def _short_id(openalex_id: Optional[str]) -> Optional[str]:
    return openalex_id.rsplit("/", 1)[-1] if openalex_id else None


@dataclass
class WorkMetadata:
    openalex_id: Optional[str]
    doi: Optional[str]
    title: Optional[str]
    year: Optional[int]
    venue: Optional[str]
    authors: list[str] = field(default_factory=list)
    abstract: Optional[str] = None
    landing_page_url: Optional[str] = None
    is_preprint: bool = False
    cited_by_count: int = 0
    relevance_score: float = 0.0

    def paper_fields(self) -> dict:
        """The PaperRecord fields OpenAlex knows."""
        return {"doi": self.doi, "openalex_id": self.openalex_id, "title": self.title, "year": self.year,
                "venue": self.venue, "authors": list(self.authors), "abstract": self.abstract}


def parse_work(work: Mapping) -> WorkMetadata:
    location = work.get("primary_location") or {}
    source = location.get("source") or {}
    doi = normalize_doi(work.get("doi"))
    is_preprint = (
        work.get("type") == "preprint"
        or location.get("version") == "submittedVersion"
        or source.get("type") == "repository"
        or bool(doi and doi.startswith("10.48550/"))  # arXiv's DOI prefix
    )
    return WorkMetadata(
        openalex_id=_short_id(work.get("id")),
        doi=doi,
        title=work.get("title") or work.get("display_name"),
        year=work.get("publication_year"),
        venue=source.get("display_name"),
        authors=[a["author"]["display_name"] for a in work.get("authorships") or []
                 if (a.get("author") or {}).get("display_name")],
        abstract=abstract_from_inverted_index(work.get("abstract_inverted_index")),
        landing_page_url=location.get("landing_page_url"),
        is_preprint=is_preprint,
        cited_by_count=work.get("cited_by_count") or 0,
        relevance_score=work.get("relevance_score") or 0.0,
    )


def normalized_title(title: str) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    return " ".join(re.sub(r"[^0-9a-z]+", " ", text).split())


def title_similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, normalized_title(a), normalized_title(b)).ratio()


def best_title_match(title: str, works: list[WorkMetadata], min_similarity: float) -> Optional[WorkMetadata]:
    """The search hit whose title matches best; among equal titles the published version beats its
    preprint (OpenAlex lists both, and the preprint often ranks first)."""
    scored = [(round(title_similarity(title, w.title or ""), 2), w) for w in works]
    scored = [(score, w) for score, w in scored if score >= min_similarity]
    if not scored:
        return None
    scored.sort(key=lambda sw: (sw[0], not sw[1].is_preprint, sw[1].doi is not None, sw[1].cited_by_count,
                                sw[1].relevance_score), reverse=True)
    return scored[0][1]


# ---------------------------------------------------------------- fetching

@dataclass
class Lookup:
    work: Optional[WorkMetadata]
    via: Optional[str] = None  # "doi" | "title"
    url: Optional[str] = None
    note: Optional[str] = None  # why nothing (or not the first choice) was found


class OpenAlex:
    """Fetches works, caching raw answers in the KB (`kb.cache_get/cache_put`)."""

    def __init__(self, config: OpenAlexConfig, *, kb: Optional["KnowledgeBase"] = None,
                 transport: Optional[httpx.BaseTransport] = None, sleep: Sleep = time.sleep) -> None:
        self.config = config
        self.kb = kb
        self.sleep = sleep
        self.client = make_client(config, transport)
        self.requests_sent = 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "OpenAlex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get_json(self, url: str) -> Optional[dict]:
        """The JSON at `url` (cached), or None when OpenAlex has no such record (404)."""
        cached = self.kb.cache_get(url) if self.kb is not None else None
        if cached is not None:
            status, body = cached
        else:
            status, body = self._fetch(url)
            if self.kb is not None:
                self.kb.cache_put(url, status, body)
        if status == 404:
            return None
        try:
            return json.loads(body)
        except ValueError:
            raise OpenAlexError(f"OpenAlex sent a response that is not JSON for {url}: try again later") from None

    def _fetch(self, url: str) -> tuple[int, str]:
        tries = self.config.max_retries + 1
        # params= would replace the URL's own query (the search filter), so merge instead.
        request_url = httpx.URL(url).copy_merge_params(self.config.auth_params())
        for attempt in range(tries):
            last = attempt == tries - 1
            try:
                self.requests_sent += 1
                response = self.client.get(request_url)
            except httpx.TimeoutException:
                if last:
                    raise OpenAlexError(f"OpenAlex timed out {tries} times (limit {self.config.timeout:g}s): "
                                        "try again later or pass --offline") from None
                self.sleep(self._backoff(attempt))
                continue
            except httpx.TransportError as exc:
                if last:
                    raise OpenAlexError(f"OpenAlex unreachable ({type(exc).__name__}): check the network "
                                        "or pass --offline") from None
                self.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status in RETRY_STATUSES and not last:
                self.sleep(self._retry_delay(response, attempt))
                continue
            if status in (200, 404):
                return status, response.text if status == 200 else ""
            if status in (401, 403):
                raise OpenAlexError(f"OpenAlex refused the request (HTTP {status}): check {API_KEY_ENV}")
            if status in RETRY_STATUSES:
                raise OpenAlexError(f"OpenAlex answered HTTP {status} {tries} times: try again later "
                                    "or pass --offline")
            raise OpenAlexError(f"OpenAlex answered HTTP {status} for {url}")
        raise AssertionError("unreachable: the last try returns or raises")

    def _backoff(self, attempt: int) -> float:
        return min(self.config.backoff * 2 ** attempt, self.config.max_backoff)

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float:
        retry_after = response.headers.get("Retry-After")
        if retry_after:
            delay = _parse_retry_after(retry_after)
            if delay is not None:
                return min(delay, self.config.max_backoff)
        return self._backoff(attempt)

    # ------------------------------------------------------------ lookups
    def work_by_doi(self, doi: str) -> Optional[WorkMetadata]:
        data = self.get_json(work_url_by_doi(doi, self.config.base_url))
        return parse_work(data) if data else None

    def search_title(self, title: str) -> list[WorkMetadata]:
        data = self.get_json(title_search_url(title, self.config.base_url))
        return [parse_work(w) for w in (data or {}).get("results") or []]

    def lookup(self, *, doi: Optional[str] = None, title: Optional[str] = None) -> Lookup:
        """A DOI asks for one work; without one (or when OpenAlex lacks it) a title search, which
        OpenAlex bills, picks the best-matching published version."""
        note = None
        if doi:
            url = work_url_by_doi(doi, self.config.base_url)
            work = self.work_by_doi(doi)
            if work is not None:
                return Lookup(work, "doi", url)
            note = f"DOI {normalize_doi(doi)} is not in OpenAlex"
        if title and len(normalized_title(title).split()) >= 3:
            url = title_search_url(title, self.config.base_url)
            best = best_title_match(title, self.search_title(title), self.config.min_title_similarity)
            if best is not None:
                return Lookup(best, "title", url, note)
            note = (note + "; " if note else "") + f"no OpenAlex title matches {title[:60]!r}"
        return Lookup(None, note=note or "no DOI or title to look OpenAlex up by")


def _parse_retry_after(value: str) -> Optional[float]:
    """Retry-After is either seconds or an HTTP date."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def apply_work(paper: PaperRecord, work: WorkMetadata) -> None:
    """Fill `paper` with OpenAlex's bibliographic fields; a DOI read from the PDF itself wins."""
    for name, value in work.paper_fields().items():
        if name == "doi" and paper.doi:
            continue
        if value not in (None, "", []):
            setattr(paper, name, value)
    if not paper.source_url and (work.landing_page_url or work.doi):
        paper.source_url = work.landing_page_url or f"https://doi.org/{work.doi}"


def connect(*, offline: bool, kb: Optional["KnowledgeBase"] = None, notify: Callable[[str], None],
            config: Optional[OpenAlexConfig] = None, transport: Optional[httpx.BaseTransport] = None,
            sleep: Sleep = time.sleep) -> Optional[OpenAlex]:
    """An OpenAlex client, or None (offline); without an API key says so once through `notify`."""
    if offline:
        return None
    config = config or OpenAlexConfig.from_env()
    if not config.api_key:
        notify(NO_KEY_NOTICE)
        return None
    return OpenAlex(config, kb=kb, transport=transport, sleep=sleep)
