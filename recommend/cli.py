"""`medicalrec recommend`: which classifier to train for a task, with the evidence behind it.

A thin layer over medicalrec.recommend.service / protocol. torch is imported inside the commands,
never at module level, so `medicalrec --help` stays light.
"""

from __future__ import annotations

import time
from typing import Any, Optional

import typer
from typing_extensions import Annotated

from rich.table import Table

from ..errors import UserError
from ..output import JsonOption, KBOption, console, err_console, note, print_json

app = typer.Typer(
    help="Recommend the classifier to train for a medical image classification task.\n\n"
         "Example: medicalrec recommend --domain \"Skin Cancer Classification\" --modality dermoscopy --classes 7",
    invoke_without_command=True,
    no_args_is_help=False,
)

FEATURE_SET_NAMES = ("I", "II", "III", "IV")
FeaturesOption = Annotated[str, typer.Option("--features", help="Feature set: I, II, III or IV (nested 5/9/11/18 features).")]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (splits and training).")]
ObjectiveOption = Annotated[Optional[str], typer.Option(
    "--objective", help="performance (which model wins on similar tasks; the default when the KB holds comparisons) "
                        "or usage (what papers on similar tasks use).")]


def _check_objective(value: Optional[str]) -> Optional[str]:
    if value is not None and value not in ("performance", "usage"):
        raise UserError(f"unknown objective {value!r} for --objective; expected performance or usage")
    return value


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="recommend")


def _check_feature_set(value: str, *, allow_all: bool = False) -> list[str]:
    accepted = FEATURE_SET_NAMES + (("all",) if allow_all else ())
    if value == "all" and allow_all:
        return list(FEATURE_SET_NAMES)
    if value not in FEATURE_SET_NAMES:
        raise UserError(f"unknown feature set {value!r} for --features; expected one of {', '.join(accepted)}")
    return [value]


def _positive(flag: str, value: Optional[int]) -> None:
    if value is not None and value <= 0:
        raise UserError(f"{flag} must be a positive whole number, got {value}")


def _in_range(flag: str, value: Optional[int], feature: str) -> None:
    """A task count within the plausible range the KB's importer enforces (kb/values.py)."""
    from ..kb.values import COUNT_RANGES

    low, high = COUNT_RANGES[feature]
    if value is not None and not low <= value <= high:
        raise UserError(f"{flag} must be a whole number from {low:,} to {high:,}, got {value:,}")


def _check_domain(domain: Optional[str]) -> None:
    """Refuse characters the KB's name matching would drop without a word (emoji, non-Latin
    letters); accents are fine (they match their bare letters)."""
    import unicodedata

    if domain is None:
        return
    for char in domain:
        bare = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        if not bare.isascii():
            raise UserError(f"--domain {domain!r} holds {char!r} (U+{ord(char):04X}), which matching would silently drop:"
                            " spell the domain as the KB does (`medicalrec kb query \"SELECT DISTINCT domain FROM"
                            " experiment_wide\"` lists them)")


def _open_kb(kb: Optional[str]):
    from ..kb import KnowledgeBase

    store = KnowledgeBase.open(kb)
    note(f"KB: {store.location.describe()}")
    return store


