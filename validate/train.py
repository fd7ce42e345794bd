"""The MedMNIST training recipe, one loop for CPU and CUDA.

Defaults are the official MedMNIST v2 recipe (experiments/MedMNIST2D/train_and_eval_pytorch.py):
Adam lr 1e-3, batch 128, 100 epochs, MultiStepLR x0.1 at 50% and 75% of the epochs (the same
float milestones, so a run too short to reach them never decays), no augmentation, the weights
with the best validation AUC kept, test ACC/AUC by medmnist's getACC/getAUC for the dataset's
task. What differs is speed only: the dataset stays resident as uint8 tensors (on the GPU when
there is one) and is normalised per batch, there is no DataLoader, tensors are channels_last, the
loss is summed on the device (no per-step host sync), and on CUDA bf16 autocast and
cudnn.benchmark are on.
"""

from __future__ import annotations

import copy
import os
import random
import resource
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn as nn

from ..errors import UserError
from .data import MedMNISTArrays, SplitArrays, normalise, to_tensors

CHECKPOINT_FORMAT = 1


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 128
    lr: float = 1e-3
    milestones: tuple[float, ...] = (0.5, 0.75)  # fractions of `epochs`
    gamma: float = 0.1
    seed: int = 0
    device: str = "auto"
    threads: Optional[int] = None  # CPU threads; None: $OMP_NUM_THREADS if set, else every core
    checkpoint_dir: Optional[Path] = None
    checkpoint_seconds: float = 60.0  # at most one checkpoint per this much training (and the last epoch)
    resume: bool = False
    compile: bool = False  # torch.compile the forward pass (CUDA only; see compile_model)


@dataclass
class EpochLog:
    epoch: int  # 1-based
    epochs: int
    lr: float  # the learning rate this epoch trained with
    train_loss: float
    val_auc: float
    val_acc: float
    seconds: float
    best: bool


@dataclass
class TrainResult:
    test_acc: float
    test_auc: float
    val_acc: float
    val_auc: float
    best_epoch: int  # 1-based; 0 for models fitted once
    epochs: int
    seconds: float  # training wall time, resumed segments included
    device: str  # "cpu" | "cuda"
    device_name: str
    epoch_seconds: float = 0.0
    images_per_s: float = 0.0  # training images per second (train phase only)
    peak_memory_mb: float = 0.0
    resumed_from_epoch: int = 0
    history: list[dict] = field(default_factory=list)


def resolve_device(requested: str = "auto") -> torch.device:
    requested = (requested or "auto").lower()
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is visible to torch; pass --device cpu or --device auto")
        return torch.device(requested)
    if requested == "cpu":
        return torch.device("cpu")
    raise UserError(f"unknown device {requested!r}: pass --device auto, cuda or cpu")


def configure_threads(threads: Optional[int]) -> None:
    if threads:
        torch.set_num_threads(threads)
    elif not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(os.cpu_count() or 1)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def evaluate_scores(labels: np.ndarray, scores: np.ndarray, task: str) -> tuple[float, float]:
    """(ACC, AUC) exactly as medmnist's Evaluator computes them for `task`."""
    from medmnist.evaluator import getACC, getAUC

    return float(getACC(labels, scores, task)), float(getAUC(labels, scores, task))


def compile_model(model: nn.Module, device: torch.device, requested: bool) -> nn.Module:
    """`torch.compile(model)` on CUDA when asked, else the model itself. On CPU the compile time
    (tens of seconds per architecture) is never repaid by a MedMNIST-sized run, and inductor needs
    a C++ toolchain, so the request is ignored there. The CUDA path is unproven in this project's
    CI (no GPU); dynamic=False because the last, shorter batch recompiles once, not per step."""
    if not requested or device.type != "cuda":
        return model
    return torch.compile(model, dynamic=False)


def load_checkpoint(path: Path, device) -> dict:
    """A checkpoint's tensors and plain values, never its code: torch's weights-only unpickler
    refuses any other object, so a crafted last.pt cannot run anything (issue 12)."""
    import pickle
    import re

    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch names the callable the pickle asked for ("unsupported GLOBAL posix.system ...")
        code = re.search(r"GLOBAL\s+([\w.]+)", str(exc))
        if code:
            raise UserError(f"{path} holds more than weights (it calls {code.group(1)}) and was not loaded: "
                            f"delete it, or pass --out DIR to start elsewhere") from None
        raise UserError(f"{path} is not a readable checkpoint (UnpicklingError): delete it, "
                        f"or pass --out DIR to start elsewhere") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable checkpoint ({type(exc).__name__}): delete it, "
                        f"or pass --out DIR to start elsewhere") from None
    if not isinstance(state, dict):
        raise UserError(f"{path} is not a medicalrec checkpoint: delete it, or pass --out DIR to start elsewhere")
    return state


