"""Reading PDFs (statuses, metadata, DOIs, lazy layout), the fixture generator, and the batch runner."""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import re
import sys
from dataclasses import dataclass, field
from typing import Optional

import pytest
from fpdf import FPDF

from conftest import REPO, shared_path
from medicalrec.errors import UserError
from medicalrec.extract import PdfProblem, read_pdf, sha256_file
from medicalrec.extract import batch, pdf
from medicalrec.extract.openalex import OpenAlex, OpenAlexConfig
from medicalrec.kb import ExperimentRecord, FeatureField, MeasurementRecord, PaperRecord, Provenance
from openalex_replay import Replay, own_routes

PDFS = REPO / "fixtures" / "pdfs"
PAPERS = ("paper_pneumonia_cxr.pdf", "paper_skin_lesion_transposed.pdf", "paper_breast_us_permissions.pdf")
BAD = {
    "bad_encrypted.pdf": ("encrypted", "password"),
    "bad_scanned.pdf": ("no_text_layer", "OCR"),
    "bad_truncated.pdf": ("corrupt", "re-download"),
    "bad_empty.pdf": ("empty", "0 bytes"),
    "bad_not_a_pdf.pdf": ("not_pdf", "plain text"),
}


# ---------------------------------------------------------------- read_pdf

@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_inputs_get_a_status_and_a_one_line_reason(name):
    status, hint = BAD[name]
    with pytest.raises(PdfProblem) as info:
        read_pdf(PDFS / name)
    problem = info.value
    assert problem.status == status
    assert hint in problem.reason
    assert "\n" not in str(problem) and str(problem).startswith(name)
    assert isinstance(problem, UserError)


def test_paper_pages_text_and_metadata():
    document = read_pdf(PDFS / "paper_pneumonia_cxr.pdf")
    assert [p.number for p in document.pages] == [1, 2]
    assert "5,856 pediatric chest radiographs" in document.pages[0].text
    assert "PneuNet (proposed) 95.22" in document.pages[1].text
    assert document.metadata["doi"] == "10.5555/jsmi.2023.0412"
    assert document.metadata["title"].startswith("Transfer Learning with Convolutional Networks")
    assert document.metadata["author"] == "Ana Rivera, Bo Chen, Chidi Okafor"
    assert document.metadata["year"] == 2024  # the PDF's creation date: a fallback only
    assert document.sha256 == hashlib.sha256((PDFS / "paper_pneumonia_cxr.pdf").read_bytes()).hexdigest()


def test_permissions_only_encryption_opens_with_the_empty_password_and_doi_comes_from_metadata():
    document = read_pdf(PDFS / "paper_breast_us_permissions.pdf")
    assert "780 grayscale breast ultrasound images" in document.text
    assert "10.5555" not in document.text  # not printed: only the metadata has it
    assert document.metadata["doi"] == "10.5555/slmi.2021.0007"


def test_layout_is_lazy_cached_and_keeps_table_rows():
    document = read_pdf(PDFS / "paper_skin_lesion_transposed.pdf")
    page = document.pages[1]
    assert page._layout is None
    layout = page.layout()
    assert page.layout() is layout
    assert re.search(r"Accuracy\s+88\.42\s+86\.17\s+84\.93", layout)
    assert document.pages[0]._layout is None  # other pages untouched


def test_pages_pickle_without_pypdf_objects():
    document = read_pdf(PDFS / "paper_pneumonia_cxr.pdf")
    page = pickle.loads(pickle.dumps(document.pages[0]))
    assert page.text == document.pages[0].text and page._source is None
    assert page.layout() == page.text


def test_sha256_file(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"medicalrec" * 100_000)
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("text, expected", [
    ("Nature (2017). doi:10.1038/nature21056.", "10.1038/nature21056"),
    ("(DOI: 10.1109/ACCESS.2024.3367606)", "10.1109/access.2024.3367606"),
    ("see https://doi.org/10.3348/kjr.2017.18.4.570, and", "10.3348/kjr.2017.18.4.570"),
    ("Eye 33:97-109; doi:10.1038/s41433-018-0269-y;", "10.1038/s41433-018-0269-y"),
    ("version 10.2 of the software", None),
    ("10.1234/", None),
])
def test_find_doi(text, expected):
    assert pdf.find_doi(text) == expected


