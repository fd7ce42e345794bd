"""Run a list of jobs in this process or as Ray tasks, and stream their outcomes back as they finish.

A job is a picklable top-level function and one argument; what it returns must be small and plain
(a dict of numbers and strings), because on Ray it travels back through the object store. The
executor knows nothing of what the jobs do: whoever calls it consumes the outcomes one by one and
does the writing (the KB has one writer, SQLite's rule, so a job never opens the KB itself).

- `local`: the jobs run one after another in this process; an outcome is yielded as each ends.
- `ray` (`pip install medicalrec[ray]`): every job is one Ray task. On a cluster that has GPUs a
  task asks for `num_gpus=1` (Ray then sets CUDA_VISIBLE_DEVICES for it), else for
  `cpus_per_job` CPUs. `ray.init()` starts a local instance unless `address` joins a cluster (or
  Ray is already initialised, e.g. by a test's `ray.init(num_cpus=2)`). Outcomes come back in
  completion order via `ray.wait`, so a driver records each result as soon as it lands.

A job that raises yields an outcome with `error` set (one line) and the rest go on; a
KeyboardInterrupt stops the whole run (the Ray tasks still in flight are cancelled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

from .errors import UserError

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class Job:
    key: str  # the caller's name for it (unique within a run)
    fn: Callable[[Any], Any]  # a module-level function, so that Ray can pickle it by reference
    arg: Any


@dataclass
class Outcome:
    job: Job
    value: Any = None
    error: Optional[str] = None  # one line; None when the job returned

    @property
    def ok(self) -> bool:
        return self.error is None


def check_executor(name: str) -> str:
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}: pass --executor local or --executor ray")
    return name


def run_jobs(jobs: Iterable[Job], executor: str = "local", *, address: Optional[str] = None,
             cpus_per_job: int = 1) -> Iterator[Outcome]:
    """The outcomes of `jobs`, each yielded as soon as its job ends."""
    jobs = list(jobs)
    if check_executor(executor) == "local":
        return _run_local(jobs)
    return _run_ray(jobs, address, cpus_per_job)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if isinstance(exc, UserError) and text else f"{type(exc).__name__}: {text[0] if text else ''}"


def _run_local(jobs: list[Job]) -> Iterator[Outcome]:
    for job in jobs:
        try:
            value = job.fn(job.arg)
        except Exception as exc:  # one bad job is reported; the batch goes on
            yield Outcome(job, error=_one_line(exc))
            continue
        yield Outcome(job, value)


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _call(fn: Callable[[Any], Any], arg: Any) -> Any:
    return fn(arg)


def task_resources(cluster: dict, cpus_per_job: int) -> dict:
    """What one task asks Ray for: a whole GPU where the cluster has any, else CPUs."""
    if cluster.get("GPU", 0) >= 1:
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": max(1, cpus_per_job)}


def _run_ray(jobs: list[Job], address: Optional[str], cpus_per_job: int) -> Iterator[Outcome]:
    if not ray_available():
        raise UserError("--executor ray needs Ray: pip install 'medicalrec[ray]', or pass --executor local")
    import ray

    if not ray.is_initialized():
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = address or "a local instance"
            raise UserError(f"could not start or join Ray at {where} ({_one_line(exc)}): "
                            f"check --ray-address, or pass --executor local") from None
    resources = task_resources(ray.cluster_resources(), cpus_per_job)
    remote = ray.remote(max_retries=0)(_call).options(**resources)
    pending = {remote.remote(job.fn, job.arg): job for job in jobs}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                job = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    yield Outcome(job, error=_one_line(cause if cause is not None else exc))
                    continue
                except ray.exceptions.RayError as exc:  # a worker died, a node was lost
                    yield Outcome(job, error=_one_line(exc))
                    continue
                yield Outcome(job, value)
    finally:
        for ref in pending:  # interrupted, or the consumer stopped early: do not leave work running
            ray.cancel(ref, force=True)
