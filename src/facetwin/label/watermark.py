"""The invisible watermark's public calls: embed it, detect it in an image, check a video's
sampled frames (each on its own, and pooled).

The design is explained in :mod:`facetwin.label`. The parts live beside this module so that
each can be read on its own: :mod:`~facetwin.label.carrier` (parameters and key, shared by
embedding and detection), :mod:`~facetwin.label.search` (scheme-2 detection) and
:mod:`~facetwin.label.legacy` (scheme 1's detector). Their names stay importable from here.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from facetwin.label.carrier import (
    BAND,
    DEFAULT_PAYLOAD,
    MIN_SIDE,
    PAYLOAD_BITS,
    PILOT_SHARE,
    SCALES,
    STRENGTH,
    TILE,
    WATERMARK_KEY,
    WatermarkResult,
    _carrier,
    _coefficients,
    _payload_symbols,
    check_rgb,
)
from facetwin.label.carrier import _luma as _luma
from facetwin.label.legacy import _v1_detect
from facetwin.label.search import (
    DETECTION_THRESHOLD,
    SEARCH_SIZE,
    _result,
    _search,
    false_alarm_bound,
)
from facetwin.label.search import _folds as _folds
from facetwin.label.search import _surfaces as _surfaces
from facetwin.label.search import _weighted_spectra as _weighted_spectra
from facetwin.label.search import _working_plane as _working_plane

# --- video: the binomial test over sampled frames ----------------------------------------------

#: Per-frame false-alarm rate assumed by the video's binomial test: an upper bound (95 %, rule of
#: three) of the rate measured on >= 3,000 unmarked real frames, photos and re-encoded, resized
#: and cropped copies of them (0 false alarms; benchmarks/results/label-cpu.json). The theory
#: (:func:`false_alarm_bound`) bounds it at 2.6e-7; the measured bound is the more cautious.
FRAME_FALSE_ALARM = 1e-3
#: False-positive bound of the binomial test over a video's frames (frames taken as independent).
VIDEO_FRAME_ALPHA = 5e-7


# --- embedding ------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _pattern(height: int, width: int, payload: bytes) -> np.ndarray:
    """The luma pattern for a ``height`` x ``width`` frame (float32, STRENGTH grey levels RMS).

    Evaluated exactly from its Fourier series at every pixel centre, with the tile spanning the
    shorter side: separable, so it is two small matrix products rather than an interpolation.
    """
    carrier = _carrier()
    tile = min(height, width)
    rows, row_of = np.unique(carrier.ky, return_inverse=True)
    cols, col_of = np.unique(carrier.kx, return_inverse=True)
    coefs = np.zeros((len(rows), len(cols)), dtype=np.complex128)
    coefs[row_of, col_of] = _coefficients(payload)
    ey = np.exp(2j * np.pi * np.outer((np.arange(height) + 0.5) / tile, rows))
    ex = np.exp(2j * np.pi * np.outer((np.arange(width) + 0.5) / tile, cols))
    pattern = 2.0 * np.real(ey @ coefs @ ex.T)
    # each term 2|c| cos(...) has mean square 2|c|^2 = 2: scale the sum to STRENGTH RMS
    pattern *= STRENGTH / math.sqrt(2.0 * len(carrier.ky))
    out = pattern.astype(np.float32)
    out.setflags(write=False)
    return out


def embed_watermark(image_rgb: np.ndarray, payload: bytes = DEFAULT_PAYLOAD) -> np.ndarray:
    """Return a copy of ``image_rgb`` (uint8 RGB, HxWx3) carrying the invisible watermark.

    The change is a luma-only, zero-mean pattern of STRENGTH (2) grey levels RMS (PSNR ~42 dB)
    that depends on the image size and the payload only. The input is not modified.
    """
    check_rgb(image_rgb)
    height, width = image_rgb.shape[:2]
    delta = _pattern(height, width, bytes(payload))
    marked = image_rgb.astype(np.float32) + delta[..., None]
    return np.clip(np.rint(marked), 0, 255).astype(np.uint8)


# --- detection ------------------------------------------------------------------------------------


def _detect_luma(luma: np.ndarray, payload: bytes) -> tuple[WatermarkResult, np.ndarray]:
    """Scheme 2 on ``luma``, or scheme 1's result when only that finds a mark; and the scheme-2
    folds, which a video adds up over its frames (:func:`check_frames`)."""
    folds = _folds(_working_plane(luma))
    result = _result(folds, payload)
    if not result.found:
        legacy = _v1_detect(luma, payload)
        if legacy.found:
            return legacy, folds
    return result, folds


def detect_watermark(image_rgb: np.ndarray, payload: bytes = DEFAULT_PAYLOAD) -> WatermarkResult:
    """Look for the watermark carrying ``payload`` in an image of any size.

    Works on the image as found: re-compressed, resized with its aspect ratio kept, cropped by
    up to about a quarter of its shorter side. A mark of facetwin's first scheme is found too
    (``scheme`` 1).
    """
    check_rgb(image_rgb)
    payload = bytes(payload)
    _payload_symbols(payload)  # reject a bad payload before the work
    return _detect_luma(_luma(image_rgb), payload)[0]


def detect_or_none(image_rgb: np.ndarray) -> WatermarkResult | None:
    """detect_watermark, or None for an image too small to carry the mark (not an error)."""
    if min(image_rgb.shape[:2]) < MIN_SIDE:
        return None
    return detect_watermark(image_rgb)


# --- video: sampled frames, pooled and counted ----------------------------------------------------


def check_frames(
    frames: list[np.ndarray], payload: bytes = DEFAULT_PAYLOAD
) -> tuple[list[WatermarkResult | None], float]:
    """Each frame's :func:`detect_watermark` result (None for a frame too small to carry the
    mark) and the pooled score of all of them: their folds added up and searched once, so the
    mark, the same in every frame, adds up while the pictures average out."""
    results: list[WatermarkResult | None] = []
    pooled: np.ndarray | None = None
    for frame in frames:
        if min(frame.shape[:2]) < MIN_SIDE:
            results.append(None)
            continue
        check_rgb(frame)
        result, folds = _detect_luma(_luma(frame), payload)
        results.append(result)
        pooled = folds if pooled is None else pooled + folds
    return results, (_search(pooled, payload).score if pooled is not None else 0.0)


def binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed term by term (no 1 - ... cancellation)."""
    return float(sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(max(k, 0), n + 1)))


def frames_needed(n: int, p: float = FRAME_FALSE_ALARM, alpha: float = VIDEO_FRAME_ALPHA) -> int:
    """Fewest marked frames out of ``n`` that unmarked video shows with probability <= alpha
    (per-frame false-alarm rate ``p``); ``n + 1`` when even all ``n`` would not be enough."""
    return next((k for k in range(1, n + 1) if binomial_tail(n, k, p) <= alpha), n + 1)


__all__ = [
    "BAND",
    "DEFAULT_PAYLOAD",
    "DETECTION_THRESHOLD",
    "FRAME_FALSE_ALARM",
    "MIN_SIDE",
    "PAYLOAD_BITS",
    "PILOT_SHARE",
    "SCALES",
    "SEARCH_SIZE",
    "STRENGTH",
    "TILE",
    "VIDEO_FRAME_ALPHA",
    "WATERMARK_KEY",
    "WatermarkResult",
    "binomial_tail",
    "check_frames",
    "check_rgb",
    "detect_or_none",
    "detect_watermark",
    "embed_watermark",
    "false_alarm_bound",
    "frames_needed",
]
