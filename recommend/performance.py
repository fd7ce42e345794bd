"""The performance ranker: which model will score best on this task? Two objectives, one network.

- The task side is the usage ranker's encoder (ranker.py): one token per context feature, a learned
  missing token, a small pre-norm transformer over [CLS] + feature tokens.
- The model side: every catalogue item is a vector = its own id embedding + its family + its
  parameter-count bucket + its pretraining (the most common `pretrained` value of its rows).
  While training, an item's id embedding is dropped at random (`id_dropout`), so the family /
  size / pretraining part must carry the ranking alone: a model seen on few tasks borrows from
  its family, and a model seen on none still gets a place.
- Two heads score (task, item) pairs: performance = mean-rank prior(item) + <q_perf(task), item> +
  quality(item), and usage = <q_usage(task), item> + a bias started at the log popularity prior.
  The mean-rank prior is fixed, not learned: each item's mean normalised rank over the TRAINING
  groups that measured it (the "best_mean_rank" baseline), shrunk toward its family's mean for items
  with little evidence; the network learns residuals over it, and weight decay pulls them back to it.
- Loss = pairwise logistic (RankNet) over every pair of items of every comparison group
  (comparisons.comparison_frame: a paper comparing >= 2 models, or one benchmark task under one
  protocol), each group weighted 1 (mean over its pairs), + `usage_weight` x the cross-entropy of
  the item each literature experiment used (today's target).
- Ranking score = performance + prior_weight x log p_usage(item | task): usage is the prior. The
  prior weight is chosen on the inner validation TASKS (never the evaluation's test tasks) from
  `prior_weights`, by pairwise win accuracy.
- Seeded; `n_models` members (default 3), each early-stopped on its own held-out training tasks, so
  the ensemble as a whole learns from every training task; scores are the members' mean.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn

from .catalogue import Catalogue
from .comparisons import BENCHMARK, comparison_frame, source_kinds, task_keys, usage_rows
from .features import FEATURE_SETS, FeatureEncoder, context_frame
from .ranker import torch_threads


@dataclass
class PerformanceConfig:
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 1  # one layer: on a shared 2-core machine each layer's small kernels cost more than they earn
    ff_mult: int = 2
    dropout: float = 0.1
    head_dropout: float = 0.1
    feature_mask: float = 0.1
    id_dropout: float = 0.3
    lr: float = 3e-3
    weight_decay: float = 0.05
    group_batch: int = 32
    usage_batch: int = 64
    max_epochs: int = 40
    max_steps: int = 1500  # per member: caps a big KB's training (deterministic, unlike a clock)
    patience: int = 6
    min_steps: int = 10
    min_epochs: int = 12
    val_fraction: float = 0.2
    # 3 members, each early-stopped on its own held-out tasks, so together they learn from every task: on
    # leave-tasks-out choosing seeds 100-104, pairwise win acc 0.613 (3) vs 0.600 (5); one member was
    # below best_mean_rank on seeds 100-102 (best@3 0.529 vs 0.559). ~3x one member's time (bench: <= 60 s)
    n_models: int = 3
    usage_weight: float = 0.5
    quality_scale: float = 4.0  # the mean-rank prior of the performance head, in logit units (best vs worst ~ 4)
    # "offset": the training groups' mean-rank prior is a fixed part of the performance head and the
    # network learns residuals over it (weight decay pulls them back to the prior); "init": the
    # prior is only where the learned per-item quality starts. 3 members, choosing seeds 100-104: best@3
    # 0.585 vs 0.582, pairwise win acc 0.613 vs 0.614 (a tie); "offset" keeps items with weak residual
    # evidence at the prior by construction
    prior_mode: str = "offset"
    prior_strength: float = 2.0  # pseudo-groups of shrinkage toward the family's mean rank
    prior_weights: tuple = (0.0, 0.1, 0.3, 1.0)
    default_prior_weight: float = 0.3
    n_buckets: int = 8
    n_param_buckets: int = 6
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["prior_weights"] = list(self.prior_weights)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PerformanceConfig":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "prior_weights" in values:
            values["prior_weights"] = tuple(values["prior_weights"])
        return cls(**values)


DEFAULT_PERFORMANCE_CONFIG = PerformanceConfig()


# ---------------------------------------------------------------------- model-side features
@dataclass
class ItemAttributes:
    """Per catalogue item: family, parameter bucket and pretraining ids (0 = unknown)."""

    families: list[str]
    param_edges: list[float]
    pretraining: list[str]
    family_id: list[int] = field(default_factory=list)
    param_id: list[int] = field(default_factory=list)
    pretraining_id: list[int] = field(default_factory=list)
    params_millions: dict[str, float] = field(default_factory=dict)

    def sizes(self) -> list[int]:
        return [len(self.families), len(self.param_edges) + 2, len(self.pretraining) + 1]

    def matrix(self) -> torch.Tensor:
        return torch.as_tensor(np.stack([self.family_id, self.param_id, self.pretraining_id], axis=1), dtype=torch.long)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ItemAttributes":
        return cls(**data)

    @classmethod
    def build(cls, experiments: pd.DataFrame, catalogue: Catalogue, n_param_buckets: int) -> "ItemAttributes":
        from .evidence import item_labels_of, params_by_item

        families = catalogue.families()
        labels = item_labels_of(experiments, catalogue)
        params = params_by_item(experiments, labels, catalogue)
        logs = np.log1p([params[i] for i in catalogue.items if i in params])
        edges = sorted(set(float(q) for q in np.quantile(logs, np.linspace(0, 1, n_param_buckets + 1)[1:-1]))) \
            if len(logs) >= 2 else []
        pretraining_of: dict[str, str] = {}
        if "pretrained" in experiments:
            values = experiments["pretrained"].map(lambda v: str(v).strip().casefold() if isinstance(v, str) and v.strip() else None)
            for item, group in values.groupby(labels):
                known = group.dropna()
                if not known.empty:
                    pretraining_of[str(item)] = str(known.mode().iloc[0])
        vocab = sorted(set(pretraining_of.values()))
        attrs = cls(families=families, param_edges=edges, pretraining=vocab, params_millions=params)
        family_index = {f: i for i, f in enumerate(families)}
        for item in catalogue.items:
            attrs.family_id.append(family_index[catalogue.family_of[item]])
            attrs.param_id.append(0 if item not in params else 1 + int(np.searchsorted(edges, np.log1p(params[item]))))
            attrs.pretraining_id.append(0 if item not in pretraining_of else 1 + vocab.index(pretraining_of[item]))
        return attrs


def performance_catalogue(experiments: pd.DataFrame, comparisons: Optional[pd.DataFrame] = None) -> Catalogue:
    """The usage catalogue, plus every model a benchmark compares on >= 2 tasks as its own item (a
    benchmark is one source, so the two-papers rule would fold its models into family labels).
    `comparisons`: comparison_frame(experiments) when the caller has it (it is the slow part)."""
    if comparisons is None:
        benchmark = experiments[source_kinds(experiments) == BENCHMARK]
        comparisons = comparison_frame(benchmark) if not benchmark.empty else None
    extra: set[str] = set()
    if comparisons is not None and not comparisons.empty:
        bench = comparisons[comparisons["source_kind"] == BENCHMARK]
        counts = bench.groupby("model")["group"].nunique()
        extra = {str(m) for m, n in counts.items() if n >= 2}
    return Catalogue.build(experiments, extra_named=extra)


# ---------------------------------------------------------------------- network
class PerformanceNet(nn.Module):
    def __init__(self, vocab_sizes: list[int], n_items: int, attributes: ItemAttributes, config: PerformanceConfig) -> None:
        super().__init__()
        d = config.d_model
        self.register_buffer("offsets", torch.as_tensor(np.cumsum([0] + list(vocab_sizes[:-1])), dtype=torch.long))
        self.register_buffer("item_attrs", attributes.matrix())
        self.embedding = nn.Embedding(int(sum(vocab_sizes)), d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.position = nn.Parameter(torch.zeros(1, len(vocab_sizes) + 1, d))
        layer = nn.TransformerEncoderLayer(d_model=d, nhead=config.n_heads, dim_feedforward=config.ff_mult * d,
                                           dropout=config.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.dropout = nn.Dropout(config.head_dropout)
        self.item_id = nn.Embedding(n_items, d)
        self.item_parts = nn.ModuleList(nn.Embedding(size, d) for size in attributes.sizes())
        self.perf_query = nn.Linear(d, d)
        self.usage_query = nn.Linear(d, d)
        self.quality = nn.Linear(d, 1)
        self.usage_bias = nn.Parameter(torch.zeros(n_items))
        self.item_quality = nn.Parameter(torch.zeros(n_items))
        # the training groups' mean-rank prior (fixed, not learned): the performance head learns residuals over it
        self.register_buffer("rank_prior", torch.zeros(n_items))
        self.scale = 1.0 / math.sqrt(d)
        for parameter in (self.cls, self.position):
            nn.init.normal_(parameter, std=0.02)
        nn.init.normal_(self.embedding.weight, std=0.1)
        nn.init.normal_(self.item_id.weight, std=0.05)
        for part in self.item_parts:
            nn.init.normal_(part.weight, std=0.1)

    def items(self, id_keep: Optional[torch.Tensor] = None) -> torch.Tensor:
        ids = self.item_id.weight if id_keep is None else self.item_id.weight * id_keep[:, None]
        return ids + sum(part(self.item_attrs[:, j]) for j, part in enumerate(self.item_parts))

    def forward(self, tokens: torch.Tensor, id_keep: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding(tokens + self.offsets)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.position
        state = self.dropout(self.norm(self.encoder(x)[:, 0]))
        items = self.items(id_keep)
        perf = (self.perf_query(state) @ items.T) * self.scale + self.quality(items).squeeze(-1) + self.item_quality \
            + self.rank_prior
        usage = (self.usage_query(state) @ items.T) * self.scale + self.usage_bias
        return perf, usage


# ---------------------------------------------------------------------- training data
@dataclass
class GroupTensors:
    """Comparison groups as padded arrays: items (G, M), scores (G, M), mask (G, M), tokens (G, F)."""

    tokens: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    mask: np.ndarray
    tasks: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


def group_tensors(comparisons: pd.DataFrame, tokens_of_row: np.ndarray, catalogue: Catalogue, tasks: pd.Series) -> GroupTensors:
    if comparisons.empty:
        return GroupTensors(np.zeros((0, tokens_of_row.shape[1]), np.int64), np.zeros((0, 2), np.int64),
                            np.zeros((0, 2)), np.zeros((0, 2), bool), np.zeros(0, dtype=object))
    sizes = comparisons.groupby("group", sort=True).size()
    width = int(sizes.max())
    n = len(sizes)
    items, scores, mask = np.zeros((n, width), np.int64), np.zeros((n, width)), np.zeros((n, width), bool)
    context_rows = np.zeros(n, np.int64)
    for g, (_, block) in enumerate(comparisons.groupby("group", sort=True)):
        k = len(block)
        items[g, :k] = [catalogue.index(i) for i in block["item"]]
        scores[g, :k] = block["score"].to_numpy(dtype=float)
        mask[g, :k] = True
        context_rows[g] = int(block["row"].iloc[0])
    return GroupTensors(tokens_of_row[context_rows], items, scores, mask, tasks.to_numpy()[context_rows])


def pair_loss(perf: torch.Tensor, items: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RankNet over every ordered pair of a group (winner measured higher), mean per group, mean over groups."""
    s = perf.gather(1, items)
    better = (scores[:, :, None] > scores[:, None, :]) & mask[:, :, None] & mask[:, None, :]
    losses = nn.functional.softplus(-(s[:, :, None] - s[:, None, :])) * better
    counts = better.sum(dim=(1, 2))
    keep = counts > 0
    if not keep.any():
        return perf.sum() * 0.0
    return (losses.sum(dim=(1, 2))[keep] / counts[keep]).mean()


