"""`extract --executor ray`: each file a Ray task, the KB written by the driver alone; the KB
ends up as the in-process run leaves it, and a bad file still gets its status."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medicalrec.executor import ray_available

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pdfs"
FILES = ("paper_pneumonia_cxr.pdf", "paper_skin_lesion_transposed.pdf", "bad_truncated.pdf")


def _contents(kb_file: Path):
    from medicalrec.kb import KnowledgeBase

    kb = KnowledgeBase.open(kb_file)
    statuses = kb.query("SELECT source_file, status FROM file_status ORDER BY source_file")[1]
    results = kb.query(
        "SELECT p.source_file, m.name, ms.metric, ROUND(ms.value, 6), ms.review_status FROM measurements ms"
        " JOIN experiments e ON e.id = ms.experiment_id JOIN papers p ON p.id = e.paper_id"
        " JOIN models m ON m.id = e.model_id ORDER BY 1, 2, 3, 4")[1]
    return statuses, results


@pytest.mark.slow
def test_extract_on_local_ray_stores_what_the_in_process_run_stores(tmp_path, cli):
    if not ray_available():
        pytest.skip("ray is not installed: pip install 'medicalrec[ray]'")
    import ray

    folder = tmp_path / "papers"
    folder.mkdir()
    for name in FILES:
        shutil.copy(FIXTURES / name, folder / name)
    local = cli("extract", folder, "--kb", tmp_path / "local.db", "--offline", "--json")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = cli("extract", folder, "--kb", tmp_path / "ray.db", "--offline", "--executor", "ray", "--json")
    finally:
        ray.shutdown()
    assert local.exit_code == on_ray.exit_code == 1  # the truncated file fails in both
    statuses, results = _contents(tmp_path / "ray.db")
    assert dict(statuses)["bad_truncated.pdf"] == "corrupt"
    assert len(results) >= 2
    assert (statuses, results) == _contents(tmp_path / "local.db")


def test_an_unknown_executor_is_one_line(tmp_path, cli):
    result = cli("extract", FIXTURES / "paper_pneumonia_cxr.pdf", "--kb", tmp_path / "k.db", "--offline",
                 "--executor", "spark")
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == \
        "Error: unknown executor 'spark': pass --executor local or --executor ray"
