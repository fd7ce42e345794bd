from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or a skip when the third-party data is absent (a fresh clone)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared/{'/'.join(parts)} not present: third-party data is only beside CI's clone")
    return path


@pytest.fixture
def kb():
    from medicalrec.kb import KnowledgeBase

    return KnowledgeBase.in_memory()


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Invoke the CLI in-process; the user's data dir is redirected to tmp_path."""
    from medicalrec.cli import app

    monkeypatch.delenv("MEDICALREC_KB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def one_torch_thread():
    """Training in a test uses one thread: CI has two cores, and other tests run beside it."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
