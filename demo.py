"""`medicalrec demo`: the main job on the bundled seed KB."""

from __future__ import annotations


def run_demo() -> None:
    from .kb.cli import stats

    stats(kb=None, as_json=False)
