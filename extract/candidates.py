"""Every plausible (model, dataset, metric, value, split) of a paper, with the features a scorer
needs to tell a reported result from a number that only looks like one.

Two generators, both generic: the numeric cells of positioned tables (`layout.Grid`) whose row,
column or caption names a metric, and the numbers in sentences that sit near a metric word. They
aim at recall; `scorer` decides. No rule here names a paper's wording.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Optional

from . import gazetteers
from .numbers import find_numbers, metric_fraction, parse_number
from .relations import is_head_of

if TYPE_CHECKING:
    from .layout import Grid, TableCell

__all__ = ["Candidate", "table_candidates", "sentence_candidates", "table_values", "metric_mentions", "average_of",
           "add_document_features", "SECTIONS"]

SECTIONS = ("abstract", "body", "related", "references", "conclusion", "future", "front")
_CITATION = re.compile(r"\[\s*\d+(?:\s*[,–-]\s*\d+)*\s*\]|\bet al\b|\(\s*(?:19|20)\d\d[a-z]?\s*\)|\b(?:19|20)\d\d\b")
_COMPARISON = re.compile(r"compar|previous|existing|state[- ]of[- ]the[- ]art|literature|related|prior|other (?:studies|works|methods)",
                         re.IGNORECASE)
_RESULTS = re.compile(r"result|performance|evaluat|score|metric|accura|test", re.IGNORECASE)
_NOT_SCORE = re.compile(r"\bloss\b|epoch|\btime\b|\bsec|\bms\b|param|flop|size|\bimages?\b|samples?|count|number|#|"
                        r"\blr\b|learning rate|batch|dropout|\bmb\b|\bgb\b|threshold|p-value|std|deviation|"
                        r"ratio|proportion|\bage\b|year|dimension|pixels?|layers?|neurons?", re.IGNORECASE)
_OWN = re.compile(r"\b(?:we|our|ours|proposed|this (?:study|paper|work|report)|present(?:ed)? (?:model|method))\b",
                  re.IGNORECASE)
_HEDGE = re.compile(r"(?:over|above|more than|up to|nearly|approximately|about|around|almost|at least|less than|"
                    r"below|under|exceed(?:s|ing)?|~|≈|>|<|≥|≤)\s*$", re.IGNORECASE)
_CHANGE = re.compile(r"\b(?:improv\w*|increas\w*|decreas\w*|drop\w*|gain\w*|higher|lower|boost\w*|reduc\w*|"
                     r"outperform\w*|by)\s*$", re.IGNORECASE)
# A training log printed into a report (Keras: "179/179 ━━━ 20s 108ms/step - accuracy: 0.79 -
# loss: 0.56"; "Epoch 3/10 ... val_accuracy: 0.81"): progress, not results.
_TRAINING_LOG = re.compile(r"\d+m?s/step|\bepoch \d+/\d+|\b(?:val_)?loss:\s*\d|━", re.IGNORECASE)
_COUNT_UNIT = re.compile(r"\s*(?:epochs?|images?|samples?|layers?|patients?|cases?|classes|subjects?|"
                         r"iterations?|batch(?:es)?|folds?|pixels?|px|neurons?|filters?|units?|times)\b", re.IGNORECASE)
_GLUED = re.compile(r"[A-Za-z][-_]?$")
_AVERAGE = re.compile(r"\b(macro|weighted|micro)\b", re.IGNORECASE)


@dataclass
class Candidate:
    model: str
    metric: str
    value: float
    split: str
    page: Optional[int]
    snippet: str
    source: str                       # "table" | "sentence"
    dataset: Optional[str] = None
    average: str = ""
    setting: str = ""
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0
    accepted: bool = False
    origin: tuple = ()          # candidates of one origin are rival readings of one number

    @property
    def key(self) -> tuple:
        return (gazetteers.model_of(self.model) or self.model.lower(), self.metric, round(self.value, 4))


def average_of(text: str) -> str:
    """The last averaging word in a text ("macro", "weighted", "micro"): the nearest to a number
    that follows it."""
    found = _AVERAGE.findall(text)
    return found[-1].lower() if found else ""


@lru_cache(maxsize=1)
def _metric_regex() -> re.Pattern:
    """Every name of the metric vocabulary, longest first (names of one or two letters excepted)."""
    names = sorted({n for names in gazetteers.METRIC_TERMS.values() for n in names if len(n) > 2 or n == "f1"},
                   key=len, reverse=True)
    return re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w-])", re.IGNORECASE)


def metric_mentions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, canonical metric) of every metric word in a text, segmentation scores included
    (the scorer learns that they are not classification results)."""
    found = []
    for match in _metric_regex().finditer(text):
        metric = gazetteers.metric_of(match.group(0))
        if metric:
            found.append((match.start(), match.end(), metric))
    return found