class Trainer:
    """One training run: the model, the resident data, the optimiser state and the best weights so far."""

    def __init__(self, build: Callable[[], nn.Module], arrays: MedMNISTArrays, config: TrainConfig,
                 identity: dict) -> None:
        self.config = config
        self.identity = identity  # what a resumable checkpoint must match
        self.device = resolve_device(config.device)
        self.cuda = self.device.type == "cuda"
        if not self.cuda:
            configure_threads(config.threads)
        else:
            torch.backends.cudnn.benchmark = True
        self.task = arrays.dataset.task
        self.multi_label = arrays.dataset.multi_label
        seed_everything(config.seed)
        # channels_last helps oneDNN on CPU (~7% for ResNet-18 at 28 px) as well as cuDNN.
        self.model = build().to(self.device, memory_format=torch.channels_last)
        # the compiled module runs the steps; state dicts are read from and written to self.model,
        # so checkpoints carry no "_orig_mod." prefixes and resume with or without --compile
        self.forward = compile_model(self.model, self.device, config.compile)
        self.train_x, self.train_y = to_tensors(arrays["train"], self.device)
        self.val_x, _ = to_tensors(arrays["val"], self.device)
        self.test_x, _ = to_tensors(arrays["test"], self.device)
        self.val_labels, self.test_labels = arrays["val"].labels, arrays["test"].labels
        self.criterion = nn.BCEWithLogitsLoss() if self.multi_label else nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=[f * config.epochs for f in config.milestones], gamma=config.gamma)
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(config.seed)
        self.eval_batch = config.batch_size * (8 if arrays.size <= 28 else 1)
        self.start_epoch = 1
        self.best_auc, self.best_epoch, self.best_state = -1.0, 0, None
        self.seconds = self.train_seconds = 0.0
        self.images = 0
        self.history: list[dict] = []

    # ------------------------------------------------------------------ steps
    def _batch(self, images: torch.Tensor) -> torch.Tensor:
        return normalise(images).contiguous(memory_format=torch.channels_last)

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.cuda)

    def train_epoch(self) -> float:
        self.model.train()
        n, batch = self.train_x.shape[0], self.config.batch_size
        order = torch.randperm(n, device=self.device, generator=self.generator)
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        for start in range(0, n, batch):
            index = order[start:start + batch]
            if index.numel() < 2:  # batch norm cannot train on one image
                continue
            targets = self.train_y[index]
            targets = targets.float() if self.multi_label else targets[:, 0]
            with self._autocast():
                outputs = self.forward(self._batch(self.train_x[index]))
            loss = self.criterion(outputs.float(), targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach() * index.numel()
            seen += index.numel()
        self.scheduler.step()
        self.images += seen
        return float(loss_sum) / max(seen, 1)  # the one host sync of the epoch

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> np.ndarray:
        self.model.eval()
        outputs = []
        for start in range(0, images.shape[0], self.eval_batch):
            with self._autocast():
                outputs.append(self.forward(self._batch(images[start:start + self.eval_batch])).float())
        logits = torch.cat(outputs)
        scores = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=1)
        return scores.cpu().numpy()

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint_path(self) -> Optional[Path]:
        return self.config.checkpoint_dir / "last.pt" if self.config.checkpoint_dir else None

    def save(self, epoch: int) -> None:
        path = self._checkpoint_path()
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format": CHECKPOINT_FORMAT, "identity": self.identity, "epoch": epoch,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if self.cuda else None,
            "best_auc": self.best_auc, "best_epoch": self.best_epoch, "best_state": self.best_state,
            "seconds": self.seconds, "train_seconds": self.train_seconds, "images": self.images,
            "history": self.history,
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)  # an interruption mid-write leaves the previous checkpoint intact

    def load(self) -> None:
        path = self._checkpoint_path()
        if path is None or not path.exists():
            return
        state = load_checkpoint(path, self.device)
        if state.get("format") != CHECKPOINT_FORMAT or state.get("identity") != self.identity:
            raise UserError(f"the checkpoint in {path.parent} is from a different run ({state.get('identity')}): "
                            f"drop --resume to start again, or pass --out DIR")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        if self.cuda and state["cuda_rng"] is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)
        self.best_auc, self.best_epoch, self.best_state = state["best_auc"], state["best_epoch"], state["best_state"]
        self.seconds, self.train_seconds, self.images = state["seconds"], state["train_seconds"], state["images"]
        self.history = state["history"]
        self.start_epoch = state["epoch"] + 1

    # ------------------------------------------------------------------ the run
    def _sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def run(self, on_epoch: Optional[Callable[[EpochLog], None]] = None) -> TrainResult:
        config = self.config
        if config.resume:
            self.load()
        resumed_from = self.start_epoch - 1
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        last_save = time.perf_counter()
        for epoch in range(self.start_epoch, config.epochs + 1):
            began = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            loss = self.train_epoch()
            self._sync()
            trained = time.perf_counter()
            val_acc, val_auc = evaluate_scores(self.val_labels, self.predict(self.val_x), self.task)
            improved = val_auc > self.best_auc
            if improved:
                self.best_auc, self.best_epoch = val_auc, epoch
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            ended = time.perf_counter()
            self.seconds += ended - began
            self.train_seconds += trained - began
            log = EpochLog(epoch, config.epochs, lr, loss, val_auc, val_acc, ended - began, improved)
            self.history.append(asdict(log))
            if ended - last_save >= config.checkpoint_seconds or epoch == config.epochs:
                self.save(epoch)
                last_save = time.perf_counter()
            if on_epoch is not None:
                on_epoch(log)
        return self._finish(resumed_from)

    def _finish(self, resumed_from: int) -> TrainResult:
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
            if self.config.checkpoint_dir:
                torch.save({"identity": self.identity, "epoch": self.best_epoch, "model": self.best_state},
                           self.config.checkpoint_dir / "best.pt")
        val_acc, val_auc = evaluate_scores(self.val_labels, self.predict(self.val_x), self.task)
        test_acc, test_auc = evaluate_scores(self.test_labels, self.predict(self.test_x), self.task)
        epochs_run = max(len(self.history), 1)
        if self.cuda:
            peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return TrainResult(
            test_acc=test_acc, test_auc=test_auc, val_acc=val_acc, val_auc=val_auc, best_epoch=self.best_epoch,
            epochs=self.config.epochs, seconds=self.seconds, device=self.device.type,
            device_name=describe_device(self.device), epoch_seconds=self.seconds / epochs_run,
            images_per_s=self.images / self.train_seconds if self.train_seconds else 0.0,
            peak_memory_mb=peak, resumed_from_epoch=resumed_from, history=copy.deepcopy(self.history))


