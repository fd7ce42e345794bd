"""From page text to KB records: `extract_document` (a PDF) and `extract_from_text` (an abstract).

    pages -> prose (`prose.py`: headings, captions and table lines set apart, sections tagged)
          -> spaCy pipeline (sentences, abbreviations, MODEL/DATASET/METRIC/DOMAIN/MODALITY)
          -> document context (the paper's own model, its dataset, its model labels)
          -> candidates from positioned tables (`layout.py`) and sentences (`candidates.py`)
          -> the learned scorer (`scorer.py`): accepted, or kept for review, each with its confidence
          -> features from statements -> one ExperimentRecord per model x dataset x setting
          -> the paper-level features of its main setting (`DocumentResult.features`)

Every experiment carries all 14 features, each a value or an explicit status, with provenance; so
does the paper itself, also when it yields no results (a review gets `not_applicable` throughout).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Optional

from ..kb import FEATURES, ExperimentRecord, FeatureField, MeasurementRecord, Provenance
from . import features as feat
from . import gazetteers
from .nlp import build_pipeline
from .candidates import Candidate, add_document_features, sentence_candidates, table_candidates, table_values
from .layout import Grid, grids_from_lines
from .prose import (FIRST_PERSON, NOT_OWN_WORK, Prose, is_non_imaging_text, is_review, is_segmentation_paper,
                    is_segmentation_text, prepare_prose, titled_review, topic_rates)
from .relations import CITATION, GENERIC_MODELS, MODEL_LABEL, DocumentContext, Result, SentenceView, find_label_models, is_head_of, model_key
from .resolver import Resolver, load_resolver
from .scorer import REVIEW_FLOOR, Scorer, load_scorer

if TYPE_CHECKING:
    from .pdf import PdfDocument

__all__ = ["DocumentResult", "build_pipeline", "extract_document", "extract_from_text"]


@dataclass
class DocumentResult:
    title: Optional[str]
    doi: Optional[str]
    year: Optional[int]
    experiments: list[ExperimentRecord]
    warnings: list[str] = field(default_factory=list)
    tables: int = 0  # tables read (for reporting)
    # The paper's main setting: all 14 features, also for a paper that yields no results.
    features: dict[str, FeatureField] = field(default_factory=dict)
    # Every candidate result with its score, kept and not (for training and evaluation).
    candidates: list[Candidate] = field(default_factory=list)
    # Every feature statement read (for training the resolver and for evaluation).
    evidence: list[feat.Evidence] = field(default_factory=list)


# ---------------------------------------------------------------------------- document analysis
@dataclass
class Analysis:
    sentences: list[SentenceView]
    sections: list[str]
    context: DocumentContext
    keywords: list[tuple[str, str, int]]   # (DOMAIN|MODALITY, label, sentence) outside related work
    datasets: Counter
    mention_models: list[list[str]]        # per sentence: models named (surface)
    surfaces: dict[str, Counter]           # model key -> surface forms
    title_text: str = ""


_CLEAN_SURFACE = re.compile(r"[\s.,;:]+$")


def analyse(prose: Prose, title: Optional[str] = None) -> Analysis:
    """Run the spaCy pipeline over the prose and gather what relation and feature extraction
    need: sentences with their entities and sections, and the document context."""
    nlp = build_pipeline()
    with warnings.catch_warnings():
        # scispacy warns on every text that defines no abbreviation.
        warnings.filterwarnings("ignore", message=r"\[W036\]")
        doc = nlp(prose.text)
    sentences: list[SentenceView] = []
    sections: list[str] = []
    mention_models: list[list[str]] = []
    surfaces: dict[str, Counter] = defaultdict(Counter)
    keywords: list[tuple[str, str, int]] = []
    datasets: Counter = Counter()
    model_weight: Counter = Counter()
    generic_weight: Counter = Counter()
    sentence_models: list[list[tuple[int, str]]] = []
    proposed_cue = weak_cue = False
    proposed_keys: set[str] = set()  # models named in a sentence that proposes ("we propose a CNN")
    title_key_text = (title or "").lower()
    sents = list(doc.sents)
    # Span.ents scans the whole document each time; bucket the entities by sentence once.
    by_sentence: list[list] = [[] for _ in sents]
    starts = [sent.start for sent in sents]
    position = 0
    for ent in doc.ents:
        while position + 1 < len(starts) and starts[position + 1] <= ent.start:
            position += 1
        by_sentence[position].append(ent)
    for index, sent in enumerate(sents):
        text = sent.text
        start = sent.start_char
        section = prose.section_at(start)
        page = prose.page_at(start)
        entities = []
        models_here: list[tuple[int, str]] = []
        for ent in by_sentence[index]:
            s, e = ent.start_char - start, ent.end_char - start
            if ent.label_ == "MODEL":
                surface = _CLEAN_SURFACE.sub("", ent.text)
                if ent._.canonical and ent._.canonical.lower() == surface.lower() \
                        and gazetteers.model_of(surface) is None:
                    surface = ent._.canonical  # a name kept as first written ("multi-output CNN")
                entities.append((s, e, "MODEL", surface))
                models_here.append((len(text[:s].split()), surface))
            elif ent.label_ == "PROPOSED":
                named = gazetteers.find_model_terms(ent.text)
                if named:
                    # "the proposed EfficientNet-B0 model": the proposal names its model.
                    start_in, end_in, _ = named[0]
                    surface = ent.text[start_in:end_in]
                    entities.append((s + start_in, s + end_in, "MODEL", surface))
                    models_here.append((len(text[:s + start_in].split()), surface))
                else:
                    entities.append((s, e, "PROPOSED", "PROPOSED"))
            elif ent.label_ == "METRIC":
                entities.append((s, e, "METRIC", ent._.canonical))
            elif ent.label_ == "DATASET":
                entities.append((s, e, "DATASET", ent._.canonical))
            else:
                entities.append((s, e, ent.label_, ent._.canonical))
        usable = section not in NOT_OWN_WORK
        cited = bool(CITATION.search(text) or "et al." in text)
        weight = 3 if section == "abstract" or index < 3 else 1
        strong_cue = bool(gazetteers.EXPLICIT_OWN_MODEL.search(text))
        if usable:
            # Keywords are counted off the text, not doc.ents: "chest X-ray" is a domain and
            # holds a modality, and entities cannot overlap.
            keywords.extend((kind, label, index) for _, _, kind, label in gazetteers.find_keyword_terms(text))
            for s, e, label, value in entities:
                if label == "DATASET" and not cited:
                    datasets[value] += weight
            if not cited:
                for _, surface in models_here:
                    key = model_key(surface)
                    surfaces[key][surface] += 1
                    bonus = 2 if strong_cue else 0
                    if strong_cue:
                        proposed_keys.add(key)
                    if gazetteers.model_of(surface) in GENERIC_MODELS:
                        generic_weight[key] += weight + bonus
                    else:
                        model_weight[key] += weight + bonus
            proposed_cue = proposed_cue or strong_cue
            weak_cue = weak_cue or bool(gazetteers.IMPLICIT_OWN_MODEL.search(text))
        sentences.append(SentenceView(text, entities, page, index))
        sections.append(section)
        mention_models.append([m for _, m in models_here])
        sentence_models.append(models_here if usable else [])
    for surface_key in list(model_weight):
        if surface_key in title_key_text.replace("-", "").replace(" ", ""):
            model_weight[surface_key] += 3
    for surface_key in list(model_weight):
        # A bare "GCN" counts for the paper's "Delaunay GCN".
        named = [key for key in model_weight if key != surface_key
                 and any(is_head_of(next(iter(surfaces[surface_key])), s) for s in surfaces[key])]
        if len(named) == 1:
            model_weight[named[0]] += model_weight.pop(surface_key)
    context = DocumentContext()
    context.label_models = find_label_models([(s.text, models) for s, models in zip(sentences, sentence_models)])
    ranked = model_weight.most_common() or generic_weight.most_common()
    proposed_generic = [(key, weight) for key, weight in generic_weight.most_common() if key in proposed_keys]
    if proposed_generic and ranked and ranked[0][0] not in proposed_keys and proposed_generic[0][1] > ranked[0][1]:
        # "We propose a CNN ...": a generic model the paper proposes outranks the named models it
        # only mentions (the rows of a comparison it copied, say).
        ranked = proposed_generic
    if ranked:
        key = ranked[0][0]
        context.main_model = surfaces[key].most_common(1)[0][0]
        total = sum(model_weight.values()) or sum(generic_weight.values())
        context.single_model = ranked[0][1] >= 0.6 * total
    context.proposed_cue = proposed_cue
    context.own_model_cue = weak_cue
    if datasets:
        name, count = datasets.most_common(1)[0]
        context.dataset = name if count >= 2 else None
    context.class_words = {w.lower().strip(",.;:()") for s in sentences
                           if re.search(r"\bclass(?:es)?\b|\bcategor", s.text, re.IGNORECASE)
                           for w in s.text.split() if len(w) > 1}
    return Analysis(sentences, sections, context, keywords, datasets, mention_models, surfaces)


def _feature_evidence(analysis: Analysis, grids: list[Grid], method: str) -> list[feat.Evidence]:
    evidence: list[feat.Evidence] = []
    last = max(len(analysis.sentences) - 1, 1)
    for index, (sentence, section, models) in enumerate(zip(analysis.sentences, analysis.sections,
                                                              analysis.mention_models)):
        if section in NOT_OWN_WORK:
            continue
        cited = bool(CITATION.search(sentence.text))
        if cited and section not in ("body", "future"):
            continue  # an abstract or conclusion restating others' work
        found = feat.sentence_evidence(sentence.text, sentence.page, models, method=method,
                                       future=section == "future")
        if cited and section == "body" and not FIRST_PERSON.search(sentence.text):
            # "Krizhevsky et al. [7] trained a network on ImageNet": how the cited work was trained.
            found = [e for e in found if e.feature not in ("pretrained", "augmentation")]
        for e in found:
            e.position, e.section = index / last, section
        evidence.extend(found)
    pages = max((s.page or 0 for s in analysis.sentences), default=0) or 1
    for grid in grids:
        for e in feat.table_evidence(grid):
            e.position = min(1.0, max(0, (grid.page or 1) - 1) / pages)
            evidence.append(e)
    return evidence


def _label_feature(kind: str, dataset: Optional[str], analysis: Analysis, method: str,
                   source_url: Optional[str]) -> FeatureField:
    """Domain / modality: the catalogue row of the experiment's dataset when it has one, else
    the label the paper's own keywords point to (mixed keywords -> ambiguous)."""
    index = 0 if kind == "DOMAIN" else 1
    if dataset and dataset in gazetteers.dataset_domains():
        value = gazetteers.dataset_domains()[dataset][index]
        if value:
            provenance = Provenance(method="derived", source_url=source_url, confidence=0.9,
                                    snippet=f"{dataset} (curated dataset catalogue)")
            return FeatureField.derived(value, provenance, f"the catalogue's {kind.lower()} of {dataset}")
    counts = Counter(label for k, label, _ in analysis.keywords if k == kind)
    if not counts:
        return feat.missing("not_reported", f"no {kind.lower()} named in the paper", method, source_url)
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] < 2 * ranked[1][1]:
        listed = ", ".join(f"{label} ({n})" for label, n in ranked[:3])
        return feat.missing("ambiguous", f"the paper names several: {listed}", method, source_url)
    label = ranked[0][0]
    sentence = next((analysis.sentences[i] for k, found, i in analysis.keywords if k == kind and found == label),
                    None)
    provenance = Provenance(method=method, page=sentence.page if sentence else None,
                            snippet=sentence.text if sentence else label, source_url=source_url,
                            confidence=round(min(1.0, 0.5 + 0.1 * ranked[0][1]), 2))
    return FeatureField.reported(label, provenance, f"named {ranked[0][1]} times")


