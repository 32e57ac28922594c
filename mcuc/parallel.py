"""Independent tasks of a search run in parallel: local processes (``--jobs N``) or a Ray cluster (``--ray-address``).

``run_ordered(fn, shared, items)`` returns ``[fn(shared, item) for item in items]`` in the order of ``items``
whatever the number of workers or where they run, so a search gives identical results on one core, on
several local processes and on Ray. ``shared`` (a graph, a data set) is sent once per task to local processes
and stored once in Ray's object store. Ray is an optional dependency (``pip install mcuc[search]``), imported
only when ``--ray-address`` is given.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from mcuc.errors import MCUCError

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Workers:
    """Where tasks run: ``jobs`` local processes (1: in this process), or the Ray cluster at ``ray_address``
    ("auto" for a cluster started with ``ray start``, ``ray://host:10001`` for a remote one, "local" for a
    Ray instance started in this process)."""

    jobs: int = 1
    ray_address: str | None = None

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise MCUCError(f"--jobs must be at least 1, got {self.jobs}")

    def describe(self) -> str:
        if self.ray_address:
            return f"Ray cluster at {self.ray_address}"
        return "1 process" if self.jobs == 1 else f"{self.jobs} local processes"


def run_ordered(fn: Callable[[Any, T], R], shared: Any, items: Sequence[T], workers: Workers,
                progress: Callable[[int, int], None] | None = None) -> list[R]:
    """``[fn(shared, item) for item in items]``, computed by ``workers``; ``fn`` must be a module-level function.
    ``progress(done, total)`` after each finished task."""
    total = len(items)
    if workers.ray_address:
        return _run_ray(fn, shared, items, workers.ray_address, progress)
    if workers.jobs == 1 or total <= 1:
        out = []
        for k, item in enumerate(items):
            out.append(fn(shared, item))
            if progress is not None:
                progress(k + 1, total)
        return out
    # spawn: workers start clean (no copied threads of PyTorch or Ray from this process)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers.jobs, total), mp_context=ctx,
                             initializer=_one_thread) as pool:
        futures = [pool.submit(fn, shared, item) for item in items]
        results: list[R] = []
        for k, f in enumerate(futures):
            results.append(f.result())
            if progress is not None:
                progress(k + 1, total)
        return results


def _one_thread() -> None:
    """Worker processes compute with one thread each (numpy's BLAS, PyTorch's OpenMP): N processes on N cores."""
    os.environ["OMP_NUM_THREADS"] = "1"


def _run_ray(fn: Callable[[Any, T], R], shared: Any, items: Sequence[T], address: str,
             progress: Callable[[int, int], None] | None) -> list[R]:
    try:
        import ray  # optional: pip install mcuc[search]
    except ImportError as e:
        raise MCUCError("--ray-address needs Ray, which is not installed: pip install 'mcuc[search]' "
                        "(or use --jobs N for local processes)") from e
    if not ray.is_initialized():
        try:
            ray.init(address=None if address == "local" else address, log_to_driver=False,
                     include_dashboard=False, configure_logging=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise MCUCError(f"cannot connect to the Ray cluster at '{address}' ({e.__class__.__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else ''}); start one with 'ray start --head' "
                            "and pass --ray-address auto, or use --jobs N") from e
    task = ray.remote(num_cpus=1)(fn)
    ref = ray.put(shared)
    pending = [task.remote(ref, item) for item in items]
    if progress is not None:
        remaining, total = list(pending), len(pending)
        while remaining:
            _, remaining = ray.wait(remaining, num_returns=1)
            progress(total - len(remaining), total)
    return list(ray.get(pending))
