"""``facetwin eval``: how good is a swap? A converted video or image set against its original.

For every frame (or image) the faces of the *original* are found (detected on video every
``redetect_every`` frames and followed in between, as extract does) and each is looked for at
the same place in the *swapped* frame. Each matched pair gives identity (embeddings), kept
attributes (pose, expression), the colour step at the mask border and the face-region
brightness; on video the pairs of one tracked face over consecutive frames give landmark jitter
and flicker for the input and for the output. docs/metrics.md defines every number.

Measuring with a common frame of reference: by default the swapped face's landmarks are fitted
starting from the *original* face's box (``landmark_box="original"``), and flicker is measured
in the original face's region in both videos. The swap is pasted where the original face was,
so this is the right place to look, and it keeps detector box noise - which differs between two
different faces - out of the comparison: a frame compared with itself gives exactly zero error.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import facetwin
from facetwin.device import resolve_device
from facetwin.errors import InputError, NoFaceError, UsageError
from facetwin.eval import metrics as M
from facetwin.eval.references import IdentityRefs, identity_refs
from facetwin.eval.report import Sample, write_outputs
from facetwin.extract.detectors import DETECTORS, Detection, Detector, create_detector
from facetwin.extract.identity import Embedder, distances
from facetwin.extract.landmarks import landmarks_68
from facetwin.extract.pipeline import detect_full, detect_near
from facetwin.face.boxes import iou
from facetwin.face.masks import MASK_KINDS
from facetwin.face.pose import head_pose
from facetwin.media.files import make_folder
from facetwin.media.image import list_images, read_image
from facetwin.media.video import iter_frames, media_kind, probe
from facetwin.media.video_writer import check_complete, count_video_packets

log = logging.getLogger(__name__)

LANDMARK_BOXES = ("original", "swap")


@dataclass
class EvalConfig:
    """Settings of one evaluation; every one is recorded in metrics.json."""

    detector: str = "dlib-hog"
    device: str = "auto"
    max_detect_side: int = 1280  # full-frame detection on frames shrunk to this longest side
    redetect_every: int = 8  # video: frames between full-frame detections of the original
    min_iou: float = 0.3  # a swapped face must overlap the original face's box this much
    landmark_box: str = "original"  # box the swap's landmarks start from: 'original' | 'swap'
    refine: int = 2  # times the original's box is moved along with the swapped face's landmarks
    largest_only: bool = False  # evaluate only the largest original face of each frame
    embedder: str = "torch"  # torch port of dlib's ResNet (same vectors, ~7x faster) or dlib
    embed_every: int = 1  # video: embeddings (the slow part, ~80 ms a face) every N-th frame
    embed_original: bool = True  # also embed the original faces (baseline, distance to source)
    mask: str = "components"  # face region: 'components' (landmark hull) | 'extended'
    band: float = 0.08  # border band width, as a fraction of the inter-ocular distance
    sectors: int = 16  # border split into this many angles for the colour step
    max_frames: int | None = None  # stop after this many frames (quick looks at long videos)
    start_frame: int = 0  # video: first frame compared (e.g. the first frame held out of training)
    samples: int = 6  # sample frames (original | swap) shown in report.html
    direction: str = "a2b"  # the conversion's: b2a means the original shows the model's B
    progress: bool = True

    def check(self) -> None:
        """UsageError for settings that cannot work (the CLI passes user options straight in)."""
        if self.detector not in DETECTORS:
            DETECTORS.get(self.detector)  # raises the UsageError listing the choices
        if self.landmark_box not in LANDMARK_BOXES:
            raise UsageError(
                f"landmark_box must be one of {LANDMARK_BOXES}, not {self.landmark_box!r}"
            )
        if self.mask not in MASK_KINDS:
            raise UsageError(f"mask must be one of {MASK_KINDS}, not {self.mask!r}")
        if self.redetect_every < 1 or self.embed_every < 1 or self.sectors < 1 or self.refine < 0:
            raise UsageError("need redetect_every, embed_every, sectors >= 1 and refine >= 0")
        if not 0.0 < self.min_iou < 1.0 or not 0.0 < self.band <= 0.5:
            raise UsageError("need 0 < min_iou < 1 and 0 < band <= 0.5")
        if self.max_frames is not None and self.max_frames < 1:
            raise UsageError("max_frames must be >= 1")
        if self.start_frame < 0:
            raise UsageError("start_frame must be >= 0")
        if self.direction not in ("a2b", "b2a"):
            raise UsageError(f"direction must be a2b or b2a, not {self.direction!r}")


@dataclass
class FacePair:
    """One original face and what the swapped frame shows in its place."""

    frame: int  # position in the compared sequence (video frame index, or image number)
    name: str  # frame number or image file name
    face: int  # index among the original faces of this frame
    track: int  # same face through a video (images: every face its own)
    box: tuple[float, float, float, float]
    lm_orig: np.ndarray
    iod: float
    luma_orig: float  # mean luma in the original face region, original frame
    luma_swap: float  # ... the same region, swapped frame
    pose_orig: tuple[float, float, float]
    step_orig: float
    lab_orig: np.ndarray
    sharp_orig: float = float("nan")  # variance of the Laplacian in the face region
    sharp_swap: float = float("nan")  # ... the same region, swapped frame
    found: bool = False
    iou: float = float("nan")
    lm_swap: np.ndarray | None = None
    pose_swap: tuple[float, float, float] | None = None
    step_swap: float = float("nan")
    lab_swap: np.ndarray | None = None
    emb_orig: np.ndarray | None = None
    emb_swap: np.ndarray | None = None


@dataclass
class _Track:
    id: int
    box: tuple[float, float, float, float]


# -- inputs ----------------------------------------------------------------------------------


def _kind(path: Path) -> str:
    kind = media_kind(path)
    return "images" if kind == "folder" else kind


def pair_images(original: Path, swapped: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Original/swapped image pairs of two folders by file name (else by unique stem: convert
    may change the format), and the original names that have no swapped counterpart."""
    orig = list_images(original)
    if not orig:
        raise InputError(f"{original}: folder holds no images")
    swap = list_images(swapped)
    by_name = {p.name: p for p in swap}
    stems: dict[str, list[Path]] = {}
    for p in swap:
        stems.setdefault(p.stem, []).append(p)
    pairs, missing = [], []
    for p in orig:
        q = by_name.get(p.name)
        if q is None and len(stems.get(p.stem, [])) == 1:
            q = stems[p.stem][0]
        if q is None:
            missing.append(p.name)
        else:
            pairs.append((p, q))
    if not pairs:
        raise InputError(f"{swapped}: no image matches a file name in {original}")
    return pairs, missing


