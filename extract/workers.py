"""Running one extraction per file under per-file limits, in this process or in worker processes.

Limits are enforced where the work runs: a timer (SIGALRM) and a memory watchdog raise
`LimitExceeded` inside the extraction, so the file ends with status `timeout` or `too_large`
and the worker takes the next file. Worker processes also get an address-space cap (a runaway
C allocation fails there, not on the machine), and the parent kills a worker that overruns its
time limit by a grace period (stuck in C code where no signal handler runs) and starts another.
A worker that dies costs its own file only: every file gets a status.

Workers die with the parent: on Linux the kernel sends them SIGKILL when it exits (PR_SET_PDEATHSIG),
and everywhere a thread in each worker exits it once its parent is gone, so neither SIGTERM nor
SIGKILL of `medicalrec extract` leaves workers running.

`run_extractions` is the one entry point; another executor (Ray, say) fits beside it.
"""

from __future__ import annotations

import _thread
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator, Optional, Sequence

DEFAULT_SECONDS = 120.0
DEFAULT_CHARS = 400_000  # the longest of the 46 papers in ../shared has 95,408; spaCy's own cap is 1M
DEFAULT_MEMORY_MB = 2048
# The largest page content stream in ../shared's 46 papers is 0.94 MB (a figure drawn in vectors,
# 4 s of pypdf's time); 4 MB leaves room for more and bounds one page to about 20 s.
DEFAULT_PAGE_CONTENT_BYTES = 4 << 20
WATCH_INTERVAL_S = 0.05
RETRY_S = 0.25  # how soon the alarm rings again when its exception was swallowed
KILL_GRACE_S = 5.0  # how long past its limit a worker may stay silent before the parent kills it
PARENT_POLL_S = 1.0


@dataclass(frozen=True)
class Limits:
    """What one file may cost. `seconds` of wall time, `chars` of text, `memory_mb` of memory
    growth over the worker's idle footprint, `page_content_bytes` of one page's drawing operators."""

    seconds: float = DEFAULT_SECONDS
    chars: int = DEFAULT_CHARS
    memory_mb: int = DEFAULT_MEMORY_MB
    page_content_bytes: int = DEFAULT_PAGE_CONTENT_BYTES

    def timeout_reason(self, elapsed: Optional[float] = None) -> str:
        took = f" (stopped after {elapsed:.0f} s)" if elapsed is not None else ""
        return (f"extraction took longer than the {self.seconds:g} s limit{took}: raise --max-seconds, or split "
                "or repair the PDF")

    def memory_reason(self) -> str:
        return (f"extraction needed more than the {self.memory_mb:,} MB memory limit: raise --max-memory, or split "
                "the PDF")


class LimitExceeded(BaseException):
    """Raised inside an extraction that went over a limit. A BaseException, so that the
    `except Exception` of the libraries it interrupts cannot swallow it."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------- the guard around one file

def _rss_mb() -> Optional[float]:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    except (OSError, ValueError, IndexError):
        return None  # not Linux: only the worker's address-space cap bounds memory


class _Guard:
    """Arms the time limit and the memory watchdog around one extraction in the main thread."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.active = False
        self.tripped: Optional[str] = None
        self.started = 0.0
        self._previous_handler: Any = None
        self._watcher: Optional[threading.Thread] = None
        self._stop = threading.Event()

    def _on_alarm(self, signum, frame) -> None:
        if not self.active:
            return
        # Raised inside a finalizer or a weakref callback (a garbage collection can run one at any
        # moment), the exception is printed and dropped: so the alarm rings again until it lands.
        signal.setitimer(signal.ITIMER_REAL, RETRY_S)
        if self.tripped == "memory":
            raise LimitExceeded("too_large", self.limits.memory_reason())
        raise LimitExceeded("timeout", self.limits.timeout_reason(time.monotonic() - self.started))

    def _watch_memory(self, baseline: float) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            rss = _rss_mb()
            if rss is not None and rss - baseline > self.limits.memory_mb:
                self.tripped = "memory"
                _thread.interrupt_main(signal.SIGALRM)  # the handler runs in the main thread
                return

    def arm(self) -> None:
        self.started = time.monotonic()
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
            return  # signal handlers live in the main thread; a worker process's parent still kills on overrun
        self._previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)
        self.active = True
        signal.setitimer(signal.ITIMER_REAL, self.limits.seconds)
        baseline = _rss_mb()
        if baseline is not None:
            self._stop.clear()
            self._watcher = threading.Thread(target=self._watch_memory, args=(baseline,), daemon=True,
                                             name="medicalrec-memory-watch")
            self._watcher.start()

    def disarm(self) -> None:
        self.active = False  # first: a signal arriving from here on is ignored
        if self._previous_handler is None:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        signal.signal(signal.SIGALRM, self._previous_handler)
        self._previous_handler = None


