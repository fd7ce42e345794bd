"""(model, dataset, metric, value, split) results from tables and sentences.

Tables: model rows x metric columns, or the transpose (metric rows x model columns). A row whose
label is not a model (a setting such as "W/o aug" or "PCA") belongs to the model its caption or
the text names for that label ("Model A", "Transfer"); a row or column named by a split
("Training Set", "Test") is that split of the table's model, and so is the one value column of a
"Metric | Value" table. Names the catalogue does not know are kept as written ("LNet-X" beside
"VGG16"). Per-class rows (but not their average), the tables of other papers' results and
segmentation scores without an explicit dice/IoU column header are skipped.

Sentences: each metric mention is paired with the number right after it ("an accuracy of 96.5%")
or right before it ("96.5% accuracy"); the model is the one the clause names, else the paper's
own model when the sentence refers to it ("the proposed model", "the CNN", "Algorithm:"), else
the model of the last sentences. Citations, years, counts, ranges, bounds ("over 91%"),
thresholds and human readers' scores are not results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Optional

from . import gazetteers
from .numbers import ParsedNumber, find_numbers, metric_fraction, parse_number
from .tables import Table
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
_LABEL_RE = re.compile(r"\b(?:Model|Method|Approach|Pipeline|Architecture|Network|Classifier|Scheme|System)"
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
        for match in _LABEL_RE.finditer(text):
            label = " ".join(match.group().split()).lower()
            position = len(text[:match.start()].split())
            for token, model in models:
                if gazetteers.model_of(model) in GENERIC_MODELS:
                    continue
                bucket = scores.setdefault(label, {})
                bucket[model] = bucket.get(model, 0.0) + 1.0 / (1 + abs(token - position))
    return {label: max(bucket, key=bucket.get) for label, bucket in scores.items() if bucket}


# ---------------------------------------------------------------------------- tables
_PREVIOUS_WORK = re.compile(r"previous|prior|existing|literature|related work|state[- ]of[- ]the[- ]art|"
                            r"other (?:studies|works|methods)|published", re.IGNORECASE)
# A column naming where each row comes from: a table of the literature.
_SOURCE_HEADER = re.compile(r"^(?:authors?|references?|ref\.?|refs\.?|study|studies|papers?|works?|citations?|"
                            r"(?:author|authors|study|paper|work|ref\.?)\s*(?:\(year\)|/\s*year|and year|,\s*year)|"
                            r"year)$", re.IGNORECASE)
_OURS = re.compile(r"\(\s*(?:ours|proposed|our (?:model|method))\s*\)|\bours\b|\bproposed\b|\*$", re.IGNORECASE)
_PER_CLASS_CAPTION = re.compile(r"per[- ]class|class[- ]wise|each class|for each (?:category|class)", re.IGNORECASE)
_CLASS_HEADER = re.compile(r"^(?:class(?:es)?|category|categories|label|disease|grade|type|lesion|tumou?r type)$",
                           re.IGNORECASE)
_REPORT_AVERAGE = re.compile(r"^(?:macro[- ]?(?:avg|average)|avg\s*/\s*total)$", re.IGNORECASE)
_AVERAGE_ROW = re.compile(r"^(?:average|avg\.?|mean|overall|macro[- ]?(?:avg|average)|all classes)$", re.IGNORECASE)
_REPORT_SKIP = re.compile(r"^(?:weighted[- ]?(?:avg|average)|micro[- ]?(?:avg|average)|samples avg)$", re.IGNORECASE)
_SEGMENTATION = re.compile(r"segment", re.IGNORECASE)
_YES = re.compile(r"^(?:yes|y|✓|✔|with|w/)$", re.IGNORECASE)
_NO = re.compile(r"^(?:no|n|✗|✘|×|without|w/o|-)$", re.IGNORECASE)
_AUGMENT = re.compile(r"\baug(?:ment(?:ation|ed)?)?\b", re.IGNORECASE)


_SPLIT_LABEL = re.compile(r"^(?:the\s+)?(?P<split>train(?:ing)?|val(?:idation)?|dev(?:elopment)?|test(?:ing)?|"
                          r"hold[- ]?out|external(?: test| validation)?)(?:\s+(?:set|data(?:set)?|split|subset|"
                          r"images|results?|performance|phase|cohort))?\s*:?$", re.IGNORECASE)


def split_label(label: str) -> Optional[str]:
    """The split a row or column label names ("Training Set" -> train, "Test" -> test), else None."""
    match = _SPLIT_LABEL.match(" ".join(label.split()))
    if not match:
        return None
    word = match.group("split").lower()
    if word.startswith("external"):
        return "external"
    return "train" if word.startswith("train") else "val" if word.startswith(("val", "dev")) else "test"


def _is_number_cell(text: str) -> bool:
    return parse_number(text) is not None


def _split_ours(label: str) -> tuple[str, bool]:
    """("VGG19 (Ours)") -> ("VGG19", True)."""
    proposed = bool(_OURS.search(label))
    cleaned = re.sub(r"\(\s*(?:ours|proposed|our (?:model|method))\s*\)", "", label, flags=re.IGNORECASE)
    cleaned = re.sub(r"\s*\*+$", "", cleaned).strip()
    return cleaned or label, proposed


def _split_parenthetical(label: str) -> tuple[str, str]:
    """"u-net (2015)" -> ("u-net", "2015"); a bracket that only repeats the model's own alias
    ("Vision Transformer (ViT)") is dropped."""
    match = re.fullmatch(r"(.+?)\s*\(([^()]*)\)\s*", label)
    if not match:
        return label, ""
    base, inner = match.group(1).strip(), match.group(2).strip()
    if gazetteers.model_of(inner) and gazetteers.model_of(inner) == gazetteers.model_of(base):
        return base, ""
    if gazetteers.looks_like_model_name(base):
        return base, inner
    return label, ""


def _augmentation_flag(setting: str) -> Optional[str]:
    lowered = setting.lower()
    if not _AUGMENT.search(lowered):
        return None
    if re.search(r"w/o|without|\bno\b|\bnon\b", lowered):
        return "no"
    return "yes"


_MODEL_HEADER = re.compile(r"^(?:models?|methods?|networks?|architectures?|classifiers?|approach(?:es)?|"
                           r"algorithms?|backbones?|cnns?|(?:performance |evaluation )?(?:metrics?|measures?|"
                           r"parameters?))$", re.IGNORECASE)


def _named_model(label: str, ctx: DocumentContext) -> bool:
    """A label in a column the header calls "Model" (or the columns of a "Metric" table) is a
    model's name even when the catalogue does not know it ("PneuNet"), unless it is a class."""
    lowered = label.lower().strip()
    return bool(re.search(r"[A-Za-z]{2}", label)) and lowered not in ctx.class_words \
        and not re.fullmatch(r"\d+|class \w+|(?:macro|micro|weighted) avg|average|mean|total", lowered)


