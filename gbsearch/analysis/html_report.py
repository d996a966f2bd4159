"""``report.html``: one static page per campaign or reference folder (issue #18).

The page needs no server and no network: CSS and JavaScript are inline, images are files of
the folder referenced by relative paths. It shows the γ–[n] plot, the structure table
(sortable by clicking a column header), OVITO renders of the ``best`` lowest-γ structures
(a failed render leaves a note, not a broken report), the settings and provenance
(``campaign.json`` / ``reference_settings.json``), the summary and, where the folder has
one, the reference search's convergence status (``convergence.json`` / ``convergence.png``).

The script marks the page when it has run: ``<body data-report-ready="1">``, each image's
``data-natural-width`` once loaded (0 if it failed) and ``data-js-errors`` (count of errors
seen by ``window.onerror``). ``report.html?sort=COLUMN`` (``&order=desc``) sorts on load, as a
click on the header would; the tests use both.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pandas as pd

REPORT_NAME = "report.html"
RENDER_DIR = "report_render"          # the report's own renders; `gbsearch render` writes render/
SETTINGS_FILES = ("campaign.json", "reference_settings.json")

_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; font-size: .85em; }
.note { background: #fff4e0; border-left: 4px solid #e8a33d; padding: .4em .8em; }
table.data { border-collapse: collapse; font-size: .8em; }
table.data th, table.data td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
table.data th { background: #eef; cursor: pointer; user-select: none; position: sticky; top: 0; }
table.data th[aria-sort=ascending]::after { content: " \\25B2"; }
table.data th[aria-sort=descending]::after { content: " \\25BC"; }
.tablewrap { max-height: 36em; overflow: auto; }
.renders figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
.renders img, .plot img { max-width: 100%; border: 1px solid #ddd; }
.plot img { max-width: min(100%, 1000px); }
.ok { color: #17803d; font-weight: bold; } .bad { color: #b5461c; font-weight: bold; }
"""

_JS = r"""
(function () {
  var errors = 0;
  window.addEventListener('error', function () {
    errors += 1; document.body.setAttribute('data-js-errors', String(errors));
  });
  function cellKey(td) {
    var v = td.getAttribute('data-value');
    if (v === null || v === '') return null;
    var x = Number(v);
    return isNaN(x) ? v : x;
  }
  function sortTable(column, order) {
    var table = document.getElementById('structures');
    var heads = table.tHead.rows[0].cells, col = -1;
    for (var i = 0; i < heads.length; i++) if (heads[i].getAttribute('data-column') === column) col = i;
    if (col < 0) return false;
    if (!order) order = heads[col].getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
    var sign = order === 'descending' ? -1 : 1, body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellKey(a.cells[col]), y = cellKey(b.cells[col]);
      if (x === null || y === null) return (x === null) - (y === null);   // blanks last
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return sign * (x < y ? -1 : x > y ? 1 : 0);
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var j = 0; j < heads.length; j++) heads[j].removeAttribute('aria-sort');
    heads[col].setAttribute('aria-sort', order);
    table.setAttribute('data-sorted-by', column + ' ' + order);
    return true;
  }
  window.sortTable = sortTable;
  var table = document.getElementById('structures');
  if (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener('click', function () { sortTable(th.getAttribute('data-column')); });
    });
    var q = new URLSearchParams(window.location.search);
    if (q.get('sort')) sortTable(q.get('sort'), q.get('order') === 'desc' ? 'descending' : 'ascending');
  }
  window.addEventListener('load', function () {
    Array.prototype.forEach.call(document.images, function (img) {
      img.setAttribute('data-natural-width', String(img.complete ? img.naturalWidth : 0));
      var r = img.getBoundingClientRect();       // page box, CSS px (tests crop screenshots)
      img.setAttribute('data-box', [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]
        .map(Math.round).join(','));
    });
    document.body.setAttribute('data-js-errors', String(errors));
    document.body.setAttribute('data-report-ready', '1');
  });
})();
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _cell(v) -> tuple[str, str]:
    """(sort key, shown text) of one table value; NaN/None -> blank."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "", ""
    if isinstance(v, bool):
        return str(v), str(v)
    if isinstance(v, float):
        return repr(v), (f"{v:.6g}" if abs(v) < 1e6 else f"{v:.4e}")
    return str(v), str(v)


