"""What the pipeline's stages share: a sentence with its entities (`SentenceView`), a kept
result (`Result`), and the paper's `DocumentContext` (its own model, its dataset, its labels)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from . import gazetteers
from ..kb.normalize import name_key

CITATION = re.compile(r"\[\s*\d+(?:\s*[-–,]\s*\d+)*\s*\]")  # "[12]", "[3, 4]", "[5-7]"


@dataclass
class SentenceView:
    """A sentence and its entities as (start, end, label, canonical) character offsets."""

    text: str
    entities: list[tuple[int, int, str, str]]
    page: Optional[int]
    index: int = 0


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
    proposed: bool = False

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
    class_words: set[str] = field(default_factory=set)
    proposed_cue: bool = False                   # the text proposes a model ("we propose", "novel")
    own_model_cue: bool = False                  # the text calls a model its own ("our model")


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



def is_head_of(mention: str, name: str) -> bool:
    """Whether a bare architecture word ("GCN") is the head of a longer name ("Delaunay GCN")."""
    words = name.split()
    return len(words) > 1 and name_key(words[-1]) == name_key(mention) and gazetteers.model_of(name) is None


# ---------------------------------------------------------------------------- merging
