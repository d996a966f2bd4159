"""YAML configuration files of ``workflows/``: Dask clusters and campaigns.

``load_cluster(path)`` turns ``dask-local.yaml`` / ``dask-scheduler.yaml`` / ``dask-slurm.yaml``
into a connected ``distributed.Client``; campaign files (``campaign.yaml``) are read by
:func:`gbsearch.driver.config.load_campaign_config` with :func:`read_yaml` from here.
Campaign and scheduler files may use ``${VAR}`` to pull secrets (a database password) from the
environment; slurm files are left alone, as their shell lines are expanded in the batch job.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from gbsearch.errors import InputError

CLUSTER_TYPES = ("local", "scheduler", "slurm")

LOCAL_KEYS = {"type", "n_workers", "memory_limit", "dashboard_address"}
SCHEDULER_KEYS = {"type", "address", "timeout"}
SLURM_SCALE_KEYS = {"jobs", "minimum_jobs", "maximum_jobs"}
# SLURMCluster keyword arguments accepted here (dask-jobqueue 0.8/0.9).
SLURM_KEYS = {"type", "cores", "processes", "memory", "walltime", "queue", "account", "job_cpu", "job_mem",
              "job_extra_directives", "job_directives_skip", "job_script_prologue", "local_directory",
              "log_directory", "interface", "worker_extra_args", "death_timeout", "name", "shebang",
              "python", "scheduler_options", "nanny", "job_name"} | SLURM_SCALE_KEYS


def _expand(path, value):
    """``${VAR}`` from the environment, in strings of any depth; an unset one is an error."""
    if isinstance(value, str):
        def sub(m):
            if m.group(1) not in os.environ:
                raise InputError(f"{path}: environment variable {m.group(1)} is not set")
            return os.environ[m.group(1)]
        return re.sub(r"\$\{(\w+)\}", sub, value)
    if isinstance(value, list):
        return [_expand(path, v) for v in value]
    if isinstance(value, dict):
        return {k: _expand(path, v) for k, v in value.items()}
    return value


def read_yaml(path: str | Path, expand: bool = True) -> dict:
    """A YAML mapping, with ``${VAR}`` expanded unless ``expand`` is False; InputError otherwise."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read configuration {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a mapping of keys to values, not {type(data).__name__}")
    return _expand(path, data) if expand else data


