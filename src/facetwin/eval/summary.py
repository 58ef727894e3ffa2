"""What metrics.json holds beside the measures' sections (``eval/measures/``, one file each):
the per-frame rows, JSON-clean numbers, and the swap cut back to its original's size."""

from __future__ import annotations

import math

import numpy as np

from facetwin.eval.faces import FacePair


def unpad(swap: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``swap`` cut back to ``shape`` where convert padded an odd-sized video to even (one
    repeated column and/or row: 4:2:0 video cannot be odd); anything else is left as it is."""
    h, w = shape[:2]
    dh, dw = swap.shape[0] - h, swap.shape[1] - w
    if (dh, dw) != (0, 0) and dh in (0, 1) and dw in (0, 1) and (dh <= h % 2) and (dw <= w % 2):
        return swap[:h, :w]
    return swap


def per_frame_rows(
    pairs: list[FacePair], per_face: dict[int, dict[str, float]], columns: list[str]
) -> list[dict[str, object]]:
    """metrics.json's ``per_frame``: one row per original face, where it is and what was found,
    then every measure's ``columns`` (NaN, written null, where a face has no value)."""
    rows = []
    for p in pairs:
        row: dict[str, object] = {
            "frame": p.frame,
            "name": p.name,
            "face": p.face,
            "track": p.track,
            "found": p.found,
            "iou": p.iou,
            "box": [float(v) for v in p.box],
            "luma_in": p.luma_orig,
            "luma_out": p.luma_swap,
        }
        values = per_face.get(id(p), {})
        row.update({c: values.get(c, float("nan")) for c in columns})
        rows.append(row)
    return rows


def clean_json(value: object, digits: int = 6) -> object:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to null, floats rounded to ``digits``."""
    if isinstance(value, dict):
        return {str(k): clean_json(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return clean_json(value.tolist(), digits)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return round(v, digits) if math.isfinite(v) else None
    return value