def _video_pairs(
    original: Path, swapped: Path, limit: int | None, info: dict[str, object], start: int = 0
) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
    """Frames of two videos in lockstep from ``start`` until either ends (``info`` says which)."""
    a, b = iter_frames(original, start), iter_frames(swapped, start)
    n = 0
    try:
        while limit is None or n < limit:
            fa, fb = next(a, None), next(b, None)
            if fa is None or fb is None:
                if fa is not None or fb is not None:
                    info["ended_first"] = "original" if fa is None else "swapped"
                break
            yield fa[0], f"{fa[0]:06d}", fa[1], fb[1]
            n += 1
    finally:
        for it in (a, b):  # generators: close now, so the decoders and files are released
            close = getattr(it, "close", None)
            if close is not None:
                close()


def _image_pairs(
    pairs: list[tuple[Path, Path]], limit: int | None
) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
    for i, (p, q) in enumerate(pairs[:limit]):
        yield i, p.name, read_image(p), read_image(q)


# -- finding faces ---------------------------------------------------------------------------


class _Finder:
    """Original faces (with track ids on video) and their counterparts in the swapped frame."""

    def __init__(self, det: Detector, cfg: EvalConfig, video: bool, embed: Embedder) -> None:
        self.det, self.cfg, self.video, self.embed = det, cfg, video, embed
        self.tracks: list[_Track] = []
        self.next_id = 0
        self.since_full = 0

    def original(self, frame: np.ndarray) -> list[tuple[int, Detection]]:
        dets: list[Detection] | None = None
        if self.video and self.tracks and self.since_full < self.cfg.redetect_every:
            near = [detect_near(self.det, frame, t.box) for t in self.tracks]
            if all(d is not None for d in near):
                dets = near  # type: ignore[assignment]
                self.since_full += 1
        if dets is None:
            dets = detect_full(self.det, frame, self.cfg.max_detect_side)
            self.since_full = 1
        if self.cfg.largest_only and dets:
            dets = [max(dets, key=lambda d: d.width * d.height)]
        return self._assign(dets) if self.video else list(enumerate(dets))

    def _assign(self, dets: list[Detection]) -> list[tuple[int, Detection]]:
        """Greedy IoU matching to last frame's tracks; unmatched faces start new tracks."""
        pairs = sorted(
            (
                (iou(d.box, t.box), i, j)
                for i, d in enumerate(dets)
                for j, t in enumerate(self.tracks)
            ),
            reverse=True,
        )
        ids: dict[int, int] = {}
        used: set[int] = set()
        for o, i, j in pairs:
            if o >= self.cfg.min_iou and i not in ids and j not in used:
                ids[i] = self.tracks[j].id
                used.add(j)
        for i in range(len(dets)):
            if i not in ids:
                ids[i], self.next_id = self.next_id, self.next_id + 1
        self.tracks = [_Track(ids[i], d.box) for i, d in enumerate(dets)]
        return [(ids[i], d) for i, d in enumerate(dets)]

    def swap(
        self, frame: np.ndarray, box: tuple[float, ...], full: list[Detection] | None
    ) -> tuple[Detection | None, list[Detection] | None]:
        """The swapped face at ``box``: a cheap search around it, else a full detection (cached
        per frame through ``full``) matched by IoU."""
        d = detect_near(self.det, frame, box)
        if d is not None and iou(d.box, box) >= self.cfg.min_iou:
            return d, full
        if full is None:
            full = detect_full(self.det, frame, self.cfg.max_detect_side)
        best = max(full, key=lambda c: iou(c.box, box), default=None)
        if best is not None and iou(best.box, box) >= self.cfg.min_iou:
            return best, full
        return None, full


