"""The watermark's definition, shared by embedding and detection: the scheme's parameters, the
key-derived carrier (which frequency carries what, at which phase), its spectrum on the tile,
and the result type both detectors return.

Why a module of its own: the embedder (:mod:`facetwin.label.watermark`) and the detector
(:mod:`facetwin.label.search`) must agree on every number here bit for bit, so there is exactly
one place that defines them. The design is explained in :mod:`facetwin.label`; changing a
parameter here breaks detection of existing marks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

# --- watermark parameters: changing any of these breaks detection of existing marks ---------------

#: Payload written by facetwin: a fixed signature, so every facetwin output carries the same mark.
DEFAULT_PAYLOAD = b"facetwin"
#: Secret-less key of the carrier; versioned so that a future scheme can use a new one.
WATERMARK_KEY = b"facetwin-watermark-v2"
#: Side of the tile in the detector's working resolution (the tile spans the shorter side).
TILE = 192
#: Radial frequencies of the pattern, in cycles per tile (= per shorter side of the frame).
BAND = (8, 40)
#: RMS of the luma pattern in grey levels: PSNR about 42 dB.
STRENGTH = 2.0
#: Payload size in bits; shorter payloads are repeated to fill it.
PAYLOAD_BITS = 64
#: Share of the band's frequencies that carry the fixed pilot rather than payload bits.
PILOT_SHARE = 0.5
#: Relative tile sizes the detector tries: 1 for a resized copy, 1/0.9 after cropping 10 % of
#: the shorter side; steps of 1.5 % (halfway between two, the band's top loses about 10 %).
SCALES: tuple[float, ...] = tuple(float(0.96 * 1.015**i) for i in range(25))
#: Smallest side we mark or check: below it the tile is mostly interpolation.
MIN_SIDE = 64

#: BT.601 luma weights.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class WatermarkResult:
    """Outcome of :func:`detect_watermark`.

    ``score`` is the best normalised correlation over the search: on unmarked images about
    4.8 +- 0.3 (the largest of 921,600 near-N(0, 1) values), on marked ones 10-50 after
    0.5x + CRF 28, 0.5x + JPEG 50 or a crop. ``bits_ok`` is the fraction of the expected
    payload bits that decoded correctly (about 0.5 on unmarked images). ``payload`` is what
    was decoded, right or not. ``scale`` and ``shift`` say where the mark was found: the
    tile's size relative to the shorter side (1/scale is the share of it that a crop kept) and
    its offset in working pixels. ``scheme`` is 2, or 1 for a mark of facetwin's first scheme.
    """

    found: bool
    score: float
    bits_ok: float
    payload: bytes
    scale: float = 1.0
    shift: tuple[int, int] = (0, 0)
    scheme: int = 2


# --- watermark: small pure helpers ----------------------------------------------------------------


def check_rgb(image_rgb: np.ndarray) -> None:
    """Reject what the mark is not defined for, with a message that says what was wrong."""
    if not isinstance(image_rgb, np.ndarray) or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        shape = getattr(image_rgb, "shape", None)
        raise ValueError(f"expected an RGB image of shape HxWx3, got {shape}")
    if image_rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image_rgb.dtype}")
    if min(image_rgb.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"image {image_rgb.shape[1]}x{image_rgb.shape[0]} is too small for the watermark "
            f"(needs at least {MIN_SIDE} px a side)"
        )


def _luma(image_rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma as float32: the channel that video codecs and JPEG keep at full resolution."""
    return image_rgb.astype(np.float32) @ _LUMA


def _rescale(plane: np.ndarray, factor: float) -> np.ndarray:
    """Resize by ``factor`` on both axes: area-average when shrinking (no aliasing), linear when
    growing. Passing the factor (not a rounded size) keeps the scale exact on both axes."""
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    return cv2.resize(plane, None, fx=factor, fy=factor, interpolation=interp)


def _payload_symbols(payload: bytes) -> np.ndarray:
    """Payload as PAYLOAD_BITS symbols of +-1 (short payloads repeat to fill the slots)."""
    if not payload or len(payload) * 8 > PAYLOAD_BITS:
        raise ValueError(f"payload must be 1 to {PAYLOAD_BITS // 8} bytes, got {len(payload)}")
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    return np.resize(bits, PAYLOAD_BITS).astype(np.float64) * 2.0 - 1.0


@dataclass(frozen=True)
class _Carrier:
    """The key's frequencies: one entry per independent (half-plane) frequency of the band."""

    ky: np.ndarray  # cycles per tile, vertical (signed)
    kx: np.ndarray  # cycles per tile, horizontal (>= 0)
    phase: np.ndarray  # key-derived phase, radians
    bit: np.ndarray  # payload bit carried, -1 for the pilot


@cache
def _carrier() -> _Carrier:
    """Key-derived phase and role of every frequency of the band (SHAKE-256: a fixed standard,
    so marks stay readable across numpy versions). Half-plane only: (ky, kx) and (-ky, -kx)
    are the same real pattern."""
    k = np.arange(-BAND[1], BAND[1] + 1)
    ky, kx = (a.reshape(-1) for a in np.meshgrid(k, k, indexing="ij"))
    radius = np.hypot(ky, kx)
    keep = (radius >= BAND[0]) & (radius <= BAND[1]) & ((kx > 0) | ((kx == 0) & (ky > 0)))
    ky, kx = ky[keep], kx[keep]
    n = len(ky)
    raw = np.frombuffer(hashlib.shake_256(WATERMARK_KEY).digest(8 * n), dtype="<u4")
    raw = raw.reshape(n, 2).astype(np.float64)
    phase = raw[:, 0] * (2 * np.pi / 2**32)
    order = np.argsort(raw[:, 1], kind="stable")
    pilots = int(round(n * PILOT_SHARE))
    bit = np.full(n, -1, dtype=np.intp)
    bit[order[pilots:]] = np.arange(n - pilots) % PAYLOAD_BITS
    for array in (ky, kx, phase, bit):
        array.setflags(write=False)
    return _Carrier(ky=ky, kx=kx, phase=phase, bit=bit)


def _coefficients(payload: bytes) -> np.ndarray:
    """Complex amplitude of each carrier frequency for ``payload`` (unit magnitude)."""
    carrier = _carrier()
    sign = np.where(carrier.bit < 0, 1.0, _payload_symbols(payload)[carrier.bit])
    return sign * np.exp(1j * carrier.phase)


@cache
def _template(payload: bytes) -> np.ndarray:
    """The key's spectrum on the TILE x TILE FFT grid: Hermitian, zero outside the band."""
    carrier = _carrier()
    coefs = _coefficients(payload)
    spectrum = np.zeros((TILE, TILE), dtype=np.complex128)
    spectrum[carrier.ky % TILE, carrier.kx % TILE] = coefs
    spectrum[-carrier.ky % TILE, -carrier.kx % TILE] = np.conj(coefs)
    spectrum.setflags(write=False)
    return spectrum


@cache
def _band_mask() -> np.ndarray:
    """Where :func:`_template` is non-zero (both halves of the band)."""
    mask = np.abs(_template(DEFAULT_PAYLOAD)) > 0
    mask.setflags(write=False)
    return mask
