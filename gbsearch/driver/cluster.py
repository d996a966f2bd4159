"""Dask clients for relaxations: a local cluster of single-threaded worker processes by
default (one LAMMPS instance each), or an existing scheduler / dask-jobqueue cluster."""
from __future__ import annotations

import os

from gbsearch.errors import InputError


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def get_client(scheduler: str | None = None, workers: int | None = None):
    """A ``distributed.Client``: connected to ``scheduler`` (address such as
    ``tcp://host:8786``) when given, else a fresh LocalCluster of ``workers`` processes."""
    import dask
    from distributed import Client, LocalCluster

    # Each worker runs one single-threaded LAMMPS; keep BLAS/OpenMP from oversubscribing.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if scheduler:
        try:
            return Client(scheduler, timeout="5s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach Dask scheduler {scheduler}: {exc}") from exc
    n = workers or default_workers()
    with dask.config.set({"distributed.worker.daemon": False, "logging.distributed": "error"}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
    return Client(cluster)


def n_workers(client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def close_client(client) -> None:
    """Close a client and, when it started one, its local cluster."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