# ---------------------------------------------------------------------- recommend (no sub-command)
@app.callback()
def recommend(
    ctx: typer.Context,
    domain: Annotated[Optional[str], typer.Option("--domain", help="Task domain, as the KB names it.")] = None,
    modality: Annotated[Optional[str], typer.Option("--modality", help="Imaging modality (dermoscopy, MRI, X-ray, ...).")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Dataset name (any alias the KB knows).")] = None,
    classes: Annotated[Optional[int], typer.Option("--classes", help="Number of classes.")] = None,
    samples: Annotated[Optional[int], typer.Option("--samples", help="Number of images.")] = None,
    train: Annotated[Optional[int], typer.Option("--train", help="Training images.")] = None,
    test: Annotated[Optional[int], typer.Option("--test", help="Test images.")] = None,
    val: Annotated[Optional[int], typer.Option("--val", help="Validation images.")] = None,
    k_fold: Annotated[Optional[int], typer.Option("--k-fold", help="Cross-validation folds.")] = None,
    width: Annotated[Optional[int], typer.Option("--width", help="Image width (pixels).")] = None,
    height: Annotated[Optional[int], typer.Option("--height", help="Image height (pixels).")] = None,
    channels: Annotated[Optional[int], typer.Option("--channels", help="Image channels (1 grey, 3 colour).")] = None,
    augmentation: Annotated[Optional[str], typer.Option("--augmentation", help="yes / no.")] = None,
    pretrained: Annotated[Optional[str], typer.Option("--pretrained", help="yes / no (ImageNet-style pretraining).")] = None,
    year: Annotated[Optional[int], typer.Option("--year", help="Year of the task (default: this year).")] = None,
    top: Annotated[int, typer.Option("--top", help="How many models to list.")] = 10,
    model: Annotated[Optional[str], typer.Option("--model", help="A checkpoint from `recommend train` (default: "
                                                 "the cached model for this KB, trained on first use).")] = None,
    features: FeaturesOption = "IV",
    objective: ObjectiveOption = None,
    include_families: Annotated[bool, typer.Option("--include-families", help="List family labels, bespoke designs "
                                                   "and ensembles too (performance objective).")] = False,
    max_params: Annotated[Optional[float], typer.Option("--max-params", help="Only picks of at most this many "
                                                        "million parameters (performance objective).")] = None,
    kb: KBOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rank the models to train for a task, with the KB evidence behind each.

    With no --model, uses a ranker trained on the current KB (cached by the KB's fingerprint).
    --objective performance (the default when the KB holds comparisons) ranks trainable architectures
    by how they score on similar tasks; usage ranks what papers on similar tasks use.

    Example: medicalrec recommend --domain "Skin Cancer Classification" --modality dermoscopy --classes 7 --samples 10015 --width 224 --height 224 --channels 3
    """
    if ctx.invoked_subcommand is not None:
        return
    task: dict[str, Any] = {
        "domain": domain, "modality": modality, "dataset": dataset, "n_classes": classes, "n_samples": samples,
        "n_train": train, "n_test": test, "n_val": val, "k_fold": k_fold, "width": width, "height": height,
        "channels": channels, "augmentation": augmentation, "pretrained": pretrained, "year": year,
    }
    _positive("--top", top)
    _check_domain(domain)
    _in_range("--classes", classes, "n_classes")
    _in_range("--samples", samples, "n_samples")
    feature_set = _check_feature_set(features)[0]
    store = _open_kb(kb)

    from .service import Recommender, training_frame
    from .task import normalise_task

    task = {k: v for k, v in task.items() if v is not None}
    experiments = training_frame(store)
    normalise_task(task, experiments, store.dataset_alias_index())  # a typo costs nothing: checked before training
    if max_params is not None and max_params <= 0:
        raise UserError(f"--max-params must be a positive number of millions, got {max_params:g}")
    chosen = _check_objective(objective)
    recommender = Recommender.for_kb(store, model_path=model, feature_set=feature_set, progress=note,
                                     experiments=experiments, objective=chosen)
    if recommender.objective == "performance":
        report = recommender.recommend(task, top, include_families=include_families, max_params=max_params)
    else:
        if include_families or max_params is not None:
            note("note: --include-families and --max-params apply to --objective performance; ignored for usage")
        report = recommender.recommend(task, top)
    if report.warning:
        err_console.print(f"Warning: {report.warning}", style="yellow", highlight=False, soft_wrap=True)
    if as_json:
        print_json(report.to_dict())
        return
    if recommender.objective == "performance":
        from .cli_performance import print_picks

        print_picks(report, console)
        return
    _print_report(report)


def _print_report(report, out=None) -> None:
    out = out or console
    rows = []
    for r in report.recommendations:
        ev = r.evidence
        rows.append((
            r.rank, r.model, r.family, f"{r.score:.3f}", ev.n_experiments,
            "" if ev.median_accuracy is None else f"{ev.median_accuracy:.3f}",
            "" if ev.params_millions is None else f"{ev.params_millions:g}",
        ))
    scope = report.coverage
    table = Table(title=f"Recommended models (catalogue of {report.catalogue_size} items, "
                        f"feature set {report.feature_set})")
    for column in ("#", "model", "family", "score", "similar exps", "median acc", "params (M)"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    out.print(table)
    task = ", ".join(f"{k}={v}" for k, v in report.task.items())
    similar = (f"{scope.n_similar} KB experiments with the same {scope.scope} ({scope.scope_value})"
               if scope.scope != "KB" else "no KB experiments on a similar task")
    out.print(f"Task: {task}", highlight=False, soft_wrap=True)
    out.print(f"Evidence from {similar}; model: {report.model_source}, KB {report.kb_fingerprint}",
              highlight=False, soft_wrap=True)
    for r in report.recommendations:
        if r.evidence.references:
            out.print(f"  {r.rank}. {r.model}: {'  '.join(r.evidence.references)}", highlight=False, soft_wrap=True)


# The demo's task: the example (HAM10000-like skin lesions).
DEMO_TASK = {"domain": "Skin Cancer Classification", "modality": "dermoscopy", "dataset": "HAM10000", "n_classes": 7,
             "n_samples": 10015, "width": 224, "height": 224, "channels": 3}


def show_recommendation_section(kb, out=None, task: Optional[dict] = None, top: int = 5) -> None:
    """`medicalrec demo`, part 2: a recommendation with its evidence, from a ranker trained on `kb`
    (cached by the KB's fingerprint: the first demo trains it, later ones load it)."""
    from .service import Recommender

    out = out or console
    task = task or DEMO_TASK
    out.rule("A recommendation")
    out.print("medicalrec recommend " + " ".join(f"--{_FLAG_OF[k]} {v!r}" if isinstance(v, str) and " " in v
                                                 else f"--{_FLAG_OF[k]} {v}" for k, v in task.items())
              + f" --top {top}", highlight=False, soft_wrap=True, markup=False)
    # The same objective `medicalrec recommend` takes by default: who wins where the KB holds comparisons.
    recommender = Recommender.for_kb(kb, progress=note, objective=None)
    report = recommender.recommend(task, top)
    if report.warning:
        out.print(f"Warning: {report.warning}", style="yellow", highlight=False, soft_wrap=True)
    if recommender.objective == "performance":
        from .cli_performance import print_picks

        print_picks(report, out)
        out.print("What papers on such tasks use instead (the usage objective): add --objective usage",
                  highlight=False, soft_wrap=True)
        return
    _print_report(report, out)
    inner = recommender.checkpoint.evaluation.get("inner_validation") or {}
    if inner:
        out.print(f"Ranker check on {inner['n_papers']} held-out papers: hit@5 {inner['hit@5']:.3f}, "
                  f"ndcg@10 {inner['ndcg@10']:.3f} (`medicalrec recommend evaluate` compares it with 12 baselines)",
                  highlight=False, soft_wrap=True)


_FLAG_OF = {"domain": "domain", "modality": "modality", "dataset": "dataset", "n_classes": "classes",
            "n_samples": "samples", "width": "width", "height": "height", "channels": "channels"}


# ---------------------------------------------------------------------- train
@app.command("train")
def train_command(
    kb: KBOption = None,
    features: FeaturesOption = "IV",
    out: Annotated[Optional[str], typer.Option("--out", help="Checkpoint file to write (default: the cache "
                                               "entry `recommend` loads for this KB).")] = None,
    folds: Annotated[int, typer.Option("--folds", help="Grouped CV folds measured into the checkpoint (0 skips).")] = 5,
    seed: SeedOption = 0,
    objective: Annotated[str, typer.Option("--objective", help="usage, or performance (the ranker of who wins; "
                                           "`recommend evaluate --objective performance` measures it).")] = "usage",
    as_json: JsonOption = False,
) -> None:
    """Train the ranker on a KB and save a checkpoint (vocabularies, feature set, KB fingerprint, figures).

    Example: medicalrec recommend train --kb lit.db --features IV --out ranker.pt
    """
    feature_set = _check_feature_set(features)[0]
    if folds < 0 or folds == 1:
        raise UserError(f"--folds must be 0 (skip the evaluation) or at least 2, got {folds}")
    store = _open_kb(kb)

    from .service import cache_path, train_checkpoint

    started = time.perf_counter()
    _check_objective(objective)
    checkpoint = train_checkpoint(store, feature_set=feature_set, seed=seed, folds=folds, progress=note,
                                  objective=objective)
    seconds = time.perf_counter() - started
    path = checkpoint.save(out or cache_path(checkpoint.kb_fingerprint, feature_set, seed, objective))
    summary = {
        "checkpoint": str(path), "kb": checkpoint.kb_location, "kb_fingerprint": checkpoint.kb_fingerprint,
        "n_experiments": checkpoint.n_experiments, "n_items": len(checkpoint.catalogue.items),
        "feature_set": feature_set, "seed": seed, "seconds": round(seconds, 2),
        "best_epoch": checkpoint.ranker.history.get("best_epoch"), "n_pairs": checkpoint.ranker.history.get("n_pairs"),
        "evaluation": checkpoint.evaluation,
    }
    if as_json:
        print_json(summary)
        return
    console.print(f"Saved {path}", highlight=False, soft_wrap=True)
    console.print(f"{summary['n_experiments']} experiments, catalogue of {summary['n_items']} items, feature set "
                  f"{feature_set}, KB {summary['kb_fingerprint']}, {summary['n_pairs']} who-won pairs, "
                  f"{seconds:.1f} s", highlight=False)
    inner = checkpoint.evaluation.get("inner_validation") or {}
    if inner:
        figures = ", ".join(f"{k} {v:.3f}" for k, v in inner.items() if k not in ("n_experiments", "n_papers"))
        console.print(f"Inner validation ({inner['n_experiments']} experiments of {inner['n_papers']} held-out papers): "
                      f"{figures}", highlight=False, soft_wrap=True)
    if checkpoint.evaluation.get("cross_validation"):
        _print_methods(checkpoint.evaluation["cross_validation"],
                       title=f"{folds}-fold grouped CV (mean ± std over folds)")


# ---------------------------------------------------------------------- evaluate
@app.command("evaluate")
def evaluate_command(
    kb: KBOption = None,
    folds: Annotated[int, typer.Option("--folds", help="Grouped cross-validation folds (by paper).")] = 5,
    features: Annotated[str, typer.Option("--features", help="Feature set I, II, III, IV or all.")] = "IV",
    test: Annotated[Optional[str], typer.Option("--test", help="Train on the KB, score on this file's experiments "
                                                "(curated or MedicalRec-Bench CSV layout).")] = None,
    methods: Annotated[Optional[str], typer.Option("--methods", help="Comma-separated methods (default: all 13).")] = None,
    seed: SeedOption = 0,
    objective: Annotated[str, typer.Option("--objective", help="usage (grouped CV by paper: does it name the model "
                                           "the paper used?) or performance (leave-tasks-out: does it pick the model "
                                           "that won?).")] = "usage",
    seeds: Annotated[int, typer.Option("--seeds", help="Split seeds of the leave-tasks-out folds "
                                       "(--objective performance; seeds S..S+N-1).")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Score the ranker and every baseline with one protocol (grouped CV, or a held-out --test file).

    Example: medicalrec recommend evaluate --kb lit.db --folds 5 --features all --json
    Example: medicalrec recommend evaluate --objective performance --kb full.db --folds 5 --seeds 5 --json
    """
    _check_objective(objective)
    feature_sets = _check_feature_set(features, allow_all=True)
    if folds < 2:
        raise UserError(f"--folds must be at least 2, got {folds}")
    if objective == "performance":
        if seeds < 1:
            raise UserError(f"--seeds must be at least 1, got {seeds}")
        from .cli_performance import evaluate_performance_command

        evaluate_performance_command(_open_kb(kb), folds=folds, feature_sets=feature_sets, test=test, methods=methods,
                                     seed=seed, seeds=seeds, as_json=as_json, read_test=_test_experiments)
        return
    store = _open_kb(kb)

    from . import protocol
    from .methods import method_names
    from .service import report_summary, training_frame

    names = method_names()
    if methods:
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        unknown = [m for m in chosen if m not in names]
        if unknown:
            raise UserError(f"unknown method {unknown[0]!r} for --methods; expected some of {', '.join(names)}")
        names = chosen
    from .comparisons import usage_rows

    experiments = usage_rows(training_frame(store))  # what papers use: benchmark rows run every model by design
    test_experiments = _test_experiments(test) if test else None
    results: dict[str, Any] = {}
    for feature_set in feature_sets:
        note(f"feature set {feature_set}: {len(names)} methods, "
             + (f"train on {len(experiments)}, test on {len(test_experiments)} ({test})" if test is not None
                else f"{folds}-fold grouped CV on {len(experiments)} experiments"))
        def progress(message: str, first=names[0]) -> None:  # one line per fold, not per method
            if message.endswith(f": {first}"):
                note(f"  {message.rsplit(':', 1)[0]} ...")

        if test_experiments is not None:
            report = protocol.evaluate_on_test(experiments, test_experiments, names, feature_set=feature_set,
                                               seed=seed, progress=progress)
        else:
            report = protocol.evaluate(experiments, names, n_folds=folds, feature_set=feature_set, seed=seed,
                                       progress=progress)
        results[feature_set] = report_summary(report)
    if as_json:
        print_json(results[feature_sets[0]] if len(feature_sets) == 1 else {"feature_sets": results})
        return
    for feature_set, summary in results.items():
        _print_methods(summary, title=f"Feature set {feature_set}: n_test={summary.get('n_test')}, "
                                      f"catalogue n_items={summary.get('n_items')}")


def _test_experiments(path: str):
    """The experiments of an import file (either layout), read into a scratch in-memory KB."""
    from pathlib import Path

    from ..kb import KnowledgeBase

    if not Path(path).is_file():
        raise UserError(f"no file at {path}: pass an existing CSV to --test")
    from ..kb import importers

    scratch = KnowledgeBase.in_memory()
    report = importers.import_file(scratch, path)
    if report.rows_failed:
        note(f"{report.rows_failed} row(s) of {path} could not be read and are left out: "
             f"`medicalrec kb import {path} --dry-run` names them")
    from .comparisons import load_experiments

    frame = load_experiments(scratch)
    if frame.empty:
        raise UserError(f"{path} holds no importable experiments: check it with `medicalrec kb import {path} --dry-run`")
    return frame


METRIC_COLUMNS = ("hit@1", "hit@3", "hit@5", "hit@10", "ndcg@10", "mrr", "pairwise_win_acc")
SHORT_NAMES = {"pairwise_win_acc": "win acc"}


def _print_methods(summary: dict[str, Any], title: str) -> None:
    from rich import box

    methods = summary.get("methods", {})
    stds = summary.get("std", {}) if summary.get("folds", 2) > 1 else {}  # one held-out file: no spread
    columns = [c for c in METRIC_COLUMNS if any(c in m for m in methods.values())]
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("method", no_wrap=True)
    for c in columns:
        table.add_column(SHORT_NAMES.get(c, c), no_wrap=True, justify="right")
    for name, values in methods.items():
        cells = []
        for c in columns:
            mean, std = values.get(c), stds.get(name, {}).get(c)
            cells.append("" if mean is None else f"{mean:.3f}" + ("" if std is None else f"±{std:.3f}"))
        table.add_row(name, *cells)
    console.print(table)
    shown = set()
    for key in ("significance", "significance_vs_classical"):
        for metric, test in (summary.get(key) or {}).items():
            if (metric, test["b"]) in shown:
                continue
            shown.add((metric, test["b"]))
            console.print(f"{metric}: {test['a']} {test['mean_a']:.3f} vs {test['b']} {test['mean_b']:.3f} (the best other "
                          f"method here{'' if key == 'significance' else ' but the ablation'}), p = {test['p_value']:.3g} "
                          f"({test['test']}, n = {test['n']})", highlight=False, soft_wrap=True)