def _listed_model(label: str, ctx: DocumentContext, known: set[str]) -> bool:
    """A row (or column) label the catalogue does not know that still names a model: a model the
    text names ("MOCNN", defined as "Multi-output CNN (MOCNN)"), or an acronym or coined name
    ("GCN-X", "DRNet") listed beside catalogue models. Class names ("MEL", "AD") are not."""
    name, _ = _split_ours(label)
    cleaned = " ".join(name.split())
    if not cleaned or split_label(cleaned) or gazetteers.metric_of(cleaned) or gazetteers.dataset_of(cleaned):
        return False
    if cleaned.lower() in ctx.class_words or any(w.lower() in ctx.class_words for w in cleaned.split()
                                                   if not gazetteers.looks_like_model_name(w)):
        return False
    if name_key(cleaned) in ctx.model_names:
        return True
    coined = bool(re.fullmatch(r"[A-Z][A-Za-z0-9]*(?:[- ][A-Za-z0-9]+){0,2}", cleaned)) and \
        bool(re.search(r"[A-Z].*[A-Z]|[a-z][A-Z]|\d", cleaned)) and len(cleaned) <= 30
    return coined and bool(known)


def _class_label(label: str, ctx: DocumentContext) -> bool:
    """A label made of the words the paper uses for its classes, or of domain words ("glioma")."""
    words = [w.strip(",.;:()").lower() for w in label.split()]
    words = [w for w in words if w]
    if not words or not _plain_words(label.strip(",.;:() ")):
        return False  # acronyms ("HOG", "PCA") name settings more often than classes
    return all(w in ctx.class_words for w in words) or bool(gazetteers.find_keyword_terms(label))


