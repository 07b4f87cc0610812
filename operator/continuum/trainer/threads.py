"""How many threads the trainer's native code (OpenMP, BLAS) runs: the CPUs the pod is granted.

HistGradientBoosting fits with OpenMP. Left alone, OpenMP starts one thread per CPU of the
*node* and spins between parallel regions: on this project's 2-CPU test machine under load
(load average 7), fitting 1,600 rows x 4 features (100 iterations) took 13.7-21.9 s with two
spinning threads against 0.16 s with one thread and 0.30 s with two passive ones. So the
package sets ``OMP_WAIT_POLICY=PASSIVE`` before scikit-learn loads its OpenMP runtime
(``continuum/trainer/__init__.py``) and every fit runs under :func:`cpu_limited`: as many
threads as the cgroup's CPU quota allows (the affinity lists every CPU of the node).

The thread count is recorded in the manifest: HistGradientBoosting sums gradients with a
parallel reduction, so its model bytes are reproducible for the same thread count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from continuum.workload import available_cpus

__all__ = ["available_cpus", "cpu_limited"]


@contextmanager
def cpu_limited(threads: int) -> Iterator[None]:
    """OpenMP and BLAS held to ``threads`` while the block runs."""
    with threadpool_limits(limits=threads):
        yield