def _experiment_features(group: list[Result], paper: dict[str, FeatureField], evidence: list[feat.Evidence],
                         analysis: Analysis, method: str, source_url: Optional[str],
                         proposed_keys: set[str]) -> dict[str, FeatureField]:
    first = group[0]
    fields = dict(paper)
    fields["domain"] = _label_feature("DOMAIN", first.dataset, analysis, method, source_url)
    fields["modality"] = _label_feature("MODALITY", first.dataset, analysis, method, source_url)
    fields["augmentation"] = feat.resolve("augmentation", evidence, method=method, source_url=source_url)
    if feat.is_classical(first.model):
        fields["pretrained"] = feat.missing("not_applicable", "a classical model is not pretrained", method,
                                            source_url)
    else:
        fields["pretrained"] = feat.model_feature("pretrained", first.model, evidence, method=method,
                                                  source_url=source_url)
    proposed = first.model_key in proposed_keys
    provenance = Provenance(method="derived", page=first.page, snippet=first.snippet, source_url=source_url,
                            confidence=0.7)
    reason = ("the paper presents this model as its own" if proposed else
              "the paper proposes another model" if proposed_keys else "the paper compares models without "
              "proposing one")
    fields["is_proposed"] = FeatureField.derived("yes" if proposed else "no", provenance, reason)
    return {name: fields[name] for name in FEATURES}