def pairwise_accuracy(scores: np.ndarray, groups: GroupTensors) -> float:
    s = np.take_along_axis(scores, groups.items, axis=1)
    better = (groups.scores[:, :, None] > groups.scores[:, None, :]) & groups.mask[:, :, None] & groups.mask[:, None, :]
    diff = s[:, :, None] - s[:, None, :]
    outcome = np.where(diff > 0, 1.0, np.where(diff == 0, 0.5, 0.0))
    return float((outcome * better).sum() / max(better.sum(), 1))


def _holdout_tasks(tasks: np.ndarray, fraction: float, rng: np.random.Generator) -> set:
    unique = np.unique(tasks)
    if len(unique) < 5 or fraction <= 0:
        return set()
    rng.shuffle(unique)
    return set(unique[: max(1, int(round(fraction * len(unique))))])


class PerformanceRanker:
    """fit(experiments) / score(experiments) like a Method, plus performance/usage parts for explanations."""

    name = "transformer"

    def __init__(self, config: Optional[PerformanceConfig] = None) -> None:
        self.config = config or DEFAULT_PERFORMANCE_CONFIG
        self.encoder: Optional[FeatureEncoder] = None
        self.catalogue: Optional[Catalogue] = None
        self.attributes: Optional[ItemAttributes] = None
        self.feature_set: Optional[str] = None
        self.nets: list[PerformanceNet] = []
        self.prior_weight = self.config.default_prior_weight
        self.rank_prior: Optional[np.ndarray] = None  # the training groups' mean-rank prior per item
        self.history: dict[str, Any] = {}

    def fit(self, train: pd.DataFrame, catalogue: Optional[Catalogue] = None, feature_set: str = "IV",
            seed: int = 0, comparisons: Optional[pd.DataFrame] = None) -> "PerformanceRanker":
        """`comparisons`: comparison_frame(train, catalogue) when the caller already has it."""
        cfg = self.config
        train = train.reset_index(drop=True)
        self.catalogue = catalogue or performance_catalogue(train)
        self.feature_set = feature_set
        self.attributes = ItemAttributes.build(train, self.catalogue, cfg.n_param_buckets)
        if comparisons is None:
            comparisons = comparison_frame(train, self.catalogue)
        usage = usage_rows(train)
        targets = self.catalogue.targets(usage)
        usage = usage[targets >= 0]
        targets = targets[targets >= 0]
        context_rows = np.unique(np.concatenate([usage.index.to_numpy(), comparisons["row"].to_numpy(dtype=np.int64)]))
        ctx = context_frame(train.iloc[context_rows])  # only the rows that teach: not 30,000 benchmark runs
        self.encoder = FeatureEncoder(FEATURE_SETS[feature_set], n_buckets=cfg.n_buckets).fit(ctx)
        tokens = np.zeros((len(train), len(self.encoder.features)), dtype=np.int64)
        tokens[context_rows] = self.encoder.tokens(ctx)
        tasks = task_keys(train)
        groups = group_tensors(comparisons, tokens, self.catalogue, tasks)
        usage_tokens, usage_tasks = tokens[usage.index.to_numpy()], tasks[usage.index].to_numpy()
        self.nets, epochs, self.history = [], [], {}
        with torch_threads(cfg.threads):
            for member in range(max(1, cfg.n_models)):
                member_seed = seed + 7919 * member
                held = _holdout_tasks(groups.tasks, cfg.val_fraction, np.random.default_rng(member_seed))
                val = np.isin(groups.tasks, list(held)) if held else np.zeros(len(groups), bool)
                usage_fit = ~np.isin(usage_tasks, list(held)) if held else np.ones(len(targets), bool)
                net, best_epoch = self._train(groups, ~val, val, usage_tokens[usage_fit], targets[usage_fit], member_seed)
                if member == 0:
                    self.prior_weight = self._choose_prior(net, groups, val)
                self.nets.append(net.eval())
                epochs.append(best_epoch)
            # scoring uses the prior of every training group (the held-out tasks only served early stopping)
            self.rank_prior = self._quality_prior(groups, np.ones(len(groups), bool))
            if cfg.prior_mode == "offset":
                for net in self.nets:
                    net.rank_prior.copy_(torch.as_tensor(self.rank_prior, dtype=torch.float32))
        self.history = {**self.history, "n_groups": int(len(groups)), "n_usage_rows": int(len(targets)), "n_items": len(self.catalogue.items),
                        "best_epochs": epochs, "prior_weight": self.prior_weight,
                        "n_pairs": int(sum(
                            (groups.scores[g][groups.mask[g]][:, None] > groups.scores[g][groups.mask[g]][None, :]).sum()
                            for g in range(len(groups))))}
        return self

    def _choose_prior(self, net: PerformanceNet, groups: GroupTensors, val: np.ndarray) -> float:
        if not val.any():
            return self.config.default_prior_weight
        held = GroupTensors(groups.tokens[val], groups.items[val], groups.scores[val], groups.mask[val], groups.tasks[val])
        perf, logp = self._parts([net], torch.as_tensor(held.tokens))
        accuracy = {w: pairwise_accuracy(perf + w * logp, held) for w in self.config.prior_weights}
        self.history["inner_prior_accuracy"] = {str(k): round(v, 4) for k, v in accuracy.items()}
        # a weight must beat a smaller one by a clear margin (0.01) to be chosen: few held-out tasks are noisy
        chosen = min(accuracy)
        for weight in sorted(accuracy):
            if accuracy[weight] > accuracy[chosen] + 0.01:
                chosen = weight
        return float(chosen)

    def _train(self, groups: GroupTensors, fit: np.ndarray, val: np.ndarray, usage_tokens: np.ndarray,
               usage_targets: np.ndarray, seed: int) -> tuple[PerformanceNet, int]:
        cfg = self.config
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        n_items = len(self.catalogue.items)
        net = PerformanceNet(self.encoder.vocab_sizes(), n_items, self.attributes, cfg)
        with torch.no_grad():
            counts = np.bincount(usage_targets, minlength=n_items) + 0.5
            net.usage_bias.copy_(torch.as_tensor(np.log(counts / counts.sum()), dtype=torch.float32))
            prior = torch.as_tensor(self._quality_prior(groups, fit), dtype=torch.float32)
            (net.rank_prior if cfg.prior_mode == "offset" else net.item_quality).copy_(prior)
        optimiser = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        g_tokens, g_items = torch.as_tensor(groups.tokens), torch.as_tensor(groups.items)
        g_scores, g_mask = torch.as_tensor(groups.scores, dtype=torch.float32), torch.as_tensor(groups.mask)
        u_tokens, u_targets = torch.as_tensor(usage_tokens), torch.as_tensor(usage_targets, dtype=torch.long)
        fit_idx, val_idx = torch.as_tensor(np.flatnonzero(fit)), torch.as_tensor(np.flatnonzero(val))
        # an "epoch" is at least `min_steps` batches: a small KB would otherwise get a few dozen updates in all
        steps = max(cfg.min_steps, math.ceil(len(fit_idx) / cfg.group_batch), math.ceil(len(u_targets) / cfg.usage_batch))
        max_epochs = max(2, min(cfg.max_epochs, cfg.max_steps // steps))
        if not len(val_idx):
            max_epochs = max(2, max_epochs // 2)  # nothing to stop on: a shorter, fixed schedule
        best, best_epoch, best_state, waited = math.inf, max_epochs, None, 0
        for epoch in range(1, max_epochs + 1):
            net.train()
            g_order = fit_idx[torch.randperm(len(fit_idx), generator=generator)] if len(fit_idx) else fit_idx
            u_order = torch.randperm(len(u_targets), generator=generator)
            for step in range(steps):
                keep = (torch.rand(n_items, generator=generator) >= cfg.id_dropout).float()
                g_batch = g_order[(step * cfg.group_batch) % len(g_order):][: cfg.group_batch] if len(g_order) else g_order
                u_batch = u_order[(step * cfg.usage_batch) % len(u_order):][: cfg.usage_batch] \
                    if len(u_order) and cfg.usage_weight > 0 else u_order[:0]
                # one forward pass over the groups' and the usage rows' contexts (small batches: overhead dominates)
                x = self._mask(torch.cat([g_tokens[g_batch], u_tokens[u_batch]]), generator)
                if not len(x):
                    continue
                perf, usage = net(x, keep)
                n = len(g_batch)
                loss = torch.zeros(())
                if n:
                    loss = loss + pair_loss(perf[:n], g_items[g_batch], g_scores[g_batch], g_mask[g_batch])
                if len(u_batch):
                    loss = loss + cfg.usage_weight * nn.functional.cross_entropy(usage[n:], u_targets[u_batch])
                if not loss.requires_grad:
                    continue
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
            if len(val_idx):
                net.eval()
                with torch.no_grad():
                    perf, _ = net(g_tokens[val_idx])
                    value = float(pair_loss(perf, g_items[val_idx], g_scores[val_idx], g_mask[val_idx]))
                if value < best - 1e-4 or epoch < cfg.min_epochs:
                    best, best_epoch, waited = value, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                elif epoch >= cfg.min_epochs:  # a few held-out tasks are a noisy signal: no stop before min_epochs
                    waited += 1
                    if waited >= cfg.patience:
                        break
        if best_state is not None:
            net.load_state_dict(best_state)
        return net, best_epoch

    def _quality_prior(self, groups: GroupTensors, fit: np.ndarray) -> np.ndarray:
        """Where the performance head starts: each item's mean normalised rank over the training groups
        that measured it (best 1, worst 0, centred), shrunk towards its family's mean by `prior_strength`
        pseudo-groups (the family's mean towards the overall one likewise); an item never compared starts at its family's mean (0 with no family evidence)."""
        n_items = len(self.catalogue.items)
        total, count = np.zeros(n_items), np.zeros(n_items)
        for g in np.flatnonzero(fit):
            mask = groups.mask[g]
            values = groups.scores[g][mask]
            if len(values) < 2:
                continue
            ranks = pd.Series(values).rank(ascending=False, method="average").to_numpy()
            np.add.at(total, groups.items[g][mask], 1.0 - (ranks - 1) / (len(values) - 1))
            np.add.at(count, groups.items[g][mask], 1.0)
        family = np.asarray(self.attributes.family_id)
        known = count > 0
        overall = total[known].sum() / count[known].sum() if known.any() else 0.5
        prior = np.zeros(n_items)
        for f in np.unique(family):
            members = family == f
            strength = self.config.prior_strength
            f_count = count[members].sum() + strength
            f_mean = (total[members].sum() + strength * overall) / f_count if f_count > 0 else overall
            n = count[members] + strength
            prior[members] = np.where(n > 0, (total[members] + strength * f_mean) / np.maximum(n, 1e-12), f_mean)
        return self.config.quality_scale * (prior - overall)

    def _mask(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.config.feature_mask <= 0:
            return x
        return x.masked_fill(torch.rand(x.shape, generator=generator) < self.config.feature_mask, 0)

    # ------------------------------------------------------------------ scoring
    def _parts(self, nets: list[PerformanceNet], tokens: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        perf_total, logp_total = None, None
        with torch.no_grad():
            for net in nets:
                net.eval()
                perf, usage = net(tokens)
                logp = torch.log_softmax(usage, dim=1)
                perf_total = perf if perf_total is None else perf_total + perf
                logp_total = logp if logp_total is None else logp_total + logp
        return ((perf_total / len(nets)).numpy().astype(np.float64), (logp_total / len(nets)).numpy().astype(np.float64))

    def parts(self, experiments: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(performance scores, log p_usage) per row and catalogue item."""
        if not self.nets:
            raise RuntimeError("fit() or from_state() the performance ranker before scoring")
        with torch_threads(self.config.threads):
            return self._parts(self.nets, torch.as_tensor(self.encoder.tokens(context_frame(experiments))))

    def combine(self, perf: np.ndarray, logp: np.ndarray) -> np.ndarray:
        """The ranking score from parts(): performance + the usage prior."""
        return perf + self.prior_weight * logp

    def score(self, experiments: pd.DataFrame) -> np.ndarray:
        return self.combine(*self.parts(experiments))

    def score_context(self, ctx: pd.DataFrame) -> np.ndarray:
        with torch_threads(self.config.threads):
            return self.combine(*self._parts(self.nets, torch.as_tensor(self.encoder.tokens(ctx))))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        if not self.nets:
            raise RuntimeError("nothing to save: the performance ranker is not trained")
        return {"name": "performance", "config": self.config.to_dict(), "feature_set": self.feature_set,
                "encoder": self.encoder.to_dict(), "catalogue": self.catalogue.to_dict(),
                "attributes": self.attributes.to_dict(), "prior_weight": self.prior_weight, "history": self.history,
                "rank_prior": None if self.rank_prior is None else self.rank_prior.tolist(),
                "weights": [net.state_dict() for net in self.nets]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "PerformanceRanker":
        ranker = cls(PerformanceConfig.from_dict(state["config"]))
        ranker.feature_set = state["feature_set"]
        ranker.encoder = FeatureEncoder.from_dict(state["encoder"])
        ranker.catalogue = Catalogue.from_dict(state["catalogue"])
        ranker.attributes = ItemAttributes.from_dict(state["attributes"])
        ranker.prior_weight = float(state["prior_weight"])
        ranker.history = dict(state.get("history", {}))
        # checkpoints from before the mean-rank prior: a zero offset
        ranker.rank_prior = None if state.get("rank_prior") is None else np.asarray(state["rank_prior"], dtype=np.float64)
        for weights in state["weights"]:
            net = PerformanceNet(ranker.encoder.vocab_sizes(), len(ranker.catalogue.items), ranker.attributes, ranker.config)
            weights = dict(weights)
            weights.setdefault("rank_prior", torch.zeros(len(ranker.catalogue.items)))
            net.load_state_dict(weights)
            ranker.nets.append(net.eval())
        return ranker
