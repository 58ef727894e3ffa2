"""Label every facetwin output as synthetic: an invisible watermark plus a metadata tag.

facetwin is a dual-use tool, so each image or video it writes says that it is synthetic in two
independent ways:

* a **metadata tag** (PNG ``tEXt``, JPEG ``COM``, video container ``comment``/``description``)
  that any tool can read, but that is lost by a screenshot or a re-encode; and
* an **invisible watermark** in the luma channel that survives what a shared file goes through:
  half-size scaling *and* re-encoding (H.264 CRF 28, JPEG quality 50) together, and cropping.

Watermark design (scheme 2; why it looks like this):

* **A tile that spans the frame's shorter side.** The mark is one periodic luma pattern whose
  period is the shorter side of the frame, repeated along the longer one. Sizes are relative
  to the frame, so a resized copy carries the same pattern at the same relative size; a crop
  only shifts it (the tile is periodic) and makes it larger relative to the new shorter side.
  The detector therefore searches over a *relative scale* (``SCALES``: 0.96-1.37, i.e. crops
  of up to a quarter of the shorter side) and over every cyclic *shift* of the tile.
* **Low frequencies that survive a re-upload.** The pattern holds ``BAND`` = 8-40 cycles per
  shorter side (wavelengths of 9-45 px in a 640x360 frame, 4.5-22 px after 0.5x), every
  frequency with the same amplitude and a key-derived phase. Measured on the bundled clips,
  0.5x + H.264 CRF 28 keeps 25-70 % of the amplitude at 8-24 cycles, 10-30 % at 24-32 and
  under 15 % above 32, where scheme 1 lived (16-48 cycles); below 8 cycles the picture itself
  is too strong. The upper part of the band carries most of a still's score (JPEG and
  resizing keep it), the lower part most of a re-encoded video's.
* **Only luma changes**, by ``STRENGTH`` = 2 grey levels RMS (PSNR about 42 dB). The pattern
  depends on the frame size and the key only, never on the content, so a video is marked by
  adding one precomputed pattern to each frame (convert's ``FrameLabeller``).
* **Detection folds the image onto one tile.** The luma is brought to a working size whose
  shorter side is ``TILE`` px, high-passed and divided by its local contrast (flat areas, where
  the picture hides the mark least, count as much as busy ones). For each scale it is folded
  modulo the tile (the tiles are summed) and correlated with the key over every cyclic shift at
  once by FFT, each frequency weighted by the inverse of the fold's own local spectral
  magnitude. A video adds the folds of its sampled frames before correlating, so the mark, the
  same in every frame, adds up while changing pictures average out.
* **A score with a known false-alarm bound.** Each correlation is divided by its exact
  standard deviation over random key phases, computed from the image's own magnitudes. The
  key's phases owe nothing to a picture that was not marked with them, so for *any* unmarked
  image the score at one (scale, shift) is a sum of cosines of independent uniform phases,
  sub-Gaussian with variance 1: ``P(score >= t) <= exp(-t^2 / 2)``. With
  ``SEARCH_SIZE`` = 25 scales x 192^2 shifts, ``DETECTION_THRESHOLD`` = 7.6 bounds the false
  alarm of one image at 921,600 * exp(-28.9) = 2.6e-7 (:func:`false_alarm_bound`). Unmarked
  real frames and photos score 4.8 +- 0.3 (the best of 921,600 near-N(0, 1) values), marked
  ones 10-50 after the attacks above (benchmarks/results/label-cpu.json).
* **Payload.** Half of the frequencies (``PILOT_SHARE``) are a fixed pilot; the other half carry
  64 payload bits by sign. The score tests the expected payload as a whole; single bits are
  decoded at the best (scale, shift), exactly once the score is about 30 (``bits_ok``).
* The key stream comes from SHAKE-256, not from numpy's RNG, whose streams may change between
  numpy versions: a mark written today must still be found by every later facetwin. For the
  same reason the scheme-1 detector (8x8 DCT band on a 256x256 canonical grid, what facetwin
  wrote before scheme 2) is kept: outputs marked by it are still found (``scheme`` 1).

A video's verdict (:func:`verify`) combines two tests over the sampled frames:

* pooled: the folds of all sampled frames, added up, reach DETECTION_THRESHOLD. P <= 2.6e-7
  for any unmarked video, however alike its frames (the bound above holds for any picture).
* binomial: at least :func:`frames_needed` frames (4 of 16, 3 of 8) carry the mark on their own.
  Against ``FRAME_FALSE_ALARM`` = 1e-3, an upper bound on the per-frame false-alarm rate
  measured on unmarked real frames, that count has P <= ``VIDEO_FRAME_ALPHA`` = 5e-7 when
  frames are independent. Frames of one still shot are not; for them Markov's inequality with
  the per-frame bound above gives P <= 16 * 2.6e-7 / 4 = 1.1e-6.

So an unmarked video is called labelled with probability below 1e-6 (independent frames).

Known limits (measured in the benchmark): a crop of more than about a quarter of the shorter
side, rotation (2 degrees), mirroring, a changed aspect ratio (width squeezed 10 %) and bars
that lengthen the shorter side (letterboxing a landscape frame) lose the mark; heavier
compression weakens it (0.5x + CRF 32: 3 of 4 frames, every video still labelled). The metadata
tag covers those cases only while the file itself is kept.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import struct
import unicodedata
import zlib
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from facetwin import __version__
from facetwin.errors import InputError, OutputError, UsageError
from facetwin.media.files import atomic_write_bytes
from facetwin.media.image import decode_image

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

# --- metadata -------------------------------------------------------------------------------------

#: Prefix that identifies our tag wherever it is stored.
TAG_PREFIX = "synthetic:"
#: Text of the metadata tag; fill it with :func:`synthetic_tag`.
SYNTHETIC_TAG = TAG_PREFIX + " face swapped by facetwin {version}, model {model_id}"
#: PNG tEXt keyword we write the tag under (a standard keyword, shown by common viewers).
PNG_KEYWORD = "Comment"
#: Container metadata keys that carry the tag in a video (mp4/mov/mkv all keep both).
VIDEO_KEYS = ("comment", "description")
#: The characters and the longest length each tag field may have. Nothing outside them is ever
#: written (:func:`sanitize_field`) or accepted when reading (:func:`parse_tag`): no spaces,
#: commas or quotes that could fake another field, no control characters that a terminal would
#: obey, nothing that is not ASCII.
MODEL_ID_CHARS = "A-Za-z0-9._-"
MODEL_ID_MAX = 64
VERSION_CHARS = "A-Za-z0-9.+-"
VERSION_MAX = 32
#: The whole tag, filled with the longest fields.
TAG_MAX = len(SYNTHETIC_TAG.format(version="", model_id="")) + VERSION_MAX + MODEL_ID_MAX
_TAG_RE = re.compile(
    re.escape(SYNTHETIC_TAG)
    .replace(r"\{version\}", f"([{VERSION_CHARS}]{{1,{VERSION_MAX}}})")
    .replace(r"\{model_id\}", f"([{MODEL_ID_CHARS}]{{1,{MODEL_ID_MAX}}})"),
    re.ASCII,
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
#: Videos with at most this many frames are decoded straight through when sampling frames;
#: longer ones are sampled by seeking, which is faster there but less exact.
_SEQUENTIAL_LIMIT = 1500
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


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found in one file.

    For a video, ``score`` is the median of the frames' scores and ``pooled_score`` the score of
    all sampled frames together; ``frames_needed`` is how many marked frames the binomial test
    asks for. ``malformed_tags`` counts metadata values that start like our tag but are not
    one (never shown: they could hold anything).
    """

    path: Path
    kind: Literal["image", "video"]
    metadata_tag: str | None
    watermark_found: bool
    frames_checked: int
    frames_marked: int
    score: float
    pooled_score: float = 0.0
    frames_needed: int = 1
    malformed_tags: int = 0

    @property
    def labelled(self) -> bool:
        """True when either label survives: the tag or the watermark."""
        return self.metadata_tag is not None or self.watermark_found

    def summary(self) -> str:
        """One line for the CLI."""
        tag = repr(self.metadata_tag) if self.metadata_tag else "none"
        mark = "found" if self.watermark_found else "not found"
        pooled = f", pooled {self.pooled_score:.1f}" if self.kind == "video" else ""
        return (
            f"{self.path}: {self.kind}, metadata tag {tag}, watermark {mark} "
            f"({self.frames_marked}/{self.frames_checked} frames, score {self.score:.1f}{pooled})"
        )


