"""Finding each original face and what the swapped frame shows in its place: one
:class:`FacePair` per original face and frame, with both faces' landmarks, pose, embeddings and
regions (the raw material every metric summarises)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.eval import metrics as M
from facetwin.eval.config import EvalConfig
from facetwin.extract.detect import detect_full, detect_near
from facetwin.extract.detectors import Detection, Detector
from facetwin.extract.identity import Embedder
from facetwin.extract.landmarkers import create_landmarker
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.boxes import iou
from facetwin.face.pose import head_pose


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


class Finder:
    """Original faces (with track ids on video) and their counterparts in the swapped frame."""

    def __init__(self, det: Detector, cfg: EvalConfig, video: bool, embed: Embedder | None) -> None:
        self.det, self.cfg, self.video, self.embed = det, cfg, video, embed
        self.poser = None if cfg.pose == "landmarks" else create_landmarker(cfg.pose)
        self.tracks: list[_Track] = []
        self.next_id = 0
        self.since_full = 0

    def pose(
        self, image: np.ndarray, box: tuple[float, float, float, float], landmarks: np.ndarray
    ) -> tuple[float, float, float]:
        """Head pose of the face in ``box``: the pose landmarker's own when ``cfg.pose`` names
        one that measures it, else the rigid fit of ``landmarks``."""
        fit = self.poser.fit(image, box) if self.poser is not None else None
        if fit is not None and fit.pose is not None:
            return fit.pose
        return head_pose(landmarks, image.shape[:2])

    def embedding(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """A face's identity embedding. The embedder is made only when a measure run needs
        embeddings (loading it costs seconds), and then only asked for them."""
        if self.embed is None:
            raise RuntimeError("no embedder: no measure of this run needs embeddings")
        return self.embed(image, landmarks)

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


def analyse(
    orig: np.ndarray,
    swap: np.ndarray,
    frame: int,
    name: str,
    face: int,
    track: int,
    det: Detection,
    finder: Finder,
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
        pose_orig=finder.pose(orig, det.box, lm_o),
        step_orig=M.border_color_step(orig, region, cfg.sectors),
        lab_orig=M.mean_lab(orig, region),
        sharp_orig=M.sharpness(orig, region),
        sharp_swap=M.sharpness(swap, region),
    )
    if embed_orig:
        pair.emb_orig = finder.embedding(orig, lm_o)
    sd, full = finder.swap(swap, det.box, full)
    if sd is None:
        return pair, full
    lm_s = _swap_landmarks(swap, det.box, lm_o, sd.box, cfg)
    region_s = M.face_region(lm_s, shape, band, cfg.mask)
    if region_s is None:
        return pair, full
    pair.found, pair.iou, pair.lm_swap = True, iou(sd.box, det.box), lm_s
    pair.pose_swap = finder.pose(swap, det.box, lm_s)  # the same box: no box noise in the error
    pair.step_swap = M.border_color_step(swap, region_s, cfg.sectors)
    pair.lab_swap = M.mean_lab(swap, region_s)
    if embed_swap:
        same = pair.emb_orig is not None and _same_face(orig, swap, lm_o, lm_s)
        pair.emb_swap = pair.emb_orig if same else finder.embedding(swap, lm_s)
    return pair, full
