"""Reference searches on a REAL SLURM (issue #18): dask-jobqueue's SLURMCluster from
workflows/dask-slurm.yaml submits the Dask workers as batch jobs to a throw-away single-node
SLURM (slurmctld and slurmd on this host, started by scripts/ci/slurm.sh, which
scripts/test.sh runs). A tiny search through `gbsearch reference --cluster`, and one worker job
cancelled with scancel in mid-search. No mocks; skipped with the reason when there is no SLURM."""
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from gbsearch.driver.cluster import close_client, planned_workers
from gbsearch.driver.reference import run_search
from gbsearch.driver.trials import SearchSettings
from gbsearch.driver.workflow_files import load_cluster
from gbsearch.store.database import CampaignDB

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
SLURM_DIR = Path(os.environ.get("GBSEARCH_SLURM_DIR", "/tmp/gbsearch-slurm"))
TINY_CLI = ["--replicate", "1", "1", "--n-fixed", "7", "--n-free", "4", "--md-steps", "100", "400"]
# Trials of about a second (tiny slab, longer MD): long enough that a job cancelled while its
# worker holds a trial dies with the trial unfinished.
SLOWER = SearchSettings(replicates=((1, 1),), n_fixed=7, n_free=4, md_steps=(1500, 3000))


@pytest.fixture(scope="module")
def slurm():
    """The running SLURM of scripts/ci/slurm.sh: its $DIR/env (SLURM_CONF, partition), with
    SLURM_CONF set for sbatch/squeue/scancel here and, through sbatch, in the worker jobs."""
    pytest.importorskip("dask_jobqueue")
    if (SLURM_DIR / "unavailable").exists():
        pytest.skip(f"no SLURM: {(SLURM_DIR / 'unavailable').read_text().strip()}")
    env_file = SLURM_DIR / "env"
    if not env_file.exists() or shutil.which("sbatch") is None:
        pytest.skip("no SLURM: run `bash scripts/ci/slurm.sh` first (as root: it installs slurm-wlm "
                    "and munge and starts slurmctld and slurmd on this host)")
    env = dict(line.split("=", 1) for line in env_file.read_text().split())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", env["SLURM_CONF"])
        res = subprocess.run(["sinfo", "-h", "-N", "-p", env["GBSEARCH_SLURM_PARTITION"], "-o", "%T"],
                             capture_output=True, text=True, timeout=30)
        if res.returncode != 0 or res.stdout.split()[:1] not in (["idle"], ["mixed"], ["allocated"]):
            pytest.fail(f"the SLURM of {env_file} is not up (sinfo: {res.stdout.strip() or res.stderr.strip()}); "
                        "run `bash scripts/ci/slurm.sh` again")
        yield env


def _cluster_file(tmp_path: Path, slurm: dict, job_name: str, jobs: int) -> Path:
    """workflows/dask-slurm.yaml with what a user edits for this machine: the partition,
    memory and walltime that fit the one node, the job name, a log folder, and no venv to
    source (the workers run this test's Python, dask-jobqueue's default)."""
    data = yaml.safe_load((WORKFLOWS / "dask-slurm.yaml").read_text())
    data.update(queue=slurm["GBSEARCH_SLURM_PARTITION"], memory="1GB", walltime="00:10:00",
                job_name=job_name, log_directory=str(tmp_path / "logs"), local_directory=str(tmp_path),
                job_script_prologue=["export OMP_NUM_THREADS=1"], jobs=jobs)
    path = tmp_path / "dask-slurm.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _running_jobs(job_name: str) -> set:
    res = subprocess.run(["squeue", "-h", "-n", job_name, "-t", "RUNNING", "-o", "%i"],
                         capture_output=True, text=True, timeout=30, check=True)
    return set(res.stdout.split())