# --- watermark: small pure helpers ----------------------------------------------------------------


def _check_rgb(image_rgb: np.ndarray) -> None:
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
    _check_rgb(image_rgb)
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
    _check_rgb(image_rgb)
    payload = bytes(payload)
    _payload_symbols(payload)  # reject a bad payload before the work
    luma = _luma(image_rgb)
    result = _result(_folds(_working_plane(luma)), payload)
    if not result.found:
        legacy = _v1_detect(luma, payload)
        if legacy.found:
            return legacy
    return result


# --- metadata tag ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagFields:
    """The fields of a well-formed tag (:func:`parse_tag`)."""

    version: str
    model_id: str


def sanitize_field(
    value: object, allowed: str = MODEL_ID_CHARS, max_len: int = MODEL_ID_MAX
) -> str:
    """``value`` as text of the characters in ``allowed`` (a regex class body), at most
    ``max_len`` long.

    Accents are dropped (``é`` -> ``e``); every run of other characters - control characters,
    newlines, spaces, punctuation, other scripts - becomes one ``_``. A value that does not fit
    is cut and ends in ``-`` + 8 hex digits of its SHA-256, so two long ids stay apart. Empty
    results become ``unknown``.
    """
    text = str(value)
    digest = hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:8]
    head = text[: 4 * max_len]  # enough to fill the field; the digest covers the rest
    head = "".join(c for c in unicodedata.normalize("NFKD", head) if not unicodedata.combining(c))
    clean = re.sub(f"[^{allowed}]+", "_", head, flags=re.ASCII)
    if len(clean) > max_len or len(text) > len(head):
        clean = clean[: max_len - len(digest) - 1] + "-" + digest
    return clean or "unknown"