def _table_html(df: pd.DataFrame) -> str:
    heads = "".join(f'<th data-column="{_e(c)}" title="click to sort">{_e(c)}</th>' for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False, name=None):
        cells = []
        for v in rec:
            key, text = _cell(v.item() if hasattr(v, "item") else v)
            cells.append(f'<td data-value="{_e(key)}">{_e(text)}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<div class="tablewrap"><table class="data" id="structures"><thead><tr>{heads}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _img(folder: Path, path: Path, alt: str) -> str:
    rel = path.relative_to(folder).as_posix()
    return f'<img src="{_e(rel)}" alt="{_e(alt)}" loading="eager">'


def _renders_html(folder: Path, url: str | None, best: int, size: tuple[int, int]) -> str:
    if best <= 0:
        return '<p class="note">No renders requested (best = 0).</p>'
    if url is None:
        return '<p class="note">No renders: the folder holds no campaign database.</p>'
    try:
        from gbsearch.analysis.render import render_campaign
        done = render_campaign(folder, best=best, out=folder / RENDER_DIR, size=size, database=url,
                               sheet=False)
    except Exception as exc:                      # OVITO/Vulkan missing, no ok rows, ...: a note
        return f'<p class="note">Renders failed: {_e(type(exc).__name__)}: {_e(exc)}</p>'
    parts = []
    for it in done:
        caption = (f"#{it.rank}: id {it.db_id} ({it.source}), γ = {it.gamma_J_m2:.4f} J/m², "
                   f"[n] = {it.n_frac:.3f}; " + ", ".join(f"{n} {c}" for n, c in sorted(it.structure_counts.items())))
        views = "".join(_img(folder, p, f"id {it.db_id} {kind} view")
                        for p, kind in ((it.side_png, "side"), (it.plan_png, "plan")))
        parts.append(f"<figure>{views}<figcaption>{_e(caption)} — "
                     f'<a href="{_e(it.xyz.relative_to(folder).as_posix())}">{_e(it.xyz.name)}</a>'
                     f"</figcaption></figure>")
    return f'<div class="renders">{"".join(parts)}</div>'


def _convergence_html(folder: Path) -> str:
    path = folder / "convergence.json"
    if not path.is_file():
        return ""
    out = ["<h2>Convergence</h2>"]
    try:
        conv = json.loads(path.read_text())
        if conv.get("converged"):
            out.append('<p class="ok" id="convergence-status">converged</p>')
        else:
            reasons = "; ".join(map(str, conv.get("reasons", [])))
            out.append(f'<p class="bad" id="convergence-status">not converged ({_e(reasons)})</p>')
        gs = conv.get("ground_state") or {}
        if gs:
            out.append(f"<p>ground state: [n] = {_e(_cell(gs.get('n_frac'))[1])}, "
                       f"γ = {_e(_cell(gs.get('gamma_J_m2'))[1])} J/m², "
                       f"hit {_e(conv.get('hits'))} times; {_e(conv.get('trials'))} trials</p>")
    except (OSError, ValueError) as exc:
        out.append(f'<p class="note">convergence.json unreadable: {_e(exc)}</p>')
    if (folder / "convergence.png").is_file():
        out.append(f'<div class="plot">{_img(folder, folder / "convergence.png", "convergence")}</div>')
    return "".join(out)


def _settings_html(folder: Path) -> str:
    out = []
    for name in SETTINGS_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            text = json.dumps(json.loads(path.read_text()), indent=2, ensure_ascii=False)
        except (OSError, ValueError) as exc:
            text = f"unreadable: {exc}"
        out.append(f'<h3>{_e(name)}</h3><pre id="settings-{_e(path.stem)}">{_e(text)}</pre>')
    return "".join(out) or '<p class="note">No settings file (campaign.json / reference_settings.json).</p>'


def write_html_report(folder: str | Path, db=None, best: int = 3, title: str | None = None,
                      size: tuple[int, int] = (480, 360)) -> Path:
    """Write ``folder/report.html`` and return its path.

    ``db``: the folder's :class:`CampaignDB` (default ``folder/campaign.db`` when present,
    else the table is read from ``table.csv``). ``best``: how many lowest-γ structures to
    render with OVITO (0: none; renders take ~0.5–2 s each on a CPU) into
    ``folder/report_render``.
    """
    from gbsearch.analysis.report import campaign_table
    from gbsearch.store.database import DB_NAME, CampaignDB

    folder = Path(folder)
    if db is None and (folder / DB_NAME).is_file():
        db = CampaignDB(folder / DB_NAME)
    if db is not None:
        df = campaign_table(db)
    elif (folder / "table.csv").is_file():
        df = pd.read_csv(folder / "table.csv")
    else:
        df = pd.DataFrame()
    title = title or f"gbsearch report: {folder.resolve().name}"
    body = [f"<h1>{_e(title)}</h1>"]
    if (folder / "summary.txt").is_file():
        body.append(f'<h2>Summary</h2><pre id="summary">{_e((folder / "summary.txt").read_text())}</pre>')
    body.append(_convergence_html(folder))
    body.append("<h2>γ–[n]</h2>")
    if (folder / "gamma_n.png").is_file():
        body.append(f'<div class="plot">{_img(folder, folder / "gamma_n.png", "gamma vs n")}</div>')
    else:
        body.append('<p class="note">No γ–[n] plot (gamma_n.png) in this folder.</p>')
    body.append(f"<h2>Best structures (OVITO, PTM colours)</h2>{_renders_html(folder, db.url if db else None, best, size)}")
    body.append(f"<h2>Structures ({len(df)} rows; click a column header to sort)</h2>")
    body.append(_table_html(df) if len(df.columns) else '<p class="note">No table.</p>')
    body.append(f"<h2>Settings and provenance</h2>{_settings_html(folder)}")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            + "".join(body) + f"<script>{_JS}</script></body></html>\n")
    path = folder / REPORT_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