def _proposed_keys(results: list[Result], analysis: Analysis) -> set[str]:
    """The paper's own model: a row marked "(Ours)"; the paper's main model when the text
    proposes a model ("we propose", "a novel network", "this study introduces"), or when one
    model dominates a paper that calls it its own ("our model", "we developed a"); else the one
    model a paper reports results for (a paper that trains a single model presents it)."""
    marked = {r.model_key for r in results if r.proposed}
    if marked:
        return marked
    context = analysis.context
    if context.main_model and (context.proposed_cue or context.single_model and context.own_model_cue):
        key = model_key(context.main_model)
        if not results or any(r.model_key == key for r in results):
            return {key}
    reported = {r.model_key for r in results}
    return reported if len(reported) == 1 else set()


# ---------------------------------------------------------------------------- assembly
def _experiments(candidates: list[Candidate], analysis: Analysis, evidence: list[feat.Evidence], method: str,
                 source_url: Optional[str], resolver: Optional[Resolver]) -> list[ExperimentRecord]:
    """One experiment per (model, setting, dataset) over the kept candidates, one measurement per
    (metric, average, split). A second value for the same measurement is another run of the model
    and becomes its own setting, so nothing the scorer kept is lost."""
    paper = feat.paper_features(evidence, method=method, source_url=source_url, resolver=resolver)
    results = [_result(c) for c in candidates]
    proposed_keys = _proposed_keys(results, analysis)
    groups: dict[tuple[str, str, Optional[str]], list[tuple[Result, Candidate]]] = {}
    taken: dict[tuple, int] = {}
    for result, candidate in sorted(zip(results, candidates), key=lambda pair: -pair[1].score):
        identity = (result.model_key, result.setting, result.dataset, result.metric, candidate.average, result.split)
        taken[identity] = taken.get(identity, 0) + 1
        if taken[identity] > 1:
            result.setting = f"{result.setting} #{taken[identity]}".strip()
        groups.setdefault((result.model_key, result.setting, result.dataset), []).append((result, candidate))
    experiments = []
    for (key, setting, dataset), members in groups.items():
        group = [r for r, _ in members]
        surface = analysis.surfaces.get(key)
        name = group[0].model
        if surface and gazetteers.model_of(name) is not None and name in surface:
            name = surface.most_common(1)[0][0]
        measurements = [MeasurementRecord(
            r.metric, r.value, Provenance(method=method if method == "openalex" else r.method, page=r.page,
                                          snippet=r.snippet, source_url=source_url,
                                          confidence=round(c.score, 3)), r.split, average=c.average,
            review_status="accepted" if c.accepted else "needs_review")
            for r, c in members]
        experiments.append(ExperimentRecord(
            model=name, dataset=dataset,
            features=_experiment_features(group, paper, evidence, analysis, method, source_url, proposed_keys),
            measurements=measurements, setting=setting))
    return experiments