def synthetic_tag(model_id: object) -> str:
    """The tag text for ``model_id``, every field kept to its safe characters and length.

    The model id comes from the model's state.json, which anyone can edit: it is never copied
    into the label as it is (see :func:`sanitize_field`).
    """
    return SYNTHETIC_TAG.format(
        version=sanitize_field(__version__, VERSION_CHARS, VERSION_MAX),
        model_id=sanitize_field(model_id, MODEL_ID_CHARS, MODEL_ID_MAX),
    )


def parse_tag(text: object) -> TagFields | None:
    """The fields of ``text`` if it is exactly a tag that :func:`synthetic_tag` could have
    written (safe characters, bounded lengths, nothing before or after); otherwise None."""
    if not isinstance(text, str) or len(text) > TAG_MAX:
        return None
    match = _TAG_RE.fullmatch(text)
    return TagFields(version=match[1], model_id=match[2]) if match else None


def _pick_tag(values: list[str]) -> tuple[str | None, int]:
    """The first well-formed tag among ``values``, and how many looked like ours but were not.

    Those are logged without their text, which could hold anything (terminal escapes, fake
    lines), and never returned.
    """
    tag, malformed = None, 0
    for value in values:
        if not str(value).startswith(TAG_PREFIX):
            continue
        if parse_tag(value) is None:
            malformed += 1
        elif tag is None:
            tag = str(value)
    if malformed:
        log.warning("ignored %d malformed synthetic tag(s) in the metadata", malformed)
    return tag, malformed


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type+data."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png_chunks(png: bytes) -> list[tuple[bytes, int, int]]:
    """(type, data start, data end) of each chunk; stops quietly at a truncated chunk."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    chunks = []
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        start, end = pos + 8, pos + 8 + length
        if end + 4 > len(png):
            break
        chunks.append((kind, start, end))
        if kind == b"IEND":
            break
        pos = end + 4
    return chunks


def png_add_text(png: bytes, keyword: str, text: str) -> bytes:
    """Insert a tEXt chunk right after IHDR, so readers that stop early still see it."""
    chunks = _png_chunks(png)
    if not chunks or chunks[0][0] != b"IHDR":
        raise ValueError("PNG does not start with IHDR")
    data = keyword.encode("latin-1") + b"\0" + text.encode("latin-1", errors="replace")
    after_ihdr = chunks[0][2] + 4
    return png[:after_ihdr] + _png_chunk(b"tEXt", data) + png[after_ihdr:]


def png_texts(png: bytes) -> list[tuple[str, str]]:
    """(keyword, text) of every tEXt chunk."""
    out = []
    for kind, start, end in _png_chunks(png):
        if kind == b"tEXt":
            keyword, _, text = png[start:end].partition(b"\0")
            out.append((keyword.decode("latin-1"), text.decode("latin-1")))
    return out


def jpeg_add_comment(jpeg: bytes, text: str) -> bytes:
    """Insert a COM segment after the leading APPn segments (JFIF needs APP0 to stay first)."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG file")
    data = text.encode("utf-8")
    if len(data) > 0xFFFF - 2:
        raise ValueError("comment too long for one JPEG segment")
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xEF:
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        pos += 2 + length
    segment = b"\xff\xfe" + struct.pack(">H", len(data) + 2) + data
    return jpeg[:pos] + segment + jpeg[pos:]


