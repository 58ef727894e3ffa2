"""Training augmentation: a random similarity transform, the deepfakes random warp, colour jitter.

Frames
------
Each face is cached as a square crop (the *source*, side C) centred on the mean face and a bit
wider than the model's crop, so that rotations and shifts bring in real pixels rather than
padding. A 2x3 ``base`` matrix maps source pixels to the *output frame*: the model's N x N
crop at the training coverage. All transforms are composed into one matrix per image, so each
output pixel is interpolated once.

The random warp
---------------
The autoencoder must not learn the identity: its input is the face under a smooth non-rigid
distortion, and its target is the same face without it. A K x K grid of control points spanning
slightly more than the output frame is perturbed with Gaussian noise; the displacement is
interpolated bilinearly to every output pixel and the source is resampled there (``cv2.remap``)
to make the input. The target is the source through the similarity transform that best fits
the perturbed grid (Umeyama least squares), i.e. the warp's rigid part: the network has to undo
the non-rigid remainder, which it can only do by learning what a face of this person looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.face.align import LEFT_EYE, MOUTH, RIGHT_EYE, compose, transform_points, umeyama


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths. Ranges are symmetric: rotation +/-10 degrees and so on.

    warp: standard deviation of the control-point noise as a fraction of the output side
        (0.04 at 64 px is the classic 2.5 px); 0 disables the warp.
    colour: jitter lightness and contrast in Lab (and shift a/b by up to ``ab``) identically on
        input and target, so the model learns to keep the lighting it is shown.
    """

    rotation: float = 10.0  # degrees
    zoom: float = 0.05  # fraction of scale
    shift: float = 0.05  # fraction of the output side
    flip: float = 0.5  # probability of a horizontal flip
    warp: float = 0.04
    warp_grid: int = 5
    colour: bool = True
    lightness: float = 0.15  # fraction of Lab's L range (0..100)
    contrast: float = 0.15  # fraction of contrast change around the crop's mean L
    ab: float = 0.03  # fraction of Lab's a/b range (+/-127)

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all: the target and the input are both the plain crop."""
        return cls(rotation=0, zoom=0, shift=0, flip=0, warp=0, colour=False)


@dataclass
class Augmented:
    """One augmented face: uint8 images in the output frame plus the fitted similarity.

    warped: (N, N, 3) network input; target: (N, N, 3) what it must output;
    mask: (N, N) face mask of the target (0/255); regions: (N, N) eyes and mouth of the target;
    similarity: 2x3 matrix of the warp's rigid part (output frame -> output frame) that the
    target went through, so that tests can invert it; valid: (N, N) 255 where the target shows
    its source frame, 0 past the frame's edge (None when the face lies inside its frame).
    """

    warped: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    regions: np.ndarray
    similarity: np.ndarray
    valid: np.ndarray | None = None


def random_transform(rng: np.random.Generator, cfg: AugmentConfig, size: int) -> np.ndarray:
    """2x3 matrix of a random rotation, zoom, shift and flip of an N x N frame about its centre."""
    angle = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation))
    scale = rng.uniform(1 - cfg.zoom, 1 + cfg.zoom)
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * size
    flip = rng.random() < cfg.flip
    c = (size - 1) / 2
    cos, sin = scale * np.cos(angle), scale * np.sin(angle)
    m = np.array([[cos, -sin, 0.0], [sin, cos, 0.0]])
    m[:, 2] = (c + tx, c + ty) - m[:, :2] @ (c, c)
    if flip:
        m = compose(np.array([[-1.0, 0.0, 2 * c], [0.0, 1.0, 0.0]]), m)
    return m


def grid_axis(size: int, points: int) -> np.ndarray:
    """Control-point coordinates along one axis: ``points`` nodes over the frame plus 1/8 margin.

    The margin keeps the frame's border pixels between nodes, so they are displaced as smoothly
    as the centre.
    """
    pad = size / 8
    return np.linspace(-pad, size - 1 + pad, points)


def interpolation_matrix(size: int, nodes: np.ndarray) -> np.ndarray:
    """(size, K) weights: linear interpolation from K nodes to the pixel centres 0..size-1."""
    x = np.arange(size, dtype=np.float64)
    t = np.clip((x - nodes[0]) / (nodes[1] - nodes[0]), 0, len(nodes) - 1)
    lo = np.minimum(t.astype(int), len(nodes) - 2)
    frac = t - lo
    w = np.zeros((size, len(nodes)))
    w[np.arange(size), lo] = 1 - frac
    w[np.arange(size), lo + 1] = frac
    return w


def warp_field(noise: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense positions (mapx, mapy), each (N, N) float32, of the grid displacement ``noise``.

    ``noise`` is (K, K, 2) (row = y node, column = x node; last axis dx, dy). With zero noise the
    field is exactly the identity, which the tests rely on.
    """
    w = interpolation_matrix(size, grid_axis(size, noise.shape[0]))
    dx = w @ noise[..., 0] @ w.T
    dy = w @ noise[..., 1] @ w.T
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    return xs + dx, ys + dy


