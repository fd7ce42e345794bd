"""`medicalrec validate`: a thin layer over medicalrec.validate.runner (torch is imported only when
the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from typing_extensions import Annotated

from ..output import JsonOption, KBOption, console, note, print_json


# the callback's docstring (with its example) is the group's help
validate_app = typer.Typer(invoke_without_command=True, no_args_is_help=False)


def register(app: typer.Typer) -> None:
    from .multitask_cli import register_multitask

    register_multitask(validate_app)
    app.add_typer(validate_app, name="validate")


@validate_app.callback()
def validate(
    ctx: typer.Context,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="One MedMNIST 2D flag, e.g. breastmnist "
                                                   "(today's single-dataset run).", show_default=False)] = None,
    datasets: Annotated[Optional[str], typer.Option("--datasets", help="A sweep: comma-separated flags, e.g. "
                                                    "breastmnist,pneumoniamnist,retinamnist.", show_default=False)] = None,
    top: Annotated[Optional[int], typer.Option("--top", help="Validate the recommender's top N models "
                                               "(default 3 when --models is not given).", show_default=False)] = None,
    models: Annotated[Optional[str], typer.Option("--models", help="Comma-separated model names, e.g. "
                                                  "resnet18,densenet121,svm.", show_default=False)] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs (MedMNIST recipe: 100).")] = 100,
    size: Annotated[int, typer.Option("--size", help="Image size: 28, 64, 128 or 224.")] = 28,
    seeds: Annotated[int, typer.Option("--seeds", help="Runs per model, with seeds 0..N-1.")] = 1,
    device: Annotated[str, typer.Option("--device", help="auto, cuda or cpu.")] = "auto",
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Directory holding the .npz files "
                                                      "(default: medmnist's ~/.medmnist).", show_default=False)] = None,
    download: Annotated[bool, typer.Option("--download", help="Download a missing .npz file.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Training batch size.")] = 128,
    resume: Annotated[bool, typer.Option("--resume", help="Continue interrupted runs from their checkpoints "
                                         "(sweeps always resume).")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Sweeps: ignore finished runs and checkpoints, "
                                        "train everything again.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run directory for checkpoints and the sweep "
                                                "ledger (default: runs/ in the user cache dir).",
                                                show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads (default: $OMP_NUM_THREADS, "
                                                   "else every core).", show_default=False)] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Train on a file whose md5 is not medmnist's "
                                            "(recorded as unverified in provenance).")] = False,
    record_unverified: Annotated[bool, typer.Option("--record-unverified", help="With --no-verify: write the "
                                                    "runs to the KB anyway (setting marked unverified).")] = False,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the network (CUDA only).")] = False,
    executor: Annotated[str, typer.Option("--executor", help="Sweeps: local, or ray (pip install "
                                          "'medicalrec[ray]').")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Join this Ray cluster "
                                                       "(default: start a local one).", show_default=False)] = None,
    kb: KBOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain models on MedMNIST datasets, compare with the published figures, record the runs in the KB.

    Example: medicalrec validate --datasets breastmnist,retinamnist --models resnet18,simplecnn --seeds 3 --epochs 2 --data-root ../shared/data/medmnist
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..errors import UserError
    from .architectures import parse_model_list

    if (dataset is None) == (datasets is None):
        raise UserError("pass --dataset FLAG for one dataset or --datasets A,B,C for a sweep (not both), "
                        "or use `medicalrec validate multitask`")
    common = dict(
        models=parse_model_list(models) if models is not None else None, top=top, epochs=epochs,
        size=size, seeds=seeds, device=device, data_root=data_root, download=download, batch_size=batch_size,
        resume=resume, out=out, threads=threads, kb=kb, verify=not no_verify, record_unverified=record_unverified,
        compile=compile_model)
    if datasets is not None:
        from .sweep import SweepRequest, run_sweep
        from .tables import print_sweep, sweep_bar

        if download:
            raise UserError("--download works with --dataset only: fetch the files first, then pass --data-root DIR")
        request = SweepRequest(dataset="", datasets=[d.strip() for d in datasets.split(",") if d.strip()],
                               fresh=fresh, executor=executor, ray_address=ray_address, **common)
        with sweep_bar() as bar:
            report = run_sweep(request, progress=lambda _: None, bar=bar)
        if as_json:
            print_json(report.as_json())
        else:
            print_sweep(report)
        return
    if executor != "local":
        raise UserError("--executor ray runs sweeps: pass --datasets FLAG[,FLAG...] instead of --dataset")
    from .runner import ValidationRequest, run_validation

    request = ValidationRequest(dataset=dataset, **common)
    report = run_validation(request, progress=note)
    if as_json:
        print_json(report.as_json())
        return
    _print_report(report)


def _print_report(report) -> None:
    summary = report.summary()
    spread = any(row["seeds"] > 1 for row in summary)
    columns = ["model", "ACC", "AUC", "pub. ACC", "pub. AUC", "Δ AUC", "train s", "device"]
    seeds = max((row["seeds"] for row in summary), default=1)
    table = Table(title=f"{report.dataset.canonical} ({report.size} px): test metrics"
                  + (f", mean±std over {seeds} seeds" if spread else ""), box=box.SIMPLE_HEAD, pad_edge=False)
    rows = []
    for row in summary:
        published_auc = row["published_auc"]
        values = {
            "model": row["model"], "ACC": _mean_std(row["acc"], row["acc_std"], spread),
            "AUC": _mean_std(row["auc"], row["auc_std"], spread),
            "pub. ACC": _fmt(row["published_acc"]), "pub. AUC": _fmt(published_auc),
            "Δ AUC": "" if published_auc is None else f"{row['auc'] - published_auc:+.3f}",
            "train s": f"{row['seconds']:.0f}", "device": row["device"],
        }
        rows.append([values[c] for c in columns])
    for i, header in enumerate(columns):  # values stay whole; headers fold in a narrow terminal
        table.add_column(header, justify="left" if header in ("model", "device") else "right",
                         min_width=max((len(r[i]) for r in rows), default=1), overflow="fold")
    for values in rows:
        table.add_row(*values)
    # rich crops columns that do not fit; a table wider than the terminal is printed whole instead
    needed = Measurement.get(console, console.options.update_width(500), table).maximum
    (console if needed <= console.width else Console(width=needed)).print(table)
    for skipped in report.skipped:
        console.print(f"skipped {skipped.model}: {skipped.reason}", markup=False, highlight=False)
    if report.published_from:
        note(f"published figures: MedMNIST v2 (Yang et al. 2023) from the {report.published_from}")
    else:
        note("published figures: none in the KB for this dataset and size (seed KB fact Yang2023MedMNISTv2)")
    devices = sorted({run.result.device_name for run in report.runs})
    note(f"devices: {', '.join(devices)}; runs recorded in the {report.kb}")


def _mean_std(mean: float, std: float, spread: bool) -> str:
    return f"{mean:.3f}±{std:.3f}" if spread else f"{mean:.3f}"


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.3f}"