def _same_face(orig: np.ndarray, swap: np.ndarray, lm_o: np.ndarray, lm_s: np.ndarray) -> bool:
    """True when the swap left this face untouched: same landmarks and the same pixels in the
    region dlib's embedding reads (the landmark box plus its 25 % padding, with margin). Then
    the embedding is the original's and its ~80 ms need not be spent again."""
    if not np.array_equal(lm_o, lm_s):
        return False
    lo, hi = lm_o.min(0), lm_o.max(0)
    pad = 0.5 * (hi - lo)
    x0, y0 = np.maximum(0, np.floor(lo - pad)).astype(int)
    x1, y1 = np.ceil(hi + pad).astype(int)
    return bool(np.array_equal(orig[y0 : y1 + 1, x0 : x1 + 1], swap[y0 : y1 + 1, x0 : x1 + 1]))


def _swap_landmarks(
    swap: np.ndarray,
    box: tuple[float, float, float, float],
    lm_orig: np.ndarray,
    swap_box: tuple[float, float, float, float],
    cfg: EvalConfig,
) -> np.ndarray:
    """The swapped face's landmarks, fitted from the original's box carried along with the face.

    dlib's shape predictor starts from the mean shape placed in the box, so its result depends a
    little on the box. Starting from the original's box keeps detector noise out of the
    comparison; moving that box by the mean landmark displacement it finds (``refine`` times)
    keeps the start equally good when the swapped face sits a few pixels away. An unchanged face
    moves by zero and gets exactly the original's landmarks.
    """
    if cfg.landmark_box == "swap":
        return landmarks_68(swap, swap_box)
    lm = landmarks_68(swap, box)
    for _ in range(cfg.refine):
        dx, dy = (lm - lm_orig).mean(0)
        if abs(dx) < 0.5 and abs(dy) < 0.5:
            break
        box = (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)
        lm = landmarks_68(swap, box)
    return lm