@pytest.mark.parametrize("head, expected", [
    (b"\x89PNG\r\n\x1a\nrest", "PNG image"),
    (b"PK\x03\x04rest", "ZIP archive"),
    (b"<!DOCTYPE html><html><body>Sign in", "HTML page"),
    (b"\x00\x01\xfe\xff\x80\x81", "binary data"),
    (b"Title: notes\nmore", "plain text starting 'Title: notes'"),
])
def test_not_a_pdf_names_what_it_looks_like(tmp_path, head, expected):
    path = tmp_path / "download.pdf"
    path.write_bytes(head)
    with pytest.raises(PdfProblem) as info:
        read_pdf(path)
    assert info.value.status == "not_pdf" and expected in info.value.reason


def test_blank_pages_without_images_are_no_text_layer(tmp_path):
    blank = FPDF()
    blank.add_page()
    blank.add_page()
    path = tmp_path / "blank.pdf"
    path.write_bytes(bytes(blank.output()))
    with pytest.raises(PdfProblem) as info:
        read_pdf(path)
    assert info.value.status == "no_text_layer" and "no images" in info.value.reason


def test_missing_file_and_folder_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_pdf(tmp_path / "absent.pdf")
    with pytest.raises(UserError, match="is a folder"):
        read_pdf(tmp_path)


def test_real_pdfs_metadata_and_text_dois():
    folder = shared_path("fixtures", "pdfs")
    fundus = read_pdf(folder / "fundus-deep-learning-diabetic-retinopathy-review-eye-2019.pdf")
    assert fundus.metadata["doi"] == "10.1038/s41433-018-0269-y" and fundus.metadata["year"] == 2018
    assert len(fundus.pages) == 13
    lee = read_pdf(folder / "lee-2017-deep-learning-medical-imaging-overview-kjr.pdf")
    assert lee.metadata["doi"] == "10.3348/kjr.2017.18.4.570"  # found in the first pages' text
    report = read_pdf(folder / "alzheimers-mri-classification-cnn-transfer-learning-report.pdf")
    assert report.metadata["doi"] is None and report.metadata["title"] is None
    assert len(report.pages) == 4 and sum(len(p.text) for p in report.pages) > 1000


# ---------------------------------------------------------------- fixtures/make_pdfs.py

