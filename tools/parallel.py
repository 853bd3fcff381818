"""Independent trainings side by side, each in a worker process of its own, one per core, each
with one BLAS thread: the graded code runs unchanged, only several times at once. Workers are
spawned (as on macOS and Windows) on every OS; runs are seeded, so a result does not depend on
where it ran. Ctrl-C and any failure end every worker at once; a worker whose parent has died
ends itself."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

from threadpoolctl import threadpool_limits

from tools import trace

Job = tuple[Callable[..., Any], dict[str, Any]]


def cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def side_by_side(jobs: Sequence[Job], processes: int | None = None) -> list[Any]:
    """``function(**kwargs)`` for every ``(function, kwargs)`` of ``jobs``, results in order.

    ``processes`` workers (default: one per core, at most one per job) take the jobs in order,
    so list the longest first; with one, the jobs run here, one BLAS thread, one after
    another. A job's exception is raised here. The functions must be importable (not defined
    in a notebook cell)."""
    processes = min(len(jobs), processes or cores())
    if processes <= 1:
        with threadpool_limits(1):
            return [function(**kwargs) for function, kwargs in jobs]
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    with concurrent.futures.ProcessPoolExecutor(processes, context, _start_worker,
                                                (stop,)) as pool:
        futures = [pool.submit(function, **kwargs) for function, kwargs in jobs]
        try:
            while True:  # timed waits, so that Ctrl-C is seen at once on every OS
                not_done = concurrent.futures.wait(futures, 0.2, "FIRST_EXCEPTION").not_done
                failed = [f for f in futures if f.done() and f.exception() is not None]
                if failed:
                    raise failed[0].exception()
                if not not_done:
                    return [future.result() for future in futures]
        except BaseException:
            stop.set()  # every worker exits now, whatever it is running
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def seeded(function: Callable[..., Any], seed: int, **kwargs: Any) -> Any:
    """``function(**kwargs)`` after ``np.random.seed(seed)``, as the course's scripts seed
    NumPy's global generator: a job that draws from it gives one result wherever it runs."""
    import numpy as np

    np.random.seed(seed)  # noqa: NPY002 (the global generator the course's tests draw from)
    return function(**kwargs)


def _start_worker(stop: Any) -> None:
    trace.install_if_tracing()  # a build's cache records what its workers read too
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the workers
    import numpy  # noqa: F401  (loads the BLAS library, so that the limit below reaches it)

    threadpool_limits(1)
    threading.Thread(target=_exit_when_stopped, args=(stop,), daemon=True).start()


def _exit_when_stopped(stop: Any) -> None:
    parent = multiprocessing.parent_process()
    while not stop.wait(1.0):
        if parent is not None and not parent.is_alive():
            break
    os._exit(1)