def _wait_no_jobs(job_name: str, timeout: float = 60) -> None:
    """The cluster's jobs leave the queue once the cluster is closed (scancel)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        res = subprocess.run(["squeue", "-h", "-n", job_name, "-o", "%i %T"], capture_output=True,
                             text=True, timeout=30, check=True)
        if not res.stdout.strip():
            return
        time.sleep(0.5)
    pytest.fail(f"jobs of {job_name} still queued {timeout:.0f} s after the cluster closed: {res.stdout}")


def test_cli_reference_search_runs_on_slurm_workers(tmp_path, slurm):
    name = f"gbsearch-test-{os.getpid()}-cli"
    out = tmp_path / "ref"
    cmd = [sys.executable, "-m", "gbsearch.cli", "reference", "--structures", "4", "--out", str(out),
           "--cluster", str(_cluster_file(tmp_path, slurm, name, jobs=2)), *TINY_CLI]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = set()
    while proc.poll() is None:            # the worker jobs, as SLURM sees them during the search
        seen |= _running_jobs(name)
        time.sleep(0.3)
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr
    assert "ground state: [n] =" in stdout
    db = CampaignDB(out / "campaign.db")
    assert db.count("reference", "ok") == 4
    trials = [r.trial for r in db.rows(source="reference")]
    assert len(trials) == len(set(trials))
    assert len(seen) == 2, f"expected the 2 worker jobs of {name} in squeue, saw {sorted(seen)}"
    for job in seen:            # each job's worker connected to the search's scheduler
        log = (tmp_path / "logs" / f"{name}-{job}.err").read_text()
        assert "Registered to:" in log, log[-2000:]
    _wait_no_jobs(name)         # the jobs end with the command


def _cancel_busy_job(client, db_path: Path, timeout: float = 120) -> tuple[str, str]:
    """Once the search has recorded a trial, scancel the job of a worker that holds a trial;
    (worker address, job id)."""
    cluster = client.cluster
    deadline = time.time() + timeout
    while time.time() < deadline:
        if db_path.exists() and CampaignDB(db_path).db.count() >= 1:
            for addr, keys in client.processing().items():
                if any(str(k).startswith("trial-") for k in keys):
                    name = client.scheduler_info()["workers"][addr]["name"]
                    job = cluster.workers[name].job_id
                    subprocess.run(["scancel", job], check=True, timeout=30)
                    return addr, job
        time.sleep(0.05)
    pytest.fail(f"no trial recorded and running on a worker within {timeout:.0f} s")


def _retried_trials(client) -> set:
    """Trials whose worker was lost while it held them and that ran again to the end: in the
    scheduler's transition log, processing -> released by the cleanup of a lost worker, and
    processing -> memory later."""
    def log(dask_scheduler):
        return [(str(k), start, finish, stim) for k, start, finish, _, stim, *_ in dask_scheduler.transition_log]
    lost, done = {}, set()
    for i, (key, start, finish, stim) in enumerate(client.run_on_scheduler(log)):
        m = re.fullmatch(r"trial-(\d+)-[0-9a-f]+", key)
        if m and start == "processing" and finish == "released" and stim.startswith("handle-worker-cleanup"):
            lost.setdefault(int(m.group(1)), i)
        elif m and start == "processing" and finish == "memory" and int(m.group(1)) in lost:
            done.add(int(m.group(1)))
    return done


def test_scancel_of_a_worker_job_loses_nothing(tmp_path, slurm):
    name = f"gbsearch-test-{os.getpid()}-scancel"
    out = tmp_path / "ref"
    client = load_cluster(_cluster_file(tmp_path, slurm, name, jobs=2))
    try:
        # Before any job runs: the search still fills both jobs' workers from the start.
        assert planned_workers(client) == 2
        client.wait_for_workers(2, timeout=120)
        first_jobs = _running_jobs(name)
        outcome = {}

        def search():
            try:
                outcome["result"] = run_search(out, 8, SLOWER, seed=3, client=client, progress=False)
            except BaseException as exc:     # shown by the assertion below
                outcome["error"] = exc
        thread = threading.Thread(target=search, daemon=True)
        thread.start()
        _, victim = _cancel_busy_job(client, out / "campaign.db")
        thread.join(timeout=180)
        assert not thread.is_alive(), "the search did not finish within 180 s of the scancel"
        assert "error" not in outcome, repr(outcome.get("error"))
        assert outcome["result"].ok == 8

        db = CampaignDB(out / "campaign.db")
        rows = list(db.rows(source="reference"))
        trials = [r.trial for r in rows]
        assert len(trials) == len(set(trials)), "a trial recorded twice"
        assert db.count("reference", "ok") == 8
        assert not [r for r in rows if r.status == "failed"], [r.get("error") for r in rows]
        retried = _retried_trials(client)
        assert retried, f"no trial was running on job {victim} when it was cancelled"
        assert retried <= set(trials), f"retried trials {sorted(retried)} missing from the database"

        # The lost job is replaced: a new job's worker joins (lost-worker-timeout, 15 s, + start).
        deadline = time.time() + 90
        while time.time() < deadline:
            now = _running_jobs(name)
            if victim not in now and now - first_jobs and len(client.scheduler_info()["workers"]) == 2:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"job {victim} was not replaced: running {sorted(_running_jobs(name))}, before {sorted(first_jobs)}")
    finally:
        close_client(client)
    _wait_no_jobs(name)
