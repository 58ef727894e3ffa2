"""From face pairs to the figures of metrics.json: identity, attributes (pose,
expression), temporal (jitter, flicker) and blending (seams, colour, sharpness), each with its
per-frame values for the report; docs/metrics.md defines every number."""

from __future__ import annotations

import logging
import math

import numpy as np

from facetwin.eval import metrics as M
from facetwin.eval.faces import FacePair
from facetwin.eval.references import IdentityRefs
from facetwin.extract.identity import distances

log = logging.getLogger(__name__)


def unpad(swap: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``swap`` cut back to ``shape`` where convert padded an odd-sized video to even (one
    repeated column and/or row: 4:2:0 video cannot be odd); anything else is left as it is."""
    h, w = shape[:2]
    dh, dw = swap.shape[0] - h, swap.shape[1] - w
    if (dh, dw) != (0, 0) and dh in (0, 1) and dw in (0, 1) and (dh <= h % 2) and (dw <= w % 2):
        return swap[:h, :w]
    return swap


def _nan(v: object) -> float:
    return float("nan") if v is None else float(v)  # type: ignore[arg-type]


def identity_summary(pairs: list[FacePair], refs: IdentityRefs) -> tuple[dict[str, object], dict]:
    """Identity summary and per-pair distances (keyed by ``id(pair)``)."""
    mean_a, source_a = refs.mean_a, refs.source_a
    emb_orig = [p.emb_orig for p in pairs if p.emb_orig is not None]
    if mean_a is None and emb_orig:
        mean_a, source_a = np.mean(emb_orig, axis=0).astype(np.float32), "original"
    per: dict[int, dict[str, float]] = {}
    for p in pairs:
        d: dict[str, float] = {}
        for tag, emb in (("swap", p.emb_swap if p.found else None), ("orig", p.emb_orig)):
            if emb is None:
                continue
            if mean_a is not None:
                d[f"{tag}_to_a"] = float(distances(emb, mean_a[None])[0])
            if refs.mean_b is not None:
                d[f"{tag}_to_b"] = float(distances(emb, refs.mean_b[None])[0])
        if p.found and p.emb_swap is not None and p.emb_orig is not None:
            d["swap_to_orig"] = float(np.linalg.norm(p.emb_swap - p.emb_orig))
        per[id(p)] = d

    def col(key: str) -> np.ndarray:
        return np.array([per[id(p)].get(key, np.nan) for p in pairs], np.float64)

    s_a, s_b, o_a, o_b = col("swap_to_a"), col("swap_to_b"), col("orig_to_a"), col("orig_to_b")
    to_a, to_b = M.finite_mean(s_a), M.finite_mean(s_b)
    out: dict[str, object] = {
        "source_a": source_a,
        "source_b": refs.source_b,
        "swap_faces_embedded": int(sum(p.found and p.emb_swap is not None for p in pairs)),
        "original_faces_embedded": len(emb_orig),
        "a_to_b": (
            float(np.linalg.norm(mean_a - refs.mean_b))
            if mean_a is not None and refs.mean_b is not None
            else None
        ),
        "id_retrieval": M.nearer_share(s_b, s_a),
        "id_retrieval_a": M.nearer_share(s_a, s_b),
        "swap_to_b_mean": to_b,
        "swap_to_a_mean": to_a,
        "nearer_b_by": None if to_a is None or to_b is None else to_a - to_b,
        "swap_to_original_mean": M.finite_mean(col("swap_to_orig")),
        "original_id_retrieval_a": M.nearer_share(o_a, o_b),
        "original_to_a_mean": M.finite_mean(o_a),
        "original_to_b_mean": M.finite_mean(o_b),
    }
    share = out["original_id_retrieval_a"]
    if refs.mean_b is not None and isinstance(share, float) and share < 0.5:
        # the originals look like B: A and B are the wrong way round (a b2a conversion
        # measured as a2b, or face sets given crossed), and every identity figure is inverted
        log.warning(
            "most original faces are nearer identity B than A (%.0f%% nearer A): is the "
            "direction right (--direction b2a for a b2a conversion)?",
            100 * share,
        )
    return out, per


def attribute_summary(pairs: list[FacePair]) -> tuple[dict[str, object], dict]:
    per: dict[int, dict[str, float]] = {}
    signed: list[np.ndarray] = []  # swap minus original (yaw, pitch, roll), for the offset
    for p in pairs:
        if not p.found or p.lm_swap is None or p.pose_swap is None:
            continue
        pe = M.pose_error(p.pose_orig, p.pose_swap)
        signed.append(M.wrap_degrees(np.subtract(p.pose_swap, p.pose_orig)))
        ex = M.expression_error(p.lm_orig, p.lm_swap)
        per[id(p)] = {
            "yaw": pe[0],
            "pitch": pe[1],
            "roll": pe[2],
            "pose": pe[3],
            "expr": ex["all"],
            "eyes": ex["eyes"],
            "mouth": ex["mouth"],
        }

    def col(key: str) -> np.ndarray:
        return np.array([v[key] for v in per.values()], np.float64)

    offset, centred = M.centred_pose_error(np.array(signed, np.float64).reshape(-1, 3))
    for v, c in zip(per.values(), centred):
        v["pose_centred"] = float(c)
    out: dict[str, object] = {
        "faces": len(per),
        "pose_error_mean": M.finite_mean(col("pose")),
        "pose_error_centred_mean": M.finite_mean(centred),
        "pose_offset": [round(float(v), 3) if np.isfinite(v) else None for v in offset],
        "yaw_error_mean": M.finite_mean(col("yaw")),
        "pitch_error_mean": M.finite_mean(col("pitch")),
        "roll_error_mean": M.finite_mean(col("roll")),
        "expression_error_mean": M.finite_mean(col("expr")),
        "expression_error_eyes": M.finite_mean(col("eyes")),
        "expression_error_mouth": M.finite_mean(col("mouth")),
    }
    return out, per


def temporal_summary(pairs: list[FacePair]) -> tuple[dict[str, object], dict]:
    """Jitter and flicker per track, pooled over tracks; input and output on the same frames."""
    by_track: dict[int, list[FacePair]] = {}
    for p in pairs:
        by_track.setdefault(p.track, []).append(p)
    per: dict[int, dict[str, float]] = {}
    for rs in by_track.values():
        rs.sort(key=lambda p: p.frame)
        frames = np.array([p.frame for p in rs])
        fl_in = M.intensity_flicker(frames, np.array([p.luma_orig for p in rs]))
        fl_out = M.intensity_flicker(frames, np.array([p.luma_swap for p in rs]))
        for p, a, b in zip(rs, fl_in, fl_out, strict=True):
            per[id(p)] = {"flicker_in": a, "flicker_out": b}
        found = [p for p in rs if p.found and p.lm_swap is not None]
        if not found:
            continue
        f = np.array([p.frame for p in found])
        iod = np.array([p.iod for p in found])
        lm_in = np.stack([p.lm_orig for p in found])
        lm_out = np.stack([p.lm_swap for p in found])  # type: ignore[misc]
        mf_iod = np.full(len(found), M.mean_face_iod())
        cols = {
            "jitter_in": M.landmark_jitter(f, lm_in, iod),
            "jitter_out": M.landmark_jitter(f, lm_out, iod),
            "shape_jitter_in": M.landmark_jitter(
                f, np.stack([M.to_mean_face(x) for x in lm_in]), mf_iod
            ),
            "shape_jitter_out": M.landmark_jitter(
                f, np.stack([M.to_mean_face(x) for x in lm_out]), mf_iod
            ),
        }
        for i, p in enumerate(found):
            per[id(p)].update({k: float(v[i]) for k, v in cols.items()})

    def col(key: str) -> np.ndarray:
        return np.array([v.get(key, np.nan) for v in per.values()], np.float64)

    out: dict[str, object] = {"tracks": len(by_track)}
    for name in ("jitter", "shape_jitter"):
        a, b = M.rms(col(f"{name}_in")), M.rms(col(f"{name}_out"))
        out[f"landmark_{name}_in" if name == "jitter" else f"{name}_in"] = a
        out[f"landmark_{name}_out" if name == "jitter" else f"{name}_out"] = b
        out[f"landmark_{name}_ratio" if name == "jitter" else f"{name}_ratio"] = M.ratio(b, a)
        out[f"{name}_frames"] = int(np.isfinite(col(f"{name}_in")).sum())
    a, b = M.finite_mean(col("flicker_in")), M.finite_mean(col("flicker_out"))
    out.update(
        {
            "flicker_in": a,
            "flicker_out": b,
            "flicker_ratio": M.ratio(b, a),
            "flicker_frames": int(np.isfinite(col("flicker_in")).sum()),
        }
    )
    return out, per


def blending_summary(pairs: list[FacePair]) -> tuple[dict[str, object], dict]:
    per: dict[int, dict[str, float]] = {}
    for p in pairs:
        if not p.found or p.lab_swap is None:
            continue
        d = p.lab_swap - p.lab_orig
        per[id(p)] = {
            "step_orig": p.step_orig,
            "step_swap": p.step_swap,
            "dL": d[0],
            "da": d[1],
            "db": d[2],
            "dE": float(np.linalg.norm(d)),
            "sharp_orig": p.sharp_orig,
            "sharp_swap": p.sharp_swap,
        }

    def col(key: str) -> np.ndarray:
        return np.array([v[key] for v in per.values()], np.float64)

    if not per:
        return {"faces": 0}, per
    so, ss = M.finite_mean(col("step_orig")), M.finite_mean(col("step_swap"))
    return {
        "faces": len(per),
        "border_step_swap": ss,
        "border_step_original": so,
        "border_step_excess": ss - so,
        "border_step_ratio": M.ratio(ss, so),
        "color_shift_L": M.finite_mean(col("dL")),
        "color_shift_a": M.finite_mean(col("da")),
        "color_shift_b": M.finite_mean(col("db")),
        "color_shift_dE": M.finite_mean(col("dE")),
        "sharpness_original": M.finite_mean(col("sharp_orig")),
        "sharpness_swap": M.finite_mean(col("sharp_swap")),
        # per face, then the median: robust to the odd frame where the swap is a smear
        "sharpness_ratio": float(np.nanmedian(col("sharp_swap") / col("sharp_orig"))),
    }, per


_PER_FRAME_KEYS = {
    "identity": {
        "swap_to_a": "id_swap_to_a",
        "swap_to_b": "id_swap_to_b",
        "swap_to_orig": "id_swap_to_original",
        "orig_to_a": "id_original_to_a",
        "orig_to_b": "id_original_to_b",
    },
    "attributes": {
        "pose": "pose_error",
        "pose_centred": "pose_error_centred",
        "yaw": "yaw_error",
        "pitch": "pitch_error",
        "roll": "roll_error",
        "expr": "expression_error",
    },
    "temporal": {
        "jitter_in": "jitter_in",
        "jitter_out": "jitter_out",
        "shape_jitter_in": "shape_jitter_in",
        "shape_jitter_out": "shape_jitter_out",
        "flicker_in": "flicker_in",
        "flicker_out": "flicker_out",
    },
    "blending": {
        "step_orig": "border_step_original",
        "step_swap": "border_step_swap",
        "dE": "color_shift_dE",
        "sharp_orig": "sharpness_original",
        "sharp_swap": "sharpness_swap",
    },
}


def per_frame_rows(pairs: list[FacePair], parts: dict[str, dict]) -> list[dict[str, object]]:
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
        for part, keys in _PER_FRAME_KEYS.items():
            vals = parts.get(part, {}).get(id(p), {})
            for k, out_key in keys.items():
                row[out_key] = vals.get(k, float("nan"))
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