def _plain_words(label: str) -> bool:
    return all(re.fullmatch(r"[A-Z]?[a-z]+", word) for word in label.split())


def _table_model(label: str, ctx: DocumentContext, row_models: set[str],
                 caption_model: Optional[str], model_column: bool = False) -> tuple[Optional[str], str, bool, float]:
    """(model, setting, proposed, confidence) for a row (or column) label; model None to skip.

    In order: the label names a model; it is a label the paper declared ("Model A", or "A" of
    "A (PCA)"); the caption names the table's model; the text ties the label to a model; the
    paper has one model. Otherwise the row is skipped (a class, a dataset, a person)."""
    name, proposed = _split_ours(label)
    if gazetteers.looks_like_model_name(name):
        base, setting = _split_parenthetical(name)
        return base, setting, proposed, 0.95
    if gazetteers.dataset_of(name) is not None:
        # Rows per dataset: one model (the caption's, else the paper's) evaluated on each.
        model = caption_model or ctx.main_model
        return (model, "", proposed, 0.75) if model else (None, name, proposed, 0.0)
    if (model_column or proposed or label in row_models) and _named_model(name, ctx) \
            and ctx.declared_label(name) is None:
        # A plain word ("Transfer") describes a model the text names; a coined name
        # ("PneuNet", "DRNet-2") is the model itself.
        resolved = ctx.resolve_label(name, exclude=row_models) if _plain_words(name) else None
        if resolved is not None:
            return resolved, name, proposed, 0.75
        return name, "", proposed, 0.85
    declared = ctx.declared_label(name)
    if declared is not None:
        return declared, name, proposed, 0.85
    if _class_label(name, ctx):
        return None, name, proposed, 0.0  # a per-class row ("Glioma", "No tumor")
    if caption_model is not None:
        return caption_model, name, proposed, 0.85
    resolved = ctx.resolve_label(name, exclude=row_models)
    if resolved is not None:
        return resolved, name, proposed, 0.75
    if ctx.main_model and ctx.single_model and name.lower() not in ctx.class_words \
            and not re.fullmatch(r"\d+|class \w+", name.lower()):
        return ctx.main_model, name, proposed, 0.6
    return None, name, proposed, 0.0


def _caption_model(caption: str, ctx: DocumentContext) -> Optional[str]:
    """The one model a caption is about ("Model B: Test set performance"), else None."""
    labels = {" ".join(m.group().split()).lower() for m in _LABEL_RE.finditer(caption)}
    models = {ctx.label_models[label] for label in labels if label in ctx.label_models}
    if len(labels) == 1 and len(models) == 1:
        return models.pop()
    if labels:
        return None
    named = {name for _, _, name in gazetteers.find_named_models(caption) if gazetteers.model_of(name) is None}
    terms = gazetteers.find_model_terms(caption)
    if len(named) == 1 and all(is_head_of(caption[s:e], next(iter(named))) or
                               caption[s:e] in next(iter(named)) for s, e, _ in terms):
        return named.pop()
    if len({canonical for _, _, canonical in terms}) == 1:
        start, end, _ = terms[0]
        return _resolve_mention((start, end, caption[start:end]), ctx)
    if not terms and ctx.main_model and gazetteers.PROPOSED_PATTERN.search(caption):
        return ctx.main_model  # "Performance of the proposed model"
    return None