def _result(candidate: Candidate) -> Result:
    return Result(model=candidate.model, metric=candidate.metric, value=candidate.value, split=candidate.split,
                  page=candidate.page, snippet=candidate.snippet, method=candidate.source, setting=candidate.setting,
                  dataset=candidate.dataset,
                  proposed=bool(candidate.features.get("label_own_mark") or candidate.features.get("label_own")))


def _declared_labels(analysis: Analysis) -> dict[str, str]:
    """The labels a paper gives its models ("Model A", "Method 2"), each with the model it stands
    for when the text says so, else with itself: a table row "A" then reads as "Model A"."""
    declared = {" ".join(m.group().split()).lower(): " ".join(m.group().split())
                for s in analysis.sentences for m in MODEL_LABEL.finditer(s.text)}
    return {**declared, **analysis.context.label_models}


def _document_profile(analysis: Analysis) -> dict[str, float]:
    """What the paper is about, coarsely (a fine-grained rate would let the scorer recognise a
    training paper instead of learning what a result looks like)."""
    own = " ".join(s.text for s, section in zip(analysis.sentences, analysis.sections) if section not in NOT_OWN_WORK)
    rates = topic_rates(own)
    return {"few_imaging_words": float(rates["imaging"] < 3.0), "segmentation_heavy": float(rates["segmentation"] > 3.0),
            "signal_heavy": float(rates["signal"] > 3.0)}


