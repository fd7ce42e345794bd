"""The 14 experiment features from what a paper states, with the statement as provenance.

Each extractor turns a sentence (or a table) into `Evidence`: a candidate value, the snippet that
states it and how strongly it states it. `resolve` turns a feature's evidence into one
`FeatureField`: nothing stated -> `not_reported`; statements that disagree -> `ambiguous`, with
the values in the reason (a few features have an explicit tie-break, documented where it is
applied); a count computed from a stated total and ratio -> `derived`, with the arithmetic.
Nothing is guessed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Optional

from ..kb import FeatureField, Provenance
from . import gazetteers
from .numbers import WORD_NUMBER_PATTERN, parse_count, word_to_int

if TYPE_CHECKING:
    from .layout import Grid
    from .resolver import Resolver

_N = rf"(\d{{1,3}}(?:,\d{{3}})+|\d+|{WORD_NUMBER_PATTERN})"
_NOUN = r"(?:images?|samples?|scans?|photographs?|radiographs?|slides?|pictures?|x-?rays?|mris?|ct scans?|cases|" \
        r"patients|files|instances|examples|lesions|records)"
_FILLER = r"(?:[\w'’-]+\s+){0,4}?"
# Future work, and what could have been done ("augmenting the data could have improved it").
_FUTURE = re.compile(r"\bwill be\b|\bfuture\b|\bcould be\b|\bwe plan\b|\bmay be (?:explored|investigated|considered)\b"
                     r"|\bnext steps?\b|\b(?:could|would|might) have\b", re.IGNORECASE)
# "augmentations such as colour jitter could distort stains": a modal before any verb of doing.
_MODAL_AFTER = re.compile(r"(?:(?!\b(?:was|were|is|are|applied|used|performed|employed)\b)[^.]){0,40}?"
                          r"\b(?:can|could|may|might)\b", re.I)
_DONE_BEFORE = re.compile(r"\b(?:applied|used|performed|employed|adopted|was|were|we|our)\b", re.I)
# A statement in the first person is about the paper's own pipeline.
_OWN_WORK = re.compile(r"\b(?:[Ww]e|[Oo]ur|I)\b")
_IMAGENET_CONTEXT = re.compile(r"image ?net|1,000 (?:object )?(?:categories|classes)", re.IGNORECASE)
_TUNING_CONTEXT = re.compile(r"grid[- ]?search|gridsearchcv|hyper-?parameter|learning curves?", re.IGNORECASE)

CLASSICAL_FAMILIES = frozenset({"SVM", "Random Forest", "XGBoost/GBM", "kNN", "Decision Tree",
                                "Logistic Regression", "Other"})


@dataclass
class Evidence:
    feature: str
    value: object
    page: Optional[int]
    snippet: str
    method: str = "sentence"
    weight: float = 1.0
    reason: Optional[str] = None       # set for derived values: the arithmetic
    model: Optional[str] = None        # a statement about one model (pretrained)
    ratio: Optional[float] = None      # "80% for training": a share, not a count
    narrows: bool = False              # "only 1380 images left to use": the subset used, over any total
    position: float = 0.0              # where in the paper it is stated: 0 first sentence, 1 last
    section: str = "body"


def _snippet(text: str, start: int, end: int) -> str:
    return " ".join(text[max(0, start - 60):end + 60].split())


def _count(token: str) -> Optional[int]:
    word = word_to_int(token)
    return word if word is not None else parse_count(token)


# ---------------------------------------------------------------------------- sentence extractors
# "155 files in the brain tumour category" counts one class, not the dataset.
_NOT_TOTAL = r"(?!\s+(?:in|of|for|from|belonging to)\s+(?:the\s+)?(?:[\w-]+\s+){0,3}?(?:category|class|group))"
_TOTAL_PATTERNS = (
    (re.compile(rf"(?:a total of|in total|total(?: number)? of|overall)\s+{_N}\s+{_FILLER}{_NOUN}{_NOT_TOTAL}",
                re.I), 2.0),
    (re.compile(rf"\btotal (?:number|count) of {_NOUN}\s+(?:is|was|are|were|equals|:|=)\s+{_N}\b", re.I), 2.0),
    (re.compile(rf"(?<!training )(?<!train )(?<!test )(?<!testing )(?<!validation )"
                rf"(?:dataset|database|collection|corpus|set)\s+(?:of|with|containing|comprising)\s+{_N}\s+"
                rf"{_FILLER}{_NOUN}{_NOT_TOTAL}", re.I), 2.0),
    (re.compile(rf"(?:comprises?|comprising|consists? of|consisting of|contains?|containing|composed of|"
                rf"made up of|includes?)\s+{_N}\s+{_FILLER}{_NOUN}{_NOT_TOTAL}", re.I), 1.5),
    (re.compile(rf"(?:dataset|database|collection)\s+(?:used\s+)?(?:has|had|holds|provides)\s+{_N}\s+{_FILLER}{_NOUN}"
                rf"{_NOT_TOTAL}", re.I), 1.5),
    (re.compile(rf"\bthere (?:are|were) {_N}\s+{_FILLER}{_NOUN} in (?:the|this|our)\s+(?:[\w-]+\s+){{0,3}}?"
                rf"(?:dataset|database|collection)", re.I), 1.5),
    (re.compile(rf"\bwe (?:collected|gathered|acquired|obtained|used)\s+(?:a total of\s+)?{_N}\s+{_FILLER}{_NOUN}"
                rf"\b{_NOT_TOTAL}(?!\s+(?:for|in|as)\s+(?:the\s+)?(?:train|test|val))", re.I), 1.0),
)
# "by using only five classes ... there are only 1380 images left to use": what the paper kept of a
# larger dataset it also describes.
_SUBSET_USED = re.compile(rf"\bonly\s+{_N}\s+{_NOUN}\s+(?:left|remain(?:ing|ed)?)|\b(?:leaving|leaves|left with|"
                          rf"retaining|retained)\s+(?:only\s+)?{_N}\s+{_NOUN}|"
                          # "we selected 2000 mammogram images (from the database)"
                          rf"\bwe\s+(?:randomly\s+)?(?:selected|chose|picked|sampled)\s+{_N}\s+{_FILLER}{_NOUN}\b"
                          rf"(?!\s+(?:for|in|as)\s+(?:the\s+)?(?:train|test|val))", re.I)
# "the training set contains 2870 images" is a split's size, not the dataset's.
_SPLIT_BEFORE = re.compile(r"\b(?:train(?:ing)?|test(?:ing)?|val(?:idation)?)\s+(?:set|data|split|subset|"
                           r"partition|folder)s?\s*(?:\w+\s+)?$", re.I)
_SPLIT_WORDS = {"train": "n_train", "training": "n_train", "test": "n_test", "testing": "n_test",
                "validation": "n_val", "val": "n_val", "validating": "n_val"}
_SPLIT = r"(training|train|testing|test|validation|val)"
# A count starts a number of its own: not the second side of a size ("512x512 for training").
_COUNT_START = r"(?<![\w.,×*/-])"
# "nine parts for training", "50 epochs of training": numbers of something that is not a sample.
_NOT_SAMPLES = re.compile(r"\b(?:parts?|folds?|subsets?|splits?|epochs?|iterations?|times|layers?|batch(?:es)?|"
                          r"steps?|hours?|minutes?|seconds?|days?|runs?|rounds?|trials?|models?|networks?|"
                          r"classes|categories|features?|filters?|neurons?|units?|percent|%)\b", re.I)
# "64 training examples in one iteration" is a batch size.
_PER_BATCH = re.compile(r"^\s*(?:in|per|at|for)\s+(?:one|each|a|every|the)?\s*(?:single\s+)?"
                        r"(?:iteration|batch|step|time|go)\b", re.I)
_SPLIT_COUNT_PATTERNS = (
    re.compile(rf"{_COUNT_START}{_N}\s+(?:[\w-]+\s+){{0,2}}?{_NOUN}?\s*(?:\([^()]{{0,12}}\)\s*)?(?:were\s+|was\s+|are\s+)?"
               rf"(?:used\s+)?(?:for|in|as)\s+"
               rf"(?:the\s+)?(?:purposes?\s+of\s+)?{_SPLIT}\b(?!\s+and\s+validation)", re.I),
    re.compile(rf"\b{_SPLIT}\s+(?:set|data|dataset|split|subset|images|samples)\s+(?:of|with|contains?|containing|"
               rf"comprises?|comprising|consists? of|has|had|includes?|included|:)\s+{_N}", re.I),
    re.compile(rf"{_COUNT_START}{_N}\s+(?:[\w-]+\s+)?{_SPLIT}\s+{_NOUN}(?!\s+and\s+validation)", re.I),
    # A notebook's printout: "Training Number of Paths: 5712", "Number of training images = 5712".
    re.compile(rf"\b{_SPLIT}(?:\s+(?:set|data|dataset|split))?\s*:?\s+(?:total\s+)?(?:number|no\.|count)\s+of\s+"
               rf"(?:[\w-]+\s*){{1,2}}[:=]\s*{_N}\b", re.I),
    re.compile(rf"\b(?:number|no\.|count)\s+of\s+{_SPLIT}(?:ing)?\s+{_NOUN}\s*[:=]\s*{_N}\b", re.I),
)
_RATIO = re.compile(rf"(?<![\d.])(\d{{1,2}}(?:\.\d)?)\s?%\s*(?:of\s+(?:the\s+)?(?:data|images|dataset|samples)\s+)?"
                    rf"(?:(?:was|were|is|are)\s+)?(?:used\s+)?(?:for|as|to)?\s*(?:the\s+)?{_SPLIT}", re.I)
# "training (70%), validation (15%) and test (15%)"
_RATIO_AFTER = re.compile(rf"\b{_SPLIT}(?:\s+(?:set|data|split))?\s*\(\s*(\d{{1,2}}(?:\.\d)?)\s?%\s*\)", re.I)
# "split into training, validation and test sets (70%, 15% and 15%)", "... in the ratio 80:20",
# "... with the proportion of 80% and 20% respectively": the shares follow the splits' order.
_SPLIT_LIST = re.compile(rf"\b{_SPLIT}(?:\s+(?:set|data|subset)s?)?\s*(?:,|and|&|/)\s*(?:(?:the\s+)?{_SPLIT}"
                         rf"(?:\s+(?:set|data|subset)s?)?\s*(?:,\s*and|,|and|&|/)\s*)?(?:the\s+)?{_SPLIT}"
                         rf"(?:\s+(?:set|data|subset)s?)?\b", re.I)
_SHARE_SEP = r"(?:\s?%\s*(?:(?:[,:/]|,?\s*and|-)\s*)?|\s*(?:[,:/]|,?\s*and|-)\s*)"
_SHARE_LIST = re.compile(rf"(?<![\d.])(\d{{1,2}}(?:\.\d)?){_SHARE_SEP}(\d{{1,2}}(?:\.\d)?)"
                         rf"(?:{_SHARE_SEP}(\d{{1,2}}(?:\.\d)?))?\s?%?(?![\d.])")
_SHARE_CUE = re.compile(r"ratio|proportion|percent|%|:|/|respectively", re.I)
# A share of a score is not a share of the data: "92.8% and 91.2% as training and validation accuracies".
_SCORE_WORDS = re.compile(r"accura|precision|recall|\bf1\b|f-score|\bauc\b|\bloss\b|\berror\b|\bscore", re.I)
_DIVIDE_WORDS = re.compile(r"split|divid|partition|proportion|ratio|allocat|portion|held[- ]out|set aside|reserv",
                           re.I)
_KFOLD = re.compile(rf"\b{_N}[- ]fold\s+(?:stratified\s+)?cross[- ]?validation|\bk[- ]fold cross[- ]?validation"
                    rf"[^.]{{0,30}}?\bk\s?=\s?(\d+)|cross[- ]?validation\s+(?:with|using)\s+{_N}\s+folds", re.I)
# A size may end a sentence ("resized to 224x224."): a full stop is not a decimal point.
_SIZE = re.compile(r"(?<![\d.])(\d{2,4})\s{0,2}(?:×|x|X|\*|\s(?:by)\s)\s{0,2}(\d{2,4})"
                   r"(?:\s{0,2}(?:×|x|X)\s{0,2}([13]))?(?!\d|\.\d)")
_SIZE_CHW = re.compile(r"(?<![\d.])([13])\s{0,2}(?:×|x|X)\s{0,2}(\d{2,4})\s{0,2}(?:×|x|X)\s{0,2}(\d{2,4})(?!\d|\.\d)")
# A Keras-style input shape: "(224, 224, 3)" or "[150,150,3]".
_SIZE_TUPLE = re.compile(r"[(\[]\s*(?:None\s*,\s*)?(\d{2,4})\s*,\s*(\d{2,4})\s*,\s*([13])\s*[)\]]")
_SIZE_GOOD = re.compile(r"resiz|input|rescal|reduc|downsampl|down-sampl|fed|fixed size|image size|dimension|"
                        r"pixels|resolution of|size of|shape", re.I)
_SIZE_BAD = re.compile(r"original|initial|raw resolution|native|kernel|filter|stride|pool|patch|window|conv|average|"
                       r"\bmean\b|typical|vary|varying|ranging", re.I)
# "gray scale intensity values", "grey-level co-occurrence": a pixel property, not the input's channels.
_GRAY = re.compile(r"(?:gr[ae]y[- ]?scale|single[- ]channel|one channel|1[- ]channel|monochrome)(?!\s*(?:intensit|"
                   r"levels?\b|values?\b|histogram|co-?occurrence|morpholog|threshold|version of))", re.I)
_GRAY_CONVERT = re.compile(r"convert\w*\s+(?:\w+\s+){0,3}?(?:to|into)\s+gr[ae]y[- ]?scale", re.I)
_INTERMEDIATE_STEP = re.compile(r"\s*(?:colou?r\s+|images?\s+)?(?:in order\s+)?(?:to (?:find|detect|extract|compute|"
                                r"locate|identify|obtain|calculate)|for (?:contour|edge|threshold|segment))", re.I)
# "RGB = Red Green Blue" in a list of abbreviations states nothing.
_RGB = re.compile(r"\bRGB\b(?!\s*=)|3[- ]channels?|three[- ]channels?|colou?r images", re.I)
_RGB_CONVERT = re.compile(r"convert\w*\s+(?:\w+\s+){0,4}?(?:to|into)\s+(?:an?\s+)?(?:RGB|3[- ]channels?|"
                          r"three[- ]channels?)", re.I)
# "the 3 smallest classes", "the 2 other classes": some of the classes, not their number.
_SOME_OF = r"(?!(?:\w+est|other|remaining|minority|majority|top|first|last|rarest|most|least|under-?represented|" \
           r"over-?represented|rare|frequent|largest|smaller|larger|bigger)\s)"
_CLASSES = re.compile(rf"(?<![\d.])\b{_N}[- ](?:class|category|way)\b(?![- ]?(?:imbalance|weight|distribution))|"
                      rf"(?<![\d.])\b{_N}\s+(?:{_SOME_OF}[\w-]+\s+)?(?:classes|categories|diagnostic categories|grades)\b|"
                      # "Number of Classes: 4" as a report or a notebook prints it, "num_classes=4" in its code
                      rf"\bnumber of (?:output )?(?:classes|categories)\s*(?:is|was|are|:|=)\s*{_N}\b|"
                      rf"\b(?:num|n|nb)_classes\s*=\s*(\d+)\b", re.I)
_BINARY = re.compile(r"\bbinary\s+(?:classification|classifier|task|problem|labels?|outcome)|"
                     r"\btwo-class\b", re.I)
# "classify the cell as infected or healthy", "annotated with benign or malignant labels",
# "categorized into normal, benign, and malignant": the classes listed, counted.
# Only verbs that assign labels: "differentiate between healthy skin and the lesion" compares regions.
_CLASS_VERB = r"(?:classif\w*|categori[sz]\w*|label(?:l?ed|s)|annotated|grouped)"
_LIST_NOUN_WORDS = r"classes|categories|labels|cells|images|cases|lesions|tumou?rs|groups|types|masses|samples|patients"
_LIST_NOUN = rf"(?:{_LIST_NOUN_WORDS})"
_ITEM = rf"(?:(?!(?:and|or|either|the|a|an|into|as|between|with|versus|vs|not|no|to|of|for|in|on|by|is|are|be|" \
        rf"each|one|its|their|class|category|{_LIST_NOUN_WORDS})\b)[A-Za-z][\w'’-]*)"
_ITEMS = rf"({_ITEM}(?:\s+{_ITEM}){{0,2}}(?:\s*,\s*{_ITEM}(?:\s+{_ITEM}){{0,2}}){{0,6}},?\s+(?:or|and|vs\.?|versus)" \
         rf"\s+{_ITEM}(?:\s+{_ITEM}){{0,2}})"
_CLASS_LIST = re.compile(rf"\b{_CLASS_VERB}\s+(?:[\w-]+,?\s+){{0,7}}?(?:as|into|with)\s+(?:either\s+)?"
                         rf"(?:the\s+)?{_ITEMS}(?=\s*(?:[.;:,)]|$|\s+{_LIST_NOUN}\b))", re.I)
_NOT_A_CLASS = re.compile(r"\b(?:train\w*|test\w*|validation|data\w*|models?|methods?|features?|images?|"
                          r"accuracy|precision|recall|sensitivity|specificity|pixels?|background|foreground)\b", re.I)
# "augment the capabilities of clinicians" is not data augmentation: the verb needs data after it.
_AUG_WORD = re.compile(r"\baugmentations?\b|\baugment(?:ed|ing|s)?\s+(?:the\s+|our\s+|this\s+)?(?:[\w-]+\s+)?"
                       r"(?:data|dataset|images?|training|samples|set)\b|\b(?:data|images?|samples?|set|dataset)\s+"
                       r"(?:(?:was|were|is|are)\s+)?augmented\b", re.I)
_AUG_NO = re.compile(r"without (?:any )?(?:data )?augmentation|\bno (?:data )?augmentation|(?:did|do|does) not "
                     r"(?:use|apply|perform|employ|implement|include|adopt|utili[sz]e) (?:any )?(?:data )?"
                     r"augmentation|augmentation (?:was|were) not|"
                     # "augmentation was tried but, eventually, not used"
                     r"augmentation (?:was|were) (?:tried|tested|attempted|explored)[^.]{0,30}?\bnot (?:used|adopted|"
                     r"kept|retained|included)|"
                     # an abandoned attempt: "attempts at data augmentation led to poor results"
                     r"attempts? (?:at|to use|with) (?:data )?augmentation (?:led to|gave|resulted in|yielded) "
                     r"(?:poor|worse|lower)|augmentation (?:did not|didn't|failed to) (?:yield|improve|help)",
                     re.I)
# "fine-tuning hyper-parameters" tunes settings, not pretrained weights.
_PRETRAIN = re.compile(r"pre-?trained|image ?net|transfer learning|fine-?tun(?:ing|ed|es|e)?\b(?!\s+(?:of\s+|the\s+)?"
                       r"(?:hyper-?)?parameters?\b|\s+(?:the\s+)?(?:learning rate|thresholds?|settings?))", re.I)
# "written from scratch" says how the code came about, not how the weights were initialised.
_SCRATCH = re.compile(r"from scratch|random(?:ly)? initiali[sz]|without pre-?training|no pre-?training", re.I)
_CODE_VERB_BEFORE = re.compile(r"\b(?:writ\w*|implement\w*|coded|programmed)\s+$", re.I)
# "GCN can also leverage transfer learning": what a method could do, not what the paper did.
_HYPOTHETICAL = re.compile(r"\b(?:can|could|may|might|would)\s+(?:also\s+|further\s+|potentially\s+|be\s+)?"
                           r"(?:[\w-]+\s+){0,4}$", re.I)


def sentence_evidence(text: str, page: Optional[int], models: Iterable[str] = (), *,
                      method: str = "sentence", future: bool = False) -> list[Evidence]:
    """Every feature statement in one sentence. `models` are the models the sentence names;
    `future` marks a future-work section."""
    found: list[Evidence] = []
    future = future or bool(_FUTURE.search(text))
    imagenet = bool(_IMAGENET_CONTEXT.search(text))

    def add(feature, value, match, weight=1.0, **extra):
        found.append(Evidence(feature, value, page, _snippet(text, match.start(), match.end()), method,
                              weight, **extra))

    if not imagenet:
        for pattern, weight in _TOTAL_PATTERNS:
            for match in pattern.finditer(text):
                if _SPLIT_BEFORE.search(text[max(0, match.start() - 30):match.start()]):
                    continue
                count = _count(match.group(1))
                if count is not None and count >= 20:
                    add("n_samples", count, match, weight)
        for match in _SUBSET_USED.finditer(text):
            count = _count(next(g for g in match.groups() if g))
            if count is not None and count >= 20:
                add("n_samples", count, match, 2.0, narrows=True)
        for pattern in _SPLIT_COUNT_PATTERNS:
            for match in pattern.finditer(text):
                groups = [g for g in match.groups() if g]
                number = next((g for g in groups if _count(g) is not None), None)
                split = next((g for g in groups if g.lower() in _SPLIT_WORDS), None)
                count = _count(number) if number else None
                if count is None or not split or count < 5 or _NOT_SAMPLES.search(match.group(0)) \
                        or _PER_BATCH.match(text[match.end():]):
                    continue
                add(_SPLIT_WORDS[split.lower()], count, match, 1.5)
        # Shares of a score ("92.8% and 91.2% as training and validation accuracies") are no split.
        if not _SCORE_WORDS.search(text) or _DIVIDE_WORDS.search(text):
            for match in _RATIO.finditer(text):
                share = float(match.group(1)) / 100.0
                add(_SPLIT_WORDS[match.group(2).lower()], None, match, 1.0, ratio=share)
            for match in _RATIO_AFTER.finditer(text):
                share = float(match.group(2)) / 100.0
                add(_SPLIT_WORDS[match.group(1).lower()], None, match, 1.0, ratio=share)
            found.extend(_split_list_shares(text, page, method, {e.feature for e in found if e.ratio}))
    if not _TUNING_CONTEXT.search(text):
        for match in _KFOLD.finditer(text):
            token = next(g for g in match.groups() if g)
            k = _count(token)
            if k is not None and 2 <= k <= 20:
                add("k_fold", k, match, 1.5)
    found.extend(_size_evidence(text, page, method))
    found.extend(_channel_evidence(text, page, method))
    if not imagenet:
        for match in _CLASSES.finditer(text):
            token = next(g for g in match.groups() if g)
            count = _count(token)
            if count is not None and 2 <= count <= 1000:
                add("n_classes", count, match)
        for match in _BINARY.finditer(text):
            add("n_classes", 2, match)
        for match in _CLASS_LIST.finditer(text):
            items = [i for i in re.split(r"\s*,\s*(?:(?:and|or)\s+)?|\s+(?:or|and|vs\.?|versus)\s+", match.group(1)) if i]
            if 2 <= len(items) <= 12 and not any(_NOT_A_CLASS.search(i) for i in items):
                add("n_classes", len(items), match, 0.5)
    # A heading ("5.3 Data augmentation") names a topic; the sentences under it say what was done.
    heading = len(text.split()) <= 5 and not re.search(r"\b(?:is|are|was|were|used|applied)\b", text, re.I)
    if _AUG_WORD.search(text):
        negative = _AUG_NO.search(text)
        about_eval_data = re.search(r"\b(?:validation|test(?:ing)?)\b", text, re.I) and negative
        match = negative or _AUG_WORD.search(text)
        if negative and not about_eval_data:
            # "I did not implement augmentation because it would have taken too long": a statement
            # of what was done, whatever the sentence goes on to imagine.
            add("augmentation", "no", match, 3.0 if _OWN_WORK.search(text) else 2.0)
        elif future:
            add("augmentation", "no", match, 0.5, reason="augmentation is named only as future work")
        elif (not negative or about_eval_data) and not _HYPOTHETICAL.search(text[:match.start()]) \
                and not (_MODAL_AFTER.match(text[match.end():]) and not _DONE_BEFORE.search(text[:match.start()])):
            add("augmentation", "yes", match, 0.5 if heading else 1.0)
    scratch = _SCRATCH.search(text)
    if scratch and _CODE_VERB_BEFORE.search(text[:scratch.start()]):
        scratch = None
    pretrain = _PRETRAIN.search(text)
    match = scratch or pretrain
    # What a method could do says nothing of how the paper's models were trained; pretraining
    # named only as future work is weak evidence that the models were not pretrained.
    if match and not (pretrain and not scratch and _HYPOTHETICAL.search(text[:match.start()])):
        if future and not scratch:
            value, weight = "no", 0.5
        else:
            value, weight = ("no", 2.0) if scratch else ("yes", 0.5 if heading else 1.0)
        # A statement is about the models named close to it ("MobileNetV2 pretrained on ImageNet").
        cues = [m.start() for m in (_SCRATCH if scratch else _PRETRAIN).finditer(text)]
        named = [m for m in models if any(abs(p - c) <= 40 for p in _positions(text, m) for c in cues)]
        if named:
            for model in named:
                add("pretrained", value, match, weight + 1.0, model=model)
        else:
            add("pretrained", value, match, weight)
    return found


def _split_list_shares(text: str, page: Optional[int], method: str, stated: set[str]) -> list[Evidence]:
    """Shares given as a list after (or before) the splits they belong to, in the same order:
    "training and test sets with proportions of 90% 10%", "a 70:15:15 train/validation/test split"."""
    found = []
    for match in _SPLIT_LIST.finditer(text):
        splits = [g.lower() for g in match.groups() if g]
        window = text[match.end():match.end() + 60]
        shares = _SHARE_LIST.search(window)
        if shares is None or shares.start() > 45:
            window = text[max(0, match.start() - 40):match.start()]
            shares = _SHARE_LIST.search(window)
        if shares is None or not _SHARE_CUE.search(shares.group(0) + window):
            continue
        values = [float(g) for g in shares.groups() if g]
        if len(values) != len(splits) or len({_SPLIT_WORDS[s] for s in splits}) != len(splits) \
                or not 0.98 <= sum(values) / 100.0 <= 1.02:
            continue
        snippet = _snippet(text, match.start(), match.end())
        for split, share in zip(splits, values):
            if _SPLIT_WORDS[split] not in stated:
                found.append(Evidence(_SPLIT_WORDS[split], None, page, snippet, method, 1.0, ratio=share / 100.0))
    return found


def _positions(text: str, needle: str) -> list[int]:
    return [m.start() for m in re.finditer(re.escape(needle), text)]


def _size_evidence(text: str, page: Optional[int], method: str) -> list[Evidence]:
    found = []
    spans = []
    for match in _SIZE_CHW.finditer(text):
        channels, height, width = int(match.group(1)), int(match.group(2)), int(match.group(3))
        spans.append((match.start(), match.end()))
        snippet = _snippet(text, match.start(), match.end())
        if height >= 16 and width >= 16:
            found += [Evidence("width", width, page, snippet, method, 2.0),
                      Evidence("height", height, page, snippet, method, 2.0),
                      Evidence("channels", channels, page, snippet, method, 2.0)]
    for match in _SIZE_TUPLE.finditer(text):
        height, width, channels = int(match.group(1)), int(match.group(2)), int(match.group(3))
        spans.append((match.start(), match.end()))
        if height >= 16 and width >= 16 and re.search(r"shape|input|size|dimension", text[:match.start()][-40:], re.I):
            snippet = _snippet(text, match.start(), match.end())
            found += [Evidence("width", width, page, snippet, method, 2.0),
                      Evidence("height", height, page, snippet, method, 2.0),
                      Evidence("channels", channels, page, snippet, method, 2.0)]
    for match in _SIZE.finditer(text):
        if any(s <= match.start() < e for s, e in spans):
            continue
        width, height = int(match.group(1)), int(match.group(2))
        if width < 16 or height < 16 or width > 4096 or height > 4096:
            continue
        before = text[max(0, match.start() - 60):match.start()]
        after = text[match.end():match.end() + 20]
        if _SIZE_BAD.search(before[-30:]) or _SIZE_BAD.search(after) or re.search(r"\bfrom\s*$", before):
            weight = 0.3  # "resized from 600×450 to 224×224": the first size is the original
        elif _SIZE_GOOD.search(before) or re.match(r"\s*(?:pixels|px)", after, re.I):
            weight = 2.0 if re.search(r"\bto\s+(?:a\s+)?(?:\w+\s+){0,3}$", before) or "resiz" in before.lower() else 1.5
        else:
            weight = 1.0
        snippet = _snippet(text, match.start(), match.end())
        found += [Evidence("width", width, page, snippet, method, weight),
                  Evidence("height", height, page, snippet, method, weight)]
        if match.group(3):
            found.append(Evidence("channels", int(match.group(3)), page, snippet, method, weight))
    return found


def _channel_evidence(text: str, page: Optional[int], method: str) -> list[Evidence]:
    """Grayscale -> 1, RGB -> 3. A conversion outweighs the format it converts from."""
    to_rgb = _RGB_CONVERT.search(text)
    if to_rgb:  # "grayscale scans converted to RGB for the ImageNet weights"
        return [Evidence("channels", 3, page, _snippet(text, to_rgb.start(), to_rgb.end()), method, 3.0)]
    convert = _GRAY_CONVERT.search(text)
    if convert and _INTERMEDIATE_STEP.match(text[convert.end():]):
        return []  # "converted into grayscale to find its contour": a step, not the model's input
    if convert:
        return [Evidence("channels", 1, page, _snippet(text, convert.start(), convert.end()), method, 3.0)]
    found = []
    gray = _GRAY.search(text)
    if gray:
        found.append(Evidence("channels", 1, page, _snippet(text, gray.start(), gray.end()), method, 1.0))
    rgb = _RGB.search(text)
    if rgb and not gray:
        found.append(Evidence("channels", 3, page, _snippet(text, rgb.start(), rgb.end()), method, 1.0))
    return found


# ---------------------------------------------------------------------------- table extractors
_SPLIT_ROW = re.compile(r"^(train(?:ing)?(?: set)?|val(?:idation)?(?: set)?|test(?:ing)?(?: set)?|total)$", re.I)
_COUNT_HEADER = re.compile(r"total|images|samples|count|number|#|^n$|size|scans|cases", re.I)


def table_evidence(grid: "Grid") -> list[Evidence]:
    """Split sizes from a split table (rows Train/Val/Test/Total, a count column) and the test size
    from a classification report's support."""
    found: list[Evidence] = []
    rows: dict[int, list] = {}
    for cell in grid.cells:
        rows.setdefault(cell.row_index, []).append(cell)
    prefix = f"{grid.caption} " if grid.caption else ""
    for cells in rows.values():
        label = cells[0].row_label.strip().lower()
        support = [c for c in cells if c.column_header.split(" / ")[-1].strip().lower() == "support"]
        if support and label in ("accuracy", "macro avg", "weighted avg"):
            count = parse_count(support[0].value_text)
            if count:
                return [Evidence("n_test", count, grid.page, (prefix + cells[0].row_text)[:200], "table", 1.0,
                                 reason="the support of the classification report of the test evaluation")]
    for cells in rows.values():
        label = cells[0].row_label.strip().lower()
        if not _SPLIT_ROW.match(label):
            continue
        counted = [c for c in cells if _COUNT_HEADER.search(c.column_header) and parse_count(c.value_text)]
        numeric = [c for c in cells if parse_count(c.value_text) is not None]
        cell = counted[0] if counted else (numeric[0] if len(numeric) == 1 else None)
        if cell is None:
            continue
        feature = "n_samples" if label == "total" else _SPLIT_WORDS[label.split()[0]]
        found.append(Evidence(feature, parse_count(cell.value_text), grid.page, (prefix + cells[0].row_text)[:200],
                              "table", 2.5))
    return found


