"""report.html of a tiny real reference search (real LAMMPS, real OVITO), checked in real
headless Chromium: the script runs, the table matches table.csv, sorting works, images show."""
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gbsearch.driver.reference import run_search
from gbsearch.driver.trials import SearchSettings

TINY = SearchSettings(replicates=((1, 1),), n_fixed=7, n_free=4, md_steps=(100, 400))
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]


def chromium(url, *args):
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: these tests need headless Chromium; "
                    "install it with `bash scripts/ci/chromium.sh` (scripts/test.sh does)")
    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, url],
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


class Dom(HTMLParser):
    """What the tests read from a dumped DOM: body attributes, images, the structure table."""

    def __init__(self, text):
        super().__init__()
        self.body, self.imgs, self.columns, self.rows, self.table = {}, [], [], [], {}
        self.h1, self._in_table, self._row, self._h1 = "", False, None, False
        self.scripts = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "script":
            self.scripts += 1
        elif tag == "h1":
            self._h1 = True
        elif tag == "table" and a.get("id") == "structures":
            self._in_table, self.table = True, a
        elif self._in_table and tag == "th":
            self.columns.append(a["data-column"])
        elif self._in_table and tag == "tr":
            self._row = []
        elif self._in_table and tag == "td":
            self._row.append(a["data-value"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif tag == "tr" and self._row:
            self.rows.append(self._row)
            self._row = None
        elif tag == "h1":
            self._h1 = False

    def handle_data(self, data):
        if self._h1:
            self.h1 += data

    def column(self, name):
        return [r[self.columns.index(name)] for r in self.rows]


def dom(path, query="", *args):
    return Dom(chromium(path.as_uri() + query, "--dump-dom", *args))


@pytest.fixture(scope="module")
def folder(tmp_path_factory, client):
    """A 4-structure reference search, reported through the reference CLI's report path."""
    from gbsearch.cli.reference_commands import _report

    out = tmp_path_factory.mktemp("ref")
    run_search(out, 4, TINY, seed=3, client=client, progress=False)
    _report(out)
    assert (out / "report.html").is_file()
    return out


def test_page_script_runs_without_errors_and_images_load(folder):
    d = dom(folder / "report.html")
    assert d.body.get("data-report-ready") == "1"
    assert d.body.get("data-js-errors") == "0"
    srcs = [i["src"] for i in d.imgs]
    # γ–[n], convergence, and side + plan view of each of the 3 best structures
    assert "gamma_n.png" in srcs and "convergence.png" in srcs
    assert sorted(s for s in srcs if s.startswith("report_render/")) == sorted(
        f"report_render/{p.name}" for p in (folder / "report_render").glob("*.png"))
    assert len(srcs) == 2 + 2 * 3
    assert all(int(i["data-natural-width"]) > 0 for i in d.imgs), d.imgs
    assert all(not s.startswith(("/", "http", "file:")) for s in srcs)      # relative: the folder moves


def test_table_has_exactly_the_rows_of_table_csv(folder):
    d = dom(folder / "report.html")
    csv = pd.read_csv(folder / "table.csv")
    assert d.columns == list(csv.columns)
    assert [int(v) for v in d.column("id")] == csv.id.tolist()
    assert np.allclose([float(v) for v in d.column("gamma_J_m2")], csv.gamma_J_m2)


@pytest.mark.parametrize("column", ["gamma_J_m2", "id"])
def test_sorting_by_a_column_both_ways(folder, column):
    csv = pd.read_csv(folder / "table.csv")
    want = csv.sort_values(column).id.tolist()
    assert want != want[::-1]
    up = dom(folder / "report.html", f"?sort={column}")
    down = dom(folder / "report.html", f"?sort={column}&order=desc")
    assert up.table.get("data-sorted-by") == f"{column} ascending"
    assert down.table.get("data-sorted-by") == f"{column} descending"
    assert [int(v) for v in up.column("id")] == want
    assert [int(v) for v in down.column("id")] == want[::-1]
    vals = [float(v) for v in up.column(column)]
    assert vals == sorted(vals)


def _box(img, crop):
    x, y, w, h = (int(v) for v in crop["data-box"].split(","))
    a = np.asarray(img.convert("L"), dtype=float)[y:y + h, x:x + w] / 255.0
    assert a.shape[0] > 50 and a.shape[1] > 50, crop
    return a


def test_screenshot_shows_the_plot_and_the_renders(folder, tmp_path):
    shot = tmp_path / "report.png"
    chromium((folder / "report.html").as_uri(), f"--screenshot={shot}", "--window-size=1280,4000")
    d = dom(folder / "report.html", "", "--window-size=1280,4000")   # same window: same layout (boxes are CSS px)
    img = Image.open(shot)
    assert img.size == (1280, 4000)
    whole = np.asarray(img.convert("L"), dtype=float) / 255.0
    assert whole.std() > 0.05
    by_src = {i["src"]: i for i in d.imgs}
    plot = _box(img, by_src["gamma_n.png"])
    assert plot.std() > 0.1 and (plot < 0.5).mean() > 0.005           # axes, labels, points
    render = _box(img, next(i for s, i in by_src.items() if s.endswith("_side.png")))
    assert render.std() > 0.1 and (render < 0.9).mean() > 0.05        # atoms, not a white box


def test_render_failure_leaves_a_note_and_best_zero_renders_nothing(folder, tmp_path):
    from gbsearch.analysis.html_report import write_html_report
    from gbsearch.store.database import CampaignDB

    empty = tmp_path / "empty"
    empty.mkdir()
    shutil.copy(folder / "reference_settings.json", empty)
    path = write_html_report(empty, CampaignDB(empty / "campaign.db"), best=2)   # no ok rows to render
    text = path.read_text()
    assert "Renders failed: InputError: no structures with status &#x27;ok&#x27;" in text
    d = dom(path)
    assert d.body.get("data-report-ready") == "1" and d.body.get("data-js-errors") == "0"
    assert d.rows == [] and d.imgs == []

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("report_render", "report.html"))
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "report", str(copy), "--best", "0"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert not (copy / "report_render").exists()
    d = dom(copy / "report.html")
    assert d.body.get("data-report-ready") == "1"
    assert sorted(i["src"] for i in d.imgs) == ["convergence.png", "gamma_n.png"]
    assert len(d.rows) == len(pd.read_csv(copy / "table.csv"))


def test_text_is_escaped(folder, tmp_path):
    from gbsearch.analysis.html_report import write_html_report

    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("report_render", "report.html"))
    evil = '<script>document.body.setAttribute("data-report-ready", "pwned")</script> & "Σ5"'
    (copy / "summary.txt").write_text(evil)
    d = dom(write_html_report(copy, best=0, title=evil))
    assert d.h1 == evil
    assert d.scripts == 1 and d.body.get("data-report-ready") == "1"
