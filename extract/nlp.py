"""The spaCy pipeline: sentences, abbreviations and the entities results are built from.

    >>> build_pipeline().pipe_names
    ['sentencizer', 'sentence_repairs', 'paragraph_breaks', 'gazetteer_ruler',
     'abbreviation_detector', 'architecture_entities', 'keyword_entities', 'abbreviation_entities',
     'entity_canonicalizer']

The text the pipeline reads marks headings, captions and page breaks with a blank line;
`paragraph_breaks` starts a sentence after each, since headings carry no full stop.

Entity labels: MODEL, DATASET, METRIC, DOMAIN, MODALITY, plus PROPOSED for "our model"-style
mentions of the paper's own unnamed model. Each entity's `_.canonical` holds the catalogue name,
metric, domain or modality label it stands for (the surface text when the catalogue lacks it).
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from . import gazetteers

ENTITY_LABELS = ("MODEL", "DATASET", "METRIC", "DOMAIN", "MODALITY", "PROPOSED")

if not Span.has_extension("canonical"):
    Span.set_extension("canonical", default=None)


def _add_spans(doc: Doc, spans: list[Span]) -> None:
    """Add spans to doc.ents; an existing entity wins over a new one it overlaps unless the new
    one is longer ("ResNet-50 V2" over "ResNet-50")."""
    combined = filter_spans(list(doc.ents) + spans)
    doc.ents = sorted(combined, key=lambda s: s.start)


@Language.component("paragraph_breaks")
def paragraph_breaks(doc: Doc) -> Doc:
    """A blank line ends a sentence (headings, captions and list items have no full stop)."""
    for token in doc[:-1]:
        if token.is_space and "\n\n" in token.text:
            doc[token.i + 1].is_sent_start = True
    return doc


@Language.component("sentence_repairs")
def sentence_repairs(doc: Doc) -> Doc:
    """Undo the sentencizer's splits after abbreviations ("(mean ± s.d.) overall accuracy",
    "et al. reported", "et al. [7] trained"): a sentence does not start with a lower-case word, a
    closing bracket or inside a bracket just opened."""
    for token in doc[1:]:
        previous = doc[token.i - 1]
        if not token.is_sent_start or (previous.is_space and "\n\n" in previous.text):
            continue
        inside_bracket = previous.text in ("[", "(")  # the sentencizer splits "et al. [" | "7] trained"
        if token.text[:1].islower() or token.text[:1] in ")]},;:%" or inside_bracket:
            token.is_sent_start = False
    return doc


@Language.factory("architecture_entities")
def make_architecture_entities(nlp: Language, name: str) -> "ArchitectureEntities":
    return ArchitectureEntities()


class ArchitectureEntities:
    """Model names by pattern (ResNet-\\d+, EfficientNet-B\\d, hybrids), names the catalogue does
    not know ("Multi-output CNN", "PneuNet") and PROPOSED phrases."""

    def __call__(self, doc: Doc) -> Doc:
        spans = []
        for match in gazetteers.architecture_regex().finditer(doc.text):
            span = doc.char_span(match.start(), match.end(), label="MODEL", alignment_mode="expand")
            if span is not None:
                spans.append(span)
        for match in gazetteers.PROPOSED_PATTERN.finditer(doc.text):
            span = doc.char_span(match.start(), match.end(), label="PROPOSED", alignment_mode="expand")
            if span is not None:
                spans.append(span)
        spans.extend(_named_model_spans(doc))
        _add_spans(doc, spans)
        return doc


def _named_model_spans(doc: Doc) -> list[Span]:
    """Names the catalogue does not know ("Multi-output CNN"), kept as written: each name found
    once is a MODEL wherever it recurs, whatever its case ("our multi-output CNN")."""
    names = {name for _, _, name in gazetteers.find_named_models(doc.text) if gazetteers.model_of(name) is None}
    if not names:
        return []
    by_lower = {name.lower(): name for name in names}
    pattern = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
                         + r")(?![\w-])", re.IGNORECASE)
    spans = []
    for match in pattern.finditer(doc.text):
        name = by_lower.get(match.group().lower(), match.group())
        span = doc.char_span(match.start(), match.end(), label="MODEL", kb_id=name, alignment_mode="expand")
        if span is not None:
            spans.append(span)
    return spans


@Language.factory("keyword_entities")
def make_keyword_entities(nlp: Language, name: str) -> "KeywordEntities":
    return KeywordEntities()


class KeywordEntities:
    """DOMAIN and MODALITY keywords ("brain tumour", "chest X-ray", "MRI")."""

    def __call__(self, doc: Doc) -> Doc:
        spans = []
        for start, end, kind, label in gazetteers.find_keyword_terms(doc.text):
            span = doc.char_span(start, end, label=kind, kb_id=label, alignment_mode="expand")
            if span is not None:
                spans.append(span)
        # Keywords never displace a model/dataset/metric name ("MRI" inside "Kaggle brain tumour MRI").
        existing = list(doc.ents)
        taken = {i for ent in existing for i in range(ent.start, ent.end)}
        free = [s for s in filter_spans(spans) if not any(i in taken for i in range(s.start, s.end))]
        doc.ents = sorted(existing + free, key=lambda s: s.start)
        return doc


@Language.component("abbreviation_entities")
def abbreviation_entities(doc: Doc) -> Doc:
    """A short form defined for an entity is that entity too: "Support Vector Machine (SVM)" makes
    every later "SVM" a MODEL; a short form defined as something else ("learning rate (LR)")
    stops being one."""
    if not Doc.has_extension("abbreviations"):
        return doc
    ents = list(doc.ents)  # doc.ents rebuilds its spans on every access
    by_start = {ent.start: ent for ent in ents}
    labels: dict[str, tuple[str, str]] = {}
    not_entities: set[str] = set()
    for short in doc._.abbreviations:
        long_form = short._.long_form
        if long_form is None or long_form.text == short.text:
            continue
        # The entity the long form is: one spanning (nearly) all of it, or the one it ends with,
        # its head ("Cartesian Genetic Programming evolved Artificial Neural Network").
        entity = by_start.get(long_form.start) or next(
            (e for e in ents if e.start >= long_form.start and e.end <= long_form.end
             and (e.end - e.start >= (long_form.end - long_form.start) - 1 or e.end == long_form.end)), None)
        if entity is not None and entity.label_ != "PROPOSED":
            labels[short.text] = (entity.label_, entity.ent_id_ or entity.kb_id_ or entity.text)
        else:
            not_entities.add(short.text)
    if not labels and not not_entities:
        return doc
    keep = [e for e in ents if not (e.text in not_entities and e.text not in labels)]
    spans = []
    for token in doc:
        if token.text in labels:
            label, canonical = labels[token.text]
            spans.append(Span(doc, token.i, token.i + 1, label=label, kb_id=canonical))
    doc.ents = sorted(filter_spans(keep + spans), key=lambda s: s.start)
    return doc


@Language.component("entity_canonicalizer")
def entity_canonicalizer(doc: Doc) -> Doc:
    """Fill `span._.canonical`: the catalogue name, metric, domain or modality label."""
    for ent in doc.ents:
        if ent.label_ == "MODEL":
            ent._.canonical = gazetteers.model_of(ent.text) or ent.ent_id_ or ent.kb_id_ or ent.text
        elif ent.label_ == "DATASET":
            ent._.canonical = gazetteers.dataset_of(ent.text) or ent.ent_id_ or ent.kb_id_ or ent.text
        elif ent.label_ == "METRIC":
            ent._.canonical = gazetteers.metric_of(ent.text) or ent.ent_id_ or None
        else:
            ent._.canonical = ent.kb_id_ or ent.text
    return doc


def _ruler_patterns(nlp: Language) -> list[dict]:
    patterns = []
    for term in gazetteers.catalogue_terms():
        if term.case_sensitive:
            tokens = [{"ORTH": t.text} for t in nlp.make_doc(term.text)]
            patterns.append({"label": term.label, "pattern": tokens, "id": term.canonical})
        else:
            patterns.append({"label": term.label, "pattern": term.text, "id": term.canonical})
    return patterns


def _base_pipeline() -> Language:
    """en_core_sci_sm when it is installed (better sentences), else a blank English pipeline."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nlp = spacy.load("en_core_sci_sm", exclude=["ner", "lemmatizer"])
    except OSError:
        nlp = spacy.blank("en")
    if "parser" not in nlp.pipe_names and "senter" not in nlp.pipe_names:
        nlp.add_pipe("sentencizer")
        nlp.add_pipe("sentence_repairs")
        nlp.add_pipe("paragraph_breaks")
    return nlp


@lru_cache(maxsize=1)
def build_pipeline() -> Language:
    """The cached extraction pipeline; `print(build_pipeline().pipe_names)` shows its components."""
    import scispacy.abbreviation  # noqa: F401  (registers "abbreviation_detector")

    nlp = _base_pipeline()
    # The ruler comes before the abbreviation detector: adding phrase patterns runs every
    # component before the ruler over each pattern, and the detector is the slow one.
    ruler = nlp.add_pipe("entity_ruler", name="gazetteer_ruler",
                         config={"phrase_matcher_attr": "LOWER", "overwrite_ents": True})
    ruler.add_patterns(_ruler_patterns(nlp))
    nlp.add_pipe("abbreviation_detector")
    nlp.add_pipe("architecture_entities")
    nlp.add_pipe("keyword_entities")
    nlp.add_pipe("abbreviation_entities")
    nlp.add_pipe("entity_canonicalizer")
    return nlp
