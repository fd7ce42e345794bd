"""`medicalrec validate multitask`: the MedMNIST v2 multi-task challenge (torch imported only when it runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from ..output import JsonOption, note, print_json

JSON_KEYS = ("datasets", "missing", "per_dataset", "harmonic_mean_macro_f1", "epochs", "seconds", "device")


def register_multitask(app: typer.Typer) -> None:
    app.command("multitask")(multitask)


def multitask(
    datasets: Annotated[Optional[str], typer.Option("--datasets", help="Comma-separated MedMNIST 2D flags "
                                                    "(default: the 11 challenge datasets, all but chestmnist).",
                                                    show_default=False)] = None,
    model: Annotated[str, typer.Option("--model", help="The shared backbone, e.g. resnet18 or simplecnn.")] = "resnet18",
    epochs: Annotated[int, typer.Option("--epochs", help="At most this many epochs.")] = 100,
    patience: Annotated[int, typer.Option("--patience", help="Stop after this many epochs without a better "
                                          "mean validation macro-F1.")] = 10,
    size: Annotated[int, typer.Option("--size", help="Image size: 28, 64, 128 or 224.")] = 28,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Training batch size (mixed across datasets).")] = 128,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cuda or cpu.")] = "auto",
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Directory holding the .npz files "
                                                      "(default: medmnist's ~/.medmnist).", show_default=False)] = None,
    threads: Annotated[Optional[int], typer.Option("--threads", help="CPU threads.", show_default=False)] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Also train the backbone on each dataset alone with "
                                          "the same budget; one table (JSON: a `single_task` key).")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Train on files whose md5 is not medmnist's.")] = False,
    compile_model: Annotated[bool, typer.Option("--compile", help="torch.compile the backbone (CUDA only).")] = False,
    executor: Annotated[str, typer.Option("--executor", help="local, or ray: the multi-task run and the "
                                          "single-task runs become Ray tasks.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Join this Ray cluster.",
                                                       show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """One backbone, one head per dataset; test macro-F1 per dataset and their harmonic mean (MedMNIST v2's
    multi-task challenge). Nothing is written to the KB.

    Example: medicalrec validate multitask --data-root ../shared/data/medmnist --model simplecnn --epochs 5 --compare
    """
    from .multitask import MultitaskRequest, run_multitask

    request = MultitaskRequest(
        datasets=[d.strip() for d in datasets.split(",") if d.strip()] if datasets is not None else None,
        model=model, size=size, epochs=epochs, patience=patience, batch_size=batch_size, seed=seed, device=device,
        threads=threads, data_root=str(data_root) if data_root else None, verify=not no_verify,
        compile=compile_model, compare=compare, executor=executor, ray_address=ray_address)
    main, single, notes = run_multitask(request, progress=note)
    if as_json:
        out = {key: main[key] for key in JSON_KEYS}
        if single is not None:
            out["single_task"] = {key: single[key] for key in JSON_KEYS}
        for line in notes:
            note(line)
        print_json(out)
        return
    from .tables import print_multitask

    print_multitask({**main, "notes": notes}, single)
