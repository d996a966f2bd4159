"""Campaign databases on a REAL PostgreSQL server (issue #18): a throw-away cluster in a
temporary folder on a free local port, started once per session with the server binaries
(scripts/ci/postgres.sh installs them in CI). Tiny reference search, tiny diffusion campaign,
two searches writing at once, kill -9 + resume, and the one-line errors of bad URLs."""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gbsearch.driver.reference import run_search
from gbsearch.driver.trials import SearchSettings
from gbsearch.store.database import CampaignDB, masked_url

TINY = SearchSettings(replicates=((1, 1),), n_fixed=7, n_free=4, md_steps=(100, 400))
TINY_CLI = ["--replicate", "1", "1", "--n-fixed", "7", "--n-free", "4", "--md-steps", "100", "400"]
PG_USER = "gbsearch"
PG_PASSWORD = "pg-test-secret"


def _server_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin "
                "or on PATH: run `bash scripts/ci/postgres.sh` as root (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A running throw-away cluster; ``database(name)`` creates a database, returns its URL."""

    def __init__(self, bindir: Path, port: int):
        self.bindir, self.port = bindir, port
        self._made = set()

    def url(self, name: str, password: str = PG_PASSWORD, host: str = "127.0.0.1", port: int | None = None) -> str:
        return f"postgresql://{PG_USER}:{password}@{host}:{port or self.port}/{name}"

    def database(self, name: str) -> str:
        assert name not in self._made, f"database {name} made twice"
        subprocess.run([str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                        "-U", PG_USER, name], check=True, capture_output=True, text=True,
                       env={**os.environ, "PGPASSWORD": PG_PASSWORD})
        self._made.add(name)
        return self.url(name)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL cluster (password auth, scram-sha-256) for the session."""
    bindir = _server_bindir()
    root = Path(tempfile.mkdtemp(prefix="gbsearch-pg-"))
    as_root = os.getuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    pwfile = root / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_root:     # the server refuses to run as root: the cluster belongs to postgres
        for p in (root, pwfile):
            shutil.chown(p, "postgres", "postgres")
    data, log = root / "data", root / "server.log"
    subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "scram-sha-256",
                             f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"],
                   check=True, capture_output=True, text=True)
    started = None
    for _ in range(3):          # a free port may be taken between the probe and the start
        port = _free_port()
        res = subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                                       "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                                       "start"], capture_output=True, text=True)
        if res.returncode == 0:
            started = port
            break
    if started is None:
        pytest.fail(f"could not start PostgreSQL: {res.stdout}{res.stderr}\n{log.read_text() if log.exists() else ''}")
    try:
        yield PostgresServer(bindir, started)
    finally:
        subprocess.run(run_as + [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_reference(postgres, tmp_path_factory, client):
    """A tiny reference search (6 structures) written to a PostgreSQL database."""
    url = postgres.database("reference")
    out = tmp_path_factory.mktemp("pgref") / "ref"
    t0 = time.time()
    outcome = run_search(out, 6, TINY, seed=3, client=client, database=url, progress=False)
    return url, out, outcome, time.time() - t0


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "gbsearch.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_tiny_reference_search_on_postgres(pg_reference, client):
    url, out, outcome, _ = pg_reference
    assert outcome.ok == 6
    assert not (out / "campaign.db").exists()              # written to the server, not a file
    db = CampaignDB(url)
    rows = list(db.rows(source="reference"))
    assert len(rows) == outcome.ok + outcome.failed + outcome.duplicates
    assert len({r.trial for r in rows}) == len(rows)
    ok = [r for r in rows if r.status == "ok"]
    assert len(ok) == 6 and all(0.5 < r.gamma_J_m2 < 5.0 for r in ok)
    atoms = db.atoms(ok[0].id)                             # regions, per-atom energies round-trip
    assert len(atoms.arrays["energy"]) == len(atoms) == ok[0].natoms
    assert set(np.unique(atoms.arrays["region"])) >= {1, 2}
    assert np.isclose(atoms.info["gamma_J_m2"], ok[0].gamma_J_m2)
    # re-running the finished search resumes from the server: nothing to do
    again = run_search(out, 6, TINY, seed=3, client=client, database=url, progress=False)
    assert again.trials_run == 0 and again.ok == 6 and CampaignDB(url).db.count() == len(rows)


def test_tiny_diffusion_campaign_on_postgres(pg_reference, postgres, tmp_path, client):
    from gbsearch.driver.campaign import run_campaign
    from gbsearch.gbmodel.model import load_reference_structures, train_gb_model
    url, *_ = pg_reference
    structures = load_reference_structures(url)            # read back from the server
    assert len(structures) == 6
    res = train_gb_model(structures, tmp_path / "model", steps=30, batch_size=2, base_channels=8,
                         val_every=15, progress=False, lr=1e-3, prediction_type="epsilon")
    assert all(np.isfinite(h["loss"]) for h in res.history if h.get("loss") is not None)
    camp_url = postgres.database("campaign")
    out = tmp_path / "run"
    run_campaign(misorientation=36.87, candidates=3, out=out, model=tmp_path / "model" / "model.pt",
                 database=camp_url, client=client, progress=False)
    assert not (out / "campaign.db").exists()
    db = CampaignDB(camp_url)
    diff = list(db.rows(source="diffusion"))
    assert len(diff) == 3 and len({r.trial for r in diff}) == 3
    assert {r.status for r in diff} <= {"ok", "failed", "duplicate"}
    table = pd.read_csv(out / "table.csv")
    assert len(table[table.source == "diffusion"]) == 3 and len(table) == db.db.count()


def test_two_searches_write_the_same_database_at_once(postgres, tmp_path):
    """Two processes, one fresh database (both create its tables at once), named searches:
    each ends with exactly its target, no row lost or written twice."""
    url = postgres.database("shared")
    procs = {name: subprocess.Popen([sys.executable, "-m", "gbsearch.cli", "reference", "--structures", "5",
                                     "--out", str(tmp_path / name), "--workers", "1", "--seed", str(seed),
                                     "--database", url, "--search", name, *TINY_CLI],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name, seed in (("a", 1), ("b", 2))}
    for name, p in procs.items():
        _, err = p.communicate(timeout=400)
        assert p.returncode == 0, f"search {name}: {err}"
    db = CampaignDB(url)
    rows = list(db.rows())
    keys = [(r.source, r.search, r.trial) for r in rows]
    assert len(keys) == len(set(keys))                      # no (source, search, trial) twice
    for name in ("a", "b"):
        mine = [r for r in rows if r.search == name]
        assert db.count("reference", "ok", search=name) == 5
        assert sorted(r.trial for r in mine) == list(range(len(mine)))   # trials 0..n-1: none lost
        for r in mine:
            if r.get("duplicate_of") is not None:          # de-duplication within the own search
                assert db.db.get(id=r.duplicate_of).search == name
    assert len(rows) == db.db.count()


_WRITER = """
import sys
from gbsearch.store.database import CampaignDB
url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = CampaignDB(url)
ids = [db.record("reference", i, {"status": "failed", "spec": {}, "error": "test"}, search=name)[0] for i in range(n)]
print(" ".join(map(str, ids)))
"""


def test_concurrent_writers_get_their_own_row_ids(postgres):
    """CampaignDB.record returns the id of the row it wrote even while another process
    writes (ase-db-backends' own last-id query returns the latest id of any connection)."""
    url = postgres.database("writers")
    CampaignDB(url)
    procs = {name: subprocess.Popen([sys.executable, "-c", _WRITER, url, name, "300"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for name in ("x", "y")}
    ids = {}
    for name, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        ids[name] = [int(i) for i in out.split()]
    db = CampaignDB(url)
    assert db.db.count() == 600
    for name, got in ids.items():
        assert len(set(got)) == 300
        rows = {r.id: r for r in db.rows(search=name)}
        assert set(got) == set(rows)
        assert [rows[i].trial for i in got] == list(range(300))


def test_processes_opening_a_fresh_database_at_once(postgres):
    """Each creates ASE's tables if missing; the ones that lose that race must open it anyway."""
    url = postgres.database("fresh")
    code = "import sys; from gbsearch.store.database import CampaignDB; print(CampaignDB(sys.argv[1]).db.count())"
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["0"] * 4


def test_kill_9_and_resume_on_postgres_lose_nothing(postgres, tmp_path):
    url = postgres.database("killed")
    cmd = [sys.executable, "-m", "gbsearch.cli", "reference", "--structures", "10", "--out", str(tmp_path / "ref"),
           "--workers", "1", "--database", url, *TINY_CLI]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    count = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            count = CampaignDB(url).db.count()
        except Exception:          # the tables may not exist yet
            count = 0
        if count >= 3:
            break
        time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r.id: r.trial for r in CampaignDB(url).rows()}
    assert 3 <= len(before) and CampaignDB(url).count("reference") < 10
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stderr
    db = CampaignDB(url)
    after = {r.id: r.trial for r in db.rows(source="reference")}
    assert all(after.get(i) == t for i, t in before.items())   # nothing lost
    assert len(set(after.values())) == len(after)                # no trial twice
    assert db.count("reference", "ok") == 10


@pytest.mark.parametrize("bad, cause", [
    ("password", "password authentication failed"),
    ("database", 'database "no_such_db" does not exist'),
    ("host", "could not translate host name"),
    ("port", "Connection refused"),
])
def test_bad_url_gives_one_clear_line(postgres, tmp_path, bad, cause):
    url = {"password": postgres.url("reference", password="wrong-pw"),
           "database": postgres.url("no_such_db"),
           "host": postgres.url("reference", host="no-such-host.invalid"),
           "port": postgres.url("reference", port=_free_port())}[bad]
    res = _cli("reference", "--structures", "1", "--out", str(tmp_path / "ref"), "--workers", "1",
               "--database", url, *TINY_CLI, timeout=120)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"error: cannot open campaign database {masked_url(url)}: ")
    assert cause in lines[0]
    assert "***" in lines[0] and "wrong-pw" not in res.stderr and PG_PASSWORD not in res.stderr


def test_masked_url():
    assert masked_url("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert masked_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert masked_url("runs/x/campaign.db") == "runs/x/campaign.db"
