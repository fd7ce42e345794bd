"""How fast `medicalrec validate` trains, and how that compares with MedMNIST's own training loop.

1. Training images/s at 28 px for every registered torch architecture (random 1-channel images,
   batch 128, a fixed number of steps after a warm-up), on CPU and on CUDA when present.
2. ResNet-18 on real BreastMNIST, epoch by epoch: medicalrec's loop (train.py) against a faithful
   re-implementation of MedMNIST's experiments/MedMNIST2D/train_and_eval_pytorch.py (a DataLoader
   over medmnist.BreastMNIST with ToTensor + Normalize(0.5, 0.5) done without torchvision, per-batch
   .to(device), loss.item() per step, and train/val/test evaluation with medmnist.Evaluator every
   epoch), interleaved so both see the same machine load; prints ours/reference ratios of the
   fastest epoch after the first (the least disturbed one on a shared machine).

Usage: .venv/bin/python bench/validate_speed.py [--steps 3] [--epochs 2] [--threads N] [--data-root DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "medmnist"

from medicalrec.validate.architectures import REGISTRY  # noqa: E402
from medicalrec.validate.data import MedMNISTArrays, SplitArrays, load_arrays  # noqa: E402
from medicalrec.validate.datasets import get_dataset  # noqa: E402
from medicalrec.validate.train import TrainConfig, Trainer  # noqa: E402


def synthetic(n_train: int) -> MedMNISTArrays:
    rng = np.random.default_rng(0)
    dataset = get_dataset("breastmnist")

    def split(n: int) -> SplitArrays:
        return SplitArrays(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 2, (n, 1)))

    return MedMNISTArrays(dataset, 28, Path("random"), {"train": split(n_train), "val": split(16), "test": split(16)})


def architecture_throughput(device: str, steps: int, batch: int) -> None:
    print(f"\n== training throughput at 28 px, 1 channel, batch {batch}, {steps} steps after a warm-up ({device}) ==")
    arrays = synthetic(steps * batch)
    warm = synthetic(batch)
    for arch in (a for a in REGISTRY.values() if a.is_torch):
        config = TrainConfig(epochs=1, batch_size=batch, device=device, threads=torch.get_num_threads())
        trainer = Trainer(lambda: arch.build(1, 2, 28), warm, config, {})
        trainer.train_epoch()  # warm-up: allocator, oneDNN / cuDNN kernel choice
        trainer.train_x, trainer.train_y = [t.to(trainer.device) for t in _tensors(arrays["train"])]
        _sync(trainer.device)
        began = time.perf_counter()
        trainer.train_epoch()
        _sync(trainer.device)
        seconds = time.perf_counter() - began
        print(f"{arch.name:20s} {steps * batch / seconds:9.1f} images/s  ({seconds / steps:.3f} s/step)")


def _tensors(split: SplitArrays):
    from medicalrec.validate.data import to_tensors

    return to_tensors(split)


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------ MedMNIST's reference loop
class ToTensorNormalize:
    """torchvision's transforms.Compose([ToTensor(), Normalize(mean=[.5], std=[.5])]) on a PIL image."""

    def __call__(self, image):
        array = np.asarray(image, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array)
        tensor = tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        return (tensor - 0.5) / 0.5


class ReferenceLoop:
    def __init__(self, data_root: Path, device: torch.device, batch: int, epochs: int,
                 model: str = "ResNet-18") -> None:
        import medmnist
        from torch.utils import data

        self.device, self.task = device, medmnist.INFO["breastmnist"]["task"]
        transform = ToTensorNormalize()
        splits = {s: medmnist.BreastMNIST(split=s, transform=transform, root=str(data_root)) for s in
                  ("train", "val", "test")}
        self.train_loader = data.DataLoader(splits["train"], batch_size=batch, shuffle=True)
        self.eval_loaders = {
            "train": data.DataLoader(splits["train"], batch_size=batch, shuffle=False),
            "val": data.DataLoader(splits["val"], batch_size=batch, shuffle=False),
            "test": data.DataLoader(splits["test"], batch_size=batch, shuffle=False),
        }
        self.evaluators = {s: medmnist.Evaluator("breastmnist", s, root=str(data_root)) for s in self.eval_loaders}
        torch.manual_seed(0)
        self.model = REGISTRY[model].build(1, 2, 28).to(device)
        self.criterion = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=0.001)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, [0.5 * epochs, 0.75 * epochs], 0.1)

    def train(self) -> float:
        total_loss = []
        self.model.train()
        for inputs, targets in self.train_loader:
            self.optimizer.zero_grad()
            outputs = self.model(inputs.to(self.device))
            targets = torch.squeeze(targets, 1).long().to(self.device)
            loss = self.criterion(outputs, targets)
            total_loss.append(loss.item())
            loss.backward()
            self.optimizer.step()
        return sum(total_loss) / len(total_loss)

    def test(self, split: str):
        self.model.eval()
        y_score = torch.tensor([]).to(self.device)
        with torch.no_grad():
            for inputs, targets in self.eval_loaders[split]:
                outputs = self.model(inputs.to(self.device))
                targets = torch.squeeze(targets, 1).long().to(self.device)
                self.criterion(outputs, targets).item()
                y_score = torch.cat((y_score, nn.Softmax(dim=1)(outputs).to(self.device)), 0)
        return self.evaluators[split].evaluate(y_score.detach().cpu().numpy())

    def epoch(self) -> tuple[float, float]:
        """(train-phase seconds, whole-epoch seconds), as the reference script runs an epoch."""
        began = time.perf_counter()
        self.train()
        _sync(self.device)
        trained = time.perf_counter()
        for split in ("train", "val", "test"):
            self.test(split)
        self.scheduler.step()
        return trained - began, time.perf_counter() - began