def _load_make_pdfs():
    spec = importlib.util.spec_from_file_location("make_pdfs", REPO / "fixtures" / "make_pdfs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_make_pdfs_regenerates_the_committed_fixtures_byte_for_byte(tmp_path):
    written = _load_make_pdfs().build_all(tmp_path)
    assert {p.name for p in written} == {p.name for p in PDFS.glob("*.pdf")}
    for path in written:
        assert path.read_bytes() == (PDFS / path.name).read_bytes(), f"{path.name} differs: re-run fixtures/make_pdfs.py"


# ---------------------------------------------------------------- collect_inputs

def test_collect_inputs_folders_globs_files_and_duplicates(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    for path in (tmp_path / "one.pdf", nested / "two.PDF", tmp_path / "notes.txt"):
        path.write_bytes(b"x")
    found = batch.collect_inputs([tmp_path, str(tmp_path / "*.pdf"), tmp_path / "notes.txt"])
    assert [p.name for p in found] == ["two.PDF", "one.pdf", "notes.txt"]


@pytest.mark.parametrize("make_input, message", [
    (lambda tmp: tmp / "absent.pdf", "no such file or folder"),
    (lambda tmp: str(tmp / "*.pdf"), "no file matches"),
    (lambda tmp: tmp, "no \\*.pdf file under"),
])
def test_collect_inputs_errors_name_the_problem(tmp_path, make_input, message):
    with pytest.raises(UserError, match=message):
        batch.collect_inputs([make_input(tmp_path)])


# ---------------------------------------------------------------- run_batch with a stand-in extractor

@dataclass
class FakeResult:
    """The shape of pipeline.DocumentResult, so these tests pin the batch runner alone."""

    title: Optional[str]
    doi: Optional[str]
    year: Optional[int]
    experiments: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def table_rows(document) -> list[ExperimentRecord]:
    """One experiment per 'Model 12.34 ...' row of the results page (enough for the batch tests)."""
    records = []
    for line in document.pages[-1].text.splitlines():
        match = re.match(r"^([A-Za-z][\w\-]*(?: \(?\w+\)?)?) (\d+\.\d\d) ", line)
        if match and match.group(1) not in ("Model", "Metric"):
            prov = Provenance("table", page=2, snippet=line)
            records.append(ExperimentRecord(
                model=match.group(1), dataset="Kermany chest X-ray",
                features={"pretrained": FeatureField.reported("yes", Provenance("sentence", page=1))},
                measurements=[MeasurementRecord("accuracy", float(match.group(2)) / 100, prov)]))
    return records


def fake_extract(path: str) -> batch.Extraction:
    try:
        document = read_pdf(path)
    except PdfProblem as problem:
        return batch.Extraction(path, None, problem=(problem.status, problem.reason))
    return batch.Extraction(path, document.sha256, n_pages=len(document.pages), metadata=document.metadata,
                            result=FakeResult(None, None, None, table_rows(document)))


def test_batch_stores_papers_and_records_every_file(kb):
    outcomes = batch.run_batch([PDFS], kb, extract=fake_extract)
    by_name = {o.source_file: o for o in outcomes}
    assert set(by_name) == set(PAPERS) | set(BAD)
    for name, (status, _) in BAD.items():
        assert by_name[name].status == status and by_name[name].failed
    assert by_name["paper_pneumonia_cxr.pdf"].status == "ok"
    assert by_name["paper_pneumonia_cxr.pdf"].n_measurements == 4
    statuses = {row.source_file: (row.status, row.reason) for row in kb.file_statuses()}
    assert statuses["bad_encrypted.pdf"][0] == "encrypted" and statuses["bad_encrypted.pdf"][1]
    assert statuses["paper_pneumonia_cxr.pdf"] == ("ok", None)
    papers = kb.frame("SELECT sha256, doi, source_file, origin FROM papers ORDER BY source_file")
    assert list(papers.source_file) == sorted(PAPERS)
    assert set(papers.origin) == {"extract"}
    assert "10.5555/slmi.2021.0007" in set(papers.doi)


def test_rerun_skips_unchanged_and_force_replaces(kb):
    batch.run_batch([PDFS / "paper_pneumonia_cxr.pdf"], kb, extract=fake_extract)
    before = kb.counts()
    calls: list[str] = []

    def counting(path):
        calls.append(path)
        return fake_extract(path)

    (again,) = batch.run_batch([PDFS / "paper_pneumonia_cxr.pdf"], kb, extract=counting)
    assert calls == [] and again.reason == batch.UNCHANGED and again.status == "ok"
    assert again.n_measurements == 4 and again.n_pages == 2
    (forced,) = batch.run_batch([PDFS / "paper_pneumonia_cxr.pdf"], kb, force=True, extract=counting)
    assert len(calls) == 1 and forced.reason is None
    assert kb.counts()["experiments"] == before["experiments"]  # replaced, not doubled


def test_no_results_still_stores_the_paper(kb):
    def nothing_found(path):
        extraction = fake_extract(path)
        extraction.result.experiments = []
        return extraction

    (outcome,) = batch.run_batch([PDFS / "paper_skin_lesion_transposed.pdf"], kb, extract=nothing_found)
    assert outcome.status == "no_results" and not outcome.failed
    assert outcome.reason == batch.NO_RESULTS
    assert kb.counts()["papers"] == 1


def test_a_review_says_why_it_has_no_results(kb):
    from medicalrec.extract.pipeline import REVIEW_NOTE

    def a_review(path):
        extraction = fake_extract(path)
        extraction.result.experiments = []
        extraction.result.warnings = [REVIEW_NOTE]
        return extraction

    (outcome,) = batch.run_batch([PDFS / "paper_skin_lesion_transposed.pdf"], kb, extract=a_review)
    assert (outcome.status, outcome.reason) == ("no_results", REVIEW_NOTE)


def test_an_extraction_crash_is_that_files_status_only(kb):
    def crashing(path):
        if "skin" in path:
            return batch.Extraction(path, "0" * 64, n_pages=2, error="RuntimeError: boom")
        return fake_extract(path)

    outcomes = batch.run_batch([PDFS / "paper_skin_lesion_transposed.pdf", PDFS / "paper_pneumonia_cxr.pdf"], kb,
                               extract=crashing)
    assert [o.status for o in outcomes] == ["error", "ok"]
    assert "boom" in outcomes[0].reason
    assert {r.source_file: r.status for r in kb.file_statuses()}["paper_skin_lesion_transposed.pdf"] == "error"


def test_a_failed_save_leaves_no_half_paper(kb):
    def bad_value(path):
        extraction = fake_extract(path)
        broken = extraction.result.experiments[-1]
        # stored as a number: fails inside the transaction, after the paper and earlier rows were added
        broken.features["n_samples"] = FeatureField.reported("many", Provenance("sentence"))
        return extraction

    (outcome,) = batch.run_batch([PDFS / "paper_pneumonia_cxr.pdf"], kb, extract=bad_value)
    assert outcome.status == "error" and outcome.reason.startswith("not stored")
    counts = kb.counts()
    assert counts["papers"] == 0 and counts["experiments"] == 0 and counts["measurements"] == 0
    assert counts["file_status"] == 1


def test_extraction_never_replaces_imported_experiments(kb):
    imported = ExperimentRecord(model="VGG-16", dataset="Kermany chest X-ray", measurements=[
        MeasurementRecord("accuracy", 0.9, Provenance("import"))])
    kb.save_paper(PaperRecord(doi="10.5555/jsmi.2023.0412", ref_id="lit-1"), [imported])
    batch.run_batch([PDFS / "paper_pneumonia_cxr.pdf"], kb, extract=fake_extract)
    batch.run_batch([PDFS / "paper_pneumonia_cxr.pdf"], kb, extract=fake_extract, force=True)
    experiments = kb.experiments_frame().set_index("model")
    assert len(experiments) == 4  # the imported VGG-16 setting was there already: skipped, not doubled
    assert experiments.loc["VGG-16", "accuracy"] == pytest.approx(0.9)  # the curated value survives
    assert kb.counts()["papers"] == 1


def test_doi_override_needs_a_single_file(kb):
    with pytest.raises(UserError, match="single PDF with --doi"):
        batch.run_batch([PDFS], kb, doi="10.5555/x", extract=fake_extract)
    (outcome,) = batch.run_batch([PDFS / "paper_skin_lesion_transposed.pdf"], kb, doi="10.5555/Override",
                                 extract=fake_extract)
    assert outcome.doi == "10.5555/override"


def test_same_file_name_in_two_folders_keeps_both_statuses(kb, tmp_path):
    for folder in ("v1", "v2"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "paper.pdf").write_bytes(b"")
    outcomes = batch.run_batch([tmp_path], kb, extract=fake_extract)
    assert [o.source_file for o in outcomes] == ["v1/paper.pdf", "v2/paper.pdf"]
    assert len(kb.file_statuses()) == 2


def test_openalex_metadata_fills_the_paper(kb):
    replay = Replay(own_routes())
    client = OpenAlex(OpenAlexConfig(api_key="k"), kb=kb, transport=replay.transport, sleep=lambda s: None)
    outcomes = batch.run_batch([PDFS / "paper_pneumonia_cxr.pdf", PDFS / "paper_breast_us_permissions.pdf"], kb,
                               openalex=client, extract=fake_extract)
    paper = kb.frame("SELECT * FROM papers WHERE source_file = 'paper_pneumonia_cxr.pdf'").iloc[0]
    assert (paper.openalex_id, paper.year, paper.venue) == ("W5555000412", 2023, "Journal of Synthetic Medical Imaging")
    assert "Kermany" in paper.abstract
    breast = outcomes[1]
    assert breast.status == "ok" and "not in OpenAlex" in breast.reason  # 404 for DOI, then no title match
    assert len(replay.requests) == 3


def test_openalex_network_failure_is_a_warning_not_a_crash(kb):
    import httpx

    def down(request):
        raise httpx.ConnectError("no route to host", request=request)

    client = OpenAlex(OpenAlexConfig(api_key="k", max_retries=1), kb=kb, transport=httpx.MockTransport(down),
                      sleep=lambda s: None)
    outcomes = batch.run_batch([PDFS / "paper_pneumonia_cxr.pdf", PDFS / "paper_skin_lesion_transposed.pdf"], kb,
                               openalex=client, extract=fake_extract)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    for outcome in outcomes:
        assert outcome.reason.startswith("OpenAlex: OpenAlex unreachable") and "\n" not in outcome.reason
    assert kb.counts()["papers"] == 2


# ---------------------------------------------------------------- end to end with the real pipeline

@pytest.fixture(scope="module")
def extracted_kb():
    from medicalrec.kb import KnowledgeBase

    store = KnowledgeBase.in_memory()
    outcomes = batch.run_batch([PDFS], store)
    return store, {o.source_file: o for o in outcomes}


def test_real_pipeline_on_the_synthetic_papers(extracted_kb):
    store, outcomes = extracted_kb
    for name in PAPERS:
        assert outcomes[name].status == "ok", outcomes[name]
        assert outcomes[name].n_measurements >= 5
    for name, (status, _) in BAD.items():
        assert outcomes[name].status == status
    frame = store.experiments_frame()
    pneumonia = frame[frame.source_file == "paper_pneumonia_cxr.pdf"].set_index("model")
    assert pneumonia.loc["VGG-16", "accuracy"] == pytest.approx(0.9135)
    assert pneumonia.loc["DenseNet-121", "auc"] == pytest.approx(0.972)
    skin = frame[frame.source_file == "paper_skin_lesion_transposed.pdf"].set_index("model")
    assert skin.loc["EfficientNet-B0", "f1"] == pytest.approx(0.8587)  # the transposed table


@pytest.mark.slow
def test_worker_processes_give_the_same_result_as_in_process(extracted_kb):
    from medicalrec.kb import KnowledgeBase

    store, outcomes = extracted_kb
    pooled = KnowledgeBase.in_memory()
    pooled_outcomes = batch.run_batch([PDFS / name for name in PAPERS] + [PDFS / "bad_truncated.pdf"], pooled,
                                      workers=2)
    for outcome in pooled_outcomes:
        assert (outcome.status, outcome.n_experiments, outcome.n_measurements) == (
            outcomes[outcome.source_file].status, outcomes[outcome.source_file].n_experiments,
            outcomes[outcome.source_file].n_measurements)
    def facts(kb):
        frame = kb.experiments_frame()
        frame = frame[frame.source_file.isin(PAPERS)]
        return sorted(map(tuple, frame[["source_file", "model", "dataset", "accuracy", "f1"]].astype(str).values))

    assert facts(pooled) == facts(store) and facts(pooled)


def test_an_unexpected_reader_failure_is_that_files_status_only(kb, monkeypatch):
    def unsupported(path):
        if "skin" in str(path):
            raise NotImplementedError("LZWDecode filter")
        return read_pdf(path)

    monkeypatch.setattr(batch, "read_pdf", unsupported)
    outcomes = batch.run_batch([PDFS / "paper_skin_lesion_transposed.pdf", PDFS / "paper_pneumonia_cxr.pdf"], kb)
    assert [o.status for o in outcomes] == ["error", "ok"]
    assert "reading the PDF failed: NotImplementedError: LZWDecode filter" in outcomes[0].reason