def fit_similarity(noise: np.ndarray, size: int) -> np.ndarray:
    """The similarity (2x3) that best maps the perturbed control points back onto the grid."""
    axis = grid_axis(size, noise.shape[0])
    gx, gy = np.meshgrid(axis, axis)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return umeyama(grid + noise.reshape(-1, 2), grid)


def colour_jitter(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Random Lab lightness/contrast (and a small a/b shift) of an RGB uint8 image."""
    lab = cv2.cvtColor(image.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    light = rng.uniform(-cfg.lightness, cfg.lightness) * 100
    contrast = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
    da, db = (float(v) * 127 for v in rng.uniform(-cfg.ab, cfg.ab, size=2))
    lum = lab[..., 0]
    mean = float(lum.mean())
    lab[..., 0] = np.clip((lum - mean) * contrast + mean + light, 0, 100)
    lab[..., 1] = lab[..., 1] + da
    lab[..., 2] = lab[..., 2] + db
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def region_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, N) mask of both eyes and the mouth, from 68 landmarks in output pixels.

    Eye hulls are grown 1.8x about their centre to take in the lids and lashes, which carry
    most of the gaze; the mouth hull 1.2x. These are where a blurry swap is most noticeable.
    """
    out = np.zeros((size, size), np.uint8)
    for idx, grow in ((RIGHT_EYE, 1.8), (LEFT_EYE, 1.8), (MOUTH, 1.2)):
        pts = landmarks[idx]
        c = pts.mean(0)
        hull = cv2.convexHull(((pts - c) * grow + c).astype(np.float32))
        cv2.fillConvexPoly(out, np.round(hull * 16).astype(np.int32), 255, cv2.LINE_AA, 4)
    return out


def augment(
    source: np.ndarray,
    mask: np.ndarray,
    landmarks: np.ndarray,
    base: np.ndarray,
    size: int,
    rng: np.random.Generator,
    cfg: AugmentConfig,
    valid: np.ndarray | None = None,
) -> Augmented:
    """Augment one cached face (see the module docstring for the frames).

    source: (C, C, 3) RGB uint8; mask: (C, C) uint8; landmarks: (68, 2) in source pixels;
    base: 2x3 source -> output frame; size: N, the model's input side; valid: (C, C) uint8,
    0 where the source crop lies past its frame's edge (goes along with the target).
    """
    if cfg.colour:
        source = colour_jitter(source, rng, cfg)
    to_frame = compose(random_transform(rng, cfg, size), base)
    k = cfg.warp_grid
    noise = (
        rng.normal(0.0, cfg.warp * size, size=(k, k, 2)) if cfg.warp > 0 else np.zeros((k, k, 2))
    )
    # Input: source sampled where the warp field points, brought back through to_frame's inverse.
    mapx, mapy = warp_field(noise, size)
    inv = cv2.invertAffineTransform(to_frame)
    srcx = (inv[0, 0] * mapx + inv[0, 1] * mapy + inv[0, 2]).astype(np.float32)
    srcy = (inv[1, 0] * mapx + inv[1, 1] * mapy + inv[1, 2]).astype(np.float32)
    warped = cv2.remap(source, srcx, srcy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Target: the warp's rigid part only.
    sim = fit_similarity(noise, size)
    to_target = compose(sim, to_frame)
    target = cv2.warpAffine(
        source, to_target, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    tmask = cv2.warpAffine(mask, to_target, (size, size), flags=cv2.INTER_LINEAR)
    regions = region_mask(transform_points(landmarks, to_target), size)
    tvalid = None
    if valid is not None:
        tvalid = cv2.warpAffine(valid, to_target, (size, size), flags=cv2.INTER_LINEAR)
    return Augmented(
        warped=warped, target=target, mask=tmask, regions=regions, similarity=sim, valid=tvalid
    )
