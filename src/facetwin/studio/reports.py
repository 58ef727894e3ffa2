"""Eval's figures with a plain-language verdict each, from eval's own catalogue, and zoomed
face crops (original | swap) to judge the seam by eye.

The thresholds are the catalogue's goals (issue 11's, the ones the README's tables are held to),
so the studio never invents a second opinion: a figure with a goal reads "good" or "poor"
against it, one without is shown with how to read it and no verdict.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facetwin.eval.catalog import Figure, ordered
from facetwin.media.image import encode_image

METRICS_FILE = "metrics.json"
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class Verdict:
    key: str
    label: str
    value: str  # formatted as the report formats it
    verdict: str  # good | poor | info
    goal: str  # the threshold in words ('' when none)
    sentence: str  # the verdict in a plain sentence


def judge(figure: Figure, metrics: dict[str, Any]) -> Verdict | None:
    value = figure.value(metrics)
    if not isinstance(value, (int, float)):
        return None
    shown = figure.fmt.format(value)
    if figure.goal is None:
        return Verdict(figure.key, figure.label, shown, "info", figure.goal_text, figure.reading)
    ok = figure.meets(float(value))
    word = "good" if ok else "poor"
    meets = "meets" if ok else "misses"
    sentence = f"{word}: {shown} {meets} the goal {figure.goal_text}"
    if figure.reading:
        sentence += f" ({figure.reading})"
    return Verdict(figure.key, figure.label, shown, word, figure.goal_text, sentence)


def read_report(report_dir: Path) -> dict[str, Any]:
    """metrics.json judged figure by figure, plus whether report.html is there."""
    metrics = json.loads((report_dir / METRICS_FILE).read_text())
    if not isinstance(metrics, dict):
        raise ValueError(f"{report_dir / METRICS_FILE} is not a metrics object")
    verdicts = [v for f in ordered() if (v := judge(f, metrics)) is not None]
    judged = [v for v in verdicts if v.verdict != "info"]
    return {
        "figures": [asdict(v) for v in verdicts],
        "good": sum(v.verdict == "good" for v in judged),
        "judged": len(judged),
        "has_html": (report_dir / REPORT_FILE).is_file(),
        "inputs": metrics.get("inputs", {}),
    }


#: Zoomed crops: this many frames, each face box grown by this factor (the seam lies at the
#: box's edge), shown at this side in pixels.
CROPS = 4
CROP_GROW = 1.5
CROP_SIDE = 224


def crop_rows(metrics: dict[str, Any], n: int = CROPS) -> list[dict[str, Any]]:
    """Up to ``n`` evenly spaced faces that were found in the swap (video reports)."""
    rows = [r for r in metrics.get("per_frame") or [] if r.get("found") and r.get("box")]
    if not rows:
        return []
    step = max(1, len(rows) // n)
    return rows[::step][:n]


def zoom(image: np.ndarray, box: list[float], grow: float = CROP_GROW) -> np.ndarray:
    """The square around ``box`` grown by ``grow``, at :data:`CROP_SIDE` (edges replicated)."""
    x0, y0, x1, y1 = box
    half = grow * max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    scale = CROP_SIDE / (2 * half)
    m = np.array([[scale, 0, CROP_SIDE / 2 - scale * cx], [0, scale, CROP_SIDE / 2 - scale * cy]])
    return cv2.warpAffine(
        image, m, (CROP_SIDE, CROP_SIDE), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )


def seam_sheet(
    report_dir: Path, resolve: Callable[[str], Path], frames: Callable[[Path, int], np.ndarray]
) -> bytes:
    """JPEG of zoomed face crops, original | swap per row, to judge the blend's seam by eye.

    ``resolve`` turns the report's recorded input paths into project files (refusing others);
    ``frames`` decodes one frame of a video (the merger's cache).
    """
    metrics = json.loads((report_dir / METRICS_FILE).read_text())
    if metrics.get("kind") != "video":
        raise ValueError("zoomed crops are made for video reports")
    original, swapped = resolve(str(metrics["original"])), resolve(str(metrics["swapped"]))
    rows = []
    for r in crop_rows(metrics):
        frame = int(r["frame"])
        pair = [zoom(frames(p, frame), r["box"]) for p in (original, swapped)]
        rows.append(np.hstack([pair[0], np.full((CROP_SIDE, 4, 3), 255, np.uint8), pair[1]]))
    if not rows:
        raise ValueError("the report holds no face found in the swap")
    return encode_image(np.vstack(rows), ".jpg", 92)