def _metric_in(text: str) -> Optional[str]:
    metric = gazetteers.metric_of(text)
    if metric:
        return metric
    found = metric_mentions(text)
    metrics = {m for _, _, m in found}
    return found[-1][2] if len(metrics) == 1 else None


def _clean_label(text: str) -> str:
    text = _CITATION.sub(" ", text) if len(text) > 12 else text
    return re.sub(r"\s+", " ", text.strip(" *†‡§¶:|-–⋆★✓")).strip()


_SETTING_LIKE = re.compile(r"^(?:w/o?|with(?:out)?|\+|-|no|only|all)(?:\b|\s|$)|^[A-Z0-9]{1,5}$|^\S{1,3}$",
                           re.IGNORECASE)
# "(Ours)", "(proposed)" after a row's model: the paper's own model, named without the mark.
_OWN_MARK = re.compile(r"\(\s*(?:ours|proposed|our (?:model|method|approach))\s*\)", re.IGNORECASE)
_AVERAGE_ROW = re.compile(r"\b(?:macro|weighted|micro|avg|average|mean|overall|total)\b", re.IGNORECASE)


def _setting_like(label: str) -> bool:
    """A row label that names a variant, not a model: "RAW", "PCA", "W/ aug", "A"."""
    return "(" not in label and len(label.split()) <= 3 and bool(_SETTING_LIKE.search(label.strip()))


def _split_of(*texts: str) -> tuple[str, bool]:
    for text in texts:
        split = gazetteers.header_split(text) if text else None
        if split:
            return split, True
    return "test", False


# "mean ± std" says how a score is given, not that the column holds something else.
_MEAN_STD = re.compile(r"(?:±|\+/-|\+-)\s*(?:std|s\.?d\.?|standard deviation)\b", re.IGNORECASE)


def _flags(prefix: str, text: str) -> dict[str, float]:
    return {f"{prefix}_citation": float(bool(_CITATION.search(text))),
            f"{prefix}_comparison": float(bool(_COMPARISON.search(text))),
            f"{prefix}_not_score": float(bool(_NOT_SCORE.search(_MEAN_STD.sub(" ", text)))),
            f"{prefix}_own": float(bool(_OWN.search(text))),
            f"{prefix}_empty": float(not text.strip())}


def _model_flags(model: str, main_model: Optional[str]) -> dict[str, float]:
    canonical = gazetteers.model_of(model) if model else None
    main = gazetteers.model_of(main_model) if main_model else None
    return {
        "model_catalogue": float(canonical is not None),
        "model_pattern": float(bool(model) and gazetteers.looks_like_model_name(model)),
        "model_is_main": float(bool(model) and (model == main_model or (canonical is not None and canonical == main))),
        "model_is_metric": float(bool(model) and gazetteers.metric_of(model) is not None),
        "model_words": float(min(len(model.split()), 12)),
        "model_digits": float(sum(ch.isdigit() for ch in model) / max(len(model), 1)),
        "model_split_word": float(bool(model) and gazetteers.header_split(model) is not None),
    }


def _value_flags(number, fraction: float) -> dict[str, float]:
    return {"value": fraction, "value_percent": float(number.is_percent), "value_decimals": float(number.decimals),
            "value_over_1": float(number.value > 1.0), "value_error_bar": float(number.error is not None),
            "value_round": float(number.decimals == 0), "value_low": float(fraction < 0.5)}


