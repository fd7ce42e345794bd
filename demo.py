"""`medicalrec demo`: the main job on the bundled seed KB (works from a fresh clone: nothing
but the seed is read)."""

from __future__ import annotations

from typing import Optional

from rich.console import Console

from .kb import KnowledgeBase


def show_kb_section(kb: KnowledgeBase, console: Console) -> None:
    """Part 1: what the seed KB holds and how complete each feature is."""
    from .kb.stats import collect_stats, render_stats

    console.rule("The knowledge base")
    console.print(f"{kb.location.describe()}", markup=False, highlight=False)
    render_stats(collect_stats(kb), console)


def run_demo(kb: Optional[KnowledgeBase] = None, console: Optional[Console] = None) -> None:
    from .kb.seed import open_seed
    from .output import console as default_console

    kb = kb or open_seed()
    console = console or default_console
    show_kb_section(kb, console)
    # Part 2 (the recommend stage's): a recommendation with its evidence.
    from .recommend.cli import show_recommendation_section

    show_recommendation_section(kb, console)