def train_network(build: Callable[[], nn.Module], arrays: MedMNISTArrays, config: TrainConfig,
                  identity: Optional[dict] = None,
                  on_epoch: Optional[Callable[[EpochLog], None]] = None) -> TrainResult:
    """Train the network `build()` returns on `arrays` with `config`; test the best-validation weights."""
    identity = dict(identity or {})
    identity.update(dataset=arrays.dataset.flag, size=arrays.size, epochs=config.epochs,
                    batch_size=config.batch_size, lr=config.lr, seed=config.seed)
    return Trainer(build, arrays, config, identity).run(on_epoch)


def fit_classical(estimator, arrays: MedMNISTArrays) -> TrainResult:
    """Fit a scikit-learn estimator once on the training pixels; score val and test like the networks."""
    from threadpoolctl import threadpool_limits

    from . import classical

    dataset = arrays.dataset
    # One BLAS thread: a multi-threaded BLAS sums in an order that depends on its thread count, and
    # lbfgs then stops at a slightly different optimum; a Ray worker (1 thread) and the parent (2)
    # would record different figures for the same seed.
    with threadpool_limits(limits=1):
        began = time.perf_counter()
        fitted = classical.fit(estimator, arrays["train"], dataset.multi_label)
        seconds = time.perf_counter() - began

        def metrics(split: SplitArrays) -> tuple[float, float]:
            scores = classical.scores(fitted, split, dataset.n_classes, dataset.multi_label)
            return evaluate_scores(split.labels, scores, dataset.task)

        val_acc, val_auc = metrics(arrays["val"])
        test_acc, test_auc = metrics(arrays["test"])
    return TrainResult(
        test_acc=test_acc, test_auc=test_auc, val_acc=val_acc, val_auc=val_auc, best_epoch=0, epochs=0,
        seconds=seconds, device="cpu", device_name="cpu (scikit-learn)",
        images_per_s=len(arrays["train"]) / seconds if seconds else 0.0,
        peak_memory_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