def select_candidates(candidates: list[Candidate], scorer: Optional[Scorer],
                      threshold: Optional[float] = None) -> list[Candidate]:
    """Score every candidate, keep one per stated fact (model, metric, value: a result printed in a
    table and restated in the text is one result), mark those at or above the threshold accepted,
    and leave out those below the review floor. Without a scorer nothing is accepted."""
    for candidate in candidates:
        candidate.score = scorer.probability(candidate.features) if scorer else 0.0
    cutoff = threshold if threshold is not None else (scorer.threshold if scorer else 1.1)
    readings: dict[tuple, Candidate] = {}
    for candidate in candidates:
        # Rival readings of one number (who scored it): the likelier one stands for it.
        origin = candidate.origin or (id(candidate),)
        if origin not in readings or candidate.score > readings[origin].score:
            readings[origin] = candidate
    best: dict[tuple, Candidate] = {}
    for candidate in readings.values():
        key = (model_key(candidate.model), candidate.metric, candidate.average, candidate.split,
               round(candidate.value, 4))
        if key not in best or candidate.score > best[key].score:
            best[key] = candidate
    kept = []
    for candidate in best.values():
        candidate.accepted = candidate.score >= cutoff
        # Without a scorer nothing can be judged: every candidate waits for a curator.
        if candidate.accepted or candidate.score >= REVIEW_FLOOR or scorer is None:
            kept.append(candidate)
    return kept


_FUNCTION_WORD = re.compile(r"\b(?:of|to|for|and|in|on|with|via|using|the|from|by|a|an)\b", re.IGNORECASE)


def _title(document: "PdfDocument") -> Optional[str]:
    """The metadata title, else the first title-cased line of page 1, with the line it wraps onto
    (after a line ending in a function word, or a short continuation holding one)."""
    title = (document.metadata or {}).get("title")
    if title:
        return title
    if not document.pages:
        return None
    lines = document.pages[0].text.splitlines()[:15]
    plausible = []
    for index, line in enumerate(lines):
        words = line.split()
        if 3 <= len(words) <= 25 and sum(w[:1].isalpha() for w in words) >= 0.8 * len(words) \
                and not re.search(r"@|https?:|doi|journal|vol\.|volume|issn|received|©|copyright", line, re.I):
            plausible.append((index, words))
    chosen = next(((i, w) for i, w in plausible
                   if (long := [x for x in w if len(x) >= 4]) and sum(x[:1].isupper() for x in long) >= 0.7 * len(long)),
                  plausible[0] if plausible else None)
    if chosen is None:
        return None
    index, words = chosen
    following = lines[index + 1].split() if index + 1 < len(lines) else []
    wraps = following and len(following) <= 8 and not re.search(r"[,\d@]", " ".join(following)) and (
        _FUNCTION_WORD.fullmatch(words[-1]) or _FUNCTION_WORD.search(" ".join(following)))
    return " ".join(words + (following if wraps else []))