def jpeg_comments(jpeg: bytes) -> list[str]:
    """Text of every COM segment before the image data (start of scan)."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG file")
    out = []
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # segments without a length
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more headers
            break
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        if marker == 0xFE:
            out.append(jpeg[pos + 4 : pos + 2 + length].decode("utf-8", errors="replace"))
        pos += 2 + length
    return out


def _tags_in_bytes(data: bytes) -> tuple[str | None, int]:
    """Our tag in PNG or JPEG bytes (None for other formats or when absent), and the number of
    malformed look-alikes (see :func:`_pick_tag`)."""
    try:
        if data.startswith(_PNG_SIGNATURE):
            texts = [text for _, text in png_texts(data)]
        elif data.startswith(b"\xff\xd8"):
            texts = jpeg_comments(data)
        else:
            return None, 0
    except (ValueError, struct.error):
        return None, 0
    return _pick_tag(texts)


def _label_in_bytes(data: bytes) -> str | None:
    """The first well-formed tag in PNG or JPEG bytes; None for other formats or when absent."""
    return _tags_in_bytes(data)[0]


def _read_bytes(path: Path) -> bytes:
    """File contents, or an InputError that says which file and why."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def write_image_with_label(
    path: str | os.PathLike[str],
    image_rgb: np.ndarray,
    model_id: str,
    label: bool = True,
    *,
    jpeg_quality: int = 95,
) -> Path:
    """Write ``image_rgb`` to a PNG or JPEG, watermarked and tagged as synthetic.

    ``label=False`` writes the plain image (the CLI's explicit opt-out); it is logged, because
    an unlabelled output should never happen by accident. Embedding on an image that already
    carries the mark is harmless: the pattern adds up and stays detectable.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise UsageError(f"{path}: can only write .png or .jpg images, not {suffix or 'no suffix'}")
    _check_rgb(image_rgb)
    if label:
        image_rgb = embed_watermark(image_rgb)
    else:
        log.warning("writing %s WITHOUT the synthetic label (labelling was turned off)", path)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if suffix != ".png" else []
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OutputError(f"{path}: could not encode the image")
    data = encoded.tobytes()
    if label:
        tag = synthetic_tag(model_id)
        data = (
            png_add_text(data, PNG_KEYWORD, tag)
            if suffix == ".png"
            else jpeg_add_comment(data, tag)
        )
    atomic_write_bytes(path, data, fsync=True)
    return path


def read_label(path: str | os.PathLike[str]) -> str | None:
    """The synthetic tag stored in a PNG or JPEG file, or None when it carries none.

    Only a well-formed tag is returned (:func:`parse_tag`); anything else that starts with
    ``synthetic:`` is ignored (and logged), never passed on.
    """
    return _label_in_bytes(_read_bytes(Path(path)))


def video_metadata(model_id: object) -> dict[str, str]:
    """Container metadata to set on an output video: ``container.metadata.update(...)``."""
    tag = synthetic_tag(model_id)
    return dict.fromkeys(VIDEO_KEYS, tag)


def _open_video(path: Path):  # type: ignore[no-untyped-def]
    """av.open with our errors: missing -> 'no such file', anything else -> unreadable."""
    import av

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable video ({exc})") from None


def read_video_label(path: str | os.PathLike[str]) -> str | None:
    """The well-formed synthetic tag in a video's container (or stream) metadata, or None."""
    with _open_video(Path(path)) as container:
        return _video_tags(container)[0]


def _video_tags(container) -> tuple[str | None, int]:  # type: ignore[no-untyped-def]
    """Our tag from an open container (container-level first, then per-stream metadata; keys
    differ between muxers, so every value is checked) and the number of malformed ones."""
    values = [str(v) for v in dict(container.metadata).values()]
    for stream in container.streams:
        values += [str(v) for v in dict(stream.metadata).values()]
    return _pick_tag(values)


