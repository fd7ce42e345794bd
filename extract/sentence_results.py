"""(model, dataset, metric, value, split) results from sentences.

Each metric mention is paired with the number right after it ("an accuracy of 96.5%") or right
before it ("96.5% accuracy"); the model is the one the clause names, else the paper's own model
when the sentence refers to it ("the proposed model", "the CNN", "Algorithm:"), else the model of
the last sentences. Citations, years, counts, ranges, bounds ("over 91%"), thresholds, training
logs and human readers' scores are not results.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from . import gazetteers
from .numbers import ParsedNumber, find_numbers
from .relations import SENTENCE, SUMMARY_SENTENCE, DocumentContext, Result, metric_value, resolve_mention

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
                           # training logs: "loss: 0.08", "Epoch 3/10", "179/179 [===", "527ms/step"
                           r"|\b(?:val_)?loss\s*[:=]|\bepoch\s*\d+\s*/\s*\d+|\d+/\d+\s*\[=|\d+m?s/step",
                           re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r";|\bwhereas\b|\bwhile\b|\bcompared (?:to|with)\b|\bversus\b|\bvs\.?(?=\s)|\bthan\b")
_ANAPHOR = re.compile(r"\b(?:the|this|our|proposed|final|trained|best)\s+(?:\w+\s+){0,2}?(?:model|network|classifier|"
                      r"algorithm|system|approach|method|architecture|framework|cnn)\b|^\s*algorithm\s*:",
                      re.IGNORECASE)
_MODEL_WORD = re.compile(r"\b(?:model|network|classifier|algorithm|system|approach|method|cnn|architecture)s?\b",
                         re.IGNORECASE)
CITATION = re.compile(r"\[\s*\d+(?:\s*[-–,]\s*\d+)*\s*\]")  # "[12]", "[3, 4]", "[5-7]"
_GAP_AFTER = re.compile(r"^[\s:=()]*(?:(?:of|is|was|were|are|at|to|reached|reaching|achieved|achieving|attained|"
                        r"obtained|yielded|yielding|showed|scored|value|values|score|scores|rate|equal|equals|a|an|"
                        r"the|overall|mean|average|test|testing|validation|val|train|training|process|phase|set|"
                        r"on|with|by|as|high|higher|proposed|model|network|classifier|method|approach|"
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
    return metric_value(number)


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
    # A model named between a metric and its value ("the accuracy of the proposed CNN is 99.1%")
    # is read past: the gap is judged with the name blanked out.
    blanked = text
    for s, e, label, _ in sentence.entities:
        if label in ("MODEL", "PROPOSED", "ALIAS"):
            blanked = blanked[:s] + " " * (e - s) + blanked[e:]
    pairs = _pair(blanked, metrics, numbers)
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
    inside = [m for m in in_clause if lo <= m[0] and m[1] <= hi]
    chosen = (inside[0] if inside else None) or nearest_before or (min(after, key=lambda m: m[0]) if after else None)
    if chosen is not None:
        return resolve_mention(chosen, ctx)
    if readers:
        return None
    if _ANAPHOR.search(text[clause_start:clause_end]) and ctx.main_model:
        return ctx.main_model
    if recent_model:
        return recent_model
    if ctx.main_model and (ctx.single_model or _MODEL_WORD.search(text)):
        return ctx.main_model
    return None


def _nearest(items: list[tuple[int, int, str]], position: int) -> Optional[str]:
    if not items:
        return None
    return min(items, key=lambda item: abs(item[0] - position))[2]


