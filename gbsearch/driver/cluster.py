"""Dask clients for relaxations: a local cluster of single-threaded worker processes by
default (one LAMMPS instance each), or an existing scheduler / dask-jobqueue cluster."""
from __future__ import annotations

import os

from gbsearch.errors import InputError


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def single_threaded_workers() -> None:
    """Each worker runs one single-threaded LAMMPS; keep BLAS/OpenMP from oversubscribing
    the cores (set in this process's environment, which local worker processes inherit;
    values already set are kept)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def connect(address: str, timeout: str = "5s"):
    """A ``distributed.Client`` of the running scheduler at ``address`` (e.g. ``tcp://host:8786``);
    InputError if it cannot be reached within ``timeout`` (a Dask duration such as "5s")."""
    from distributed import Client

    single_threaded_workers()
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach Dask scheduler {address}: {exc}") from exc


def local_client(workers: int | None = None, memory_limit: str | float | None = "auto",
                 dashboard_address: str | None = None):
    """A ``distributed.Client`` of a fresh LocalCluster: ``workers`` single-threaded worker
    processes (default: the cores this process may use), each with at most ``memory_limit``
    (Dask's "auto": the machine's memory shared out; or e.g. "4GB"); no dashboard unless
    ``dashboard_address`` (e.g. ":8787") is given. Workers are not daemons, so a worker may
    itself start processes."""
    import dask
    from distributed import Client, LocalCluster

    single_threaded_workers()
    with dask.config.set({"distributed.worker.daemon": False, "logging.distributed": "error"}):
        cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                               memory_limit=memory_limit, dashboard_address=dashboard_address, silence_logs=40)
    return Client(cluster)


def get_client(scheduler: str | None = None, workers: int | None = None):
    """A ``distributed.Client``: connected to ``scheduler`` (address such as
    ``tcp://host:8786``) when given, else a fresh LocalCluster of ``workers`` processes."""
    if scheduler:
        return connect(scheduler)
    return local_client(workers)


def n_workers(client) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def planned_workers(client) -> int:
    """Workers the client's scheduler has or is about to have: a dask-jobqueue cluster's
    workers connect only as their jobs start, long after a search has begun, and an adaptive
    one starts workers only for tasks that are waiting, so a search sizes its window of
    submitted trials by the cluster's plan (or its adaptive maximum), not by who is there."""
    cluster = getattr(client, "cluster", None)
    planned = len(getattr(cluster, "plan", ()))
    # cluster.adapt() keeps its Adaptive only as the private _adaptive (distributed 2024-2026).
    maximum = getattr(getattr(cluster, "_adaptive", None), "maximum", 0)
    if maximum == float("inf"):
        maximum = 0
    return max(n_workers(client), planned, int(maximum))


def close_client(client) -> None:
    """Close a client and, when it started one, its local cluster."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
