"""Tiny inline-SVG charts (line plots and histograms) so that report.html needs no other file.

A plotting library would add a dependency and produce images to embed; a few dozen lines of
SVG are enough for per-frame curves and histograms, stay sharp at any zoom, and keep the report a
single self-contained file.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import numpy as np

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 52, 12, 26, 34
Scale = Callable[[np.ndarray | float], np.ndarray]


def _ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About ``n`` round tick values covering [lo, hi]."""
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.array([lo]) if np.isfinite(lo) else np.zeros(0)
    raw = (hi - lo) / n
    mag = 10 ** np.floor(np.log10(raw))
    step = mag * min((m for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10)
    return np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _frame(title: str, xlabel: str, ylabel: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<text x="{width / 2}" y="15" text-anchor="middle" font-size="13">{escape(title)}</text>',
        f'<text x="{width / 2}" y="{height - 4}" text-anchor="middle">{escape(xlabel)}</text>',
        f'<text x="12" y="{height / 2}" text-anchor="middle" '
        f'transform="rotate(-90 12 {height / 2})">{escape(ylabel)}</text>',
    ]


def _axes(
    x0: float, x1: float, y0: float, y1: float, width: int, height: int
) -> tuple[list[str], Scale, Scale]:
    """Axis lines, ticks and the data -> pixel maps for the plot area."""
    pw, ph = width - _PAD_L - _PAD_R, height - _PAD_T - _PAD_B
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x0 + 0.5
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y0 + 0.5

    def sx(v: np.ndarray | float) -> np.ndarray:
        return _PAD_L + (np.asarray(v, np.float64) - x0) / (x1 - x0) * pw

    def sy(v: np.ndarray | float) -> np.ndarray:
        return _PAD_T + ph - (np.asarray(v, np.float64) - y0) / (y1 - y0) * ph

    out = [
        f'<rect x="{_PAD_L}" y="{_PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>'
    ]
    for t in _ticks(y0, y1):
        y = float(sy(t))
        out.append(
            f'<line x1="{_PAD_L - 3}" y1="{y:.1f}" x2="{_PAD_L + pw}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(f'<text x="{_PAD_L - 5}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for t in _ticks(x0, x1):
        x = float(sx(t))
        out.append(
            f'<text x="{x:.1f}" y="{_PAD_T + ph + 14}" text-anchor="middle">{_fmt(t)}</text>'
        )
    return out, sx, sy


def _legend(names: list[str], width: int) -> list[str]:
    out = []
    x = width - _PAD_R - 6
    for i, name in reversed(list(enumerate(names))):
        out.append(
            f'<text x="{x}" y="{_PAD_T + 14}" text-anchor="end" '
            f'fill="{COLOURS[i % len(COLOURS)]}">{escape(name)}</text>'
        )
        x -= 8 + 7 * len(name)
    return out


def _empty(title: str, width: int, height: int) -> str:
    return "\n".join(
        [
            *_frame(title, "", "", width, height),
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#888">'
            "no data</text>",
            "</svg>",
        ]
    )


def line_plot(
    series: dict[str, tuple[np.ndarray, np.ndarray]],
    title: str,
    xlabel: str = "frame",
    ylabel: str = "",
    width: int = 640,
    height: int = 220,
    connect_gaps: bool = False,
) -> str:
    """An SVG line chart of named (x, y) series.

    NaN values break a line into pieces (a frame without a face is a gap, not a straight line),
    unless ``connect_gaps``: for values measured only every few frames by design.
    """
    clean = {
        k: (np.asarray(x, np.float64), np.asarray(y, np.float64)) for k, (x, y) in series.items()
    }
    if connect_gaps:
        clean = {k: (x[np.isfinite(y)], y[np.isfinite(y)]) for k, (x, y) in clean.items()}
    finite = [(x[np.isfinite(y)], y[np.isfinite(y)]) for x, y in clean.values()]
    if not any(len(y) for _, y in finite):
        return _empty(title, width, height)
    xs = np.concatenate([x for x, _ in finite])
    ys = np.concatenate([y for _, y in finite])
    y0 = min(0.0, float(ys.min()))
    out = _frame(title, xlabel, ylabel, width, height)
    ax, sx, sy = _axes(float(xs.min()), float(xs.max()), y0, float(ys.max()) * 1.05, width, height)
    out += ax
    for i, (x, y) in enumerate(clean.values()):
        colour = COLOURS[i % len(COLOURS)]
        px, py = sx(x), sy(y)
        ok = np.isfinite(y)
        runs = np.split(np.arange(len(y)), np.flatnonzero(np.diff(ok.astype(np.int8))) + 1)
        for run in runs:
            if not len(run) or not ok[run[0]]:
                continue
            if len(run) == 1:
                out.append(
                    f'<circle cx="{px[run[0]]:.1f}" cy="{py[run[0]]:.1f}" r="2" fill="{colour}"/>'
                )
                continue
            pts = " ".join(f"{px[j]:.1f},{py[j]:.1f}" for j in run)
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.3"/>'
            )
    if len(clean) > 1:
        out += _legend(list(clean), width)
    out.append("</svg>")
    return "\n".join(out)


def histogram(
    samples: dict[str, np.ndarray],
    title: str,
    xlabel: str = "",
    bins: int = 30,
    width: int = 640,
    height: int = 220,
) -> str:
    """An SVG histogram of one or more named samples on shared bins (outlined, so they overlay)."""
    clean = {
        k: np.asarray(v, np.float64)[np.isfinite(np.asarray(v, np.float64))]
        for k, v in samples.items()
    }
    allv = np.concatenate([v for v in clean.values()] or [np.zeros(0)])
    if not len(allv):
        return _empty(title, width, height)
    lo, hi = float(allv.min()), float(allv.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    counts = {k: np.histogram(v, edges)[0] for k, v in clean.items()}
    top = max(int(c.max()) for c in counts.values())
    out = _frame(title, xlabel, "count", width, height)
    ax, sx, sy = _axes(lo, hi, 0.0, top * 1.08, width, height)
    out += ax
    for i, c in enumerate(counts.values()):
        colour = COLOURS[i % len(COLOURS)]
        pts = [f"{float(sx(edges[0])):.1f},{float(sy(0)):.1f}"]
        for j, n in enumerate(c):
            y = float(sy(n))
            pts.append(f"{float(sx(edges[j])):.1f},{y:.1f}")
            pts.append(f"{float(sx(edges[j + 1])):.1f},{y:.1f}")
        pts.append(f"{float(sx(edges[-1])):.1f},{float(sy(0)):.1f}")
        opacity = "0.25" if len(counts) > 1 else "0.45"
        out.append(
            f'<polygon points="{" ".join(pts)}" fill="{colour}" fill-opacity="{opacity}" '
            f'stroke="{colour}"/>'
        )
    if len(counts) > 1:
        out += _legend(list(counts), width)
    out.append("</svg>")
    return "\n".join(out)