def _check_keys(path, data: dict, allowed: set, what: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InputError(f"{path}: unknown key(s) {', '.join(map(str, unknown))} for {what}; "
                         f"allowed: {', '.join(sorted(allowed))}")


def _check_type(path, key, value, types) -> None:
    if value is None:
        return
    # bool is an int in Python, but "workers: yes" is still a mistake.
    if isinstance(value, bool) or not isinstance(value, types):
        name = "a number" if float in types else {int: "an integer", str: "a string", list: "a list"}[types[0]]
        raise InputError(f"{path}: {key} must be {name}, got {value!r}")


def _cluster_type(path, data: dict) -> str:
    kind = data.get("type")
    if kind not in CLUSTER_TYPES:
        raise InputError(f"{path}: type must be one of {', '.join(CLUSTER_TYPES)}, got {kind!r}")
    return kind


def slurm_cluster(path: str | Path):
    """The ``dask_jobqueue.SLURMCluster`` of a slurm file, built but not scaled (no job submitted)."""
    data = read_yaml(path, expand=False)
    if _cluster_type(path, data) != "slurm":
        raise InputError(f"{path} does not describe a slurm cluster")
    _check_keys(path, data, SLURM_KEYS, "a slurm cluster")
    for key in ("cores", "processes", *SLURM_SCALE_KEYS):
        _check_type(path, key, data.get(key), (int,))
    for key in ("job_extra_directives", "job_script_prologue", "job_directives_skip", "worker_extra_args"):
        _check_type(path, key, data.get(key), (list,))
    cores, processes = data.get("cores", 1), data.get("processes", data.get("cores", 1))
    # One LAMMPS per worker process, and LAMMPS is not meant to share a process between threads.
    if cores != processes:
        raise InputError(f"{path}: each worker process runs one single-threaded relaxation: "
                         f"set processes equal to cores (got cores={cores}, processes={processes})")
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise InputError(f"{path} needs dask-jobqueue: pip install dask-jobqueue "
                         f"(or pip install 'gbsearch[slurm]')") from exc
    kwargs = {k: v for k, v in data.items() if k not in SLURM_SCALE_KEYS | {"type"} and v is not None}
    kwargs.setdefault("processes", processes)
    # Workers must not spread BLAS/OpenMP threads over the cores of their neighbours.
    prologue = list(kwargs.get("job_script_prologue") or [])
    if not any("OMP_NUM_THREADS" in line for line in prologue):
        prologue.insert(0, "export OMP_NUM_THREADS=1")
    kwargs["job_script_prologue"] = prologue
    try:
        return SLURMCluster(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: dask-jobqueue rejects the settings: {exc}") from exc


def load_cluster(path: str | Path):
    """A ``distributed.Client`` for the cluster file at ``path`` (see ``workflows/``)."""
    from distributed import Client

    from gbsearch.driver.cluster import connect, local_client, single_threaded_workers

    data = read_yaml(path, expand=False)
    kind = _cluster_type(path, data)
    if kind != "slurm":
        data = _expand(path, data)
    single_threaded_workers()
    if kind == "local":
        _check_keys(path, data, LOCAL_KEYS, "a local cluster")
        _check_type(path, "n_workers", data.get("n_workers"), (int,))
        if data.get("n_workers") is not None and data["n_workers"] < 1:
            raise InputError(f"{path}: n_workers must be at least 1, got {data['n_workers']}")
        return local_client(data.get("n_workers"), memory_limit=data.get("memory_limit") or "auto",
                            dashboard_address=data.get("dashboard_address"))
    if kind == "scheduler":
        _check_keys(path, data, SCHEDULER_KEYS, "a scheduler connection")
        address = data.get("address")
        _check_type(path, "address", address, (str,))
        if not address:
            raise InputError(f"{path}: address of the Dask scheduler is missing (tcp://host:8786)")
        return connect(address, timeout=str(data.get("timeout") or "30s"))
    cluster = slurm_cluster(path)
    if data.get("minimum_jobs") is not None or data.get("maximum_jobs") is not None:
        keep_jobs(cluster, data.get("minimum_jobs") or 0, data.get("maximum_jobs") or 1)
    else:
        keep_jobs(cluster, data.get("jobs") or 1, data.get("jobs") or 1)
    return Client(cluster)


def keep_jobs(cluster, minimum_jobs: int, maximum_jobs: int):
    """Adaptive scaling of a dask-jobqueue cluster between ``minimum_jobs`` and ``maximum_jobs``
    that also resubmits jobs that ended under it (``scancel``, walltime, a failed node).

    ``cluster.scale(jobs=N)`` never does that and plain ``cluster.adapt`` only by chance (on a
    real SLURM, issue #18: adapt resubmitted a cancelled job in one of two tries): a lost job
    stays in the cluster's plan, so the plan looks full and nothing is submitted; once every
    job has reached its walltime, a search would wait for workers forever. The lost job's running trial itself is not lost: the scheduler gives it
    to another worker (``distributed.scheduler.allowed-failures`` times).
    """
    from distributed.deploy import Adaptive

    class KeepJobs(Adaptive):
        async def recommendations(self, target: int) -> dict:
            rec = await super().recommendations(target)
            # Planned workers without a job: lost ones, dropped by the cluster
            # (distributed.deploy.lost-worker-timeout after their worker left); scaling to
            # the plan again submits a job for each.
            if rec["status"] == "same" and self.plan - self.requested:
                return {"status": "up", "n": len(self.plan)}
            return rec

    return cluster.adapt(Adaptive=KeepJobs, minimum_jobs=minimum_jobs, maximum_jobs=maximum_jobs)
