"""The invisible watermark (scheme 2, and scheme 1's detector): embed and detect. The design is
explained in :mod:`facetwin.label`; changing a parameter here breaks detection of existing marks.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from functools import cache, lru_cache

import cv2
import numpy as np

log = logging.getLogger(__name__)


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

# --- detection: statistics ------------------------------------------------------------------------

#: Number of (scale, shift) hypotheses one search tests: the multiplicity of its maximum.
SEARCH_SIZE = len(SCALES) * TILE * TILE
#: Score at or above which the mark counts as found (image, frame or pooled video):
#: P(false alarm) <= SEARCH_SIZE * exp(-threshold^2 / 2) = 2.6e-7 (:func:`false_alarm_bound`).
DETECTION_THRESHOLD = 7.6
#: Per-frame false-alarm rate assumed by the video's binomial test: an upper bound (95 %, rule of
#: three) of the rate measured on >= 3,000 unmarked real frames, photos and re-encoded, resized
#: and cropped copies of them (0 false alarms; benchmarks/results/label-cpu.json). The theory
#: above bounds it at 2.6e-7; the measured bound is the more cautious of the two.
FRAME_FALSE_ALARM = 1e-3
#: False-positive bound of the binomial test over a video's frames (frames taken as independent).
VIDEO_FRAME_ALPHA = 5e-7
#: High-pass before the local normalisation: keeps the band, removes the picture's broad shapes.
_HIGHPASS_SIGMA = 0.9 * TILE / (2 * math.pi * BAND[0])
#: Local contrast normalisation: window (sigma, working px) and floor (grey levels).
_CONTRAST_SIGMA = 2.0
_CONTRAST_FLOOR = 0.5
#: Width of the box over which the folded image's spectral power is averaged for the weights.
_SPECTRUM_SMOOTH = 5

# --- scheme 1 (legacy, detection only): 8x8 DCT band on a 256x256 canonical grid ------------------

_V1_KEY = b"facetwin-watermark-v1"
_V1_CANONICAL = 256
_V1_BLOCK = 8
_V1_BAND = ((1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (0, 3), (3, 0), (2, 2), (1, 3), (3, 1))
#: Scheme 1's threshold; its score is about N(0, 1.1) on unmarked images.
_V1_THRESHOLD = 8.0
_V1_ENERGY_FLOOR = 2.0


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


def _resize_axes(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize one axis at a time: area-average where it shrinks, linear where it grows (scheme
    1's canonical grid; one cv2.resize call would have to pick a single method for both)."""
    out = plane
    if out.shape[1] != width:
        interp = cv2.INTER_AREA if width < out.shape[1] else cv2.INTER_LINEAR
        out = cv2.resize(out, (width, out.shape[0]), interpolation=interp)
    if out.shape[0] != height:
        interp = cv2.INTER_AREA if height < out.shape[0] else cv2.INTER_LINEAR
        out = cv2.resize(out, (out.shape[1], height), interpolation=interp)
    return out


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


def _working_plane(luma: np.ndarray) -> np.ndarray:
    """The luma at the working size (shorter side TILE), high-passed and divided by its local
    contrast, so flat and busy areas weigh the same."""
    plane = _rescale(luma, TILE / min(luma.shape))
    plane = plane - cv2.GaussianBlur(plane, (0, 0), _HIGHPASS_SIGMA)
    energy = cv2.GaussianBlur(plane * plane, (0, 0), _CONTRAST_SIGMA)
    return plane / np.sqrt(energy + _CONTRAST_FLOOR**2)