# --- verify ---------------------------------------------------------------------------------------


def _frame_indices(total: int, count: int) -> set[int]:
    """``count`` frame numbers spread evenly over ``total`` frames (both ends included)."""
    return {int(i) for i in np.linspace(0, total - 1, min(count, total)).round()}


def _sample_frames(container, count: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Up to ``count`` RGB frames spread through the first video stream.

    Short videos are decoded straight through (exact positions); long ones are sampled by
    seeking to evenly spaced times, so checking an hour-long file stays quick.
    """
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    total = stream.frames
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    if not total and duration and stream.average_rate:
        total = int(duration * float(stream.average_rate))
    frames: list[np.ndarray] = []
    if total > _SEQUENTIAL_LIMIT and duration and stream.time_base is not None:
        start = stream.start_time or 0
        for t in (np.arange(count) + 0.5) / count * duration:
            target = start + int(t / stream.time_base)
            container.seek(target, stream=stream)
            for frame in container.decode(stream):
                if frame.pts is None or frame.pts >= target:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    break
        return frames
    wanted = _frame_indices(total, count) if total else set(range(count))
    for index, frame in enumerate(container.decode(stream)):
        if index in wanted:
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= len(wanted):
                break
    return frames


def verify(path: str | os.PathLike[str], max_frames: int = 16) -> VerifyReport:
    """Check a file for both labels: the metadata tag and the watermark.

    For a video, up to ``max_frames`` frames spread through it are checked. The watermark
    counts as found when either test rejects "unmarked" (overall false-positive bound < 1e-6):

    * pooled: the folds of all sampled frames added up reach DETECTION_THRESHOLD
      (P <= 2.5e-7 for any unmarked video, however alike its frames); or
    * binomial: at least :func:`frames_needed` frames carry the mark on their own, a count that
      unmarked video reaches with P <= VIDEO_FRAME_ALPHA at the per-frame false-alarm rate
      FRAME_FALSE_ALARM (4 of 16 frames, 3 of 8).

    ``score`` is the median frame score, ``pooled_score`` the pooled one.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in _IMAGE_SUFFIXES:
        data = _read_bytes(path)
        rgb = decode_image(data)  # the codecs' own messages silenced, empty data is None
        if rgb is None:
            raise InputError(f"{path}: not a readable image")
        tag, malformed = _tags_in_bytes(data)
        result = _detect_or_none(rgb)
        score = result.score if result else 0.0
        return VerifyReport(
            path=path,
            kind="image",
            metadata_tag=tag,
            watermark_found=bool(result and result.found),
            frames_checked=1,
            frames_marked=int(bool(result and result.found)),
            score=score,
            pooled_score=score,
            malformed_tags=malformed,
        )
    import av

    with _open_video(path) as container:
        if not container.streams.video:
            raise InputError(f"{path}: has no video stream")
        tag, malformed = _video_tags(container)
        try:
            frames = _sample_frames(container, max_frames)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot decode video ({exc})") from None
    if not frames:
        raise InputError(f"{path}: no frames could be decoded")
    results, pooled = check_frames(frames)
    marked = sum(bool(r and r.found) for r in results)
    needed = frames_needed(len(frames))
    return VerifyReport(
        path=path,
        kind="video",
        metadata_tag=tag,
        watermark_found=marked >= needed or pooled >= DETECTION_THRESHOLD,
        frames_checked=len(frames),
        frames_marked=marked,
        score=float(np.median([r.score if r else 0.0 for r in results])),
        pooled_score=pooled,
        frames_needed=needed,
        malformed_tags=malformed,
    )


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
        _check_rgb(frame)
        luma = _luma(frame)
        folds = _folds(_working_plane(luma))
        result = _result(folds, payload)
        if not result.found:
            legacy = _v1_detect(luma, payload)
            result = legacy if legacy.found else result
        results.append(result)
        pooled = folds if pooled is None else pooled + folds
    return results, (_search(pooled, payload).score if pooled is not None else 0.0)


def _detect_or_none(image_rgb: np.ndarray) -> WatermarkResult | None:
    """detect_watermark, or None for an image too small to carry the mark (not an error)."""
    if min(image_rgb.shape[:2]) < MIN_SIDE:
        return None
    return detect_watermark(image_rgb)
