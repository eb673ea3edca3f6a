"""Where a sweep's runs are computed: a local process pool (one worker per core, one torch thread
each), or any ``concurrent.futures`` executor; the thread count every run is computed with."""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import time

import torch

from ..errors import InputError


RUN_THREADS = 1
"""Torch threads every run is computed with, in :meth:`Lab.run`, a serial sweep or a worker.
Matrix products may round differently with another thread count, so a run's numbers must not
depend on where it ran; one thread per run and one worker per core is also the fastest way
through a sweep of these small models (docs/speed.md)."""


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)


class SweepError(RuntimeError):
    """Some runs of a sweep failed; the others finished and are cached.

    ``failures``: ``[(run description, exception)]``; ``results``: the :class:`RunResult` of every
    job in sweep order, None where it failed."""

    def __init__(self, failures: list[tuple[str, BaseException]], results: list):
        self.failures, self.results = failures, results
        done = sum(r is not None for r in results)
        lines = "\n".join(f"  {name}: {type(err).__name__}: {err}" for name, err in failures)
        super().__init__(f"{len(failures)} of {len(results)} runs failed ({done} finished and are "
                         f"cached; running the sweep again computes only the failed ones):\n{lines}")


def _init_worker() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(RUN_THREADS)
    # Ctrl-C and a Jupyter interrupt or shutdown signal the whole process group: the sweep in the
    # calling process handles it (cancels the runs not started); a worker finishes its run
    signal.signal(signal.SIGINT, signal.SIG_IGN)


WORKERS_ENV = "SATIMP_LAB_WORKERS"
"""Environment variable: the number of workers of the default pool (a positive integer);
``satimp-lab reproduce`` sets it in the notebook kernels it runs side by side."""


def default_workers() -> int:
    """``$SATIMP_LAB_WORKERS`` if set, else the CPU cores this process may use
    (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere). Raises InputError naming the
    variable when it is set to anything but a positive integer."""
    value = os.environ.get(WORKERS_ENV)
    if value:
        if not value.strip().isdigit() or int(value) < 1:
            raise InputError(f"{WORKERS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return cpu_cores()


def cpu_cores() -> int:
    """CPU cores this process may use (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def process_pool(workers: int | None = None) -> concurrent.futures.ProcessPoolExecutor:
    """A local pool of ``workers`` processes (default :func:`default_workers`) for
    :meth:`Lab.sweep`, each pinned to :data:`RUN_THREADS` torch threads. Started with ``spawn``:
    forking a process whose torch thread pool already ran can hang, and spawn works the same in
    scripts, notebooks and pytest (a script must guard its entry point with
    ``if __name__ == "__main__":``). Each worker imports torch once and keeps its models for the
    pool's life. Workers ignore SIGINT: an interrupted sweep cancels the runs not started, and
    the runs under way finish (and are cached)."""
    return concurrent.futures.ProcessPoolExecutor(
        workers or default_workers(), mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker)


_DEFAULT_POOL: concurrent.futures.ProcessPoolExecutor | None = None


def shutdown_default_pool() -> None:
    """Stop the session's default pool (started by the first parallel sweep); the next sweep
    starts a new one. Registered with ``atexit``: a pool left to the interpreter's teardown
    printed "Exception ignored in ... weakref_cb" at the exit of every script that swept."""
    global _DEFAULT_POOL
    pool, _DEFAULT_POOL = _DEFAULT_POOL, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_default_pool)


def _resolve_executor(executor, n_runs: int):
    """None (run here) or the executor to submit the runs to."""
    global _DEFAULT_POOL
    if executor is None or executor == "serial":
        return None
    if executor == "processes":
        if n_runs <= 1 or default_workers() == 1 or torch.cuda.is_available():
            return None  # starting workers costs more than the run; one process owns the GPU
        if _DEFAULT_POOL is None or getattr(_DEFAULT_POOL, "_broken", False):
            _DEFAULT_POOL = process_pool()
        return _DEFAULT_POOL
    if isinstance(executor, str) or not callable(getattr(executor, "submit", None)):
        raise ValueError(f"executor must be 'processes', 'serial', None or an object with submit() "
                         f"(a concurrent.futures.Executor), got {executor!r}")
    return executor


def _completed(futures: list):
    """Yield each future as it finishes: ``concurrent.futures.as_completed`` for standard
    futures; otherwise (e.g. submitit jobs) by polling ``done()`` every half second."""
    if all(isinstance(f, concurrent.futures.Future) for f in futures):
        yield from concurrent.futures.as_completed(futures)
        return
    pending = list(futures)
    while pending:
        finished = [f for f in pending if f.done()]
        for f in finished:
            pending.remove(f)
            yield f
        if pending and not finished:
            time.sleep(0.5)