def _section_flags(section: str) -> dict[str, float]:
    return {f"section_{name}": float(section == name) for name in SECTIONS}


# ------------------------------------------------------------------------------------ tables
def table_candidates(grids: Iterable["Grid"], *, section_of, main_model: Optional[str],
                     main_dataset: Optional[str], label_models: Optional[dict[str, str]] = None,
                     class_words: frozenset[str] = frozenset()) -> list[Candidate]:
    """A candidate for every numeric cell whose column header, row label or caption names a metric.
    The orientation follows where the metric is: a metric column (model rows), a metric row
    (model columns, a transposed table), or a single-metric caption."""
    found: list[Candidate] = []
    for grid in grids:
        caption = grid.caption
        section = section_of(grid.page, caption or grid.header_text)
        caption_metric = _metric_in(caption) if caption else None
        dataset_here = gazetteers.dataset_of(caption) if caption else None
        shape = _table_shape(grid, class_words)
        for cell in grid.cells:
            if _per_class_cell(cell, shape, class_words):
                continue
            candidate = _table_candidate(cell, grid, caption, caption_metric, main_model)
            if candidate is None:
                continue
            _compose_model(candidate, cell.group_label, f"{caption} {grid.header_text}", main_model,
                           label_models or {})
            if names_no_classifier(candidate.model):
                continue
            candidate.dataset = (gazetteers.dataset_of(cell.group_label) if cell.group_label else None) \
                or dataset_here or main_dataset
            candidate.features.update(_section_flags(section))
            label_words = {w.lower().strip(",.;:()") for w in cell.row_label.split()}
            header_words = {w.lower().strip(",.;:()") for w in cell.column_header.split(" / ")[-1].split()}
            candidate.features["label_class_word"] = float(bool(label_words & class_words))
            candidate.features["header_class_word"] = float(bool(header_words & class_words))
            candidate.features["label_class_term"] = float(bool(label_words & gazetteers.CLASS_TERMS))
            candidate.features["header_class_term"] = float(bool(header_words & gazetteers.CLASS_TERMS))
            candidate.features["label_average_row"] = float(bool(_AVERAGE_ROW.search(cell.row_label)))
            candidate.features.update(shape)
            found.append(candidate)
    return found


def _class_like(text: str, class_words: frozenset[str]) -> bool:
    words = {w.lower().strip(",.;:()") for w in text.split()}
    return bool(words & class_words or words & gazetteers.CLASS_TERMS)


def _per_class_cell(cell: "TableCell", shape: dict[str, float], class_words: frozenset[str]) -> bool:
    """A cell of a per-class table (rows or columns that are the task's classes) is one class's
    score, not a model's result; the table's average row or column is kept."""
    header = cell.column_header.split(" / ")[-1]
    if _AVERAGE_ROW.search(header):
        return False  # a column that averages over the classes ("Avg F1") is the model's, whatever row it is on
    if shape["table_rows_classes"] >= 0.6 and shape["table_distinct_labels"] >= 3 \
            and _class_like(cell.row_label, class_words) and not _AVERAGE_ROW.search(cell.row_label):
        return True
    return shape["table_columns_classes"] >= 0.6 and _class_like(header, class_words) \
        and not _AVERAGE_ROW.search(header) and not _metric_in(header)