def ours_vs_reference(data_root: Path, device: str, epochs: int, batch: int, model: str = "ResNet-18",
                      compile_model: bool = False) -> None:
    arrays = load_arrays(get_dataset("breastmnist"), 28, data_root)
    n_train = len(arrays["train"])
    config = TrainConfig(epochs=epochs, batch_size=batch, device=device, threads=torch.get_num_threads(),
                         compile=compile_model)
    ours = Trainer(lambda: REGISTRY[model].build(1, 2, 28), arrays, config, {})
    reference = ReferenceLoop(data_root, ours.device, batch, epochs, model)
    from medicalrec.validate.train import evaluate_scores

    rows = {"ours": [], "reference": []}
    print(f"\n== {model} on BreastMNIST ({n_train} training images), {epochs} epochs each, interleaved "
          f"({ours.device}, {torch.get_num_threads()} threads{', torch.compile' if ours.forward is not ours.model else ''}) ==")
    for epoch in range(1, epochs + 1):
        began = time.perf_counter()
        ours.train_epoch()
        _sync(ours.device)
        trained = time.perf_counter()
        evaluate_scores(arrays["val"].labels, ours.predict(ours.val_x), ours.task)
        rows["ours"].append((trained - began, time.perf_counter() - began))
        rows["reference"].append(reference.epoch())
        for name in rows:
            train_s, epoch_s = rows[name][-1]
            print(f"epoch {epoch} {name:9s}: train {n_train / train_s:7.1f} images/s, epoch {epoch_s:6.2f} s")
    # The first epoch pays for warm-up on both sides; of the rest the fastest epoch is the one least
    # disturbed by other work on a shared machine (timeit's rule), so the ratios compare minima.
    kept = {name: values[1:] or values for name, values in rows.items()}
    best = {name: (min(t for t, _ in values), min(e for _, e in values)) for name, values in kept.items()}
    for name, (train_s, epoch_s) in best.items():
        print(f"fastest {name:9s}: train {n_train / train_s:7.1f} images/s, epoch {epoch_s:6.2f} s")
    print(f"ours/reference {model} speed: {best['reference'][0] / best['ours'][0]:.2f}x training images/s, "
          f"{best['reference'][1] / best['ours'][1]:.2f}x per epoch "
          f"(the reference evaluates train+val+test every epoch, ours val only)")


def ablation(device: str, model: str, steps: int, batch: int) -> None:
    """Images/s of one training step loop with each speed feature toggled, on resident random data."""
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    variants = [("fp32, NCHW", False, False, False), ("fp32, channels_last", True, False, False)]
    if cuda:
        variants += [("bf16 autocast, channels_last", True, True, False),
                     ("bf16 autocast, channels_last, torch.compile", True, True, True)]
    print(f"\n== {model} feature ablation at 28 px, batch {batch}, {steps} timed steps ({device}) ==")
    x = torch.randint(0, 256, (batch * steps, 1, 28, 28), dtype=torch.uint8, device=dev)
    y = torch.randint(0, 2, (batch * steps,), device=dev)
    for label, channels_last, bf16, compiled in variants:
        torch.manual_seed(0)
        net = REGISTRY[model].build(1, 2, 28).to(dev)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        net = net.to(memory_format=fmt)
        forward = torch.compile(net, dynamic=False) if compiled else net
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        criterion = nn.CrossEntropyLoss()

        def step(i: int) -> None:
            xb = x[i * batch:(i + 1) * batch].float().div_(127.5).sub_(1.0).contiguous(memory_format=fmt)
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
                out = forward(xb)
            loss = criterion(out.float(), y[i * batch:(i + 1) * batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        began = time.perf_counter()
        step(0)  # warm-up (and compilation)
        _sync(dev)
        warm = time.perf_counter() - began
        began = time.perf_counter()
        for i in range(steps):
            step(i)
        _sync(dev)
        seconds = time.perf_counter() - began
        print(f"{label:45s} {batch * steps / seconds:9.1f} images/s  (first step {warm:.2f} s)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--skip-architectures", action="store_true")
    parser.add_argument("--model", default="ResNet-18", help="the network of the reference comparison and ablation")
    parser.add_argument("--ablation", action="store_true", help="time channels_last / bf16 / torch.compile")
    parser.add_argument("--compile", action="store_true", help="ours with torch.compile (CUDA only)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}; {os.cpu_count()} CPU cores, {args.threads} threads; "
          f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}; "
          f"load average {os.getloadavg()[0]:.1f}")
    for device in devices:
        if not args.skip_architectures:
            architecture_throughput(device, args.steps, args.batch_size)
        if args.ablation:
            ablation(device, args.model, args.steps, args.batch_size)
        if (args.data_root / "breastmnist.npz").exists():
            ours_vs_reference(args.data_root, device, args.epochs, args.batch_size, args.model,
                              args.compile and device == "cuda")
        else:
            print(f"\n(no {args.data_root / 'breastmnist.npz'}: the reference comparison needs real BreastMNIST)")


if __name__ == "__main__":
    sys.exit(main())