# ---------------------------------------------------------------------------- resolution
def _provenance(evidence: Evidence, source_url: Optional[str], confidence: float) -> Provenance:
    return Provenance(method=evidence.method, page=evidence.page, snippet=evidence.snippet,
                      source_url=source_url, confidence=confidence)


def missing(status: str, reason: str, method: str, source_url: Optional[str] = None) -> FeatureField:
    return FeatureField.missing(status, Provenance(method=method, source_url=source_url, confidence=1.0), reason)


# Features whose conflicts have a documented tie-break: the clearly stronger statement wins (an
# image size the text says images were resized to, over the size they were captured at; a
# conversion to grayscale over the RGB it converts from; an augmentation stated for training over
# a remark that evaluation data are not augmented).
_TIE_BREAK = {"width", "height", "channels", "augmentation", "pretrained"}


def resolve(feature: str, evidence: list[Evidence], *, method: str, source_url: Optional[str] = None,
            resolver: Optional["Resolver"] = None) -> FeatureField:
    """One feature's value from its statements; a conflict goes to the learned `resolver` where one
    is given, and stays `ambiguous` when it has no confident answer either."""
    values = [e for e in evidence if e.feature == feature and e.value is not None]
    if not values:
        return missing("not_reported", "not stated in the paper", method, source_url)
    values = [e for e in values if e.narrows] or values
    support: dict[object, float] = defaultdict(float)
    first: dict[object, Evidence] = {}
    for e in values:
        support[e.value] += e.weight
        if e.value not in first or e.weight > first[e.value].weight:
            first[e.value] = e
    ranked = sorted(support, key=lambda v: -support[v])
    best = ranked[0]
    if len(ranked) > 1:
        runner_up = support[ranked[1]]
        if not (feature in _TIE_BREAK and support[best] >= 1.5 * runner_up):
            listed = ", ".join(f"{v} ({first[v].method} p.{first[v].page})" for v in ranked[:4])
            choice = resolver.choose(feature, values) if resolver is not None else None
            if choice is not None:
                value, probability = choice
                return FeatureField.reported(value, _provenance(first[value], source_url, round(probability, 2)),
                                             f"the paper states several values ({listed}); the resolver trained on"
                                             f" gold takes {value} (p={probability:.2f})")
            return missing("ambiguous", f"the paper states conflicting values: {listed}", method, source_url)
    chosen = first[best]
    confidence = min(1.0, 0.6 + 0.15 * support[best]) if len(ranked) == 1 else 0.6
    provenance = _provenance(chosen, source_url, round(confidence, 2))
    if chosen.reason and chosen.method != "derived" and feature in ("n_test", "n_train", "n_val", "n_samples") \
            and "support" in chosen.reason:
        return FeatureField.derived(best, provenance, chosen.reason)
    return FeatureField.reported(best, provenance, chosen.reason)