def _analyse(
    orig: np.ndarray,
    swap: np.ndarray,
    frame: int,
    name: str,
    face: int,
    track: int,
    det: Detection,
    finder: _Finder,
    full: list[Detection] | None,
    embed_orig: bool,
    embed_swap: bool,
    cfg: EvalConfig,
) -> tuple[FacePair | None, list[Detection] | None]:
    """Everything measured on one original face and its swapped counterpart."""
    shape = orig.shape
    lm_o = landmarks_68(orig, det.box)
    iod = M.inter_ocular(lm_o)
    band = max(1, round(cfg.band * iod))
    region = M.face_region(lm_o, shape, band, cfg.mask)
    if region is None or iod < 1.0:
        return None, full
    pair = FacePair(
        frame=frame,
        name=name,
        face=face,
        track=track,
        box=det.box,
        lm_orig=lm_o,
        iod=iod,
        luma_orig=M.mean_luma(orig, region),
        luma_swap=M.mean_luma(swap, region),
        pose_orig=head_pose(lm_o, shape[:2]),
        step_orig=M.border_color_step(orig, region, cfg.sectors),
        lab_orig=M.mean_lab(orig, region),
        sharp_orig=M.sharpness(orig, region),
        sharp_swap=M.sharpness(swap, region),
    )
    if embed_orig:
        pair.emb_orig = finder.embed(orig, lm_o)
    sd, full = finder.swap(swap, det.box, full)
    if sd is None:
        return pair, full
    lm_s = _swap_landmarks(swap, det.box, lm_o, sd.box, cfg)
    region_s = M.face_region(lm_s, shape, band, cfg.mask)
    if region_s is None:
        return pair, full
    pair.found, pair.iou, pair.lm_swap = True, iou(sd.box, det.box), lm_s
    pair.pose_swap = head_pose(lm_s, shape[:2])
    pair.step_swap = M.border_color_step(swap, region_s, cfg.sectors)
    pair.lab_swap = M.mean_lab(swap, region_s)
    if embed_swap:
        same = pair.emb_orig is not None and _same_face(orig, swap, lm_o, lm_s)
        pair.emb_swap = pair.emb_orig if same else finder.embed(swap, lm_s)
    return pair, full


# -- samples ---------------------------------------------------------------------------------


class _SampleKeeper:
    """Keeps frames spread evenly over a sequence of unknown length with bounded memory: every
    ``stride``-th frame, and when more than 2n are held, every other one and twice the stride."""

    def __init__(self, n: int, max_side: int = 360) -> None:
        self.n, self.max_side, self.stride = n, max_side, 1
        self.kept: list[Sample] = []

    def wants(self, frame: int) -> bool:
        return self.n > 0 and frame % self.stride == 0

    def add(self, frame: int, name: str, orig: np.ndarray, swap: np.ndarray) -> None:
        scale = min(1.0, self.max_side / max(orig.shape[:2]))
        small = [
            cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if scale < 1
            else im.copy()
            for im in (orig, swap)
        ]
        self.kept.append(Sample(frame, name, small[0], small[1]))
        if len(self.kept) > 2 * self.n:
            self.kept = self.kept[::2]
            self.stride *= 2

    def chosen(self) -> list[Sample]:
        if len(self.kept) <= self.n:
            return self.kept
        idx = np.linspace(0, len(self.kept) - 1, self.n).round().astype(int)
        return [self.kept[i] for i in idx]


# -- summaries -------------------------------------------------------------------------------


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


def _identity(pairs: list[FacePair], refs: IdentityRefs) -> tuple[dict[str, object], dict]:
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
        "swap_to_b_mean": M.finite_mean(s_b),
        "swap_to_a_mean": M.finite_mean(s_a),
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


def _attributes(pairs: list[FacePair]) -> tuple[dict[str, object], dict]:
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


def _temporal(pairs: list[FacePair]) -> tuple[dict[str, object], dict]:
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


def _blending(pairs: list[FacePair]) -> tuple[dict[str, object], dict]:
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


def _per_frame(pairs: list[FacePair], parts: dict[str, dict]) -> list[dict[str, object]]:
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


# -- the evaluation --------------------------------------------------------------------------