def _table_shape(grid: "Grid", class_words: frozenset[str]) -> dict[str, float]:
    """What the whole table is: rows of models, columns of metrics, or rows of classes (a
    per-class table, whose cells are no model's overall result)."""
    labels = {_clean_label(c.row_label) for c in grid.cells if c.row_label.strip()}
    headers = {c.column_header.split(" / ")[-1].strip() for c in grid.cells if c.column_header.strip()}

    def share(items, test) -> float:
        return round(sum(1 for item in items if test(item)) / len(items), 3) if items else 0.0

    def model_like(text: str) -> bool:
        return bool(gazetteers.model_of(text) or gazetteers.looks_like_model_name(text))

    def class_like(text: str) -> bool:
        return _class_like(text, class_words)

    return {"table_rows_models": share(labels, model_like), "table_columns_metrics": share(headers, _metric_in),
            "table_columns_models": share(headers, model_like), "table_rows_metrics": share(labels, _metric_in),
            "table_rows_classes": share(labels, class_like), "table_rows_splits": share(labels, gazetteers.header_split),
            "table_columns_classes": share(headers, class_like),
            "table_distinct_labels": float(min(len(labels), 40))}


def _table_candidate(cell: "TableCell", grid: "Grid", caption: str, caption_metric: Optional[str],
                     main_model: Optional[str]) -> Optional[Candidate]:
    header = cell.column_header
    last_header = header.split(" / ")[-1] if header else ""
    label = _clean_label(cell.row_label)
    own_marked = bool(_OWN_MARK.search(label))
    label = _clean_label(_OWN_MARK.sub(" ", label)) if own_marked and _OWN_MARK.sub("", label).strip() else label
    label, label_setting = _model_part(cell.label_parts, label)
    spanning = [_clean_label(text) for text in cell.spanning_labels]
    naming = [text for text in spanning if _names_model(text)]
    if len(naming) == 1 and not _names_model(label):
        # The cell beside the block names the model; the row's own label is its setting.
        spanning = [text for text in spanning if text != naming[0]] + [label]
        label = naming[0]
    label_setting = ", ".join(part for part in (*spanning, label_setting) if part)
    if _SPREAD.match(last_header.strip()):
        return None  # the spread of a score ("STDDEV", "± SD") is no score
    header_metric = _metric_in(last_header) or _metric_in(header)
    row_metric = gazetteers.metric_of(label) or (_metric_in(label) if len(label.split()) <= 4 else None)
    if header_metric and row_metric == "accuracy" and header_metric in ("precision", "recall", "f1"):
        # A classification report's "accuracy" row: its one value sits under f1-score.
        metric, orientation, model = "accuracy", "row", ""
    elif header_metric:
        metric, orientation, model = header_metric, "column", label
    elif row_metric:
        metric, orientation, model = row_metric, "row", _clean_label(last_header)
    elif caption_metric:
        metric, orientation, model = caption_metric, "caption", label or _clean_label(last_header)
    else:
        return None
    number = parse_number(cell.value_text)
    if number is None:
        return None
    percent_column = "%" in header or any(
        (p := parse_number(v)) is not None and p.value > 1.0 for v in cell.column_values)
    fraction = metric_fraction(number, percent_scale=percent_column and not number.is_percent and number.value > 1.0
                               or None)
    if fraction is None:
        return None
    from_model = not model
    if from_model:
        model = main_model or ""
    if not model:
        return None
    split, split_named = _split_of(last_header, cell.row_label, cell.group_label, header, caption)
    column_numbers = [p.value for v in cell.column_values if (p := parse_number(v)) is not None]
    context = " ".join((cell.row_label, header, cell.group_label))
    features = {
        "source_table": 1.0, "source_sentence": 0.0,
        "orient_column": float(orientation == "column"), "orient_row": float(orientation == "row"),
        "orient_caption": float(orientation == "caption"), "model_from_context": float(from_model),
        "split_named": float(split_named), "split_train": float(split == "train"), "split_val": float(split == "val"),
        "header_levels": float(header.count(" / ") + 1 if header else 0),
        "rows": float(min(grid.n_rows, 40)), "columns": float(min(grid.n_columns, 20)),
        "row_position": cell.row_index / max(grid.n_rows, 1), "column_position": cell.column_index / max(grid.n_columns, 1),
        "best_in_column": float(bool(column_numbers) and number.value >= max(column_numbers)),
        "column_size": float(len(column_numbers)),
        "caption_present": float(bool(caption)), "caption_results": float(bool(_RESULTS.search(caption))),
        "group_label": float(bool(cell.group_label)),
        "average_named": float(bool(average_of(context))),
        "metric_segmentation": float(metric in gazetteers.SEGMENTATION_METRICS),
        "label_own_mark": float(own_marked),
    }
    features.update(_flags("caption", caption))
    features.update(_flags("header", header))
    features.update(_flags("label", cell.row_label))
    features.update(_model_flags(model, main_model))
    features.update(_value_flags(number, fraction))
    setting = cell.group_label.strip() if cell.group_label and not gazetteers.dataset_of(cell.group_label) else ""
    setting = ", ".join(part for part in (label_setting, setting) if part)
    features["label_model_part"] = float(bool(label_setting))
    return Candidate(model=model, metric=metric, value=fraction, split=split, page=grid.page,
                     snippet=cell.row_text[:200], source="table", average=average_of(context),
                     setting=setting[:60], features=features,
                     origin=("table", grid.page, round(grid.top), cell.row_index, cell.column_index))


