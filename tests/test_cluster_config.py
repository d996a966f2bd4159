"""workflows/*.yaml: campaign file validation and real Dask clusters (local, external scheduler)."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from gbsearch.driver.config import load_campaign_config, setting_names
from gbsearch.driver.workflow_files import load_cluster, slurm_cluster
from gbsearch.errors import InputError

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _variant(tmp_path, example, **changes):
    """An example file from workflows/ with some keys changed."""
    data = yaml.safe_load((WORKFLOWS / example).read_text())
    data.update(changes)
    return _write(tmp_path, example, data)


def test_example_campaign_sets_every_documented_key():
    cfg = load_campaign_config(WORKFLOWS / "campaign.yaml")
    assert set(cfg) == set(setting_names())
    assert cfg["misorientation"] == pytest.approx(36.87) and cfg["candidates"] == 24
    assert cfg["relax_ftol"] == pytest.approx(1e-10) and cfg["relax_maxiter"] == 10000
    assert cfg["model"] is None and cfg["out"] == "runs/sigma5-001"


@pytest.mark.parametrize("text, message", [
    ("candiates: 24\n", "unknown key(s) candiates"),
    ("candidates: '24'\n", "candidates must be an integer, got '24'"),
    ("workers: yes\n", "workers must be an integer"),
    ("misorientation: [36.87]\n", "misorientation must be a number"),
    ("candidates: 0\n", "candidates must be at least 1"),
    ("relax_ftol: -1.0e-8\n", "relax_ftol must not be negative"),
    ("scheduler: tcp://a:1\ncluster: workflows/dask-local.yaml\n", "either scheduler or cluster"),
    ("- misorientation: 36.87\n", "must hold a mapping"),
    ("misorientation: [36.87\n", "not valid YAML"),
    ("database: postgresql://gb:${GBSEARCH_TEST_UNSET_PW}@h/db\n", "GBSEARCH_TEST_UNSET_PW is not set"),
])
def test_campaign_config_errors(tmp_path, text, message):
    with pytest.raises(InputError) as err:
        load_campaign_config(_write(tmp_path, "c.yaml", text))
    assert message in str(err.value)


def test_campaign_config_expands_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GBSEARCH_TEST_PW", "s3cret")
    cfg = load_campaign_config(_write(tmp_path, "c.yaml", "database: postgresql://gb:${GBSEARCH_TEST_PW}@h:5432/db\n"
                                                          "misorientation: 36.87\n"))
    assert cfg == {"database": "postgresql://gb:s3cret@h:5432/db", "misorientation": 36.87}
    with pytest.raises(InputError, match="cannot read configuration"):
        load_campaign_config(tmp_path / "missing.yaml")


def test_local_cluster_has_single_threaded_worker_processes(tmp_path):
    client = load_cluster(_variant(tmp_path, "dask-local.yaml", n_workers=1, memory_limit="1GB"))
    try:
        assert list(client.nthreads().values()) == [1]
        assert client.submit(os.getpid, pure=False).result(timeout=60) != os.getpid()    # processes, not threads
        assert client.submit(os.environ.get, "OMP_NUM_THREADS").result(timeout=60) == "1"
    finally:
        client.close()
        client.cluster.close()
    with pytest.raises(InputError, match="unknown key.*threads_per_worker"):
        load_cluster(_variant(tmp_path, "dask-local.yaml", threads_per_worker=2))
    with pytest.raises(InputError, match="type must be one of local, scheduler, slurm"):
        load_cluster(_write(tmp_path, "x.yaml", {"type": "kubernetes"}))


def test_scheduler_file_connects_to_running_scheduler(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    bindir = os.path.dirname(sys.executable)
    sched = subprocess.Popen([os.path.join(bindir, "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                              "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([os.path.join(bindir, "dask"), "worker", address, "--nthreads", "1",
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = load_cluster(_variant(tmp_path, "dask-scheduler.yaml", address=address))
        try:
            client.wait_for_workers(1, timeout=60)
            assert client.submit(sum, [40, 2]).result(timeout=60) == 42
            assert client.submit(os.getpid, pure=False).result(timeout=60) not in (os.getpid(), sched.pid)
        finally:
            client.close()
    finally:
        for proc in (worker, sched):
            proc.terminate()
            proc.wait(timeout=30)
    t0 = time.time()
    with pytest.raises(InputError, match="cannot reach Dask scheduler tcp://127.0.0.1:9"):
        load_cluster(_variant(tmp_path, "dask-scheduler.yaml", address="tcp://127.0.0.1:9", timeout="2s"))
    assert time.time() - t0 < 30


def test_slurm_without_dask_jobqueue_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)      # import now fails as if not installed
    with pytest.raises(InputError, match=r"needs dask-jobqueue: pip install dask-jobqueue"):
        load_cluster(WORKFLOWS / "dask-slurm.yaml")


def test_slurm_job_script_has_configured_directives(tmp_path):
    pytest.importorskip("dask_jobqueue")
    cluster = slurm_cluster(_variant(tmp_path, "dask-slurm.yaml", job_script_prologue=["module load gcc"]))
    try:
        script = cluster.job_script()           # built, never submitted: no sbatch needed
    finally:
        cluster.close()
    for line in ("#SBATCH -p normal", "#SBATCH --qos=normal", "#SBATCH --hint=nomultithread",
                 "#SBATCH -t 04:00:00", "#SBATCH --cpus-per-task=1", "#SBATCH --mem=4G",
                 "export OMP_NUM_THREADS=1", "module load gcc", "--nthreads 1"):
        assert line in script, line
    with pytest.raises(InputError, match="set processes equal to cores"):
        slurm_cluster(_variant(tmp_path, "dask-slurm.yaml", cores=4, processes=1))
    with pytest.raises(InputError, match="unknown key.*partition"):
        slurm_cluster(_variant(tmp_path, "dask-slurm.yaml", partition="gpu"))


def test_reference_cluster_file_excludes_scheduler_and_workers(tmp_path):
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--out", str(tmp_path / "ref"),
                          "--cluster", str(WORKFLOWS / "dask-local.yaml"), "--workers", "2"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "give either --cluster or --scheduler/--workers, not both" in res.stderr
    assert not (tmp_path / "ref").exists()          # refused before anything is written
