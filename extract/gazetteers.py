"""The vocabularies the extractor recognises, in one declarative place.

Model and dataset names come from the KB's curated catalogues (kb/data/models.csv, datasets.csv)
so the extractor and the KB's alias tables can never disagree; this module only adds what the
catalogues cannot hold: architecture-variant patterns, metric names, and the domain/modality
keywords whose labels follow the catalogue's vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from ..kb import normalize

# ---------------------------------------------------------------------------- metrics
# canonical metric -> the names papers use for it (matched case-insensitively, whole words).
METRIC_TERMS: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy", "accuracies", "acc", "acc.", "overall accuracy", "classification accuracy",
                 "test accuracy", "testing accuracy", "validation accuracy", "val accuracy", "val acc",
                 "training accuracy", "train accuracy", "top-1 accuracy", "mean accuracy", "average accuracy"),
    "precision": ("precision", "prec", "prec.", "ppv", "positive predictive value"),
    "recall": ("recall", "rec", "rec.", "sensitivity", "sens", "sens.", "tpr", "true positive rate"),
    "specificity": ("specificity", "spec", "spec.", "spe", "tnr", "true negative rate", "selectivity"),
    "f1": ("f1", "f1-score", "f1 score", "f-score", "f score", "f-measure", "f1-measure", "f1 measure",
           "f1score", "fscore", "f1-scores", "f1 scores"),
    "auc": ("auc", "auroc", "roc-auc", "roc auc", "auc-roc", "auc roc", "roc_auc", "area under the curve",
            "area under the roc curve", "area under curve", "area under the receiver operating characteristic curve",
            "area under the receiver operating characteristic", "roc area", "roc-auc score", "auc score"),
    "kappa": ("kappa", "cohen's kappa", "cohen kappa", "kappa score", "quadratic weighted kappa", "qwk",
              "weighted kappa", "κ"),
    "dice": ("dice", "dsc", "dice coefficient", "dice score", "dice similarity coefficient", "dice index"),
    "iou": ("iou", "jaccard", "jaccard index", "intersection over union", "miou", "mean iou"),
}

SEGMENTATION_METRICS = frozenset({"dice", "iou"})

# ---------------------------------------------------------------------------- domains / modalities
# label (the catalogue's vocabulary) -> lower-case keyword regexes that signal it.
DOMAIN_TERMS: dict[str, tuple[str, ...]] = {
    "Skin Cancer Classification": (r"skin cancer", r"skin lesions?", r"melanoma", r"dermatolog\w*", r"keratinocyte"),
    "Brain Tumour Classification": (r"brain tumou?rs?", r"glioma", r"meningioma", r"pituitary tumou?r"),
    "Breast Cancer Classification": (r"breast cancer", r"breast tumou?rs?", r"breast lesions?", r"breast ultrasound"),
    "Chest X-ray Classification": (r"pneumonia", r"chest x-?rays?", r"chest radiographs?", r"thoracic diseases?"),
    "COVID-19 Classification": (r"covid-?19", r"sars-cov-2", r"coronavirus"),
    "Alzheimer MRI Classification": (r"alzheimer'?s?", r"dementia", r"mild cognitive impairment"),
    "Diabetic Retinopathy Classification": (r"diabetic retinopathy",),
    "Glaucoma Classification": (r"glaucoma",),
    "Retinal OCT Classification": (r"retinal oct", r"optical coherence tomography", r"macular degeneration"),
    "Lung Cancer Classification": (r"lung cancer", r"lung nodules?", r"pulmonary nodules?"),
    "Colorectal Histopathology Classification": (r"colorectal cancer", r"colon cancer", r"colorectal"),
    "Blood Cell Classification": (r"blood cells?", r"leuka?emia", r"malaria"),
    "Kidney/Organ CT Classification": (r"kidney", r"renal"),
    "Knee Osteoarthritis Classification": (r"knee osteoarthritis", r"osteoarthritis"),
    "Cervical Cytology Classification": (r"cervical cancer", r"pap smears?", r"cervical cytology"),
    "Gastrointestinal Endoscopy Classification": (r"gastrointestinal", r"endoscopic images"),
    "Lymph Node Metastasis Classification": (r"lymph node metastas[ie]s",),
    "Monkeypox Classification": (r"monkeypox", r"mpox"),
    "Thyroid Nodule Classification": (r"thyroid nodules?",),
    "Liver Disease Classification": (r"liver (?:disease|lesions?|tumou?rs?|fibrosis)",),
    "Musculoskeletal X-ray Classification": (r"fractures?", r"musculoskeletal"),
    "Wound Classification": (r"wounds?",),
}

MODALITY_TERMS: dict[str, tuple[str, ...]] = {
    "MRI": (r"mri", r"magnetic resonance", r"mr images?", r"t1-weighted", r"t2-weighted", r"flair"),
    "CT": (r"(?-i:CT)(?: scans?)?", r"computed tomography"),  # "ct" in lower case is not CT
    "X-ray": (r"x-?rays?", r"radiographs?", r"cxr", r"radiography"),
    "dermoscopy": (r"dermoscop\w*", r"dermatoscop\w*"),
    "clinical photo": (r"clinical (?:images|photographs?|photos?)", r"smartphone (?:images|photos?)"),
    "fundus": (r"fundus", r"retinal (?:images|photographs?|scans?)", r"retina scans?"),
    "OCT": (r"(?-i:OCT)", r"optical coherence tomography"),
    "ultrasound": (r"ultrasound", r"ultrasonograph\w*", r"sonograph\w*"),
    "histopathology": (r"histopatholog\w*", r"whole[- ]slide", r"h&e", r"histolog\w*"),
    "mammography": (r"mammogra\w*",),
    "microscopy": (r"microscop\w*", r"blood smears?", r"cytolog\w*"),
    "endoscopy": (r"endoscop\w*", r"colonoscop\w*"),
}

# Phrases that name the paper's own model without a name.
PROPOSED_PATTERN = re.compile(
    r"\b(?:our|the|this)\s+(?:proposed|suggested|presented|novel)\s+(?:\w+[\s-]){0,2}?"
    r"(?:model|method|approach|network|architecture|framework|system|cnn|classifier|technique)\b"
    r"|\bour\s+(?:\w+\s+){0,2}?(?:model|method|approach|network|architecture|framework|system|cnn|classifier)\b"
    r"|\bproposed\s+(?:model|method|approach|network|architecture|framework|system|cnn|classifier)\b"
    r"|\b(?:algorithm|ours|proposed)\s*:",  # figure legends: "Algorithm: AUC = 0.96"
    re.IGNORECASE,
)

# Architecture variants the catalogue need not list one by one ("ResNet-26", "EfficientNet-B6").
ARCHITECTURE_PATTERNS: tuple[str, ...] = (
    r"(?:Wide\s?)?ResNe[Xx]?t?[- ]?\d{2,3}(?:[- ]?[vV]\d)?(?:[- ]\d+x\d+d)?",
    r"Res[- ]?Net(?:[- ]?[vV]\d)?",
    r"EfficientNet(?:[- ]?[vV]2)?(?:[- ]?[BbLlSsMm]\d?)?",
    r"VGG(?:Net)?[- ]?\d{2}",
    r"DenseNet[- ]?\d{3}",
    r"MobileNet(?:[- ]?[vV]\d)?(?:[- ](?:Large|Small))?",
    r"Inception(?:[- ]?ResNet)?[- ]?[vV]\d",
    r"Xception",
    r"ViT(?:[- ][BSLH](?:/\d{1,2})?)?",
    r"(?:Vision|Swin|Image)\s+Transformers?",
    r"Swin(?:[- ][TSBL])?",
    r"DeiT(?:[- ][TSB])?",
    r"ConvNeXt(?:[- ](?:T|S|B|L|Tiny|Small|Base|Large))?",
    r"(?:CNN|ResNet|EfficientNet|DenseNet|VGG)[- ]?(?:\+|/)?[- ]?(?:ViT|Transformer|LSTM|SVM|GRU)",
    r"U-?Net(?:\+\+)?",
    r"AlexNet|GoogLeNet|SqueezeNet|ShuffleNet(?:[- ]?[vV]2)?|NASNet(?:[- ]?(?:Mobile|Large))?|DarkNet[- ]?\d*",
    r"CapsNet|Capsule\s+Network",
    r"(?:Graph\s+Convolutional\s+Network|GCN)",
)

# Words that name people, not models: results attributed to them are readers' scores.
HUMAN_READERS = re.compile(r"\b(?:dermatologists?|radiologists?|clinicians?|experts?|physicians?|"
                           r"ophthalmologists?|pathologists?|doctors?|readers?)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Term:
    label: str       # MODEL | DATASET | METRIC | DOMAIN | MODALITY
    text: str        # the surface form to match
    canonical: str   # catalogue name / metric / domain / modality label
    case_sensitive: bool = False


# Catalogue names that are also ordinary words ("ensemble learning strategies").
_COMMON_WORDS = frozenset({"ensemble"})


def _is_short_acronym(alias: str) -> bool:
    """"LR", "RF", "DT": short capitalised aliases also spell ordinary words or other things
    ("lr" is a learning rate), so they match only in capitals; so do names that are words."""
    compact = alias.replace("-", "")
    return (len(compact) <= 4 and compact.isupper()) or alias.lower() in _COMMON_WORDS


@lru_cache(maxsize=1)
def catalogue_terms() -> tuple[Term, ...]:
    terms: list[Term] = []
    for model in normalize.model_catalog():
        for alias in (model.name, *model.aliases):
            terms.append(Term("MODEL", alias, model.name, _is_short_acronym(alias)))
    for dataset in normalize.dataset_catalog():
        for alias in (dataset.name, *dataset.aliases):
            terms.append(Term("DATASET", alias, dataset.name, _is_short_acronym(alias)))
    for metric, names in METRIC_TERMS.items():
        for name in names:
            terms.append(Term("METRIC", name, metric, name in ("spe", "rec", "sens", "prec")))
    return tuple(terms)


@lru_cache(maxsize=1)
def model_index() -> dict[str, str]:
    return normalize.catalog_alias_index(normalize.model_catalog())


@lru_cache(maxsize=1)
def dataset_index() -> dict[str, str]:
    return normalize.catalog_alias_index(normalize.dataset_catalog())


@lru_cache(maxsize=1)
def _metric_index() -> dict[str, str]:
    return {normalize.name_key(name): metric for metric, names in METRIC_TERMS.items() for name in names}


@lru_cache(maxsize=1)
def dataset_domains() -> dict[str, tuple[Optional[str], Optional[str]]]:
    return {d.name: (d.domain, d.modality) for d in normalize.dataset_catalog()}


_HEADER_NOISE = re.compile(r"\((?:%|in %|percent)\)|%|\[%\]|\bscores?\b|\(\s*\)|[*†‡]", re.IGNORECASE)
_SPLIT_WORDS = re.compile(r"\b(?:test(?:ing)?|val(?:idation)?|train(?:ing)?|mean|avg|average|overall|"
                          r"macro|micro|weighted|top-1)\b", re.IGNORECASE)


def metric_of(text: str) -> Optional[str]:
    """The canonical metric a header cell or row label names ("Acc (%)" -> accuracy), else None."""
    cleaned = _HEADER_NOISE.sub(" ", text).strip()
    key = normalize.name_key(cleaned)
    if not key:
        return None
    index = _metric_index()
    if key in index:
        return index[key]
    stripped = normalize.name_key(_SPLIT_WORDS.sub(" ", cleaned))
    return index.get(stripped) if stripped else None


def header_split(text: str) -> Optional[str]:
    """The split a header/caption names ("Val Accuracy" -> val), else None."""
    lowered = text.lower()
    if re.search(r"\bcross[- ]validat|\b\d+[- ]fold\b|\bcv\b", lowered):
        return "cv"
    if re.search(r"\bexternal\b", lowered):
        return "external"
    if re.search(r"\bval(?:idation)?\b|\bdev\b", lowered):
        return "val"
    if re.search(r"\btrain(?:ing)?\b", lowered) and not re.search(r"\btest", lowered):
        return "train"
    if re.search(r"\btest(?:ing)?\b|held[- ]out", lowered):
        return "test"
    return None


def model_of(text: str) -> Optional[str]:
    """The catalogue model a name resolves to ("VGG19 (Ours)" -> VGG-19), else None."""
    return normalize.lookup(text, model_index())


def dataset_of(text: str) -> Optional[str]:
    return normalize.lookup(text, dataset_index())


@lru_cache(maxsize=1)
def architecture_regex() -> re.Pattern:
    return re.compile(r"(?<![\w-])(?:" + "|".join(ARCHITECTURE_PATTERNS) + r")(?![\w])")


def looks_like_model_name(text: str) -> bool:
    """A table row label that names a model: in the catalogue, an architecture pattern, or a
    family word ("Custom SVM", "Sklearn Logistic Regression")."""
    if model_of(text) is not None:
        return True
    if architecture_regex().search(text):
        return True
    return bool(_catalogue_term_regex().search(text))


@lru_cache(maxsize=1)
def _catalogue_term_regex() -> re.Pattern:
    names = sorted({t.text for t in catalogue_terms() if t.label == "MODEL" and not t.case_sensitive},
                   key=len, reverse=True)
    acronyms = sorted({t.text for t in catalogue_terms() if t.label == "MODEL" and t.case_sensitive},
                      key=len, reverse=True)
    insensitive = "|".join(re.escape(n) for n in names)
    sensitive = "|".join(re.escape(n) for n in acronyms)
    return re.compile(rf"(?<![\w])(?:(?i:{insensitive})|{sensitive})(?![\w])")


def find_model_terms(text: str) -> list[tuple[int, int, str]]:
    """(start, end, canonical-or-surface) for every model name in `text`, longest first, no overlaps."""
    spans: list[tuple[int, int, str]] = []
    for match in _catalogue_term_regex().finditer(text):
        spans.append((match.start(), match.end(), model_of(match.group()) or match.group()))
    for match in architecture_regex().finditer(text):
        spans.append((match.start(), match.end(), model_of(match.group()) or match.group()))
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    kept: list[tuple[int, int, str]] = []
    for span in spans:
        if kept and span[0] < kept[-1][1]:
            if span[1] - span[0] > kept[-1][1] - kept[-1][0]:
                kept[-1] = span
            continue
        kept.append(span)
    return kept


@lru_cache(maxsize=1)
def _keyword_regexes() -> tuple[tuple[re.Pattern, dict[str, tuple[str, str]]], ...]:
    """Per kind, one alternation over its keywords; the group that matched names the label.
    Domains and modalities are matched separately so "chest X-ray" counts for both."""
    compiled = []
    for kind, table in (("DOMAIN", DOMAIN_TERMS), ("MODALITY", MODALITY_TERMS)):
        groups: dict[str, tuple[str, str]] = {}
        alternatives = []
        for label, patterns in table.items():
            name = f"k{len(groups)}"
            groups[name] = (kind, label)
            alternatives.append(f"(?P<{name}>{'|'.join(patterns)})")
        regex = re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])", re.IGNORECASE)
        compiled.append((regex, groups))
    return tuple(compiled)


def find_keyword_terms(text: str) -> list[tuple[int, int, str, str]]:
    """(start, end, kind, label) for every domain / modality keyword in `text`."""
    found = []
    for regex, groups in _keyword_regexes():
        for match in regex.finditer(text):
            kind, label = groups[match.lastgroup]
            found.append((match.start(), match.end(), kind, label))
    return sorted(found)
