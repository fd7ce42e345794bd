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
    "precision": ("precision", "prec", "prec.", "pre", "ppv", "positive predictive value"),
    "recall": ("recall", "rec", "rec.", "sensitivity", "sens", "sens.", "sen", "tpr", "true positive rate"),
    "specificity": ("specificity", "spec", "spec.", "spe", "tnr", "true negative rate", "selectivity"),
    "f1": ("f1", "f1-score", "f1 score", "f-score", "f score", "f-measure", "f1-measure", "f1 measure",
           "f1score", "fscore", "f1-scores", "f1 scores"),
    "auc": ("auc", "auroc", "roc-auc", "roc auc", "auc-roc", "auc roc", "roc_auc", "area under the curve",
            "area under the roc curve", "area under curve", "area under the receiver operating characteristic curve",
            "area under the receiver operating characteristic", "roc area", "roc-auc score", "auc score",
            # A_z, the ROC area in the radiology and CAD literature
            "az", "roc az", "a_z"),
    "balanced_accuracy": ("balanced accuracy", "balanced acc", "balanced acc.", "bacc", "b-acc", "bal. acc",
                          "bal. acc.", "bal acc", "balanced_accuracy"),
    "auprc": ("auprc", "au-prc", "pr-auc", "pr auc", "auc-pr", "aupr", "average precision", "area under the "
              "precision-recall curve", "area under the pr curve", "ap"),
    "mcc": ("mcc", "matthews correlation coefficient", "matthews correlation", "matthews' correlation coefficient"),
    "npv": ("npv", "negative predictive value"),
    "top3_accuracy": ("top-3 accuracy", "top3 accuracy", "top-3 acc", "top-3"),
    "top5_accuracy": ("top-5 accuracy", "top5 accuracy", "top-5 acc", "top-5"),
    "kappa": ("kappa", "cohen's kappa", "cohen kappa", "kappa score", "quadratic weighted kappa", "qwk",
              "weighted kappa", "κ"),
    "dice": ("dice", "dsc", "dice coefficient", "dice score", "dice similarity coefficient", "dice index"),
    "iou": ("iou", "jaccard", "jaccard index", "intersection over union", "miou", "mean iou"),
}

SEGMENTATION_METRICS = frozenset({"dice", "iou"})

# The class names medical image classifiers separate. A table whose rows are these reports a
# result per class, not a model's overall result.
CLASS_TERMS = frozenset("""
normal abnormal healthy benign malignant cancer tumor tumour no-tumor notumor glioma meningioma pituitary
pneumonia covid covid-19 non-covid tuberculosis viral bacterial opacity lung effusion atelectasis cardiomegaly
consolidation edema oedema pneumothorax infiltration infiltrate emphysema fibrosis hernia pleural thickening nodule
mass fracture lesion lesions finding findings devices enlarged cardiomediastinum
glaucoma cataract myopia hypertension retinopathy amd drusen cnv dme macular
melanoma nevus naevus keratosis carcinoma dermatofibroma vascular bcc akiec bkl mel nv vasc df scc
dementia demented nondemented non-demented alzheimer alzheimers mild moderate severe proliferative
infected uninfected parasitized parasitised parasite eosinophil lymphocyte monocyte neutrophil basophil
erythroblast platelet ig
polyp polyps ulcer ulcerative bleeding erosion angiectasia esophagitis
adenocarcinoma squamous adenoma hyperplastic stroma adipose mucus debris muscle
positive negative others other
""".split())

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

# Cues that the paper puts forward a model of its own. Explicit ones name it as proposed, novel or
# ours; the weaker ones ("our model", "we developed a ...", "this study presents") also fit a
# paper that compares standard models, so they count only when one model dominates the paper.
_OWN_THING = r"(?:model|method|approach|network|architecture|framework|system|pipeline|cnn|classifier|technique|" \
             r"algorithm)s?"
_THIS_PAPER = r"\b(?:this|the present|the current|our)\s+(?:paper|study|work|article|research|report|project)\s+"
EXPLICIT_OWN_MODEL = re.compile(
    rf"\bpropos(?:e|ed|es|ing)\b|\(\s*ours\s*\)|\bnovel\s+(?:[\w-]+\s+){{0,3}}?{_OWN_THING}\b"
    rf"|{_THIS_PAPER}(?:introduces|proposes|puts forward)\b",
    re.IGNORECASE)
