"""medicalrec.executor: jobs in-process or on Ray, outcomes streamed back, failures reported one by
one; and a 2-run sweep on a local Ray (2 CPUs) leaves the KB holding what the in-process run does."""

from __future__ import annotations

import pytest

from conftest import shared_path
from medicalrec.errors import UserError
from medicalrec.executor import Job, check_executor, ray_available, run_jobs, task_resources


def square(x):
    if x == 3:
        raise UserError("three is refused: pass another number")
    if x == 4:
        raise ZeroDivisionError("division by zero\nsecond line")
    return x * x


def test_local_jobs_stream_in_order_and_a_failure_does_not_stop_the_rest():
    outcomes = list(run_jobs([Job(str(i), square, i) for i in range(6)]))
    assert [o.job.key for o in outcomes] == ["0", "1", "2", "3", "4", "5"]
    assert [o.value for o in outcomes if o.ok] == [0, 1, 4, 25]
    assert [o.error for o in outcomes if not o.ok] == ["three is refused: pass another number",
                                                      "ZeroDivisionError: division by zero"]


def test_tasks_ask_for_a_gpu_only_where_the_cluster_has_one():
    assert task_resources({"CPU": 16.0, "GPU": 4.0}, 2) == {"num_gpus": 1, "num_cpus": 1}
    assert task_resources({"CPU": 2.0}, 2) == {"num_cpus": 2}
    assert task_resources({"CPU": 2.0, "GPU": 0.0}, 0) == {"num_cpus": 1}


def test_unknown_executor_is_one_line():
    with pytest.raises(UserError, match="pass --executor local or --executor ray"):
        check_executor("dask")


def kb_results(kb_file):
    from medicalrec.kb import KnowledgeBase

    return KnowledgeBase.open(kb_file).query(
        "SELECT d.name, m.name, e.setting, ms.metric, ROUND(ms.value, 12) FROM experiments e"
        " JOIN papers p ON p.id = e.paper_id JOIN models m ON m.id = e.model_id"
        " JOIN datasets d ON d.id = e.dataset_id JOIN measurements ms ON ms.experiment_id = e.id"
        " WHERE p.ref_id = 'medicalrec-validation' ORDER BY d.name, e.setting, ms.metric")[1]


@pytest.mark.slow
@pytest.mark.shared
def test_two_run_sweep_on_local_ray_matches_in_process(tmp_path):
    if not ray_available():
        pytest.skip("ray is not installed: pip install 'medicalrec[ray]'")
    import ray

    from medicalrec.validate.sweep import SweepRequest, run_sweep

    def request(executor: str, name: str) -> SweepRequest:
        return SweepRequest(dataset="", datasets=["breastmnist"], models=["logistic regression"], seeds=2,
                            device="cpu", threads=1, data_root=shared_path("data", "medmnist"),
                            kb=tmp_path / f"{name}.db", out=tmp_path / name, executor=executor)

    local = run_sweep(request("local", "local"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = run_sweep(request("ray", "ray"))
    finally:
        ray.shutdown()
    assert (local.trained, on_ray.trained) == (2, 2)
    assert len(kb_results(tmp_path / "local.db")) == 4  # 2 runs x (accuracy, auc)
    assert kb_results(tmp_path / "ray.db") == kb_results(tmp_path / "local.db")


@pytest.mark.slow
@pytest.mark.shared
def test_multitask_with_its_single_task_runs_on_local_ray(tmp_path):
    if not ray_available():
        pytest.skip("ray is not installed: pip install 'medicalrec[ray]'")
    import ray

    from medicalrec.validate.multitask import MultitaskRequest, run_multitask

    def request(executor: str) -> MultitaskRequest:
        return MultitaskRequest(datasets=["breastmnist", "retinamnist"], model="simplecnn", epochs=1,
                                batch_size=32, device="cpu", threads=1, subset=64, compare=True,
                                data_root=str(shared_path("data", "medmnist")), executor=executor)

    local_main, local_single, _ = run_multitask(request("local"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray_main, ray_single, _ = run_multitask(request("ray"))
    finally:
        ray.shutdown()
    assert ray_main["per_dataset"] == local_main["per_dataset"]
    assert ray_single["per_dataset"] == local_single["per_dataset"]
    assert ray_main["harmonic_mean_macro_f1"] == local_main["harmonic_mean_macro_f1"]