_SPREAD = re.compile(r"^(?:\(?\s*(?:std\.?|stddev|std\. ?dev\.?|s\.?d\.?|sd|standard deviation|variance|"
                     r"±|\+/-|iqr|sem|standard error)\s*\)?)(?:\s|/|$)", re.IGNORECASE)
_MODEL_HEADER = re.compile(r"\b(?:models?|methods?|classifiers?|networks?|architectures?|algorithms?|"
                           r"approach(?:es)?|backbones?|engines?|techniques?)\b", re.IGNORECASE)


def names_no_classifier(model: str) -> bool:
    """A "model" that is people (radiologists, readers) or one of the task's classes ("Pneumonia",
    the row of a per-label table): its scores are no classifier's result."""
    base = model.split("(")[0]
    words = {w.lower().strip(",.;:()") for w in base.split()}
    return bool(gazetteers.HUMAN_READERS.search(base)) or (bool(words) and words <= gazetteers.CLASS_TERMS)


def _names_model(text: str) -> bool:
    return bool(text) and bool(gazetteers.model_of(text) or gazetteers.looks_like_model_name(text))


def _model_part(parts: tuple[tuple[str, str], ...], label: str) -> tuple[str, str]:
    """A row label of several cells ("HSJ.2D.r | libsvm.csvc | 600×5"): the cell under a header
    that names models ("Model", "Classifier", "Engine"), else the one cell that is a model name,
    is the model; the other cells are its setting."""
    if len(parts) < 2:
        return label, ""
    texts = [_clean_label(text) for text, _ in parts]
    chosen = [i for i, (_, header) in enumerate(parts)
              if any(len(level.split()) <= 3 and _MODEL_HEADER.search(level) for level in header.split(" / "))]
    if len(chosen) != 1:
        chosen = [i for i, text in enumerate(texts)
                  if gazetteers.model_of(text) or gazetteers.looks_like_model_name(text)]
    if len(chosen) != 1 or not texts[chosen[0]]:
        return label, ""
    rest = [text for i, text in enumerate(texts) if i != chosen[0] and text]
    return texts[chosen[0]], ", ".join(rest)


_ACRONYM = re.compile(r"(?<![\w-])[A-Z][A-Z0-9-]{1,7}(?![\w-])")
_TABLE_NUMBER = re.compile(r"^(?:[IVX]+|\d+)$")


# "WACC", "BACC", "mAUC": a metric's abbreviation with a qualifier is a metric, not a method.
_METRIC_VARIANT = re.compile(r"(?:ACC|AUC|F1|SEN|SPE|PREC?|REC|DSC|IOU)$")


def _named_in(caption: str) -> Optional[str]:
    """The method a caption is about: a model it names, else the one acronym in it that is no
    metric, dataset, split or table word ("AUC of LPQ on each layer" -> LPQ)."""
    terms = gazetteers.find_model_terms(caption)
    if terms:
        start, end, _ = terms[0]
        return caption[start:end]
    acronyms = Counter(a for a in _ACRONYM.findall(caption) if not gazetteers.metric_of(a) and not _METRIC_VARIANT.search(a)
                       and not gazetteers.dataset_of(a) and not gazetteers.header_split(a)
                       and a not in ("TABLE", "TAB", "FIG", "NA", "N/A") and not _TABLE_NUMBER.match(a))
    ranked = acronyms.most_common(2)
    if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
        return ranked[0][0]
    return None



