"""The per-frame swap: cut the faces out, run the model, recolour, warp back, blend.

Geometry. ``M`` is the alignment matrix of a face (image pixels -> the model's input crop, at the
model's size and coverage), computed from the landmarks convert was given (smoothed ones on
video). The model's output crop may have another size than its input; ``recrop_matrix`` takes the
input crop to it, so ``M_out = recrop(S -> O) . M``. The swapped face goes back with the inverse
of ``M_out`` - only into the face's bounding box (the ROI), not the whole frame.

Occlusion. With an :class:`OcclusionConfig`, the same crops also go through the model's
*source* decoder (the person's own: A -> A). Where that reconstruction disagrees strongly with
the crop, something that is not face (a hand, a microphone) covers it; the resulting keep mask
is computed in the output crop, warped back with the same inverse of ``M_out`` as the face and
carried in the :class:`FacePatch`, so every blender leaves the occluder in front. Hands are
also looked for directly (``OcclusionConfig.hands``: MediaPipe's palm and hand networks around
each face, :mod:`facetwin.extract.hands`), which needs no trained decoder: their grown hulls go
into the same keep mask.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facetwin.convert.blend import Blender, BlendParams, FacePatch, erode_region, mix, occlude
from facetwin.convert.color import ColorMatcher
from facetwin.convert.occlusion import OcclusionConfig, face_keep, hand_keep
from facetwin.errors import ModelMismatchError
from facetwin.extract.hands import PHOTO_SCALES, VIDEO_SCALES, HandFinder, Scales
from facetwin.face.align import (
    alignment_matrix,
    compose,
    invert,
    recrop_matrix,
    transform_points,
    warp_face,
)
from facetwin.face.boxes import Box, landmark_box
from facetwin.face.masks import face_mask
from facetwin.model_meta import embedding_vector

#: Pixels of frame kept around the crop square's bounding box (the Poisson boundary needs some).
ROI_MARGIN = 4
#: Colour statistics are taken this fraction of the crop side inside the face's hull, away from
#: the jaw line and hair, where the original and the generated face differ most.
STATS_ERODE = 0.05
REQUIRED_META = ("arch", "input_size", "coverage", "model_id")


@dataclass
class Timer:
    """Seconds spent per stage, summed over a run (the time split of the summary)."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t0

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}


# -- the model --------------------------------------------------------------------------------