_VALUE_COLUMN = re.compile(r"^(?:values?|scores?|results?|performance|percentage|obtained|achieved|outcome|"
                           r"measured|proposed(?: model| method)?)?\s*(?:\(%\)|%|\[%\]|in %)?$", re.IGNORECASE)


def _value(cell: str) -> Optional[tuple[float, int]]:
    number = parse_number(cell)
    return None if number is None else _metric_value(number)


def _metric_value(number: ParsedNumber) -> Optional[tuple[float, int]]:
    """The number as a metric fraction, with the decimals it was printed with (on the 0-1 scale)."""
    value = metric_fraction(number)
    if value is None:
        return None
    decimals = number.decimals + (2 if (number.is_percent or number.value > 1) else 0)
    return value, decimals


def results_from_table(table: Table, ctx: DocumentContext) -> list[Result]:
    caption = table.caption or ""
    previous_work = bool(_PREVIOUS_WORK.search(caption)) or table.section == "related" \
        or any(_SOURCE_HEADER.match(h.strip()) for h in table.header)
    if _PER_CLASS_CAPTION.search(caption):
        return []
    segmentation = bool(_SEGMENTATION.search(caption))
    metrics = {j: gazetteers.metric_of(h) for j, h in enumerate(table.header)}
    metric_columns = {j: m for j, m in metrics.items() if m}
    split = gazetteers.header_split(caption) or "test"
    dataset = _dataset_in(caption) or ctx.dataset
    caption_model = _caption_model(caption, ctx)
    report = any(h.strip().lower() == "support" for h in table.header) or any(
        _REPORT_AVERAGE.match(row[0].strip()) for row in table.rows if row)
    results: list[Result] = []
    if metric_columns:
        first_header = table.header[0].strip() if table.header else ""
        if _CLASS_HEADER.match(first_header) and not report:
            return []
        label_columns = [j for j in range(len(table.header)) if j not in metric_columns]
        model_column = bool(label_columns) and bool(_MODEL_HEADER.match(table.header[label_columns[0]].strip()))
        row_labels = [_row_label(row, label_columns, table.header) for row in table.rows]
        row_models = {label for label, _ in row_labels if gazetteers.looks_like_model_name(label)}
        row_models |= {label for label, _ in row_labels if _listed_model(label, ctx, row_models)}
        for row, (label, extras) in zip(table.rows, row_labels):
            if not label:
                continue
            if report:
                results.extend(_report_row(table, row, label, metric_columns, ctx, caption_model, dataset, split))
                continue
            # A row named by a split ("Training Set", "Test") is the run of the table's model on it.
            row_split = next((split_label(text) for text in (label, *extras) if split_label(text)), None)
            if row_split is not None:
                names = [text for text in (label, *extras) if split_label(text) is None]
                if not names:
                    model = caption_model or ctx.main_model
                    if model is None or previous_work:
                        continue
                    setting, proposed, confidence = "", False, 0.8
                    label, extras = "", []
                else:
                    label, extras = names[0], names[1:]
            priority = TABLE
            if label and _AVERAGE_ROW.match(label.strip()) and not row_models:
                # The average row of a per-class table is the model's overall result.
                model = caption_model or ctx.main_model
                if model is None or previous_work:
                    continue
                setting, proposed, confidence, priority, label = "", False, 0.7, REPORT_AVERAGE, ""
            elif label:
                model, setting, proposed, confidence = _table_model(label, ctx, row_models, caption_model,
                                                                    model_column)
                if model is None or (previous_work and not proposed):
                    continue
            setting = ", ".join(s for s in [setting, *extras] if s)
            row_dataset = (gazetteers.dataset_of(label) if label else None) or dataset
            for j, metric in metric_columns.items():
                if segmentation and metric not in gazetteers.SEGMENTATION_METRICS:
                    continue
                parsed = _value(row[j]) if j < len(row) else None
                if parsed is None:
                    continue
                value, decimals = parsed
                column_split = row_split or gazetteers.header_split(table.header[j]) or split
                results.append(Result(model, metric, value, column_split, table.page, table.row_snippet(row),
                                      "table", setting, row_dataset, decimals, priority, proposed, confidence,
                                      _row_flags(setting)))
        return results
    # Transposed: metric rows x model columns.
    row_metrics = [gazetteers.metric_of(row[0]) if row else None for row in table.rows]
    if not any(row_metrics):
        return []
    column_labels = {j: table.header[j] for j in range(1, len(table.header)) if table.header[j].strip()}
    value_header = table.header[1].strip() if len(table.header) == 2 else None
    if value_header and _VALUE_COLUMN.match(value_header) or value_header == "" and table.caption:
        column_labels = {1: ""}  # "Metric | Value": the one model of the table
    model_columns = bool(_MODEL_HEADER.match(table.header[0].strip())) if table.header else False
    column_models = {label for label in column_labels.values() if gazetteers.looks_like_model_name(label)}
    column_models |= {label for label in column_labels.values() if _listed_model(label, ctx, column_models)}
    for j, label in column_labels.items():
        column_split = split_label(label)
        if not label or column_split is not None:
            # One value column, or columns per split ("Train | Validation | Test"): the table's model.
            model, setting, proposed, confidence = caption_model or ctx.main_model, "", False, 0.8
        else:
            model, setting, proposed, confidence = _table_model(label, ctx, column_models, caption_model,
                                                                model_columns or label in column_models)
        if model is None or (previous_work and not proposed):
            continue
        for row, metric in zip(table.rows, row_metrics):
            # Dice / IoU count only under an explicit column header, never from a row label.
            if metric is None or metric in gazetteers.SEGMENTATION_METRICS or segmentation:
                continue
            parsed = _value(row[j]) if j < len(row) else None
            if parsed is None:
                continue
            value, decimals = parsed
            results.append(Result(model, metric, value, column_split or split, table.page,
                                  table.row_snippet(row), "table", setting, dataset, decimals, TABLE, proposed,
                                  confidence * 0.95, _row_flags(setting)))
    return results


