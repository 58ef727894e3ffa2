"""The MTCNN cascade (Zhang et al. 2016): image pyramid, P-Net proposals, R-Net and O-Net.

Separate from the networks (:mod:`._mtcnn_nets`, tied to the weight files) and from the plugin
(:mod:`.mtcnn`, which maps MTCNN's boxes to dlib's convention): this module is the algorithm
alone, numpy box arithmetic and the three stages, and reads the same whatever nets it is given.

P-Net runs fully convolutionally over an image pyramid and proposes 12x12 windows; R-Net (24x24
crops) and O-Net (48x48 crops) reject and refine them in batches; non-maximum suppression runs
after every stage. Boxes are N x 4 arrays of x0, y0, x1, y1 in continuous pixel coordinates.
The leading underscore keeps :func:`facetwin.registry.import_plugins` from taking it for a
detector plugin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from facetwin.errors import InputError

# -- box arithmetic ----------------------------------------------------------------------------


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, best first.

    ``mode="min"`` divides the overlap by the smaller area, which also removes a small box lying
    inside a big one: MTCNN uses it after O-Net, where nested boxes are duplicates of one face.
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x0, y0, x1, y1 = boxes.T
    area = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.clip(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0, None)
        ih = np.clip(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0, None)
        inter = iw * ih
        union = area[i] + area[rest] - inter
        denom = np.minimum(area[i], area[rest]) if mode == "min" else union
        overlap = inter / np.maximum(denom, 1e-9)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply a net's box regression: each edge moves by its offset times the box's size."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes + offsets * np.stack([w, h, w, h], axis=1)


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square about its centre: the next net takes square crops."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    cx = boxes[:, 0] + w / 2
    cy = boxes[:, 1] + h / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """Scales that bring faces from ``min_face`` px to the image size onto P-Net's 12 px window."""
    scale = 12.0 / min_face
    side = min(height, width) * scale
    scales = []
    while side >= 12.0:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


# -- the cascade -------------------------------------------------------------------------------

_PNET_STRIDE = 2
_PNET_CELL = 12
_BATCH = 512  # crops per R-Net / O-Net forward pass: bounds memory on huge candidate lists


def _to_tensor(image: np.ndarray, device: str) -> torch.Tensor:
    """RGB uint8 H,W,3 (or grey H,W) -> normalised 1,3,H,W float tensor, as the nets expect."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
    return (t - 127.5) * 0.0078125


def _pnet_stage(
    pnet: nn.Module, img: torch.Tensor, scales: list[float], threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Run P-Net over the pyramid; candidate boxes (N,4) and scores (N,) in image pixels."""
    _, _, height, width = img.shape
    all_boxes: list[np.ndarray] = []
    all_scores: list[np.ndarray] = []
    for scale in scales:
        size = (int(np.ceil(height * scale)), int(np.ceil(width * scale)))
        prob, reg = pnet(F.interpolate(img, size=size, mode="area"))
        ys, xs = torch.nonzero(prob[0] >= threshold, as_tuple=True)
        if ys.numel() == 0:
            continue
        score = prob[0, ys, xs].cpu().numpy()
        offsets = reg[0][:, ys, xs].T.cpu().numpy()  # (K, 4): dx0, dy0, dx1, dy1
        x0 = xs.cpu().numpy() * _PNET_STRIDE / scale
        y0 = ys.cpu().numpy() * _PNET_STRIDE / scale
        side = _PNET_CELL / scale
        boxes = np.stack([x0, y0, x0 + side, y0 + side], axis=1)
        keep = nms(boxes, score, 0.5)
        all_boxes.append(regress(boxes[keep], offsets[keep]))
        all_scores.append(score[keep])
    if not all_boxes:
        return np.zeros((0, 4)), np.zeros(0)
    boxes, scores = np.concatenate(all_boxes), np.concatenate(all_scores)
    keep = nms(boxes, scores, 0.7)
    return square(boxes[keep]), scores[keep]