def run_limited(extract: Callable[[str], Any], path: str, limits: Limits,
                on_limit: Callable[[str, str, str, float], Any]) -> Any:
    """`extract(path)` under `limits`; over a limit, `on_limit(path, status, reason, seconds)`."""
    guard = _Guard(limits)
    try:
        try:
            guard.arm()
            return extract(path)
        finally:
            guard.disarm()
    except LimitExceeded as exceeded:
        status, reason = exceeded.status, exceeded.reason
    except MemoryError:
        status, reason = "too_large", limits.memory_reason()
    for _ in range(3):  # the alarm may have rung inside disarm, before it took effect
        try:
            guard.disarm()
            break
        except LimitExceeded:
            continue
    return on_limit(path, status, reason, time.monotonic() - guard.started)


# ---------------------------------------------------------------- worker processes

def _die_with_parent(parent_pid: int) -> None:
    """Make sure this worker does not outlive the process that started it."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher thread below still covers it
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="medicalrec-parent-watch").start()


def _cap_address_space(limits: Limits) -> None:
    """A hard cap for what the watchdog cannot interrupt (one huge allocation in C code)."""
    try:
        import resource

        with open("/proc/self/statm") as fh:
            current = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        cap = current + 2 * limits.memory_mb * (1 << 20) + (512 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))
    except (ImportError, OSError, ValueError):
        pass  # not Linux: the watchdog alone


def _warm_up(warm: Optional[Callable[[], None]]) -> None:
    if warm is None:
        return
    try:
        warm()
    except Exception:  # noqa: BLE001 -- the first extraction meets the same failure and reports it as its status
        pass


def _worker_main(conn: Connection, parent_pid: int, extract: Callable[[str], Any], limits: Limits,
                 warm: Optional[Callable[[], None]], on_limit: Callable[[str, str, str, float], Any]) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    _warm_up(warm)
    _cap_address_space(limits)  # after warming up: the loaded model is the baseline
    while True:
        try:
            path = conn.recv()
        except (EOFError, OSError):
            return
        if path is None:
            return
        conn.send(("started", None))  # the parent's deadline runs from here, not from the model's loading
        conn.send(("done", run_limited(extract, path, limits, on_limit)))


@dataclass
class _Worker:
    process: Any
    conn: Connection
    path: Optional[str] = None
    started: Optional[float] = None  # when the worker began the file; None while it is still starting up
    dispatched: float = 0.0


# A worker that has not begun its file this long after it was sent is stuck starting up.
STARTUP_LIMIT_S = 180.0


def run_extractions(paths: Sequence[str], workers: int, extract: Callable[[str], Any], limits: Limits, *,
                    on_limit: Callable[[str, str, str, float], Any], on_death: Callable[[str, str], Any],
                    warm: Optional[Callable[[], None]] = None) -> Iterator[Any]:
    """Yield `extract(path)` for every path, in completion order, each under `limits`.

    One worker or one file: in this process. Otherwise `workers` processes (spawned: the parent
    holds an open SQLite connection that must not be shared). A file over a limit yields
    `on_limit(path, status, reason, seconds)`; a worker that dies yields `on_death(path, why)`.
    `extract`, `on_limit` and `warm` must be picklable for worker processes.
    """
    if workers <= 1 or len(paths) <= 1:
        if paths:
            _warm_up(warm)  # before the first file's limits: loading the model is not the file's cost
        for path in paths:
            yield run_limited(extract, path, limits, on_limit)
        return
    yield from _pool(list(paths), min(workers, len(paths)), extract, limits, on_limit, on_death, warm)


def _pool(paths: list[str], size: int, extract, limits: Limits, on_limit, on_death, warm) -> Iterator[Any]:
    context = multiprocessing.get_context("spawn")
    queue = deque(paths)
    pool: list[_Worker] = []

    def start() -> _Worker:
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_worker_main, name="medicalrec-extract-worker", daemon=True,
                                  args=(child_end, os.getpid(), extract, limits, warm, on_limit))
        process.start()
        child_end.close()
        worker = _Worker(process, parent_end)
        pool.append(worker)
        return worker

    def deadline(worker: _Worker) -> float:
        if worker.started is None:
            return worker.dispatched + STARTUP_LIMIT_S
        return worker.started + limits.seconds + KILL_GRACE_S

    try:
        while queue or any(w.path is not None for w in pool):
            for worker in list(pool):
                if worker.path is None and not worker.process.is_alive():
                    pool.remove(worker)  # died between files: nothing of ours was lost with it
                    _stop(worker)
                elif worker.path is None and queue:
                    _dispatch(worker, queue.popleft())
            while queue and len(pool) < size:
                _dispatch(start(), queue.popleft())
            busy = [w for w in pool if w.path is not None]
            timeout = max(0.0, min(deadline(w) for w in busy) - time.monotonic())
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=timeout)
            for worker in busy:
                answer = _read_messages(worker)
                if answer is not None:
                    worker.path = None
                    yield answer[1]
                    continue
                path = worker.path
                if not worker.process.is_alive():
                    pool.remove(worker)
                    _stop(worker)
                    yield on_death(path, _death(worker.process.exitcode))
                elif time.monotonic() > deadline(worker):
                    pool.remove(worker)
                    _stop(worker)  # stuck where the in-worker timer cannot interrupt (C code, start-up)
                    elapsed = time.monotonic() - (worker.started or worker.dispatched)
                    yield on_limit(path, "timeout", limits.timeout_reason(elapsed), elapsed)
    finally:
        for worker in list(pool):
            _stop(worker, gently=True)


def _read_messages(worker: _Worker) -> Optional[tuple]:
    """Consume what the worker sent; the ("done", result) message when there is one."""
    while worker.conn.poll():
        try:
            kind, payload = worker.conn.recv()
        except (EOFError, OSError):
            return None
        if kind == "started":
            worker.started = time.monotonic()
        else:
            return kind, payload
    return None


def _dispatch(worker: _Worker, path: str) -> None:
    worker.path, worker.started, worker.dispatched = path, None, time.monotonic()
    try:
        worker.conn.send(path)
    except OSError:
        pass  # it died just now: the loop sees it exit and reports the file


def _stop(worker: _Worker, gently: bool = False) -> None:
    if gently and worker.path is None:
        try:
            worker.conn.send(None)
        except (OSError, ValueError):
            pass
        worker.process.join(timeout=2.0)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join(timeout=5.0)
    worker.conn.close()


def _death(exitcode: Optional[int]) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name if -exitcode in signal.valid_signals() else str(-exitcode)
        hint = " (out of memory? lower --workers or --max-memory)" if -exitcode == signal.SIGKILL else ""
        return f"the worker process was killed by {name}{hint} while extracting this file"
    return f"the worker process exited (code {exitcode}) while extracting this file"