def _row_label(row: list[str], label_columns: list[int], header: list[str]) -> tuple[str, list[str]]:
    """The row's name (first text cell) and its other text cells as settings ("yes"/"no" under
    "Augmentation" reads "augmentation"/"no augmentation"); numeric cells in non-metric columns
    (TP, FN counts) are neither."""
    texts = []
    for j in label_columns:
        cell = row[j].strip() if j < len(row) else ""
        if not cell or _is_number_cell(cell):
            continue
        column = header[j].strip().lower() if j < len(header) else ""
        if texts and column and _YES.match(cell):
            cell = column
        elif texts and column and _NO.match(cell):
            cell = f"no {column}"
        texts.append(cell)
    if not texts:
        return "", []
    return texts[0], texts[1:]


def _row_flags(setting: str) -> dict:
    flag = _augmentation_flag(setting)
    return {"augmentation": flag} if flag else {}


def _report_row(table: Table, row: list[str], label: str, metric_columns: dict[int, str], ctx: DocumentContext,
                caption_model: Optional[str], dataset: Optional[str], split: str) -> list[Result]:
    """A classification report: the macro-average row is the model's precision/recall/F1 and the
    accuracy row its accuracy; class rows and weighted averages are not results."""
    model = caption_model or ctx.main_model
    if model is None or _REPORT_SKIP.match(label):
        return []
    out = []
    if _REPORT_AVERAGE.match(label):
        for j, metric in metric_columns.items():
            parsed = _value(row[j]) if j < len(row) else None
            if parsed and metric in ("precision", "recall", "f1"):
                out.append(Result(model, metric, parsed[0], split, table.page, table.row_snippet(row), "table",
                                  "", dataset, parsed[1], REPORT_AVERAGE, False, 0.7))
    elif gazetteers.metric_of(label) == "accuracy":
        numbers = [(j, _value(cell)) for j, cell in enumerate(row[1:], 1)
                   if _value(cell) and table.header[j].strip().lower() != "support"]
        if numbers:
            _, (value, decimals) = numbers[0]
            out.append(Result(model, "accuracy", value, split, table.page, table.row_snippet(row), "table", "",
                              dataset, decimals, REPORT_AVERAGE, False, 0.7))
    return out


