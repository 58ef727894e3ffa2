"""Scheme 1 (legacy, detection only): the 8x8 DCT band of the luma on a 256x256 canonical grid.

What facetwin wrote before scheme 2. Nothing writes it any more, but a mark written once must
stay readable by every later facetwin, so its detector is kept - apart from scheme 2, whose
search shares nothing with it but the payload's symbols and the result type.
"""

from __future__ import annotations

import hashlib
from functools import cache

import cv2
import numpy as np

from facetwin.label.carrier import PAYLOAD_BITS, WatermarkResult, _payload_symbols

_V1_KEY = b"facetwin-watermark-v1"
_V1_CANONICAL = 256
_V1_BLOCK = 8
_V1_BAND = ((1, 1), (0, 2), (2, 0), (1, 2), (2, 1), (0, 3), (3, 0), (2, 2), (1, 3), (3, 1))
#: Scheme 1's threshold; its score is about N(0, 1.1) on unmarked images.
_V1_THRESHOLD = 8.0
_V1_ENERGY_FLOOR = 2.0


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
