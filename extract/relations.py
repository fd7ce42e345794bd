"""What table and sentence extraction share: a `Result`, the paper's `DocumentContext`, the
models a mention can stand for, and `merge_results`, which keeps one value per (model, setting,
metric, split) when a paper states a result twice. `table_results` reads tables,
`sentence_results` reads sentences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

from . import gazetteers
from .numbers import ParsedNumber, metric_fraction
from ..kb.normalize import name_key

# Result priorities: which statement wins when a paper prints one result twice, differently.
TABLE, SENTENCE, REPORT_AVERAGE, SUMMARY_SENTENCE = 3, 2, 1, 0


@dataclass
class Result:
    model: str                   # as the paper writes it
    metric: str
    value: float                 # fraction in [0, 1]
    split: str
    page: Optional[int]
    snippet: str
    method: str                  # table | sentence | openalex
    setting: str = ""            # what tells apart runs of one model ("W/ aug", "PCA")
    dataset: Optional[str] = None
    decimals: int = 2
    priority: int = SENTENCE
    proposed: bool = False
    confidence: float = 0.9
    flags: dict = field(default_factory=dict)  # e.g. {"augmentation": "no"} read off a table row

    @property
    def model_key(self) -> str:
        return model_key(self.model)


def model_key(name: str) -> str:
    """One key per model: the catalogue entry it resolves to, else its spelling-insensitive key."""
    return gazetteers.model_of(name) or name_key(name)


# ---------------------------------------------------------------------------- document context
MODEL_LABEL = re.compile(r"\b(?:Model|Method|Approach|Pipeline|Architecture|Network|Classifier|Scheme|System)"
                       r"\s+(?:[A-Z]|\d{1,2}|I{1,3}|IV)\b")
GENERIC_MODELS = frozenset({"Custom CNN", "MLP", "Ensemble", "Hybrid CNN-Transformer"})


@dataclass
class DocumentContext:
    """What relation extraction needs to know about the whole paper."""

    main_model: Optional[str] = None             # the paper's own (or only) model, as written
    single_model: bool = False                   # one model dominates the paper
    dataset: Optional[str] = None                # the dominant dataset (catalogue name or as written)
    label_models: dict[str, str] = field(default_factory=dict)  # "model a" -> "SVM"
    sentence_models: list[list[tuple[int, str]]] = field(default_factory=list)  # per sentence: (token, model)
    sentence_texts: list[str] = field(default_factory=list)
    class_words: set[str] = field(default_factory=set)
    proposed_cue: bool = False                   # the text proposes a model ("we propose", "novel")
    own_model_cue: bool = False                  # the text calls a model its own ("our model")
    model_names: set[str] = field(default_factory=set)  # name_key of every model the text names

    def declared_label(self, label: str) -> Optional[str]:
        """The model behind a label the paper declared: "Model A", or the "A" of "A (PCA)"."""
        cleaned = " ".join(label.split()).strip(" .:").lower()
        if cleaned in self.label_models:
            return self.label_models[cleaned]
        leading = re.match(r"([a-z]|\d{1,2})(?:\s|\(|$)", cleaned)
        if leading:
            for declared, model in self.label_models.items():
                if declared.split()[-1] == leading.group(1):
                    return model
        return None

    def resolve_label(self, label: str, exclude: Iterable[str] = ()) -> Optional[str]:
        """The model named nearest to a label across the paper's sentences ("a transfer
        learning model (MobileNetV2)" ties "Transfer" to MobileNetV2)."""
        cleaned = " ".join(label.split()).strip(" .:")
        if len(cleaned) < 3 or not re.search(r"[A-Za-z]{3}", cleaned):
            return None
        excluded = {model_key(e) for e in exclude}
        pattern = re.compile(rf"(?<![\w-]){re.escape(cleaned.split()[0])}(?![\w-])", re.IGNORECASE)
        scores: dict[str, float] = {}
        names: dict[str, str] = {}
        for index, text in enumerate(self.sentence_texts):
            if not self.sentence_models[index]:
                continue
            for match in pattern.finditer(text):
                position = len(text[:match.start()].split())
                for token, model in self.sentence_models[index]:
                    key = model_key(model)
                    if key in excluded or model.lower() == cleaned.lower():
                        continue
                    scores[key] = scores.get(key, 0.0) + 1.0 / (1 + abs(token - position))
                    names.setdefault(key, model)
        if not scores:
            return None
        best = max(scores, key=scores.get)
        return names[best] if scores[best] >= 0.2 else None


def find_label_models(sentences: list[tuple[str, list[tuple[int, str]]]]) -> dict[str, str]:
    """Labels a paper gives its models ("Model A (Classical ML) - RBF-kernel SVM"): each label
    stands for the model named closest to it, summed over the sentences that mention both."""
    scores: dict[str, dict[str, float]] = {}
    for text, models in sentences:
        if not models:
            continue
        for match in MODEL_LABEL.finditer(text):
            label = " ".join(match.group().split()).lower()
            position = len(text[:match.start()].split())
            for token, model in models:
                if gazetteers.model_of(model) in GENERIC_MODELS:
                    continue
                bucket = scores.setdefault(label, {})
                bucket[model] = bucket.get(model, 0.0) + 1.0 / (1 + abs(token - position))
    return {label: max(bucket, key=bucket.get) for label, bucket in scores.items() if bucket}



