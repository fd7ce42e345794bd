"""The performance side of `medicalrec recommend`: the picks table with its Pareto view, and
`recommend evaluate --objective performance` (tables and --json). Kept apart from cli.py so each
module stays small; torch is imported only inside the functions that train."""

from __future__ import annotations

from typing import Any, Callable, Optional

from rich.table import Table

from ..errors import UserError
from ..output import console, note, print_json

METRIC_COLUMNS = ("best@1", "best@3", "ndcg@5", "kendall_tau", "pairwise_win_acc")
SHORT = {"kendall_tau": "tau", "pairwise_win_acc": "win acc"}
HEADLINE = ("best@3", "pairwise_win_acc")


def print_picks(report, out=None) -> None:
    out = out or console
    title = (f"Picks by expected performance (catalogue of {report.catalogue_size} items, feature set "
             f"{report.feature_set}" + (f", at most {report.max_params:g} M parameters" if report.max_params else "") + ")")
    table = Table(title=title)
    for column in ("#", "model", "family", "params (M)", "exp. rank", "Pareto", "similar tasks", "best", "top-3"):
        table.add_column(column, overflow="fold")
    for p in report.picks:
        name = p.model + (" (family label)" if p.is_family_label else "")
        ev = p.evidence
        table.add_row(str(p.rank), name, p.family, "?" if p.params_millions is None else f"{p.params_millions:g}",
                      f"{p.expected_rank:.1f}", "*" if p.pareto else "", str(ev.n_tasks) if ev.n_tasks else "none",
                      str(ev.n_best) if ev.n_tasks else "", str(ev.n_top3) if ev.n_tasks else "")
    out.print(table)
    task = ", ".join(f"{k}={v}" for k, v in report.task.items())
    out.print(f"Task: {task}", highlight=False, soft_wrap=True)
    scope = {"KB": "the whole KB (no comparison on a similar task)"}.get(
        report.scope, f"{report.n_similar_groups} comparisons on tasks of the same {report.scope}")
    out.print(f"Evidence from {scope}; usage prior weight {report.prior_weight:g}; model: {report.model_source}, "
              f"KB {report.kb_fingerprint}", highlight=False, soft_wrap=True)
    front = report.pareto
    if front:
        out.print("Pareto front (fewer parameters or a better expected rank, never both worse): " + ", ".join(
            f"{p['model']} ({p['params_millions']:g} M, exp. rank {p['expected_rank']:.1f})" for p in front),
            highlight=False, soft_wrap=True)
    left = {k: v for k, v in report.left_out.items() if k != "candidates" and v}
    if left:
        out.print("Left out: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in left.items())
                  + ("" if report.left_out.get("family_labels_and_ensembles", 0) == 0 else " (--include-families lists them)"),
                  highlight=False, soft_wrap=True)
    for p in report.picks:
        sources = f" — {'  '.join(p.evidence.sources)}" if p.evidence.sources else ""
        out.print(f"  {p.rank}. {p.evidence.sentence}{sources}", highlight=False, soft_wrap=True)


def evaluate_performance_command(store, *, folds: int, feature_sets: list[str], test: Optional[str],
                                 methods: Optional[str], seed: int, seeds: int, as_json: bool,
                                 read_test: Callable[[str], Any]) -> None:
    from . import perf_eval
    from .service import training_frame

    names = None
    if methods:
        names = [m.strip() for m in methods.split(",") if m.strip()]
        known = list(perf_eval.method_factories())
        unknown = [m for m in names if m not in known]
        if unknown:
            raise UserError(f"unknown method {unknown[0]!r} for --methods; expected some of {', '.join(known)}")
    experiments = training_frame(store)
    test_experiments = read_test(test) if test else None
    results: dict[str, Any] = {}
    for feature_set in feature_sets:
        def progress(message: str) -> None:
            if message.endswith(": transformer") or (names and message.endswith(f": {names[0]}")):
                note(f"  {message.rsplit(':', 1)[0]} ...")

        try:
            if test_experiments is not None:
                note(f"feature set {feature_set}: train on {len(experiments)} experiments, score the comparison groups "
                     f"of {test} (rows sharing a ref_id, dataset and class count)")
                report = perf_eval.evaluate_performance_on_test(experiments, test_experiments, names, feature_set, seed,
                                                                progress)
            else:
                note(f"feature set {feature_set}: leave-tasks-out, {folds} folds x {seeds} split seeds on "
                     f"{len(experiments)} experiments")
                report = perf_eval.evaluate_performance(experiments, names, folds, list(range(seed, seed + seeds)),
                                                        feature_set, progress)
        except ValueError as exc:
            raise UserError(f"{exc}") from None
        results[feature_set] = report.to_json()
    if as_json:
        print_json(results[feature_sets[0]] if len(feature_sets) == 1 else {"feature_sets": results})
        return
    for feature_set, summary in results.items():
        print_performance_summary(summary, f"Feature set {feature_set}: {summary['n_groups']} held-out comparison groups, "
                                           f"catalogue n_items={summary['n_items']}")


def print_performance_summary(summary: dict, title: str, out=None) -> None:
    from rich import box

    out = out or console
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("method", no_wrap=True)
    for c in METRIC_COLUMNS:
        table.add_column(SHORT.get(c, c), justify="right", no_wrap=True)
    significance = summary.get("significance", {})
    for name, values in summary["methods"].items():
        cells = []
        for c in METRIC_COLUMNS:
            value = values.get(c)
            std = (summary.get("seed_std", {}).get(name) or {}).get(c)
            text = "" if value is None else f"{value:.3f}" + ("" if std is None else f"±{std:.3f}")
            test = significance.get(c, {}).get(name)
            if test is not None and test["p_value"] < 0.05:
                text += "*"  # the ranker differs from this method at p < 0.05 (uncorrected)
            cells.append(text)
        table.add_row(name, *cells)
    out.print(table)
    out.print(f"groups by source: {summary.get('groups_by_source_kind')}; best@3 over the {summary.get('n_groups_best@3')} "
              f"groups with > 3 items; skipped: {summary.get('skipped') or 'none'}", highlight=False, soft_wrap=True)
    out.print("± = std over split seeds; * = differs from the transformer at p < 0.05 (Wilcoxon on per-task values)",
              highlight=False)
    for metric in HEADLINE:
        tests = significance.get(metric, {})
        if not tests:
            continue
        worst = max(tests.items(), key=lambda kv: (kv[1]["mean_b"] if kv[1]["mean_b"] is not None else -1))
        name, t = worst
        out.print(f"{metric}: transformer {t['mean_a']} vs the best other method {name} {t['mean_b']}: diff "
                  f"{t['mean_diff']} (95% CI {t['ci95'][0]} to {t['ci95'][1]}), rank-biserial {t['rank_biserial']}, "
                  f"p = {t['p_value']:.3g} (Holm {t['p_holm']:.3g}), n = {t['n_tasks']} tasks", highlight=False,
                  soft_wrap=True)