def _dataset_in(text: str) -> Optional[str]:
    for term in gazetteers.catalogue_terms():
        if term.label == "DATASET" and re.search(rf"(?<![\w-]){re.escape(term.text)}(?![\w-])", text,
                                                 0 if term.case_sensitive else re.IGNORECASE):
            return term.canonical
    return None


# ---------------------------------------------------------------------------- sentences
_BOUND_BEFORE = re.compile(r"(?:approximately|approx\.?|about|around|nearly|roughly|almost|over|above|below|under|"
                           r"exceeds?|exceeding|at least|at most|more than|less than|greater than|higher than|"
                           r"lower than|up to|near|~|≈|∼|>|<|≥|≤|threshold(?: of)?|from|by|"
                           r"(?:improvement|increase|gain|drop|decrease|reduction|boost|difference) of)\s*$",
                           re.IGNORECASE)
_COUNT_AFTER = re.compile(r"^\s*(?:images?|samples?|patients?|subjects?|cases?|scans?|slices?|epochs?|layers?|"
                          r"classes|folds?|parameters?|neurons?|filters?|units?|files?|photos?|participants?|"
                          r"studies|papers?|articles?|dermatologists?|radiologists?|iterations?|steps?|batch)\b",
                          re.IGNORECASE)
_UNIT_AFTER = re.compile(r"^\s*(?:pixels?|px|mb|gb|kb|seconds?|s|ms|minutes?|hours?|h|million|billion|m|k|"
                         r"×|x\s*\d)\b", re.IGNORECASE)
_NOT_A_RESULT = re.compile(r"\b(?:if|exceeds?|threshold|stops?|stopping|dataset accuracy|label accuracy|"
                           r"annotation accuracy|imagenet|top-?5|top-five)\b"
                           r"|\b(?:val_)?loss\s*[:=]|\bepoch\s*\d+\s*/\s*\d+|\d+/\d+\s*\[=|\d+m?s/step",  # training logs
                           re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r";|\bwhereas\b|\bwhile\b|\bcompared (?:to|with)\b|\bversus\b|\bvs\.?(?=\s)|\bthan\b")
_ANAPHOR = re.compile(r"\b(?:the|this|our|proposed|final|trained|best)\s+(?:\w+\s+){0,2}?(?:model|network|classifier|"
                      r"algorithm|system|approach|method|architecture|framework|cnn)\b|^\s*algorithm\s*:",
                      re.IGNORECASE)
_MODEL_WORD = re.compile(r"\b(?:model|network|classifier|algorithm|system|approach|method|cnn|architecture)s?\b",
                         re.IGNORECASE)
_CITATION = re.compile(r"\[\s*\d+(?:\s*[-–,]\s*\d+)*\s*\]")
_GAP_AFTER = re.compile(r"^[\s:=()]*(?:(?:of|is|was|were|are|at|to|reached|reaching|achieved|achieving|attained|"
                        r"obtained|yielded|yielding|showed|scored|value|values|score|scores|rate|equal|equals|a|an|"
                        r"the|overall|mean|average|test|testing|validation|val|train|training|process|phase|set|"
                        r"on|with|by|as|high|higher|"
                        r"impressive|extraordinary|remarkable|excellent|good|best|final|its|our|of\s+about)"
                        r"[\s:=(,]*){0,6}$", re.IGNORECASE)
