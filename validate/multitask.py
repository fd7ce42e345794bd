"""The MedMNIST v2 multi-task challenge: one shared backbone, one head per dataset, scored by the
harmonic mean of the per-dataset test macro-F1.

Protocol, as implemented here:
- Datasets: by default the 11 2D challenge datasets (all but ChestMNIST); those present under
  --data-root are used and the missing ones named. Every image becomes 3 channels (a grey image is
  repeated, medmnist's `as_rgb`), so one backbone reads them all; each dataset keeps its own label
  space and its own linear head on the backbone's pooled features.
- Batch mixing rule ("size-proportional, without replacement"): each epoch the training images of
  all datasets are pooled, shuffled together and cut into batches of --batch-size; a batch thus
  mixes datasets in proportion to their sizes and every image is seen once per epoch. The
  backbone runs once on the whole batch; each dataset's head scores its own images, and the batch
  loss is the sum of the per-image losses (cross-entropy; BCE averaged over labels for a
  multi-label set) divided by the batch size.
- Early stopping: after each epoch the mean over datasets of the validation macro-F1; the weights of
  the best epoch are kept, and training stops after --patience epochs without improvement (or at
  --epochs). Optimiser and schedule are the single-task recipe's (Adam 1e-3, x0.1 at 50% and 75%).
- Scoring: per dataset the test macro-F1 (argmax; 0.5 threshold per label for multi-label;
  sklearn's macro average over the classes present, zero_division=0), ACC and AUC as medmnist's
  Evaluator computes them, then the harmonic mean of the macro-F1s. A dataset with macro-F1 0 makes
  the harmonic mean 0 (1/0 is infinite); the report says which dataset did it.
- The single-task comparison trains the same backbone on each dataset alone through this same code
  (one head), with the same epochs, patience, batch size and seed: the same budget per dataset.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Optional, Sequence

import numpy as np

from .datasets import MEDMNIST_2D

CHALLENGE_2D = tuple(flag for flag in MEDMNIST_2D if flag != "chestmnist")
_SENTINEL_CLASSES = 7919  # a class count no head has, to find the builder's classifier layer


def harmonic_mean(values: Sequence[float]) -> float:
    """n / sum(1 / v); 0 when any value is 0 (its reciprocal is infinite)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("the harmonic mean of nothing is undefined")
    if any(v < 0 for v in values):
        raise ValueError(f"macro-F1 values must be >= 0, got {values}")
    if any(v == 0 for v in values):
        return 0.0
    return len(values) / sum(1.0 / v for v in values)


def macro_f1(labels: np.ndarray, scores: np.ndarray, task: str) -> float:
    """Macro-F1 of the predictions behind `scores` ((N, C) probabilities) against `labels` ((N, 1)
    class ids, or (N, L) 0/1 for multi-label)."""
    from sklearn.metrics import f1_score

    if task == "multi-label, binary-class":
        return float(f1_score(labels, (scores > 0.5).astype(int), average="macro", zero_division=0))
    return float(f1_score(labels[:, 0], scores.argmax(axis=1), average="macro", zero_division=0))


@dataclass(frozen=True)
class MultitaskSpec:
    """One training run (the multi-task one, or a single-task one: one dataset); plain values only."""

    datasets: tuple[str, ...]
    model: str = "ResNet-18"
    size: int = 28
    epochs: int = 100
    patience: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    threads: Optional[int] = None
    data_root: Optional[str] = None
    verify: bool = True
    compile: bool = False
    subset: Optional[int] = None  # at most this many images per split (tests, smoke runs)


@dataclass
class MultitaskResult:
    datasets: list[str]
    per_dataset: dict[str, dict]  # flag -> macro_f1, test_acc, test_auc (and val_macro_f1)
    harmonic_mean_macro_f1: float
    epochs: int  # epochs trained (early stopping may end before spec.epochs)
    best_epoch: int
    seconds: float
    device: str
    history: list[dict] = field(default_factory=list)


def _headless(backbone):
    """Replace the builder's classifier (the one Linear with the sentinel output size) by Identity;
    returns its input width."""
    import torch.nn as nn

    for parent in backbone.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear) and child.out_features == _SENTINEL_CLASSES:
                setattr(parent, name, nn.Identity())
                return child.in_features
    raise ValueError("no classifier layer found in the backbone")


def build_network(model: str, heads: dict[str, int], size: int):
    import torch.nn as nn

    from .architectures import REGISTRY

    class MultiHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = REGISTRY[model].build(3, _SENTINEL_CLASSES, size)
            width = _headless(self.backbone)
            self.heads = nn.ModuleDict({flag: nn.Linear(width, n) for flag, n in heads.items()})

        def forward(self, x):
            return self.backbone(x)

    return MultiHead()