def _compose_model(candidate: Candidate, group: str, context: str, main_model: Optional[str],
                   label_models: dict[str, str]) -> None:
    """Name the model of a table row the way the paper does.

    - A row that names a split ("Test set") or an average ("macro avg", a classification report)
      belongs to the model the table is about; the row sets the split or the average.
    - A one- or two-character row ("A") that the paper declares as "Model A" is "Model A".
    - A row that names a variant ("RAW", "W/ aug"): the label row above it (a descriptor, a
      model group), else a declared label in the caption ("Model A: ..."), else the paper's own
      model, with the row as its setting: "SVM (RAW)"."""
    name = candidate.model
    candidate.features["model_composed"] = 0.0
    if not name or gazetteers.model_of(name) or gazetteers.looks_like_model_name(name) \
            or candidate.features.get("model_from_context"):
        return
    lowered = context.lower()
    declared = next((model for label, model in label_models.items() if label in lowered), None) \
        or _named_in(context)
    group = group.strip()
    group_owner = group if group and len(group.split()) <= 4 and not gazetteers.dataset_of(group) else None
    split = gazetteers.header_split(name) if len(name.split()) <= 3 else None
    average = average_of(name) if _AVERAGE_ROW.search(name) and len(name.split()) <= 3 else ""
    if split or average or gazetteers.metric_of(name):
        owner = group_owner or declared or main_model
        if owner:
            candidate.model = owner
            candidate.split = split or candidate.split
            candidate.average = average or candidate.average
            candidate.features["model_composed"] = 1.0
            candidate.features["label_names_split"] = float(bool(split))
            candidate.features.update(_model_flags(owner, main_model))
        return
    if len(name) <= 2 and name.isalnum():
        word = next((label.split()[0] for label in label_models if label.split()[-1] == name.lower()), None)
        if word:
            candidate.model = f"{word.title()} {name}"
            candidate.features["model_composed"] = 1.0
            return
    if not _setting_like(name):
        return
    owner = group_owner or declared or main_model
    if owner and owner.lower() not in name.lower():
        candidate.model = f"{owner} ({name})"
        candidate.features["model_composed"] = 1.0
        candidate.features["model_from_group"] = float(owner == group)
        candidate.features.update(_model_flags(owner, main_model))


# ------------------------------------------------------------------------------------ sentences
def table_values(grids: Iterable["Grid"]) -> dict[Optional[int], set[float]]:
    """The numbers of each page's tables, for telling a table's text run into the prose."""
    values: dict[Optional[int], set[float]] = {}
    for grid in grids:
        for cell in grid.cells:
            number = parse_number(cell.value_text)
            if number is not None:
                values.setdefault(grid.page, set()).add(round(number.value, 6))
    return values


def _copy_of_a_table(text: str, page: Optional[int], tables: dict[Optional[int], set[float]]) -> bool:
    """A "sentence" that is a table's rows run into the prose ("Labels AUC Pneumonia 0.5597 0.7483
    Edema 0.7843 ..."): most of its numbers are cells of a table on its page, which is read as one."""
    cells = tables.get(page)
    if not cells:
        return False
    numbers = [round(n.value, 6) for n in find_numbers(text) if not n.is_range]
    in_cells = sum(value in cells for value in numbers)
    return (len(numbers) >= 4 and in_cells >= 0.75 * len(numbers)) or (len(numbers) >= 2 and in_cells == len(numbers))