def derive_split_counts(fields: dict[str, FeatureField], evidence: list[Evidence],
                        source_url: Optional[str]) -> None:
    """Fill split sizes a paper gives only as a share of a stated total (1380 x 80% = 1104), and
    a total it gives only as split sizes (546 + 78 + 156 = 780). Mutates `fields`."""
    splits = ("n_train", "n_val", "n_test")
    total_field = fields.get("n_samples")
    if total_field is not None and total_field.has_value:
        total = int(total_field.value)
        for feature in splits:
            if fields[feature].has_value or fields[feature].status == "ambiguous":
                continue
            shares = {round(e.ratio, 4) for e in evidence if e.feature == feature and e.ratio is not None}
            if len(shares) != 1:
                continue
            share = shares.pop()
            count = total * share
            if abs(count - round(count)) > 1e-6:
                continue  # a ratio that does not divide the total exactly is not a stated count
            source = next(e for e in evidence if e.feature == feature and e.ratio is not None)
            provenance = Provenance(method="derived", page=source.page, snippet=source.snippet,
                                    source_url=source_url, confidence=0.8)
            fields[feature] = FeatureField.derived(int(round(count)), provenance,
                                                   f"{total} x {share:.0%} = {int(round(count))}")
        return
    if total_field is not None and total_field.status == "ambiguous":
        return
    stated = [fields[f] for f in splits if fields[f].has_value]
    if len(stated) == 3 or (len(stated) == 2 and not any(e.feature == "n_val" for e in evidence)
                            and fields["n_val"].status == "not_reported" and _only_train_test(evidence)):
        total = sum(int(f.value) for f in stated)
        parts = " + ".join(str(int(f.value)) for f in stated)
        provenance = Provenance(method="derived", page=stated[0].provenance.page,
                                snippet=stated[0].provenance.snippet, source_url=source_url, confidence=0.8)
        fields["n_samples"] = FeatureField.derived(total, provenance, f"sum of the stated split sizes {parts}")