def _crops(img: torch.Tensor, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Cut each box out of ``img`` (zero-padded past the border) and resize it to size x size."""
    _, _, height, width = img.shape
    out = []
    for x0, y0, x1, y1 in np.round(boxes).astype(int).tolist():
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        crop = img[:, :, cy0:cy1, cx0:cx1]
        # Black (pixel value 0) outside the image, as in MTCNN's training crops.
        pad = (cx0 - x0, x1 - cx1, cy0 - y0, y1 - cy1)
        crop = F.pad(crop, pad, value=-127.5 * 0.0078125)
        out.append(F.interpolate(crop, size=(size, size), mode="area"))
    return torch.cat(out)


def _inside(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mask of boxes of at least 1 px that overlap the image (others cannot be cropped)."""
    r = np.round(boxes)
    return (
        (r[:, 2] - r[:, 0] >= 1)
        & (r[:, 3] - r[:, 1] >= 1)
        & (r[:, 2] > 0)
        & (r[:, 3] > 0)
        & (r[:, 0] < width)
        & (r[:, 1] < height)
    )


def _run_batched(
    net: nn.Module, img: torch.Tensor, boxes: np.ndarray, size: int
) -> list[np.ndarray]:
    """Run R-Net or O-Net on the crops of ``boxes`` in batches; its outputs as numpy arrays."""
    parts: list[list[np.ndarray]] = []
    for start in range(0, len(boxes), _BATCH):
        outs = net(_crops(img, boxes[start : start + _BATCH], size))
        parts.append([o.float().cpu().numpy() for o in outs])
    return [np.concatenate(p) for p in zip(*parts, strict=True)]


def _refine_stage(
    rnet: nn.Module, img: torch.Tensor, boxes: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """R-Net: drop weak candidates, refine and square the rest."""
    prob, reg = _run_batched(rnet, img, boxes, 24)
    ok = prob >= threshold
    boxes, prob, reg = boxes[ok], prob[ok], reg[ok]
    keep = nms(boxes, prob, 0.7)
    return square(regress(boxes[keep], reg[keep])), prob[keep]


def _output_stage(
    onet: nn.Module, img: torch.Tensor, boxes: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """O-Net: final boxes (N,4), scores (N,) and keypoints (N,5,2) in image pixels."""
    prob, reg, pts = _run_batched(onet, img, boxes, 48)
    ok = prob >= threshold
    boxes, prob, reg, pts = boxes[ok], prob[ok], reg[ok], pts[ok]
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    points = np.stack([boxes[:, :1] + pts[:, :5] * w, boxes[:, 1:2] + pts[:, 5:] * h], axis=2)
    boxes = regress(boxes, reg)
    keep = nms(boxes, prob, 0.7, mode="min")
    return boxes[keep], prob[keep], points[keep]


@dataclass(frozen=True)
class MtcnnParams:
    """Cascade settings: MTCNN's published ones, except a stricter O-Net cut-off.

    min_face: smallest face side in pixels to look for (smaller is slower: a deeper pyramid).
    thresholds: face-probability cut-offs of P-Net, R-Net, O-Net. The published O-Net 0.7 let
    a second, 0.77-score "face" through on fr_obama.jpg, which holds one; every real face in the
    bundled photos and clips (frontal, 45-degree yaw, a five-person group) scores 0.993 or
    more, so 0.9 drops the false alarm and no face.
    factor: scale step between pyramid levels.
    """

    min_face: float = 20.0
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.9)
    factor: float = 0.709


def detect_raw(
    nets: tuple[nn.Module, nn.Module, nn.Module],
    image: np.ndarray,
    params: MtcnnParams,
    device: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the cascade; MTCNN's own boxes (N,4), scores (N,) and keypoints (N,5,2), best first."""
    pnet, rnet, onet = nets
    empty = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
    with torch.inference_mode():
        img = _to_tensor(image, device)
        height, width = image.shape[:2]
        scales = pyramid_scales(height, width, params.min_face, params.factor)
        boxes, _ = _pnet_stage(pnet, img, scales, params.thresholds[0])
        boxes = boxes[_inside(boxes, height, width)]
        if len(boxes) == 0:
            return empty
        boxes, _ = _refine_stage(rnet, img, boxes, params.thresholds[1])
        boxes = boxes[_inside(boxes, height, width)]
        if len(boxes) == 0:
            return empty
        return _output_stage(onet, img, boxes, params.thresholds[2])