def _folds(plane: np.ndarray) -> np.ndarray:
    """The plane folded onto one tile at each of SCALES: (len(SCALES), TILE, TILE).

    At scale ``s`` the plane is shrunk by ``s`` so that a tile of ``s`` times the shorter side
    becomes TILE px, then cut into TILE x TILE pieces (the last ones zero-padded) and summed.
    """
    out = np.empty((len(SCALES), TILE, TILE), dtype=np.float64)
    for i, scale in enumerate(SCALES):
        scaled = _rescale(plane, 1.0 / scale)
        height, width = scaled.shape
        ny, nx = -(-height // TILE), -(-width // TILE)
        padded = np.zeros((ny * TILE, nx * TILE), dtype=np.float32)
        padded[:height, :width] = scaled
        out[i] = padded.reshape(ny, TILE, nx, TILE).sum(axis=(0, 2))
    return out


def _smoothed_power(spectrum: np.ndarray) -> np.ndarray:
    """|spectrum|^2 averaged over a _SPECTRUM_SMOOTH-wide box around each frequency.

    ``spectrum`` is the half plane of real input (rfft2: columns kx >= 0), so the columns left
    of kx = 0 are the mirror image of those right of it: power(ky, -kx) = power(-ky, kx).
    Rows wrap around; the band ends far below the last column, which is padded with zeros.
    """
    power = spectrum.real**2 + spectrum.imag**2
    r = _SPECTRUM_SMOOTH // 2
    mirror = np.roll(np.flip(power[..., 1 : r + 1], axis=(-2, -1)), 1, axis=-2)
    pad = np.zeros(power.shape[:-1] + (r,), dtype=power.dtype)
    wide = np.concatenate([mirror, power, pad], axis=-1)
    width = power.shape[-1]
    cols = np.zeros_like(power)
    for c in range(2 * r + 1):
        cols += wide[..., c : c + width]
    out = np.zeros_like(power)
    for dy in range(-r, r + 1):
        out += np.roll(cols, dy, axis=-2)
    return out / _SPECTRUM_SMOOTH**2


@dataclass(frozen=True)
class _Search:
    """Best (scale, shift) of a search, its score, and the weighted spectrum there."""

    score: float
    scale_index: int
    shift: tuple[int, int]
    weighted: np.ndarray  # weights * spectrum of the fold at the best scale (half plane)


def _weighted_spectra(folds: np.ndarray) -> np.ndarray:
    """Half-plane spectra of the folds, each frequency of the band weighted by 1 / (local
    spectral magnitude of its fold), zero elsewhere."""
    spectrum = np.fft.rfft2(folds)  # real input: the half plane kx >= 0 holds it all
    band = _band_mask()[:, : TILE // 2 + 1]
    return np.where(band, 1.0 / np.sqrt(_smoothed_power(spectrum) + 1e-12), 0) * spectrum


def _surfaces(weighted: np.ndarray, payload: bytes) -> np.ndarray:
    """Score of every (scale, shift): the correlation with the key divided by its exact
    standard deviation over random key phases, sqrt(sum over the band of (weight * |fold
    spectrum|)^2), so a z-score for any unmarked image. (len(SCALES), TILE, TILE)."""
    energy = weighted.real**2 + weighted.imag**2
    # the full plane's sum: columns kx > 0 stand for their mirror images too
    norm = np.sqrt(energy[..., 0].sum(axis=-1) + 2 * energy[..., 1:].sum(axis=(-2, -1)))
    product = weighted * np.conj(_template(payload)[:, : TILE // 2 + 1])
    surface = np.fft.irfft2(product, s=(TILE, TILE)) * (TILE * TILE)
    return surface / np.maximum(norm, 1e-12)[..., None, None]


def _search(folds: np.ndarray, payload: bytes) -> _Search:
    """Correlate the folds with the key at every scale and cyclic shift; keep the best."""
    weighted = _weighted_spectra(folds)
    surface = _surfaces(weighted, payload)
    best = int(np.argmax(surface))
    index, dy, dx = np.unravel_index(best, surface.shape)
    return _Search(
        score=float(surface.flat[best]),
        scale_index=int(index),
        shift=(int(dy), int(dx)),
        weighted=weighted[index],
    )


def _decode(search: _Search, payload: bytes) -> tuple[bytes, float]:
    """Payload bits at the best (scale, shift): the sign of each bit's correlation."""
    carrier = _carrier()
    dy, dx = search.shift
    at = search.weighted[carrier.ky % TILE, carrier.kx]
    turn = np.exp(2j * np.pi * (carrier.ky * dy + carrier.kx * dx) / TILE)
    terms = np.real(at * np.exp(-1j * carrier.phase) * turn)
    payload_terms = carrier.bit >= 0
    sums = np.bincount(
        carrier.bit[payload_terms], weights=terms[payload_terms], minlength=PAYLOAD_BITS
    )
    decoded = sums > 0
    bits_ok = float(np.mean(decoded == (_payload_symbols(payload) > 0)))
    return np.packbits(decoded).tobytes(), bits_ok


def _result(folds: np.ndarray, payload: bytes) -> WatermarkResult:
    """Scheme-2 detection on ready folds."""
    search = _search(folds, payload)
    decoded, bits_ok = _decode(search, payload)
    return WatermarkResult(
        found=search.score >= DETECTION_THRESHOLD,
        score=search.score,
        bits_ok=bits_ok,
        payload=decoded,
        scale=SCALES[search.scale_index],
        shift=search.shift,
    )


def false_alarm_bound(threshold: float = DETECTION_THRESHOLD) -> float:
    """Upper bound of P(score >= threshold) for one unmarked image or pooled video.

    Union bound over the SEARCH_SIZE hypotheses, each sub-Gaussian with variance 1.
    """
    return min(1.0, SEARCH_SIZE * math.exp(-(threshold**2) / 2))


def binomial_tail(n: int, k: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed term by term (no 1 - ... cancellation)."""
    return float(sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(max(k, 0), n + 1)))


def frames_needed(n: int, p: float = FRAME_FALSE_ALARM, alpha: float = VIDEO_FRAME_ALPHA) -> int:
    """Fewest marked frames out of ``n`` that unmarked video shows with probability <= alpha
    (per-frame false-alarm rate ``p``); ``n + 1`` when even all ``n`` would not be enough."""
    return next((k for k in range(1, n + 1) if binomial_tail(n, k, p) <= alpha), n + 1)


# --- scheme 1 (legacy): detection only ------------------------------------------------------------


@cache
def _v1_dct_matrix() -> np.ndarray:
    """Orthonormal 8-point DCT-II matrix."""
    k = np.arange(_V1_BLOCK)[:, None]
    i = np.arange(_V1_BLOCK)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * _V1_BLOCK)) * np.sqrt(2.0 / _V1_BLOCK)
    m[0] /= np.sqrt(2.0)
    m.setflags(write=False)
    return m


@cache
def _v1_carrier() -> tuple[np.ndarray, np.ndarray]:
    """Scheme 1's key-derived (sign, bit index) of every band coefficient."""
    n = (_V1_CANONICAL // _V1_BLOCK) ** 2 * len(_V1_BAND)
    raw = np.frombuffer(hashlib.shake_256(_V1_KEY).digest(8 * n), dtype="<u4").reshape(n, 2)
    signs = np.where(raw[:, 0] & 1, 1.0, -1.0)
    bit_of = np.empty(n, dtype=np.intp)
    bit_of[np.argsort(raw[:, 1], kind="stable")] = np.arange(n) % PAYLOAD_BITS
    return signs, bit_of


def _v1_detect(luma: np.ndarray, payload: bytes) -> WatermarkResult:
    """Scheme 1: the 8x8 block DCT band of the luma resized to 256x256, locally normalised and
    correlated with the key; a z-score of about N(0, 1.1) on unmarked images."""
    plane = _resize_axes(luma, _V1_CANONICAL, _V1_CANONICAL)
    nb, d = _V1_CANONICAL // _V1_BLOCK, _v1_dct_matrix()
    blocks = plane.astype(np.float64).reshape(nb, _V1_BLOCK, nb, _V1_BLOCK).transpose(0, 2, 1, 3)
    coefs = np.einsum("ij,abjk,lk->abil", d, blocks, d)
    rows, cols = zip(*_V1_BAND, strict=True)
    band = coefs[:, :, list(rows), list(cols)].reshape(-1)
    energy = (band.reshape(nb, nb, len(_V1_BAND)) ** 2).mean(axis=-1).astype(np.float32)
    energy = cv2.blur(energy, (3, 3), borderType=cv2.BORDER_REFLECT)
    weights = 1.0 / np.sqrt(energy.astype(np.float64) + _V1_ENERGY_FLOOR**2)
    weighted = band * np.repeat(weights.reshape(-1), len(_V1_BAND))
    signs, bit_of = _v1_carrier()
    num = np.bincount(bit_of, weights=weighted * signs, minlength=PAYLOAD_BITS)
    den = np.sqrt(np.bincount(bit_of, weights=weighted**2, minlength=PAYLOAD_BITS))
    z = num / np.maximum(den, 1e-9)
    expected = _payload_symbols(payload)
    score = float(z @ expected / np.sqrt(PAYLOAD_BITS))
    return WatermarkResult(
        found=score >= _V1_THRESHOLD,
        score=score,
        bits_ok=float(np.mean((z > 0) == (expected > 0))),
        payload=np.packbits(z > 0).tobytes(),
        scheme=1,
    )


# --- watermark: public API ------------------------------------------------------------------------


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


def detect_watermark(image_rgb: np.ndarray, payload: bytes = DEFAULT_PAYLOAD) -> WatermarkResult:
    """Look for the watermark carrying ``payload`` in an image of any size.

    Works on the image as found: re-compressed, resized with its aspect ratio kept, cropped by
    up to about a quarter of its shorter side. A mark of facetwin's first scheme is found too
    (``scheme`` 1).
    """
    check_rgb(image_rgb)
    payload = bytes(payload)
    _payload_symbols(payload)  # reject a bad payload before the work
    luma = _luma(image_rgb)
    result = _result(_folds(_working_plane(luma)), payload)
    if not result.found:
        legacy = _v1_detect(luma, payload)
        if legacy.found:
            return legacy
    return result


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
        luma = _luma(frame)
        folds = _folds(_working_plane(luma))
        result = _result(folds, payload)
        if not result.found:
            legacy = _v1_detect(luma, payload)
            result = legacy if legacy.found else result
        results.append(result)
        pooled = folds if pooled is None else pooled + folds
    return results, (_search(pooled, payload).score if pooled is not None else 0.0)


def detect_or_none(image_rgb: np.ndarray) -> WatermarkResult | None:
    """detect_watermark, or None for an image too small to carry the mark (not an error)."""
    if min(image_rgb.shape[:2]) < MIN_SIDE:
        return None
    return detect_watermark(image_rgb)
