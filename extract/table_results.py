"""(model, dataset, metric, value, split) results from tables.

Model rows x metric columns, or the transpose (metric rows x model columns). A row whose label is
not a model (a setting such as "W/o aug" or "PCA") belongs to the model its caption or the text
names for that label ("Model A", "Transfer"); a row or column named by a split ("Training Set",
"Test") is that split of the table's model, and so is the one value column of a "Metric | Value"
table. Names the catalogue does not know are kept as written ("LNet-X" beside "VGG16").
Per-class rows (but not their average), the tables of other papers' results (an author column, a
caption or a section that says so) and segmentation scores without an explicit dice/IoU column
header are skipped.
"""

from __future__ import annotations

import re
from typing import Optional

from . import gazetteers
from .numbers import parse_number
from .relations import (MODEL_LABEL, REPORT_AVERAGE, TABLE, DocumentContext, Result, is_head_of, metric_value,
                        resolve_mention)
from .tables import Table
from ..kb.normalize import name_key

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
    labels = {" ".join(m.group().split()).lower() for m in MODEL_LABEL.finditer(caption)}
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
        return resolve_mention((start, end, caption[start:end]), ctx)
    if not terms and ctx.main_model and gazetteers.PROPOSED_PATTERN.search(caption):
        return ctx.main_model  # "Performance of the proposed model"
    return None


_VALUE_COLUMN = re.compile(r"^(?:values?|scores?|results?|performance|percentage|obtained|achieved|outcome|"
                           r"measured|proposed(?: model| method)?)?\s*(?:\(%\)|%|\[%\]|in %)?$", re.IGNORECASE)


def _value(cell: str) -> Optional[tuple[float, int]]:
    number = parse_number(cell)
    return None if number is None else metric_value(number)



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
    if len(texts) > 1 and _OURS_MARKER.match(texts[0]):
        return f"{texts[1]} (Ours)", texts[2:]  # "Ours | DenseNet-121 | 96.1": the model is the next cell
    return texts[0], texts[1:]


_OURS_MARKER = re.compile(r"^(?:ours|proposed|this (?:work|study|paper)|our (?:model|method|approach))$",
                          re.IGNORECASE)


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