def _only_train_test(evidence: list[Evidence]) -> bool:
    return any(e.feature == "n_train" for e in evidence) and any(e.feature == "n_test" for e in evidence)


def paper_features(evidence: list[Evidence], *, method: str, source_url: Optional[str] = None,
                   resolver: Optional["Resolver"] = None) -> dict[str, FeatureField]:
    """The paper-level value of every count and setting feature (domain, modality and the
    per-model features are filled by the pipeline)."""
    fields = {name: resolve(name, evidence, method=method, source_url=source_url, resolver=resolver)
              for name in ("n_samples", "n_train", "n_test", "n_val", "k_fold", "width", "height", "channels",
                           "n_classes")}
    if fields["n_samples"].has_value:
        # A split cannot hold more images than the data used: a larger count describes something
        # else (the folder a public dataset ships as "Training", before the paper kept a subset).
        total = int(fields["n_samples"].value)
        for split in ("n_train", "n_val", "n_test"):
            stated = [e for e in evidence if e.feature == split and e.value is not None]
            kept = [e for e in stated if int(e.value) <= total]
            if len(kept) < len(stated):
                others = [e for e in evidence if e.feature != split or e.value is None or int(e.value) <= total]
                fields[split] = resolve(split, others, method=method, source_url=source_url, resolver=resolver)
    derive_split_counts(fields, evidence, source_url)
    if fields["width"].has_value != fields["height"].has_value:
        # One side of an image size without the other is a misreading; report neither.
        for side in ("width", "height"):
            fields[side] = missing("ambiguous", "only one side of the image size could be read", method, source_url)
    return fields


def model_feature(feature: str, model: str, evidence: list[Evidence], *, method: str,
                  source_url: Optional[str] = None) -> FeatureField:
    """A per-model feature (pretrained): statements naming this model, else the paper-level ones."""
    key = gazetteers.model_of(model) or model.lower()
    own = [e for e in evidence if e.feature == feature and e.model is not None
           and (gazetteers.model_of(e.model) or e.model.lower()) == key]
    general = [e for e in evidence if e.feature == feature and e.model is None]
    return resolve(feature, own or general, method=method, source_url=source_url)


def is_classical(model: str) -> bool:
    """Classical ML (SVM, kNN, trees, logistic regression): pretraining does not apply."""
    if gazetteers.model_of(model) == "Naive Bayes":
        return True
    family = gazetteers.family_of(model)
    return family in CLASSICAL_FAMILIES and family != "Other"
