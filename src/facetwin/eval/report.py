"""metrics.json and a self-contained report.html (inline SVG charts, base64 sample frames).

Both are written atomically (temporary file + rename): a crash or a full disk leaves the previous
report or none, never half of one that a dashboard would then read.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np

from facetwin.eval import catalog
from facetwin.eval.measures import Chart, ordered
from facetwin.eval.svg import histogram, line_plot
from facetwin.media.files import atomic_write_bytes, make_folder
from facetwin.media.image import encode_image


@dataclass
class Sample:
    """A frame pair kept for the report (downscaled): what the pipeline hands the report."""

    frame: int
    name: str
    original: np.ndarray
    swap: np.ndarray


_CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1340px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }
td.v { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 8px; }
.note { color: #666; font-size: 12px; }
figure { display: inline-block; margin: 6px; } figcaption { font-size: 12px; color: #444; }
img { display: block; }
"""


def _fmt(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


def _col(rows: list[dict], key: str) -> np.ndarray:
    return np.array([np.nan if r.get(key) is None else r[key] for r in rows], np.float64)


def _main_track(rows: list[dict], kind: str) -> tuple[list[dict], str]:
    """Rows of the face drawn as curves: on video the longest track (curves of several faces
    interleaved would zigzag), elsewhere every face in order."""
    if kind != "video" or not rows:
        return rows, ""
    tracks: dict[int, list[dict]] = {}
    for r in rows:
        tracks.setdefault(int(r["track"]), []).append(r)
    tid, best = max(tracks.items(), key=lambda kv: len(kv[1]))
    note = f" (track {tid})" if len(tracks) > 1 else ""
    return best, note


def _curve(chart: Chart, main: list[dict], x: np.ndarray, xlabel: str, note: str) -> str | None:
    series = {label: (x, _col(main, k)) for label, k in chart.series.items()}
    if not any(np.isfinite(y).any() for _, y in series.values()):
        return None
    return line_plot(series, chart.title + note, xlabel, chart.unit, connect_gaps=chart.sparse)


def _histogram(chart: Chart, rows: list[dict]) -> str | None:
    samples = {label: _col(rows, k) for label, k in chart.series.items()}
    if not any(np.isfinite(v).any() for v in samples.values()):
        return None
    return histogram(samples, chart.title, chart.unit)


def charts(metrics: dict) -> list[str]:
    """The report's SVG charts, as the measures declare them: per-frame curves of the main
    face, then histograms of all faces; a chart whose columns hold no value is left out (a
    measure not run, or one for video only on images)."""
    rows: list[dict] = metrics.get("per_frame") or []
    kind = str(metrics.get("kind"))
    main, note = _main_track(rows, kind)
    x, xlabel = _col(main, "frame"), ("frame" if kind == "video" else "image")
    declared = [c for m in ordered() for c in m.charts]
    drawn = [_curve(c, main, x, xlabel, note) for c in declared if c.kind == "curve"]
    drawn += [_histogram(c, rows) for c in declared if c.kind == "histogram"]
    return [svg for svg in drawn if svg is not None]


def _sample_html(s: Sample) -> str:
    both = np.concatenate(
        [s.original, np.full((s.original.shape[0], 4, 3), 255, np.uint8), s.swap], axis=1
    )
    data = base64.b64encode(encode_image(both, ".png")).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" width="{both.shape[1]}" '
        f'height="{both.shape[0]}" alt="frame {escape(s.name)}">'
        f"<figcaption>{escape(s.name)}: original | swap (synthetic)</figcaption></figure>"
    )


def render_html(metrics: dict, samples: list[Sample]) -> str:
    """The whole report as one HTML string (no external files, scripts or fonts)."""
    rows = []
    for fig in catalog.ordered():
        part = metrics.get(fig.section)
        if isinstance(part, dict) and fig.key in part:
            rows.append(
                f"<tr><td>{escape(fig.label)}</td><td class='v'>{_fmt(part[fig.key])}</td>"
                f"<td class='note'>{escape(fig.reading)}</td></tr>"
            )
    fr = metrics.get("frames") or {}
    ident = metrics.get("identity") or {}
    head = (
        f"<p>original <code>{escape(str(metrics.get('original')))}</code> &nbsp; swapped "
        f"<code>{escape(str(metrics.get('swapped')))}</code> ({escape(str(metrics.get('kind')))})"
        f"<br>{_fmt(fr.get('compared'))} frames, {_fmt(fr.get('faces'))} original faces, swapped "
        f"face found for {_fmt(fr.get('swap_found'))}; identity A from "
        f"{escape(str(ident.get('source_a')))}, B from {escape(str(ident.get('source_b')))}</p>"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>facetwin eval report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>facetwin eval report</h1>",
        '<p class="note">The swapped frames are synthetic images made by face-swapping software.'
        " Definitions of every number: docs/metrics.md.</p>",
        head,
        "<h2>Summary</h2><table><tr><th>metric</th><th>value</th><th></th></tr>",
        *rows,
        "</table>",
        "<h2>Charts</h2><div class='charts'>",
        *charts(metrics),
        "</div>",
    ]
    if samples:
        parts += ["<h2>Sample frames</h2><div>", *(_sample_html(s) for s in samples), "</div>"]
    parts += [
        "<h2>All numbers</h2><pre>",
        escape(json.dumps({k: v for k, v in metrics.items() if k != "per_frame"}, indent=1)),
        "</pre></body></html>",
    ]
    return "\n".join(parts)


def write_outputs(metrics: dict, samples: list[Sample], output_dir: Path) -> tuple[Path, Path]:
    """metrics.json and report.html in ``output_dir`` (created), each written atomically."""
    out = Path(output_dir)
    make_folder(out, "output folder")
    js, html = out / "metrics.json", out / "report.html"
    atomic_write_bytes(js, (json.dumps(metrics, indent=1) + "\n").encode("utf-8"))
    atomic_write_bytes(html, render_html(metrics, samples).encode("utf-8"))
    return js, html