def _rgb(images):
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def train_multitask(spec: MultitaskSpec, arrays: Optional[dict] = None) -> MultitaskResult:
    """Train `spec` on the arrays of its datasets (loaded from spec.data_root when not given)."""
    import torch

    from .data import load_arrays, normalise, to_tensors
    from .datasets import get_dataset
    from .train import (compile_model, configure_threads, describe_device, evaluate_scores, resolve_device,
                        seed_everything)

    device = resolve_device(spec.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    else:
        configure_threads(spec.threads)
    seed_everything(spec.seed)
    if arrays is None:
        arrays = {flag: load_arrays(get_dataset(flag), spec.size, spec.data_root, verify=spec.verify)
                  for flag in spec.datasets}
    flags = list(spec.datasets)
    data = {}
    for flag in flags:
        dataset = arrays[flag].dataset
        splits = {}
        for split in ("train", "val", "test"):
            part = arrays[flag][split]
            images, labels = to_tensors(part, device)
            if spec.subset:
                images, labels = images[:spec.subset], labels[:spec.subset]
            # resident on the device as uint8; normalised per batch
            splits[split] = (_rgb(images).contiguous(memory_format=torch.channels_last), labels,
                             part.labels[:spec.subset] if spec.subset else part.labels)
        data[flag] = (dataset, splits)

    net = build_network(spec.model, {f: data[f][0].n_classes for f in flags}, spec.size)
    net = net.to(device, memory_format=torch.channels_last)
    backbone = compile_model(net.backbone, device, spec.compile)
    optimizer = torch.optim.Adam(net.parameters(), lr=spec.lr)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[0.5 * spec.epochs, 0.75 * spec.epochs],
                                                     gamma=0.1)
    generator = torch.Generator(device=device)
    generator.manual_seed(spec.seed)
    # the pooled training set: which dataset, and which image of it, each pooled index is
    owner = torch.cat([torch.full((data[f][1]["train"][0].shape[0],), i, device=device) for i, f in enumerate(flags)])
    local = torch.cat([torch.arange(data[f][1]["train"][0].shape[0], device=device) for f in flags])
    losses = {f: (torch.nn.BCEWithLogitsLoss(reduction="sum") if data[f][0].multi_label
                  else torch.nn.CrossEntropyLoss(reduction="sum")) for f in flags}

    def autocast():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda)

    def batch_of(images):
        return normalise(images).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def scores(flag: str, split: str) -> np.ndarray:
        net.eval()
        images = data[flag][1][split][0]
        out = []
        for start in range(0, images.shape[0], spec.batch_size * 4):
            with autocast():
                out.append(net.heads[flag](backbone(batch_of(images[start:start + spec.batch_size * 4]))).float())
        logits = torch.cat(out)
        probs = torch.sigmoid(logits) if data[flag][0].multi_label else torch.softmax(logits, dim=1)
        return probs.cpu().numpy()

    def train_epoch() -> float:
        net.train()
        order = torch.randperm(owner.shape[0], device=device, generator=generator)
        total = torch.zeros((), device=device)
        for start in range(0, order.shape[0], spec.batch_size):
            index = order[start:start + spec.batch_size]
            if index.numel() < 2:  # batch norm cannot train on one image
                continue
            who, where = owner[index], local[index]
            parts = [(i, f, where[who == i]) for i, f in enumerate(flags)]
            parts = [(i, f, rows) for i, f, rows in parts if rows.numel()]
            images = torch.cat([data[f][1]["train"][0][rows] for _, f, rows in parts])
            with autocast():
                features = backbone(batch_of(images))
            loss = torch.zeros((), device=device)
            offset = 0
            for _, f, rows in parts:
                logits = net.heads[f](features[offset:offset + rows.numel()].float())
                offset += rows.numel()
                targets = data[f][1]["train"][1][rows]
                if data[f][0].multi_label:
                    loss = loss + losses[f](logits, targets.float()) / targets.shape[1]
                else:
                    loss = loss + losses[f](logits, targets[:, 0])
            loss = loss / index.numel()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * index.numel()
        scheduler.step()
        return float(total) / max(int(owner.shape[0]), 1)

    began = time.perf_counter()
    best, best_epoch, best_state, stale, history = -1.0, 0, None, 0, []
    epoch = 0
    for epoch in range(1, spec.epochs + 1):
        loss = train_epoch()
        val = {f: macro_f1(data[f][1]["val"][2], scores(f, "val"), data[f][0].task) for f in flags}
        mean_val = float(np.mean(list(val.values())))
        history.append({"epoch": epoch, "train_loss": loss, "val_macro_f1": val, "mean_val_macro_f1": mean_val})
        if mean_val > best:
            best, best_epoch, stale = mean_val, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= spec.patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    per_dataset = {}
    for f in flags:
        dataset = data[f][0]
        test_scores, labels = scores(f, "test"), data[f][1]["test"][2]
        acc, auc = evaluate_scores(labels, test_scores, dataset.task)
        per_dataset[f] = {"macro_f1": macro_f1(labels, test_scores, dataset.task), "test_acc": acc, "test_auc": auc}
    seconds = time.perf_counter() - began
    return MultitaskResult(flags, per_dataset, harmonic_mean([r["macro_f1"] for r in per_dataset.values()]),
                           epoch, best_epoch, seconds, describe_device(device), history)