def evaluate(
    original: str | Path,
    swapped: str | Path,
    model_dir: str | Path | None = None,
    faceset_a: str | Path | None = None,
    faceset_b: str | Path | None = None,
    output_dir: str | Path | None = None,
    cfg: EvalConfig | None = None,
) -> dict[str, object]:
    """Measure a swapped video, image folder or image against its original.

    ``original`` and ``swapped`` are two videos, two folders (paired by file name) or two
    images, frame for frame the same size. Identity A (the original person) and B (the swap's
    target) come from ``faceset_a``/``faceset_b`` or the model's meta in ``model_dir``; without
    A the original faces stand in for it, without B only distances are reported. With
    ``output_dir``, writes metrics.json and report.html there. Returns the metrics (the same
    dict as metrics.json, JSON-clean).
    """
    cfg = cfg or EvalConfig()
    cfg.check()
    t0 = time.perf_counter()
    original, swapped = Path(original), Path(swapped)
    kind_o, kind_s = _kind(original), _kind(swapped)
    if kind_o != kind_s:
        raise UsageError(
            f"{original} is {'a' if kind_o != 'images' else 'an'} {kind_o} "
            f"but {swapped} is {kind_s}: give two videos, two folders or two images"
        )
    refs = identity_refs(model_dir, faceset_a, faceset_b, cfg.direction)
    info: dict[str, object] = {}
    if kind_o == "video":
        counts = check_video_pair(original, swapped, cfg)
        info["frame_counts"] = counts
        total = min((c for c in counts if c), default=None)
        if total is not None:
            total = max(total - cfg.start_frame, 0)
        info["start_frame"] = cfg.start_frame
        frames = _video_pairs(original, swapped, cfg.max_frames, info, cfg.start_frame)
    else:
        if kind_o == "images":
            pairs_io, missing = pair_images(original, swapped)
        else:
            pairs_io, missing = [(original, swapped)], []
        info["missing_in_swapped"] = missing
        total = len(pairs_io)
        frames = _image_pairs(pairs_io, cfg.max_frames)
    if cfg.max_frames is not None:
        total = min(total or cfg.max_frames, cfg.max_frames)
    out_dir = None if output_dir is None else Path(output_dir)
    made_dir = out_dir is not None and not out_dir.exists()
    if out_dir is not None:  # a report that cannot be written is found out now, not after
        make_folder(out_dir, "output folder")
    try:
        result, samples = _evaluate(original, swapped, kind_o, frames, total, refs, info, cfg, t0)
        if out_dir is not None:
            write_outputs(result, samples, out_dir)
    except BaseException:
        if made_dir and out_dir is not None:
            with contextlib.suppress(OSError):
                out_dir.rmdir()  # only when empty: a report written before is kept
        raise
    return result


def _same_size(orig: tuple[int, int], swap: tuple[int, int]) -> bool:
    """Equal, or the swap one column/row larger where the original is odd (see :func:`unpad`)."""
    dw, dh = swap[0] - orig[0], swap[1] - orig[1]
    return dw in (0, 1) and dh in (0, 1) and dw <= orig[0] % 2 and dh <= orig[1] % 2