def _paper_level(experiments: list[ExperimentRecord], analysis: Analysis, evidence: list[feat.Evidence], method: str,
                 source_url: Optional[str], resolver: Optional[Resolver] = None) -> dict[str, FeatureField]:
    """The features of the paper's main setting. With experiments, each feature is the value most
    of them share (ties go to the paper's own model; `is_proposed` is "yes" when one experiment
    is the paper's own model). Without any, the same rules read the paper's statements directly:
    the counts and settings it states, the domain of its dominant dataset, and whether it puts
    forward a model of its own."""
    if experiments:
        fields = {}
        for name in FEATURES:
            candidates = [e.features[name] for e in experiments]
            with_value = [f for f in candidates if f.has_value]
            if name == "is_proposed":
                fields[name] = next((f for f in with_value if f.value == "yes"), candidates[0])
                continue
            if not with_value:
                fields[name] = candidates[0]
                continue
            counts = Counter(f.value for f in with_value)
            own = [e.features[name] for e in experiments if e.features["is_proposed"].value == "yes"
                   and e.features[name].has_value]
            best = max(counts.values())
            tied = {value for value, n in counts.items() if n == best}
            preferred = next((f for f in own if f.value in tied), None)
            fields[name] = preferred or next(f for f in with_value if f.value in tied)
        return fields
    fields = feat.paper_features(evidence, method=method, source_url=source_url, resolver=resolver)
    dataset = analysis.context.dataset
    fields["domain"] = _label_feature("DOMAIN", dataset, analysis, method, source_url)
    fields["modality"] = _label_feature("MODALITY", dataset, analysis, method, source_url)
    fields["augmentation"] = feat.resolve("augmentation", evidence, method=method, source_url=source_url)
    main = analysis.context.main_model
    if main and feat.is_classical(main):
        fields["pretrained"] = feat.missing("not_applicable", "a classical model is not pretrained", method,
                                            source_url)
    elif main:
        fields["pretrained"] = feat.model_feature("pretrained", main, evidence, method=method, source_url=source_url)
    else:
        fields["pretrained"] = feat.resolve("pretrained", evidence, method=method, source_url=source_url)
    fields["is_proposed"] = _own_model_field(analysis, method, source_url)
    return {name: fields[name] for name in FEATURES}


def _own_model_field(analysis: Analysis, method: str, source_url: Optional[str]) -> FeatureField:
    """is_proposed of a paper without results: whether its text puts forward a model of its own."""
    context = analysis.context
    if not context.main_model:
        return feat.missing("not_reported", "the paper names no model", method, source_url)
    # As for a paper with results: a proposal cue, or one model the paper works with.
    own = context.proposed_cue or context.single_model
    cue = gazetteers.EXPLICIT_OWN_MODEL if context.proposed_cue else gazetteers.IMPLICIT_OWN_MODEL
    sentence = next((s for s, section in zip(analysis.sentences, analysis.sections)
                     if section not in NOT_OWN_WORK and cue.search(s.text)), None)
    provenance = Provenance(method="derived", page=sentence.page if sentence and own else None,
                            snippet=(sentence.text if sentence and own else context.main_model)[:200],
                            source_url=source_url, confidence=0.6)
    if own:
        return FeatureField.derived("yes", provenance, f"the paper presents {context.main_model} as its own")
    return FeatureField.derived("no", provenance, "the paper compares models without proposing one")


def _review_features(method: str, source_url: Optional[str]) -> dict[str, FeatureField]:
    return {name: feat.missing("not_applicable", "a review article has no experiment of its own", method, source_url)
            for name in FEATURES}


# Why a paper yields no results on purpose (the batch's status table shows it).
REVIEW_NOTE = "a review article: its results are quoted from other papers, so none are extracted"
SEGMENTATION_NOTE = ("a segmentation paper: its scores rate pixels, not images, so no classification results are "
                     "extracted")
NON_IMAGING_NOTE = ("not a medical-image paper: its text speaks of signals or tables, not images, so no results are "
                    "extracted")
SKIPPED_NOTES = (REVIEW_NOTE, SEGMENTATION_NOTE, NON_IMAGING_NOTE)


