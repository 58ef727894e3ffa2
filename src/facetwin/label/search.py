"""Scheme-2 detection: fold the picture onto one tile at every relative scale, weight each
frequency by the inverse of the fold's own spectral magnitude, correlate with the key at every
cyclic shift by FFT, and decode the payload bits at the best (scale, shift).

Kept apart from :mod:`facetwin.label.watermark` (the public calls) because it is the numerical
core: every step is a pure function of arrays, and the statistics that bound its false alarms
(``SEARCH_SIZE``, ``DETECTION_THRESHOLD``) belong with the search they describe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.label.carrier import (
    BAND,
    PAYLOAD_BITS,
    SCALES,
    TILE,
    WatermarkResult,
    _band_mask,
    _carrier,
    _payload_symbols,
    _rescale,
    _template,
)

# --- detection: statistics ------------------------------------------------------------------------

#: Number of (scale, shift) hypotheses one search tests: the multiplicity of its maximum.
SEARCH_SIZE = len(SCALES) * TILE * TILE
#: Score at or above which the mark counts as found (image, frame or pooled video):
#: P(false alarm) <= SEARCH_SIZE * exp(-threshold^2 / 2) = 2.6e-7 (:func:`false_alarm_bound`).
DETECTION_THRESHOLD = 7.6

# --- detection: working plane and weights -------------------------------------------------------

#: High-pass before the local normalisation: keeps the band, removes the picture's broad shapes.
_HIGHPASS_SIGMA = 0.9 * TILE / (2 * math.pi * BAND[0])
#: Local contrast normalisation: window (sigma, working px) and floor (grey levels).
_CONTRAST_SIGMA = 2.0
_CONTRAST_FLOOR = 0.5
#: Width of the box over which the folded image's spectral power is averaged for the weights.
_SPECTRUM_SMOOTH = 5


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