IMPLICIT_OWN_MODEL = re.compile(
    rf"\bour\s+(?:[\w-]+\s+){{0,2}}?{_OWN_THING}\b"
    rf"|{_THIS_PAPER}(?:presents|describes|develops|demonstrates)\b"
    rf"|\bwe\s+(?:have\s+)?(?:develop|developed|design|designed|build|built|construct|constructed|implement|"
    rf"implemented|introduce|introduced|present|presented|train|trained)\s+(?:a|an|our|the)\b",
    re.IGNORECASE)

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
    r"Graph\s+(?:Convolutional\s+|Attention\s+)?(?:Neural\s+)?Networks?|GCNN?|GNN",
)

# Names the catalogue cannot know ("Multi-output CNN", "Delaunay GCN", "PneuNet"): a head word
# that names an architecture, after one to three modifiers that start with a capital or a digit.
# The extractor keeps such a name as the paper writes it; the KB reports it as unmatched.
_NAME_HEAD = r"(?:CNN|GCN|GNN|DNN|RNN|CapsNet|Net|Network|Transformer|Model|Classifier)"
_NAME_MODIFIER = r"(?:[A-Z][A-Za-z0-9]*|\d+[A-Za-z]+)(?:[-/][A-Za-z0-9]+)*"
_NAMED_PHRASE = re.compile(rf"(?<![\w-])(?:{_NAME_MODIFIER}[ -]){{1,4}}{_NAME_HEAD}(?![\w-])")
# One coined word ending in "Net" ("PneuNet", "DRNet-2").
_COINED_NET = re.compile(r"(?<![\w-])[A-Z][A-Za-z0-9]*[a-z0-9]Net(?:-?(?:[vV]?\d{1,3}|[A-Z]\d?))?(?![\w-])")
# Heads that only make a name after an acronym or coined word ("CNN-SVM Classifier", not
# "Classification Model").
_WEAK_HEADS = frozenset({"model", "classifier", "network", "net"})
ARCHITECTURE_HEADS = frozenset({"cnn", "gcn", "gnn", "dnn", "rnn", "capsnet", "net"})
# Words that describe a model rather than name it, and words that capitalise a heading or a
# sentence start: a phrase made only of these is not a name ("Deep CNN", "Proposed Model",
# "Brain Tumor Classification Model").
GENERIC_NAME_WORDS = frozenset("""
a an the our their its this that these those each every both all any other another same such some
in on of for with by from to as at and or using based via we they it here then after before finally moreover
however thus hence also while when where which is are was were be
proposed suggested presented novel new custom simple basic baseline base standard traditional conventional
classical classic vanilla deep deeper shallow lightweight light small large big tiny final best better trained
pretrained pre-trained fine-tuned finetuned modified improved optimized optimised enhanced existing original
overall single multiple multi two three four five first second third neural convolutional artificial
learning machine fully connected hybrid ensemble resulting above following previous latter former
initial used selected chosen full complete entire combined individual end-to-end sequential functional
classification detection segmentation prediction diagnosis recognition screening identification analysis
image images imaging medical clinical disease diseases cancer tumor tumour tumors tumours lesion lesions brain
skin chest lung breast retinal eye heart x-ray mri ct ultrasound automatic automated efficient robust accurate
explainable interpretable attention transfer table fig figure section eq equation algorithm step stage
model models network networks classifier classifiers architecture framework system approach method
keras pytorch tensorflow sklearn scikit-learn matlab feature features layer layers dense residual recurrent
graph generative adversarial
""".split())