_GAP_BEFORE = re.compile(r"^\s*(?:\([^()]{0,20}\))?\s*(?:overall|mean|average|test|testing|validation|val|"
                         r"classification|top-1|balanced)?\s*(?:\([^()]{0,20}\))?\s*$", re.IGNORECASE)


@dataclass
class SentenceView:
    """What sentence extraction reads: the text and its entities as (start, end, label, canonical)
    character offsets within the text."""

    text: str
    entities: list[tuple[int, int, str, str]]
    page: Optional[int]
    summary: bool = False        # abstract or conclusion: a restatement, lower priority
    index: int = 0


def _usable_number(text: str, number: ParsedNumber) -> Optional[tuple[float, int]]:
    if number.is_range or number.signed:
        return None
    before = text[:number.start]
    after = text[number.end:]
    if _BOUND_BEFORE.search(before[-25:]):
        return None
    if not number.is_percent and (_UNIT_AFTER.match(after) or (number.is_integer and _COUNT_AFTER.match(after))):
        return None
    if re.search(r"[\[(]\s*$", before) and re.match(r"\s*[\])]", after) and not number.is_percent \
            and number.is_integer:
        return None  # a citation "[12]" or "(3)"
    if number.is_integer and not number.is_percent:
        if 1900 <= number.value <= 2100 or number.value < 20:
            return None
    return _metric_value(number)


def _sentence_split(text: str, start: int, end: int) -> str:
    window = text[max(0, start - 30):end + 5]
    return gazetteers.header_split(window) or "test"


def results_from_sentence(sentence: SentenceView, ctx: DocumentContext,
                          recent_model: Optional[str], method: str = "sentence") -> list[Result]:
    text = sentence.text
    metrics = [(s, e, c) for s, e, label, c in sentence.entities if label == "METRIC" and c]
    if not metrics:
        return []
    numbers = [(n, _usable_number(text, n)) for n in find_numbers(text)]
    entity_spans = [(s, e) for s, e, *_ in sentence.entities]
    numbers = [(n, v) for n, v in numbers if v is not None
               and not any(s <= n.start < e for s, e in entity_spans)]
    if not numbers:
        return []
    pairs = _pair(text, metrics, numbers)
    models = [(s, e, c) for s, e, label, c in sentence.entities if label in ("MODEL", "PROPOSED", "ALIAS")]
    datasets = [(s, e, c) for s, e, label, c in sentence.entities if label == "DATASET"]
    results = []
    for (m_start, m_end, metric), (number, (value, decimals)) in pairs:
        if metric in gazetteers.SEGMENTATION_METRICS:
            continue
        lo, hi = min(m_start, number.start), max(m_end, number.end)
        clause_start, clause_end = _clause(text, lo, hi)
        if _NOT_A_RESULT.search(text[max(clause_start, lo - 40):hi + 15]):
            continue
        model = _model_for(text, models, lo, hi, clause_start, clause_end, ctx, recent_model)
        if model is None:
            continue
        dataset = _nearest(datasets, lo) or ctx.dataset
        snippet = text[max(0, lo - 60):min(len(text), hi + 60)]
        priority = SUMMARY_SENTENCE if sentence.summary else SENTENCE
        proposed = bool(gazetteers.PROPOSED_PATTERN.search(text)) and model == ctx.main_model
        results.append(Result(model, metric, value, _sentence_split(text, lo, hi), sentence.page, snippet.strip(),
                              method, "", dataset, decimals, priority, proposed, 0.8 if priority else 0.7))
    return results


