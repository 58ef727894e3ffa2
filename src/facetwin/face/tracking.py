"""Steady landmark tracks for video: bridge short detection gaps, smooth pose and shape.

The seed names two sources of video jitter: detection dropouts (the face blinks out for a
frame or two) and fluctuating face size. So a track's landmarks are split into a similarity
*pose* (scale, rotation, shift onto the mean face) and the *shape* left after removing it; gaps of
up to ``max_gap`` frames are filled by interpolating both, then the pose is smoothed strongly
(size and position should move slowly) and the shape lightly (expressions move fast).
Smoothing is a zero-phase Gaussian over each contiguous run: it runs after a source is fully
extracted, so it can look ahead and adds no lag.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facetwin.face.align import INNER, invert, template_pixels, transform_points, umeyama


@dataclass(frozen=True)
class SmoothConfig:
    max_gap: int = 5  # frames: longer dropouts end the track
    sigma_pose: float = 2.0  # frames, Gaussian sigma for scale/rotation/position
    sigma_shape: float = 1.0  # frames, Gaussian sigma for expression


def _pose_params(m: np.ndarray) -> np.ndarray:
    """(log scale, angle, tx, ty) of a 2x3 similarity matrix - a space where averaging is sane."""
    a, b = m[0, 0], m[1, 0]
    return np.array([np.log(np.hypot(a, b)), np.arctan2(b, a), m[0, 2], m[1, 2]])


def _pose_matrix(p: np.ndarray) -> np.ndarray:
    s, t = np.exp(p[0]), p[1]
    c, n = s * np.cos(t), s * np.sin(t)
    return np.array([[c, -n, p[2]], [n, c, p[3]]])


def gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing along axis 0, edges reflected. sigma <= 0: unchanged."""
    if sigma <= 0 or len(x) < 2:
        return x.copy()
    radius = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(
        x,
        [(radius, radius)] + [(0, 0)] * (x.ndim - 1),
        mode="reflect" if len(x) > radius else "edge",
    )
    flat = pad.reshape(len(pad), -1)
    out = np.stack([np.convolve(flat[:, j], k, mode="valid") for j in range(flat.shape[1])], 1)
    return out.reshape(x.shape)


def _runs(frames: np.ndarray, max_gap: int, step: int) -> list[tuple[int, int]]:
    """Index ranges [i, j) of ``frames`` whose consecutive gaps are bridgeable."""
    cut = np.flatnonzero(np.diff(frames) > (max_gap + 1) * step) + 1
    bounds = np.concatenate([[0], cut, [len(frames)]])
    return list(zip(bounds[:-1], bounds[1:]))


def smooth_track(
    frames: np.ndarray, landmarks: np.ndarray, cfg: SmoothConfig = SmoothConfig(), step: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bridge and smooth one track.

    frames: (T,) increasing frame indices where the face was found (multiples of ``step``).
    landmarks: (T, 68, 2) raw landmarks in image pixels.
    Returns (frames_out, smoothed (T', 68, 2), bridged (T',) bool) where frames_out adds the
    bridged frames.
    """
    frames = np.asarray(frames)
    lm = np.asarray(landmarks, np.float64)
    tmpl = template_pixels(1, 1.0)
    poses = np.empty((len(frames), 4))
    shapes = np.empty_like(lm)
    for i, pts in enumerate(lm):
        m = umeyama(pts[INNER], tmpl)  # image -> template space
        poses[i] = _pose_params(m)
        shapes[i] = transform_points(pts, m)
    out_f, out_l, out_b = [], [], []
    for i, j in _runs(frames, cfg.max_gap, step):
        f = frames[i:j]
        full = np.arange(f[0], f[-1] + 1, step)
        p = np.stack([np.interp(full, f, poses[i:j, k]) for k in range(4)], 1)
        p[:, 1] = np.interp(full, f, np.unwrap(poses[i:j, 1]))
        flat = shapes[i:j].reshape(j - i, -1)
        s = np.stack([np.interp(full, f, flat[:, k]) for k in range(flat.shape[1])], 1)
        p = gaussian_smooth(p, cfg.sigma_pose)
        s = gaussian_smooth(s, cfg.sigma_shape).reshape(len(full), 68, 2)
        for t in range(len(full)):
            out_l.append(transform_points(s[t], invert(_pose_matrix(p[t]))))
        out_f.append(full)
        out_b.append(~np.isin(full, f))
    if not out_f:
        return frames, lm.astype(np.float32), np.zeros(0, bool)
    return (
        np.concatenate(out_f),
        np.asarray(out_l, np.float32),
        np.concatenate(out_b),
    )