@dataclass
class SwapModel:
    """A trained model plus what convert needs to feed it (from the checkpoint's meta)."""

    net: Any  # torch.nn.Module with forward(x, side)
    meta: dict[str, Any]

    @property
    def input_size(self) -> int:
        return int(self.meta["input_size"])

    @property
    def coverage(self) -> float:
        return float(self.meta["coverage"])

    @property
    def model_id(self) -> str:
        return str(self.meta["model_id"])

    def identity_embedding(self, side: str) -> np.ndarray | None:
        """Mean 128-D embedding of the faces side ``side`` was trained on, if recorded.

        The checkpoint keeps it under ``identities[side].mean_embedding``; the flat key
        ``mean_embedding_<side>`` is accepted too.
        """
        ident = (self.meta.get("identities") or {}).get(side) or {}
        emb = ident.get("mean_embedding", self.meta.get(f"mean_embedding_{side}"))
        return embedding_vector(emb)  # the check eval's ModelMeta applies

    def __call__(self, crops: list[np.ndarray], side: str) -> list[np.ndarray]:
        """Swapped faces (RGB uint8) for crops (RGB uint8, input size) by decoder ``side``."""
        import torch

        param = next(self.net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        # NCHW contiguous: a permuted (channels-last) input would switch every layer to the
        # channels-last kernels, which are slower on CPU at these sizes
        x = torch.from_numpy(np.stack(crops).transpose(0, 3, 1, 2).copy()).to(device)
        x = x.float() / 255.0
        # ``draw``: models that predict a mask (gan) return the face composited through it
        draw = getattr(self.net, "draw", self.net)
        with torch.inference_mode():
            y = draw(x, side)
        out = (y.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return list(out)


def load_swap_model(
    model: str | Path | SwapModel | tuple[Any, dict[str, Any]], device: str = "auto"
) -> SwapModel:
    """A :class:`SwapModel` from a model folder (or snapshot), or from an already loaded one.

    Accepting ``(module, meta)`` lets tests and benchmarks convert with a model built in memory.
    """
    if isinstance(model, SwapModel):
        return model
    if isinstance(model, tuple):
        net, meta = model
    else:
        from facetwin.train.checkpoint import load_model

        net, meta = load_model(model, device)
    missing = [k for k in REQUIRED_META if k not in meta]
    if missing:
        raise ModelMismatchError(f"model meta lacks {', '.join(missing)}: not a facetwin model")
    net.eval()
    return SwapModel(net, dict(meta))


# -- geometry ----------------------------------------------------------------------------------


def matrix_scale(m: np.ndarray) -> float:
    """Uniform scale of a similarity matrix (crop pixels per image pixel)."""
    return float(np.sqrt(abs(np.linalg.det(m[:, :2]))))


def square_roi(
    m_out: np.ndarray, out_size: int, shape: tuple[int, ...], margin: int = ROI_MARGIN
) -> tuple[int, int, int, int] | None:
    """Frame box (x0, y0, x1, y1) holding the output crop square plus ``margin``; None when the
    square lies outside the frame."""
    o = out_size - 0.5
    corners = transform_points(
        np.array([[-0.5, -0.5], [o, -0.5], [o, o], [-0.5, o]]), invert(m_out)
    )
    h, w = shape[:2]
    x0, y0 = np.floor(corners.min(0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(0)).astype(int) + margin + 1
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def shift_matrix(m: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """``m`` applied to ROI pixels: m(x + x0, y + y0)."""
    out = m.copy()
    out[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    return out


def warp_back(
    crop: np.ndarray,
    m: np.ndarray,
    size: tuple[int, int],
    border: int,
    value: float = 0.0,
    interp: int = cv2.INTER_LINEAR,
) -> np.ndarray:
    """``crop`` (output-crop pixels) into a ``size`` (w, h) ROI through the inverse of ``m``
    (the ROI-shifted crop matrix), bilinear unless ``interp`` says otherwise; ``border`` and
    ``value`` fill outside the crop."""
    flags = interp | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(crop, m, size, flags=flags, borderMode=border, borderValue=value)


def hull_region(landmarks: np.ndarray, x0: int, y0: int, square: np.ndarray) -> np.ndarray:
    """uint8 0/255 (the ROI's shape): the landmarks' convex hull, cut to the crop square (the
    swapped face exists only there)."""
    region = np.zeros(square.shape, np.uint8)
    hull = cv2.convexHull(np.round(np.asarray(landmarks) - [x0, y0]).astype(np.int32))
    cv2.fillConvexPoly(region, hull, 255, lineType=cv2.LINE_8)
    region[square < 0.5] = 0
    return region


def make_patch(
    frame: np.ndarray,
    face: np.ndarray,
    m_out: np.ndarray,
    landmarks: np.ndarray,
    keep: np.ndarray | None = None,
    sharpen: float = 0.0,
) -> FacePatch | None:
    """Warp the output-crop ``face`` back into the frame (its ROI only) as a :class:`FacePatch`.

    ``sharpen`` > 0 applies an unsharp mask to the warped face at the scale of one crop pixel.

    ``keep`` (float32, the output crop's size; 0 on occluders) goes back the same way; outside
    the crop square it is 1, which changes nothing there (the face is the original's anyway).
    """
    size = face.shape[0]
    roi = square_roi(m_out, size, frame.shape)
    if roi is None:
        return None
    x0, y0, x1, y1 = roi
    wh = (x1 - x0, y1 - y0)
    m = shift_matrix(m_out, x0, y0)
    # Replicated edges: the square's own alpha cuts the face, so its border pixels must not be
    # darkened by interpolating with a black outside.
    # Bicubic: the drawn face is enlarged ~1.5x into the frame, and bilinear enlarging softens
    # it further - the demo model's held-out swaps measured a sharpness ratio of 0.32 bilinear,
    # 0.43 bicubic (benchmarks/paste_probe.py). Masks stay bilinear (no overshoot).
    warped = warp_back(face, m, wh, cv2.BORDER_REPLICATE, interp=cv2.INTER_CUBIC)
    if sharpen > 0:
        warped = unsharp(warped, sharpen, sigma=max(0.5, 1.0 / matrix_scale(m_out)))
    square = warp_back(np.ones((size, size), np.float32), m, wh, cv2.BORDER_CONSTANT)
    keep_roi = None
    if keep is not None:
        keep_roi = warp_back(keep.astype(np.float32), m, wh, cv2.BORDER_CONSTANT, 1.0)
    return FacePatch(
        roi=roi,
        face=mix(frame[y0:y1, x0:x1], warped, square),
        square=square,
        region=hull_region(landmarks, x0, y0, square),
        size=size / matrix_scale(m_out),
        keep=keep_roi,
    )


def unsharp(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """``image + amount * (image - blur(image))``, clipped to uint8."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    return cv2.addWeighted(image, 1.0 + amount, blurred, -amount, 0)


def colour_mask(landmarks_crop: np.ndarray, size: int) -> np.ndarray:
    """bool (size, size): where colour statistics are taken - the hull, eroded, inside the crop."""
    region = face_mask(landmarks_crop, size, "components")
    return erode_region(region, STATS_ERODE * size) > 0


# -- one frame ---------------------------------------------------------------------------------


@dataclass
class Swapper:
    """Everything fixed for a run: the model, the decoder side, the colour and blend steps.

    Occlusion handling needs ``source_side`` (the decoder of the person in the frame) and an
    enabled ``occlusion`` config; it costs one more batched forward per frame.
    """

    model: SwapModel
    side: str  # decoder to draw with: the *other* identity's
    color: ColorMatcher
    blend: Blender
    params: BlendParams
    timer: Timer = field(default_factory=Timer)
    source_side: str | None = None  # the frame's own identity: reconstructs it (occlusion)
    occlusion: OcclusionConfig | None = None
    hand_finder: HandFinder | None = None  # made on first use
    hand_seen: int | None = None  # the last frame index a hand was found at (hands_due)

    @property
    def occludes(self) -> bool:
        return (
            self.source_side is not None and self.occlusion is not None and self.occlusion.enabled
        )

    @property
    def finds_hands(self) -> bool:
        return self.occlusion is not None and self.occlusion.enabled and self.occlusion.hands

    def hands_near(self, frame: np.ndarray, box: Box, scales: Scales) -> list[np.ndarray]:
        """Polygons (frame pixels) of the hands around the face ``box``, searched at ``scales``."""
        if self.hand_finder is None:
            self.hand_finder = HandFinder()
        with self.timer("hands"):
            return [h.polygon for h in self.hand_finder.near(frame, box, scales)]

    def swap_frame(
        self, frame: np.ndarray, faces: list[np.ndarray], index: int | None = None
    ) -> np.ndarray:
        """``frame`` (RGB uint8) with every face in ``faces`` ((68, 2) landmarks) swapped.

        ``index``: the frame's number in its output segment (None: a photo), which paces the
        hand search (:meth:`hands_due`). The input is not modified. Faces are blended one after
        the other, each onto the result of the previous one.
        """
        if not faces:
            return frame
        size, cov = self.model.input_size, self.model.coverage
        with self.timer("blend"):
            m_in = [alignment_matrix(lm, size, cov) for lm in faces]
            crops = [warp_face(frame, m, size) for m in m_in]
        with self.timer("model"):
            swapped = self.model(crops, self.side)
        own: list[np.ndarray | None] = [None] * len(crops)
        if self.occludes:
            with self.timer("occlusion"):
                own = list(self.model(crops, str(self.source_side)))
        out = frame.copy()
        scales = (PHOTO_SCALES if index is None else VIDEO_SCALES) if self.finds_hands else ()
        due = self.hands_due(index)
        for lm, m, face, rec in zip(faces, m_in, swapped, own):
            if self._paste(out, frame, lm, m, face, rec, scales, due) and index is not None:
                self.hand_seen = index
        return out

    def hands_due(self, index: int | None) -> bool:
        """Whether to look for hands in this frame: in every photo; in a video on every
        ``hands_every``-th frame and on every frame while a hand was found within the last
        ``hands_every`` (the finder costs more than the rest of a frame; most have no hand;
        :meth:`_paste` also looks where the reconstruction sees an occluder). ``index`` counts
        from 0 at each segment of the output (``Converter.render``), and the memory of the last
        hand starts afresh there, so a video converted in segments - resumed, or on Ray - equals
        one converted whole."""
        if not self.finds_hands:
            return False
        if index is None:
            return True
        if self.hand_seen is not None and index < self.hand_seen:
            self.hand_seen = None  # a new segment or stream
        assert self.occlusion is not None
        every = max(1, self.occlusion.hands_every)
        recent = self.hand_seen is not None and index - self.hand_seen <= every
        return index % every == 0 or recent

    def keep_mask(
        self, target: np.ndarray, reconstruction: np.ndarray, landmarks_crop: np.ndarray
    ) -> np.ndarray:
        """float32 keep mask (output crop) for one face: 0 where an occluder covers it."""
        assert self.occlusion is not None
        return face_keep(target, reconstruction, landmarks_crop, self.occlusion)

    def _paste(
        self,
        out: np.ndarray,
        frame: np.ndarray,
        landmarks: np.ndarray,
        m_in: np.ndarray,
        face: np.ndarray,
        reconstruction: np.ndarray | None = None,
        hand_scales: Scales = (),  # where to look for hands in front of it; (): nowhere
        hands_due: bool = True,
    ) -> bool:
        """Blend one swapped ``face`` into ``out``; whether a hand was found in front of it.

        Hands are looked for when due (:meth:`hands_due`) and also when the reconstruction
        finds an occluder on this face: a hand coming in is then kept from its first frame
        instead of being painted over until the next scheduled search."""
        o = face.shape[0]
        m_out = compose(
            recrop_matrix(self.model.input_size, self.model.coverage, o, self.model.coverage), m_in
        )
        with self.timer("blend"):
            target = warp_face(frame, m_out, o)
            lm_crop = transform_points(landmarks, m_out)
        keep = None
        stats = colour_mask(lm_crop, o)
        if reconstruction is not None:
            with self.timer("occlusion"):
                keep = self.keep_mask(target, reconstruction, lm_crop)
        seen = keep is not None and bool((keep < 0.5).any())
        look = bool(hand_scales) and (hands_due or seen)
        hands = self.hands_near(frame, landmark_box(landmarks), hand_scales) if look else []
        if hands:
            assert self.occlusion is not None
            held = hand_keep(hands, m_out, o, self.occlusion)
            keep = held if keep is None else np.minimum(keep, held)
        if keep is not None:
            # the occluder's colours are not the face's: leave them out of the statistics
            stats &= keep > 0.5
        with self.timer("blend"):
            face = self.color(face, target, stats)
            patch = make_patch(out, face, m_out, landmarks, keep, self.params.sharpen)
            if patch is not None:
                x0, y0, x1, y1 = patch.roi
                roi = out[y0:y1, x0:x1]
                out[y0:y1, x0:x1] = occlude(roi, self.blend(roi, patch, self.params), patch)
        return bool(hands)