class _Outcome(NamedTuple):
    experiments: list[ExperimentRecord]
    warnings: list[str]
    features: dict[str, FeatureField]
    candidates: list[Candidate]
    evidence: list[feat.Evidence]


def _document_results(prose: Prose, grids: list[Grid], title: Optional[str], method: str,
                      source_url: Optional[str], review: bool = False, scorer: Optional[Scorer] = None,
                      threshold: Optional[float] = None, resolver: Optional[Resolver] = None) -> _Outcome:
    if review or titled_review(title):
        return _Outcome([], [REVIEW_NOTE], _review_features(method, source_url), [], [])
    resolver = resolver if resolver is not None else load_resolver()
    analysis = analyse(prose, title)
    evidence = _feature_evidence(analysis, grids, method)
    rates = topic_rates(prose.text)
    for skipped, note in ((is_segmentation_paper(title) or is_segmentation_text(rates), SEGMENTATION_NOTE),
                          (is_non_imaging_text(rates), NON_IMAGING_NOTE)):
        if skipped:
            return _Outcome([], [note], _paper_level([], analysis, evidence, method, source_url, resolver), [],
                            evidence)
    context = analysis.context
    candidates = table_candidates(grids, section_of=lambda page, text: prose.section_of(page, text) or "body",
                                  main_model=context.main_model, main_dataset=context.dataset,
                                  label_models=_declared_labels(analysis),
                                  class_words=frozenset(w for w in context.class_words if len(w) > 3))
    candidates += sentence_candidates(analysis.sentences, analysis.sections, main_model=context.main_model,
                                      main_dataset=context.dataset, tables=table_values(grids))
    add_document_features(candidates, _document_profile(analysis))
    kept = select_candidates(candidates, scorer if scorer is not None else load_scorer(), threshold)
    experiments = _experiments(kept, analysis, evidence, method, source_url, resolver)
    warnings = []
    accepted = [c for c in kept if c.accepted]
    if not accepted:
        warnings.append("no classification results found in the text" if not kept else
                        f"no result passed the scorer's threshold; {len(kept)} wait for review (medicalrec kb review)")
    with_values = [e for e in experiments if any(m.review_status == "accepted" for m in e.measurements)]
    return _Outcome(experiments, warnings, _paper_level(with_values, analysis, evidence, method, source_url, resolver),
                    candidates, evidence)


def extract_document(document: "PdfDocument", *, scorer: Optional[Scorer] = None,
                     min_confidence: Optional[float] = None, resolver: Optional[Resolver] = None) -> DocumentResult:
    """Results and features of one PDF; provenance method "table" or "sentence", with page and snippet.
    Each measurement carries the scorer's confidence; those below `min_confidence` (default: the
    scorer's cross-validated threshold) wait for review. `scorer` and `resolver` default to the
    shipped ones."""
    title = _title(document)
    prose = prepare_prose(((page.number, page.text) for page in document.pages))
    grids: list[Grid] = []
    review = is_review(title, document.pages[0].text if document.pages else "")
    if not review:
        grids = [grid for page, lines in document.positioned_lines() if not prose.holds_no_own_work(page)
                 for grid in grids_from_lines(lines, page)]
    outcome = _document_results(prose, grids, title, "sentence", None, review, scorer, min_confidence, resolver)
    metadata = document.metadata or {}
    doi = metadata.get("doi")
    if not doi:
        from .pdf import find_doi
        doi = find_doi(" ".join(page.text for page in document.pages[:2]))
    return DocumentResult(title=title, doi=doi, year=metadata.get("year"), experiments=outcome.experiments,
                          warnings=outcome.warnings, tables=len(grids), features=outcome.features,
                          candidates=outcome.candidates, evidence=outcome.evidence)


def extract_from_text(text: str, *, source_url: Optional[str] = None) -> DocumentResult:
    """Results and features of an abstract (OpenAlex): provenance method "openalex", no page."""
    prose = prepare_prose([(None, text)], first_section="abstract")
    outcome = _document_results(prose, [], None, "openalex", source_url)
    return DocumentResult(title=None, doi=None, year=None, experiments=outcome.experiments,
                          warnings=outcome.warnings, features=outcome.features, candidates=outcome.candidates,
                          evidence=outcome.evidence)