def sentence_candidates(sentences, sections: list[str], *, main_model: Optional[str],
                        main_dataset: Optional[str],
                        tables: Optional[dict[Optional[int], set[float]]] = None) -> list[Candidate]:
    """A candidate for every number near a metric word: the nearest metric (before it, or just
    after: "95% accuracy") and the nearest model named in the sentence, else the paper's model.
    Sentences that are a table's text run into the prose (`tables`: `table_values`) are left to
    the table."""
    found: list[Candidate] = []
    for sentence, section in zip(sentences, sections):
        text = sentence.text
        metrics = metric_mentions(text)
        if not metrics or _TRAINING_LOG.search(text) or _copy_of_a_table(text, sentence.page, tables or {}):
            continue
        models = [(s, e, value) for s, e, label, value in sentence.entities if label == "MODEL"]
        proposed = any(label == "PROPOSED" for _, _, label, _ in sentence.entities)
        datasets = [value for _, _, label, value in sentence.entities if label == "DATASET"]
        # A number glued to a name ("ResNet-50", "top-5") or inside a citation ("[12]") is no score.
        numbers = [n for n in find_numbers(text) if not n.is_range and not _GLUED.search(text[:n.start])
                   and not (text[n.start - 1:n.start] == "[" and text[n.end:n.end + 1] in "],")]
        for number in numbers:
            metric, distance, before = _nearest_metric(metrics, number.start, number.end)
            if metric is None:
                continue
            fraction = metric_fraction(number)
            if fraction is None:
                continue
            nearest, model_distance = _nearest_model(models, number.start)
            if nearest and main_model and nearest != main_model and is_head_of(nearest, main_model):
                nearest = main_model  # a bare "GCN" in a paper about its "Voronoi GCN" is that model
            # Two readings of who scored it: the nearest model named, and the paper's own model;
            # the scorer picks between them (they share an origin).
            readings = [(nearest, False)] if nearest and not names_no_classifier(nearest) else []
            if main_model and main_model != nearest:
                readings.append((main_model, True))
            described = _described_model(text, number.start, models)
            if described and all(described.lower() != (m or "").lower() for m, _ in readings):
                readings.append((described, False))
            if not readings:
                continue
            prefix = text[max(0, number.start - 25):number.start]
            suffix = text[number.end:number.end + 25]
            # A bound ("over 91%"), a change ("increased by 14.4%") or a count ("50 epochs") is
            # never a reported score: the gold rules exclude them, so no candidate is made.
            if _HEDGE.search(prefix) or _CHANGE.search(prefix) or _COUNT_UNIT.match(suffix):
                continue
            split, split_named = _split_of(text[max(0, number.start - 60):number.end + 20])
            for model, from_context in readings:
                features = {
                    "source_table": 0.0, "source_sentence": 1.0, "model_from_context": float(from_context),
                    "model_named": float(nearest is not None), "readings": float(len(readings)),
                    "metric_distance": float(min(distance, 200)), "metric_before": float(before),
                    "model_distance": float(min(model_distance, 300)), "proposed_mention": float(proposed),
                    "numbers_in_sentence": float(min(len(numbers), 30)),
                    "metrics_in_sentence": float(min(len(metrics), 10)),
                    "hedged": float(bool(_HEDGE.search(prefix))), "change": float(bool(_CHANGE.search(prefix))),
                    "followed_by_citation": float(bool(re.match(r"\s*\[\d", suffix))),
                    "split_named": float(split_named), "split_train": float(split == "train"),
                    "split_val": float(split == "val"), "sentence_length": float(min(len(text) / 100, 10)),
                    "metric_segmentation": float(metric in gazetteers.SEGMENTATION_METRICS),
                    "average_named": float(bool(average_of(text))),
                    "model_described": float(model == described),
                }
                features.update(_flags("sentence", text))
                features.update(_section_flags(section))
                features.update(_model_flags(model, main_model))
                features.update(_value_flags(number, fraction))
                found.append(Candidate(model=model, metric=metric, value=fraction, split=split, page=sentence.page,
                                       snippet=_window(text, number.start, number.end), source="sentence",
                                       dataset=datasets[0] if datasets else main_dataset,
                                       average=average_of(text[max(0, number.start - 60):number.start]),
                                       features=features, origin=("sentence", sentence.index, number.start)))
    return found