def metric_value(number: ParsedNumber) -> Optional[tuple[float, int]]:
    """The number as a metric fraction, with the decimals it was printed with (on the 0-1 scale)."""
    value = metric_fraction(number)
    if value is None:
        return None
    decimals = number.decimals + (2 if (number.is_percent or number.value > 1) else 0)
    return value, decimals


def resolve_mention(mention: tuple[int, int, str], ctx: DocumentContext) -> Optional[str]:
    """A generic "the CNN" in a paper whose own model is a named CNN means that model; a
    PROPOSED phrase means the paper's own model."""
    start, end, name = mention
    if name == "PROPOSED":
        return ctx.main_model or "proposed"
    if gazetteers.model_of(name) in GENERIC_MODELS and ctx.main_model \
            and gazetteers.model_of(ctx.main_model) not in GENERIC_MODELS \
            and _same_kind(gazetteers.model_of(name), ctx.main_model):
        return ctx.main_model
    if ctx.main_model and is_head_of(name, ctx.main_model):
        return ctx.main_model  # "our GCN" in a paper about its "Delaunay GCN"
    return name


def _same_kind(generic: str, model: str) -> bool:
    """Whether a generic mention ("the CNN") can stand for a paper's named model: a CNN for a
    convolutional network ("VGG19", "Mask R-CNN"), not for a graph network ("GCN")."""
    family = gazetteers.family_of(model)
    if generic == "Custom CNN":
        return family in gazetteers.CONVOLUTIONAL_FAMILIES or bool(re.search(r"cnn|conv|net\b", model, re.I))
    return True


def is_head_of(mention: str, name: str) -> bool:
    """Whether a bare architecture word ("GCN") is the head of a longer name ("Delaunay GCN")."""
    words = name.split()
    return len(words) > 1 and name_key(words[-1]) == name_key(mention) and gazetteers.model_of(name) is None


# ---------------------------------------------------------------------------- merging
def _within_rounding(a: Result, b: Result) -> bool:
    coarse = min(a.decimals, b.decimals)
    tolerance = 0.5 * 10 ** (-coarse) if coarse > 0 else 0.005
    return abs(a.value - b.value) <= max(tolerance, 0.005) + 1e-9


def _same_run(a: Result, b: Result) -> bool:
    return a.model_key == b.model_key and a.metric == b.metric


def merge_results(results: list[Result]) -> list[Result]:
    """One value per (model, setting, metric, split).

    A table experiment that repeats another's numbers (the same run in a second table) is
    dropped; a sentence that restates a table value at more precision refines it ("79.49%" for
    "0.79"); of conflicting statements the higher priority wins (a results table over a results
    sentence over a report average over the abstract). Two results sentences that give one
    model different values are kept as separate settings: papers do that for distinct runs.
    """
    tables = _drop_repeated_rows([r for r in results if r.priority in (TABLE,)])
    kept: list[Result] = list(tables)
    refined: set[int] = set()
    others = sorted((r for r in results if r.priority != TABLE), key=lambda r: -r.priority)
    for result in others:
        matches = [i for i, k in enumerate(kept) if _same_run(k, result) and _within_rounding(k, result)
                   and k.split in (result.split, "test") and result.split in (k.split, "test")]
        if matches:
            preferred = [i for i in matches if kept[i].setting and kept[i].setting.lower() in result.snippet.lower()]
            fresh = [i for i in matches if i not in refined]
            target = (preferred or fresh or matches)[0]
            if result.decimals > kept[target].decimals and target not in refined:
                current = kept[target]
                current.value, current.decimals = result.value, result.decimals
                current.snippet = result.snippet if current.method != "table" else current.snippet
                refined.add(target)
            continue
        conflicts = [k for k in kept if _same_run(k, result) and k.setting == result.setting
                     and k.split == result.split]
        if conflicts:
            if any(k.priority > result.priority for k in conflicts):
                continue
            if all(k.priority == result.priority == SENTENCE for k in conflicts):
                runs = [k for k in kept if _same_run(k, result) and k.split == result.split]
                result.setting = f"result {len(runs) + 1}"
            else:
                continue
        kept.append(result)
    return kept


def _drop_repeated_rows(results: list[Result]) -> list[Result]:
    """A run printed in two tables (Table 3's "W/o aug" = Table 2's "PCA") is one experiment: a
    later (model, setting) whose values equal an earlier one's on every shared metric (3 or more)
    is dropped."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for result in results:
        groups.setdefault((result.model_key, result.setting), []).append(result)
    kept_keys: list[tuple[str, str]] = []
    dropped: set[tuple[str, str]] = set()
    for key, group in groups.items():
        values = {(r.metric, r.split): r.value for r in group}
        for earlier in kept_keys:
            if earlier[0] != key[0]:
                continue
            earlier_values = {(r.metric, r.split): r.value for r in groups[earlier]}
            shared = set(values) & set(earlier_values)
            if len(shared) >= 3 and all(abs(values[s] - earlier_values[s]) < 1e-9 for s in shared):
                dropped.add(key)
                break
        if key not in dropped:
            kept_keys.append(key)
    out = []
    seen: set[tuple] = set()
    for result in results:
        key = (result.model_key, result.setting)
        identity = (key, result.metric, result.split)
        if key in dropped or identity in seen:
            continue
        seen.add(identity)
        out.append(result)
    return out