def check_video_pair(original: Path, swapped: Path, cfg: EvalConfig) -> list[int]:
    """Frame counts of two videos that can be a swap and its original; InputError (exit 3)
    before any work when they cannot: either is truncated, their frame sizes differ, or their
    frame counts differ by more than a rounding of the container (a swap keeps every frame)."""
    infos = [probe(original), probe(swapped)]
    counts = []
    for path, vi in zip((original, swapped), infos):
        check_complete(path, vi.frame_count)
        counts.append(vi.frame_count or count_video_packets(path))
    (wo, ho), (ws, hs) = [(vi.width, vi.height) for vi in infos]
    if not _same_size((wo, ho), (ws, hs)):
        raise InputError(
            f"{swapped}: frames are {ws}x{hs} but the original's are {wo}x{ho}; a swap must keep "
            "the original's size"
        )
    n_o, n_s = counts
    if abs(n_o - n_s) > max(2, max(n_o, n_s) // 100):
        needed = None if cfg.max_frames is None else cfg.start_frame + cfg.max_frames
        if needed is None or min(n_o, n_s) < needed:
            raise InputError(
                f"{swapped} has {n_s} frames but {original} has {n_o}; a swap keeps every frame "
                "of its original - are these a video and its swap?"
            )
    if cfg.start_frame >= min(n_o, n_s):
        raise UsageError(
            f"--start-frame {cfg.start_frame} is past the end ({min(n_o, n_s)} frames)"
        )
    return counts


def _evaluate(
    original: Path,
    swapped: Path,
    kind_o: str,
    frames: Iterator[tuple[int, str, np.ndarray, np.ndarray]],
    total: int | None,
    refs: IdentityRefs,
    info: dict[str, object],
    cfg: EvalConfig,
    t0: float,
) -> tuple[dict[str, object], list[Sample]]:
    """The measurement of :func:`evaluate` (its inputs checked): the metrics and the report's
    sample frames."""

    device = resolve_device(cfg.device)
    det = create_detector(cfg.detector, device=device)
    embedder = Embedder(cfg.embedder, device=device)
    video = kind_o == "video"
    finder = _Finder(det, cfg, video, embedder)
    need_orig = cfg.embed_original or refs.mean_a is None
    samples = _SampleKeeper(cfg.samples)
    pairs: list[FacePair] = []
    n_frames = 0
    with tqdm(
        total=total, desc="eval", unit="frame", disable=not cfg.progress, smoothing=0.1
    ) as bar:
        for idx, name, orig, swap in frames:
            swap = unpad(swap, orig.shape)
            if orig.shape != swap.shape:
                raise InputError(
                    f"{swapped}: {name} is {swap.shape[1]}x{swap.shape[0]} but the original is "
                    f"{orig.shape[1]}x{orig.shape[0]}; a swap must keep the original's size"
                )
            embed = not video or idx % cfg.embed_every == 0
            full: list[Detection] | None = None
            for face, (track, d) in enumerate(finder.original(orig)):
                pair, full = _analyse(
                    orig,
                    swap,
                    idx,
                    name,
                    face,
                    track if video else len(pairs),
                    d,
                    finder,
                    full,
                    embed and need_orig,
                    embed,
                    cfg,
                )
                if pair is not None:
                    pairs.append(pair)
            if samples.wants(idx):
                samples.add(idx, name, orig, swap)
            n_frames += 1
            bar.update(1)
    if n_frames == 0:
        raise InputError(f"{original}: nothing to compare (no frames)")
    if not pairs:
        raise NoFaceError(f"{original}: no face found in any of the {n_frames} frames compared")
    n_found = sum(p.found for p in pairs)
    if n_found == 0:
        raise NoFaceError(
            f"{swapped}: no face found where the original has one "
            f"({len(pairs)} faces in {n_frames} frames)"
        )
    if info.get("ended_first"):
        log.warning("%s ended first; compared the first %d frames", info["ended_first"], n_frames)

    identity, id_per = _identity(pairs, refs)
    attributes, at_per = _attributes(pairs)
    blending, bl_per = _blending(pairs)
    parts = {"identity": id_per, "attributes": at_per, "blending": bl_per}
    temporal: dict[str, object] | None = None
    if video:
        temporal, tm_per = _temporal(pairs)
        parts["temporal"] = tm_per
    secs = time.perf_counter() - t0
    result = {
        "facetwin_version": facetwin.__version__,
        "kind": kind_o,
        "original": str(original),
        "swapped": str(swapped),
        "inputs": info,
        "frames": {
            "compared": n_frames,
            "faces": len(pairs),
            "swap_found": n_found,
            "swap_found_rate": n_found / len(pairs),
        },
        "identity": identity,
        "attributes": attributes,
        "temporal": temporal,
        "blending": blending,
        "per_frame": _per_frame(pairs, parts),
        "config": asdict(cfg),
        "seconds": secs,
        "frames_per_second": n_frames / secs if secs > 0 else None,
    }
    return clean_json(result), samples.chosen()  # type: ignore[return-value]


__all__ = ["EvalConfig", "FacePair", "Sample", "evaluate"]