# "the enhanced model achieved ...": a paper that names its variants by what sets them apart.
_DESCRIBED = re.compile(r"\b(?:the|our|this)\s+([a-z][a-z-]{2,})\s+(model|network|classifier)\b(?!\s*\()",
                        re.IGNORECASE)
# Words that only point at the model under discussion, not at one variant of several.
_POINTING = frozenset("""proposed final trained same above resulting best selected chosen overall whole entire new
current present full complete former latter previous following first second last other original""".split())


def _described_model(text: str, position: int, models) -> Optional[str]:
    """The variant the sentence's own words name before a number ("the baseline model"), when no
    model name stands between that phrase and the number."""
    found = None
    for match in _DESCRIBED.finditer(text[:position]):
        word = match.group(1).lower()
        if word in _POINTING or gazetteers.model_of(match.group(1)) or gazetteers.metric_of(match.group(1)) \
                or gazetteers.dataset_of(match.group(1)):
            continue
        found = match
    if found is None or any(found.end() <= start < position for start, _, _ in models):
        return None
    return f"{found.group(1).lower()} {found.group(2).lower()}"


def _window(text: str, start: int, end: int, width: int = 200) -> str:
    """At most `width` characters of a sentence around a number, so the number is always shown."""
    if len(text) <= width:
        return text
    left = max(0, min(start - 120, len(text) - width))
    return ("…" if left else "") + text[left:left + width - 2].strip() + ("…" if left + width - 2 < len(text) else "")


def _nearest_metric(metrics, start: int, end: int) -> tuple[Optional[str], int, bool]:
    best: tuple[Optional[str], int, bool] = (None, 10**6, False)
    for m_start, m_end, metric in metrics:
        if m_end <= start:
            distance, before = start - m_end, True
        elif m_start >= end:
            distance, before = (m_start - end) * 3, False  # "95% accuracy" only when adjacent
        else:
            continue
        if distance < best[1]:
            best = (metric, distance, before)
    return best if best[1] <= 120 else (None, 0, False)


def _generic_model(name: str) -> bool:
    return all(w.lower() in gazetteers.GENERIC_NAME_WORDS or w.lower() in gazetteers.ARCHITECTURE_HEADS
               for w in name.replace("-", " ").split())


def _nearest_model(models, position: int) -> tuple[Optional[str], int]:
    best, best_distance = None, 10**6
    # A generic word right after a model's name is part of that mention ("ResNet-50 CNN model").
    models = [m for i, m in enumerate(models)
              if not (i and 0 <= m[0] - models[i - 1][1] <= 1 and _generic_model(m[2])
                      and not _generic_model(models[i - 1][2]))]
    for start, end, name in models:
        distance = position - end if end <= position else (start - position) * 2
        if distance < best_distance:
            best, best_distance = name, distance
    return best, best_distance if best else 300


# ------------------------------------------------------------------------------------ document
def add_document_features(candidates: list[Candidate], document: Optional[dict[str, float]] = None) -> None:
    """Features that need the whole paper: how often a value recurs (a result is restated in the
    abstract, a table and the conclusion), how many candidates share its model and metric, and
    what the paper is about (`document`: how much it speaks of images, of segmentation)."""
    values = Counter((c.metric, round(c.value, 3)) for c in candidates)
    sources = {}
    for c in candidates:
        sources.setdefault((c.metric, round(c.value, 3)), set()).add(c.source)
    models = Counter(c.key[0] for c in candidates)
    per_metric = Counter(c.metric for c in candidates)
    for c in candidates:
        key = (c.metric, round(c.value, 3))
        c.features["value_repeats"] = float(min(values[key] - 1, 5))
        c.features["value_in_both_sources"] = float(len(sources[key]) > 1)
        c.features["model_candidates"] = float(min(models[c.key[0]], 10))
        c.features["metric_candidates"] = float(min(per_metric[c.metric], 10))
        for name, value in (document or {}).items():
            c.features[f"doc_{name}"] = value
