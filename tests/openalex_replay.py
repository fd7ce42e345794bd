"""Replaying recorded OpenAlex answers through httpx.MockTransport (no test touches the network).

Routes are keyed by the public URL the client builds (api_key and mailto dropped), so they are
the same keys the KB's HTTP cache uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Union

import httpx

from medicalrec.extract.openalex import title_search_url, work_url_by_doi

REPO = Path(__file__).resolve().parents[1]
OWN_FIXTURES = REPO / "fixtures" / "openalex"
SKIN_TITLE = "Comparing Lightweight and Deep Networks for Dermoscopic Skin Lesion Classification on HAM10000"
CHEM_TITLE = "Augmenting large language models with chemistry tools"

Answer = Union[Path, httpx.Response, Callable[[httpx.Request], httpx.Response]]


def public_url(url: httpx.URL) -> str:
    return str(url.copy_remove_param("api_key").copy_remove_param("mailto"))


class Replay:
    """A transport handler: answers from `routes`, 404 for anything else, and keeps every request."""

    def __init__(self, routes: dict[str, Answer]) -> None:
        self.routes = dict(routes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.routes.get(public_url(request.url))
        if answer is None:
            return httpx.Response(404, json={"error": "not found"})
        if isinstance(answer, Path):
            return httpx.Response(200, content=answer.read_bytes(), headers={"content-type": "application/json"})
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def own_routes() -> dict[str, Answer]:
    """Our OpenAlex-shaped fixtures for the synthetic papers in fixtures/pdfs."""
    return {
        work_url_by_doi("10.5555/jsmi.2023.0412"): OWN_FIXTURES / "work_by_doi_10.5555_jsmi.2023.0412.json",
        title_search_url(SKIN_TITLE): OWN_FIXTURES / "works_title_search_skin_lesion_ham10000.json",
    }


def shared_routes(shared_dir: Path) -> dict[str, Answer]:
    """The real recorded responses in ../shared/fixtures/openalex, at the URIs they were recorded for."""
    return {
        work_url_by_doi("10.1073/pnas.1414271111"): shared_dir / "work_by_doi_10.1073_pnas.1414271111.json",
        work_url_by_doi("10.1016/j.xgen.2025.100814"):
            shared_dir / "work_by_doi_10.1016_j.xgen.2025.100814_no_abstract.json",
        title_search_url(CHEM_TITLE): shared_dir / "works_title_search_augmenting_llms_chemistry_tools.json",
    }