def named_model(phrase: str, mid_sentence: bool = False) -> Optional[str]:
    """The model name a phrase spells, trimmed of leading descriptors ("The Multi-output CNN
    Model" -> "Multi-output CNN"), or None when it only describes a model ("Deep CNN", "VGG16
    model": a catalogue model plus a generic head keeps the catalogue name). `mid_sentence`: the
    phrase follows a lower-case word, so its capitals are not a heading's or a sentence start's."""
    words = phrase.split()
    while len(words) > 1 and words[-1].lower() in _WEAK_HEADS and words[-2].split("-")[-1].lower() \
            in ARCHITECTURE_HEADS | {"transformer"}:
        words = words[:-1]
    while words and words[0].lower() in GENERIC_NAME_WORDS:
        words = words[1:]
    if not words:
        return None
    name = " ".join(words)
    if model_of(name) is not None:
        return name if len(words) > 1 else None  # one catalogue word: the ruler has it already
    if len(words) > 1:
        modifiers, head = words[:-1], words[-1].lower()
    elif _COINED_NET.fullmatch(words[0]):
        modifiers, head = words, ""
    else:
        hyphenated = re.fullmatch(rf"(.+)-({_NAME_HEAD})", words[0])  # "Twin-CNN"
        if not hyphenated:
            return None
        modifiers, head = [hyphenated.group(1)], hyphenated.group(2).lower()
    if all(w.lower() in GENERIC_NAME_WORDS for w in modifiers):
        return None
    if any(w.lower() in _FUNCTION_WORDS or metric_of(w) or model_of(w) is not None for w in modifiers[1:]) \
            or (head and (metric_of(modifiers[0]) or model_of(modifiers[0]) is not None)):
        return None  # "VGG19 CNN" is the catalogue's VGG-19; "Detection Using CNN" is a title
    if head in _WEAK_HEADS and not any(_name_like(w) for w in modifiers) \
            and not (mid_sentence and head in ("network", "net")):
        # "Classification Model" is a heading; a capitalised "Siamese Network" in running text
        # is a name.
        return None
    if dataset_of(name) is not None or name.lower() in _NOT_MODELS:
        return None
    return name


_FUNCTION_WORDS = frozenset({"a", "an", "the", "in", "on", "of", "for", "with", "by", "from", "to", "as", "at", "and",
                             "or", "using", "based", "via", "is", "are", "was", "were", "vs", "versus"})
_NOT_MODELS = frozenset({"imagenet", "wordnet", "pubmed", "medline"})


def _name_like(word: str) -> bool:
    """An acronym, a coined word with inner capitals or digits ("GCN", "DenseNet", "3D", "V2")."""
    core = word.strip("()-/")
    return bool(re.search(r"[A-Z].*[A-Z]|\d", core)) and word.lower() not in GENERIC_NAME_WORDS


def find_named_models(text: str) -> list[tuple[int, int, str]]:
    """(start, end, name) of every model name the catalogue may not know ("Multi-output CNN")."""
    found = []
    for regex in (_NAMED_PHRASE, _COINED_NET):
        for match in regex.finditer(text):
            mid_sentence = bool(re.search(r"[a-z,] $", text[max(0, match.start() - 2):match.start()]))
            name = named_model(match.group(), mid_sentence)
            if name is None:
                continue
            start = match.start() + match.group().index(name.split()[0])
            found.append((start, start + len(name), name))
    found.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    kept: list[tuple[int, int, str]] = []
    for span in found:
        if kept and span[0] < kept[-1][1]:
            continue
        kept.append(span)
    return kept


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
            terms.append(Term("METRIC", name, metric, name in ("spe", "rec", "sens", "prec", "sen", "pre", "ap")))
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
_GLUED_SPLIT = re.compile(r"^(?:test|val|valid|train)")
_SPLIT_WORDS = re.compile(r"\b(?:test(?:ing)?|val(?:idation)?|train(?:ing)?|mean|avg|average|overall|"
                          r"macro|micro|weighted|top-1)\b", re.IGNORECASE)


def metric_of(text: str) -> Optional[str]:
    """The canonical metric a header cell or row label names ("Acc (%)" -> accuracy), else None."""
    index = _metric_index()
    exact = normalize.name_key(text)
    if exact and exact in index:  # before the noise goes: "F-score" is a name, not "F" plus the word "score"
        return index[exact]
    cleaned = _HEADER_NOISE.sub(" ", text).strip()
    key = normalize.name_key(cleaned)
    if not key:
        return None
    if key in index:
        return index[key]
    stripped = normalize.name_key(_SPLIT_WORDS.sub(" ", cleaned))
    if stripped and stripped in index:
        return index[stripped]
    # A split glued to the metric, as logging code writes it: "val_acc", "TestAUC", "TESTAZ".
    glued = _GLUED_SPLIT.match(key)
    return index.get(key[glued.end():]) if glued and len(key) > glued.end() else None


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


def family_of(model: str) -> str:
    """The catalogue family of a model name (a bespoke name by keyword rules), else "Other"."""
    canonical = model_of(model)
    if canonical is None:
        return normalize.guess_family(model)
    return next((m.family for m in normalize.model_catalog() if m.name == canonical), "Other")


CONVOLUTIONAL_FAMILIES = frozenset({"CNN", "ResNet", "VGG", "DenseNet", "Inception/Xception", "MobileNet",
                                    "EfficientNet"})


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