def multitask_job(spec: MultitaskSpec) -> dict:
    """An executor job: one run, plain values back."""
    return asdict(train_multitask(spec))


# ------------------------------------------------------------------ the driver
@dataclass
class MultitaskRequest:
    datasets: Optional[list[str]] = None  # None: the 11 challenge datasets
    model: str = "resnet18"
    size: int = 28
    epochs: int = 100
    patience: int = 10
    batch_size: int = 128
    seed: int = 0
    device: str = "auto"
    threads: Optional[int] = None
    data_root: Optional[str] = None
    verify: bool = True
    compile: bool = False
    compare: bool = False  # also train each dataset alone (the single-task comparison)
    executor: str = "local"
    ray_address: Optional[str] = None
    subset: Optional[int] = None


def payload(result: dict, missing: list[str]) -> dict:
    """The `--json` shape of issue 13."""
    return {"datasets": result["datasets"], "missing": missing,
            "per_dataset": {f: {k: row[k] for k in ("macro_f1", "test_acc", "test_auc")}
                            for f, row in result["per_dataset"].items()},
            "harmonic_mean_macro_f1": result["harmonic_mean_macro_f1"], "epochs": result["epochs"],
            "seconds": round(result["seconds"], 2), "device": result["device"]}


def zero_note(result: dict, label: str) -> Optional[str]:
    zeros = [f for f, row in result["per_dataset"].items() if row["macro_f1"] == 0]
    if not zeros:
        return None
    return (f"{label}: the harmonic mean is 0 because {', '.join(zeros)} scored macro-F1 0 "
            f"(one zero makes the harmonic mean 0)")


def run_multitask(request: MultitaskRequest, progress=lambda _: None) -> tuple[dict, Optional[dict], list[str]]:
    """(multi-task payload, single-task payload or None, notes)."""
    from ..errors import UserError
    from ..executor import Job, check_executor, run_jobs
    from .architectures import Skipped, resolve
    from .data import default_root
    from .datasets import check_size, get_dataset
    from .verify import check_file

    size = check_size(request.size)
    for flag, value, least in (("--epochs", request.epochs, 1), ("--patience", request.patience, 1),
                               ("--batch-size", request.batch_size, 2)):
        if value < least:
            raise UserError(f"{flag} {value} is too small: pass {flag} {least} or more")
    check_executor(request.executor)
    arch = resolve(request.model, size)
    if isinstance(arch, Skipped) or not arch.is_torch:
        reason = arch.reason if isinstance(arch, Skipped) else f"{arch.name} is not a network"
        raise UserError(f"--model {request.model}: {reason}; pass a network such as resnet18 or simplecnn")
    from .train import resolve_device

    resolve_device(request.device)
    wanted = list(dict.fromkeys(get_dataset(n).flag for n in (request.datasets or CHALLENGE_2D)))
    root = default_root() if request.data_root is None else __import__("pathlib").Path(request.data_root).expanduser()
    present = [f for f in wanted if (root / get_dataset(f).file_name(size)).exists()]
    missing = [f for f in wanted if f not in present]
    if not present:
        names = ", ".join(get_dataset(f).file_name(size) for f in missing)
        raise UserError(f"none of the datasets is in {root} (looked for {names}): pass --data-root DIR")
    for flag in present:
        check_file(get_dataset(flag), size, root / get_dataset(flag).file_name(size), request.verify)
    base = dict(model=arch.name, size=size, epochs=request.epochs, patience=request.patience,
                batch_size=request.batch_size, seed=request.seed, device=request.device,
                threads=request.threads or (1 if request.executor == "ray" else None),
                data_root=str(root), verify=request.verify, compile=request.compile, subset=request.subset)
    jobs = [Job("multitask", multitask_job, MultitaskSpec(datasets=tuple(present), **base))]
    if request.compare:
        jobs += [Job(flag, multitask_job, MultitaskSpec(datasets=(flag,), **base)) for flag in present]
    results: dict[str, dict] = {}
    for outcome in run_jobs(jobs, request.executor, address=request.ray_address, cpus_per_job=request.threads or 1):
        if not outcome.ok:
            raise UserError(f"{outcome.job.key} run failed: {outcome.error}")
        results[outcome.job.key] = outcome.value
        progress(f"{outcome.job.key}: done in {outcome.value['seconds']:.0f}s")
    main = payload(results["multitask"], missing)
    notes = [n for n in [zero_note(results["multitask"], "multi-task")] if n]
    single = None
    if request.compare:
        per = {f: results[f]["per_dataset"][f] for f in present}
        single = {"datasets": present, "missing": missing,
                  "per_dataset": {f: {k: per[f][k] for k in ("macro_f1", "test_acc", "test_auc")} for f in present},
                  "harmonic_mean_macro_f1": harmonic_mean([per[f]["macro_f1"] for f in present]),
                  "epochs": [results[f]["epochs"] for f in present],
                  "seconds": round(sum(results[f]["seconds"] for f in present), 2),
                  "device": results[present[0]]["device"]}
        note = zero_note(single, "single-task")
        if note:
            notes.append(note)
    main["model"] = arch.name
    return main, single, notes
