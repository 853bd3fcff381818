"""Training speed and memory, measured side by side in one run (`python tasks.py bench`).

* Single model: a ``task3.SoftmaxTrainer`` with its defaults (the course's float64 computation,
  ``train_step`` and ``validation_step``), on ``pre_process_images`` + ``one_hot_encode``, against
  the yardstick, ``benchmarks/plain.py``: the plain float64 schedule. Softmax regression,
  20,000 training and 10,000 validation images, batch 128, learning rate 0.01, shuffling, no
  early stopping; repetitions interleaved (ABBA). Target: <= 0.8 per epoch (aim: 0.6).
* Side by side: the report's trainings (``task3.train`` for every lambda, ``task2.train`` for
  Task 2's runs; a short epoch budget) through ``tools.parallel.side_by_side``, one worker per
  core against one process running them one after another. Printed, not judged.
* The report (``bench_report``): ``python tasks.py report`` cold, and its rebuilds with no change
  and after a Markdown edit (each <= 1.5 s), and the peak memory of the largest process a build
  starts (the notebook's kernel or a worker; target < 1 GiB).

The last line names every target missed (or says every target was met); the exit code is 1
when one is missed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import bench_report  # noqa: E402
import plain  # noqa: E402

import task2  # noqa: E402
import task2a  # noqa: E402
import task3  # noqa: E402
import task3a  # noqa: E402
import utils  # noqa: E402
from tools.parallel import cores, side_by_side  # noqa: E402

SINGLE_TARGET = 0.8


def run_yardstick(data, epochs):
    start = time.perf_counter()
    plain.train(*data, num_epochs=epochs, learning_rate=0.01, batch_size=128)
    return time.perf_counter() - start


def run_project(data, epochs):
    X_train, Y_train, X_val, Y_val = data
    start = time.perf_counter()
    X_tr, X_v = task2a.pre_process_images(X_train), task2a.pre_process_images(X_val)
    Y_tr, Y_v = task3a.one_hot_encode(Y_train, 10), task3a.one_hot_encode(Y_val, 10)
    task3.SoftmaxTrainer(task3a.SoftmaxModel(0.0), 0.01, 128, True, X_tr, Y_tr, X_v, Y_v,
                         early_stopping=False).train(epochs)
    return time.perf_counter() - start


def machine_line() -> str:
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or "cpu"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo", encoding="utf-8")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = [f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}, "
            f"{i.get('num_threads')} threads" for i in threadpool_info()
            if i.get("user_api") == "blas"]
    return (f"machine: {cpu}, {cores()} cores, Python {platform.python_version()}, NumPy "
            f"{np.__version__}; BLAS: {'; '.join(blas) or 'unknown'} "
            f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})")


def largest_child_rss() -> int | None:
    """Peak RSS in bytes of the largest process this one has started and waited for (with
    their own children), None where the OS does not tell (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    factor = 1 if sys.platform == "darwin" else 1024  # macOS counts bytes, Linux KiB
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * factor


def side_by_side_speedup(epochs: int) -> tuple[float, float]:
    """(seconds one after another, seconds side by side) for the report's trainings."""
    jobs = [(task3.train, {"l2_reg_lambda": lam, "num_epochs": epochs})
            for lam in (0.0, *task3.L2_REG_LAMBDAS)]
    jobs += [(task2.train, {**kwargs, "num_epochs": min(kwargs["num_epochs"], 10 * epochs)})
             for kwargs in task2.REPORT_RUNS.values()]
    seconds = []
    for processes in (1, None):
        start = time.perf_counter()
        side_by_side(jobs, processes)
        seconds.append(time.perf_counter() - start)
    return seconds[0], seconds[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=6,
                        help="an even number keeps the ABBA order balanced")
    parser.add_argument("--skip-report", action="store_true",
                        help="skip the report's cold build and rebuilds")
    args = parser.parse_args()

    print(machine_line(), flush=True)
    report_lines, missed = ([], []) if args.skip_report else bench_report.bench()
    rss = None if args.skip_report else largest_child_rss()
    print("\n".join(report_lines), flush=True)
    if rss is not None:
        print(f"  peak RSS of the largest process of the builds: {rss / 2**20:.0f} MiB "
              f"(target < 1024 MiB)")
        if rss >= 2**30:
            missed.append(f"a build's process needs {rss / 2**20:.0f} MiB (1 GiB or more)")

    X_train, Y_train, X_val, Y_val = utils.load_full_mnist()
    data = (X_train, Y_train, X_val, Y_val)
    times = {run_yardstick: [], run_project: []}
    # ABBA order: over an even number of repeats each side runs as often right after itself
    # as right after the other (a run is slower right after one that freed much memory)
    for r in range(args.repeats):
        for run in (run_yardstick, run_project) if r % 2 == 0 else (run_project, run_yardstick):
            times[run].append(run(data, args.epochs))
            print(f"  repeat {r + 1}: {run.__name__:14s} {times[run][-1]:6.2f} s", flush=True)
    yard, project = (statistics.median(times[run]) / args.epochs
                     for run in (run_yardstick, run_project))
    ratio = project / yard
    print(f"per epoch (median of {args.repeats} runs of {args.epochs} epochs):")
    print(f"  yardstick (the plain float64 schedule)       {1e3 * yard:7.1f} ms")
    print(f"  SoftmaxTrainer with its defaults             {1e3 * project:7.1f} ms")
    print(f"  ratio                                        {ratio:7.3f}   (target <= "
          f"{SINGLE_TARGET}, aim 0.6)")
    if ratio > SINGLE_TARGET:
        missed.append(f"single model / yardstick {ratio:.3f} > {SINGLE_TARGET}")

    sequential, parallel = side_by_side_speedup(max(1, args.epochs // 2))
    print(f"the report's trainings ({max(1, args.epochs // 2)} epochs each): one after another "
          f"{sequential:.1f} s, side by side on {cores()} cores {parallel:.1f} s: speed-up "
          f"{sequential / parallel:.2f}")

    stop = task2.train(**task2.REPORT_RUNS["2d"]).early_stop_epoch
    print(f"binary 2 vs 3, no shuffling: early stopping ends training in epoch {stop}")
    if stop != 33:
        missed.append(f"the binary run stops in epoch {stop}, not 33")
    print("targets missed: " + "; ".join(missed) if missed else "every target met")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