def _pair(text: str, metrics: list[tuple[int, int, str]],
          numbers: list[tuple[ParsedNumber, tuple[float, int]]]) -> list[tuple]:
    """Metric mentions paired with their numbers: "<metric> of <number>" first, then
    "<number> <metric>", then "<m1>, <m2> and <m3> of <n1>, <n2> and <n3>, respectively"."""
    pairs: dict[int, tuple] = {}
    claimed: set[int] = set()
    after_last = [k for k, (n, _) in enumerate(numbers) if n.start > metrics[-1][1]]
    if len(metrics) >= 2 and len(after_last) == len(metrics) and _is_list(text, metrics) \
            and _is_list(text, [(numbers[k][0].start, numbers[k][0].end, "") for k in after_last]) \
            and _GAP_LIST.match(text[metrics[-1][1]:numbers[after_last[0]][0].start]):
        # "accuracy, precision and recall of 0.95, 0.94 and 0.93 (respectively)"
        return [(metrics[i], numbers[k]) for i, k in enumerate(after_last)]
    for i, (m_start, m_end, _) in enumerate(metrics):
        limit = metrics[i + 1][0] if i + 1 < len(metrics) else len(text)
        for k, (number, _) in enumerate(numbers):
            if k in claimed or number.start < m_end or number.start >= limit:
                continue
            if _GAP_AFTER.match(text[m_end:number.start]) and number.start - m_end <= 45:
                pairs[i] = (metrics[i], numbers[k])
                claimed.add(k)
            break
    for i, (m_start, m_end, _) in enumerate(metrics):
        if i in pairs:
            continue
        previous_metric_end = metrics[i - 1][1] if i > 0 else 0
        for k in range(len(numbers) - 1, -1, -1):
            number = numbers[k][0]
            if k in claimed or number.end > m_start or number.start < previous_metric_end:
                continue
            if _GAP_BEFORE.match(text[number.end:m_start]) and m_start - number.end <= 30:
                pairs[i] = (metrics[i], numbers[k])
                claimed.add(k)
            break
    return [pairs[i] for i in sorted(pairs)]


_GAP_LIST = re.compile(r"^[\s:=(),]*(?:[\w'’-]+[\s:=(),]+){0,7}$")


def _is_list(text: str, spans: list[tuple[int, int, str]]) -> bool:
    """Metric names (or numbers) written as one list ("accuracy, precision, recall and F1-score")."""
    return all(re.fullmatch(r"\s*(?:,|and|,\s*and|&|/|;)\s*", text[a[1]:b[0]]) for a, b in zip(spans, spans[1:]))


def _clause(text: str, lo: int, hi: int) -> tuple[int, int]:
    start, end = 0, len(text)
    for match in _CLAUSE_BREAK.finditer(text):
        if match.end() <= lo:
            start = match.end()
        elif match.start() >= hi:
            end = match.start()
            break
    return start, end


def _model_for(text: str, models: list[tuple[int, int, str]], lo: int, hi: int, clause_start: int,
               clause_end: int, ctx: DocumentContext, recent_model: Optional[str]) -> Optional[str]:
    """The model a metric-number pair is about, or None when the clause is about people."""
    in_clause = [m for m in models if clause_start <= m[0] < clause_end]
    before = [m for m in in_clause if m[1] <= lo]
    after = [m for m in in_clause if m[0] >= hi]
    readers = [r.start() + clause_start for r in gazetteers.HUMAN_READERS.finditer(text[clause_start:clause_end])]
    nearest_before = max(before, key=lambda m: m[1]) if before else None
    reader_before = max((r for r in readers if r < lo), default=None)
    if reader_before is not None and (nearest_before is None or reader_before > nearest_before[1]):
        return None
    chosen = nearest_before or (min(after, key=lambda m: m[0]) if after else None)
    if chosen is not None:
        return _resolve_mention(chosen, ctx)
    if readers:
        return None
    if _ANAPHOR.search(text[clause_start:clause_end]) and ctx.main_model:
        return ctx.main_model
    if recent_model:
        return recent_model
    if ctx.main_model and (ctx.single_model or _MODEL_WORD.search(text)):
        return ctx.main_model
    return None


def _resolve_mention(mention: tuple[int, int, str], ctx: DocumentContext) -> Optional[str]:
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


def _nearest(items: list[tuple[int, int, str]], position: int) -> Optional[str]:
    if not items:
        return None
    return min(items, key=lambda item: abs(item[0] - position))[2]


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
