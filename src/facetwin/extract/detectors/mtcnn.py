"""MTCNN face detector: our own PyTorch P-Net / R-Net / O-Net cascade on facenet-pytorch's weights.

Why our own code: facenet-pytorch's package pins an old torch, so we never import it and load only
its three weight files (``facenet_pytorch/data/{pnet,rnet,onet}.pt``); the layer names below match
their state-dict keys so that they load with ``strict=True``.

Why MTCNN at all: it is robust to pose (dlib's HOG detector is trained on near-frontal faces) and
gives five keypoints. Its boxes are in its own convention (taller than wide, forehead to chin), so
:func:`to_dlib_box` maps them, with the nose keypoint as a yaw cue, to dlib's HOG box, which the
68-point landmark model was trained on.

The cascade (Zhang et al. 2016): P-Net runs fully convolutionally over an image pyramid and
proposes 12x12 windows; R-Net (24x24 crops) and O-Net (48x48 crops) reject and refine them in
batches; non-maximum suppression runs after every stage. The original nets worked on transposed
images; with these weights the input is an ordinary N,3,H,W RGB tensor and only the flatten
before the dense layers runs in (W, H, C) order. We checked that on a real face crop: this layout
scores it 0.9999 in O-Net and puts the keypoints on the eyes, nose and mouth corners; flattening
in (H, W, C) or transposing the input scores lower and misplaces them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from facetwin.device import resolve_device
from facetwin.errors import InputError
from facetwin.extract.detectors import DETECTORS
from facetwin.extract.detectors.base import Detection
from facetwin.extract.models import model_file

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Networks. Layer names are fixed by the weight files.
# --------------------------------------------------------------------------------------------


def _flatten_wh(x: torch.Tensor) -> torch.Tensor:
    """Flatten N,C,H,W in (W, H, C) order: the order the dense weights were ported with."""
    return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12x12 window per output cell (stride 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (face probability N,H',W'; box regression N,4,H',W')."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return F.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """Refine net on 24x24 crops."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (face probability N; box regression N,4)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(_flatten_wh(x)))
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """Output net on 48x48 crops: final score, box regression and five keypoints."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (face probability N; box regression N,4; keypoints N,10 as 5 x then 5 y)."""
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(_flatten_wh(x)))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def _load(net: nn.Module, name: str) -> nn.Module:
    """Load ``name``.pt from the facenet-pytorch wheel (tensors only, strict key match)."""
    path = model_file("facenet_pytorch", "data", f"{name}.pt")
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    return net.eval()


@cache
def _nets(device: str) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The three nets on ``device``, loaded once per process and device (they are read-only)."""
    return (
        _load(PNet(), "pnet").to(device),
        _load(RNet(), "rnet").to(device),
        _load(ONet(), "onet").to(device),
    )


# --------------------------------------------------------------------------------------------
# Box arithmetic (numpy, N x 4 arrays of x0, y0, x1, y1 in continuous pixel coordinates).
# --------------------------------------------------------------------------------------------


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


# MTCNN box -> dlib HOG box, fitted by least squares on the faces both detectors find (HOG with
# upsample 0, MTCNN defaults): 15 faces in 12 photos (data/images plus /work/shared/data/images)
# and 154 frames (every 4th) of the three clips in data/video; 169 pairs. With w, h the MTCNN box
# size and n = nose x - MTCNN box centre x (the nose keypoint's offset: a signed yaw cue):
#   HOG centre x = centre x - 0.007 w + 0.645 n
#   HOG centre y = centre y + 0.070 h - 0.176 |n|
#   HOG side     = 1.110 w   (HOG boxes are square; MTCNN's are 1.2-1.5 times taller than wide)
# RMS residuals as a fraction of the HOG side, photos (14 faces) / video (154 frames):
#   centre x 0.027 / 0.031, centre y 0.028 / 0.050, side 8.4% / 8.6%; IoU mean 0.86 / 0.83.
# The nose term matters: HOG boxes slide towards the side the face turns to, and the 68-point
# predictor expects that. On the 45-degree photo (45-m7-di-ph.jpg) a centre-only mapping put the
# 68 landmarks 0.41 eye-corner distances (mean) from those given by the HOG box; this one puts them
# 0.056 away (0.052 with that photo left out of the fit); 0.010 on the other photos, 0.013 on video.
# Its side there is 17% short of HOG's: no size feature we tried (h, sqrt(wh), eye-mouth distance,
# |n|) fitted better, so size stays proportional to w.
_DLIB_X_W, _DLIB_X_NOSE = -0.007, 0.645
_DLIB_Y_H, _DLIB_Y_NOSE = 0.070, -0.176
_DLIB_SIDE_W = 1.110


def to_dlib_box(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map MTCNN boxes (N,4) with their keypoints (N,5,2) to dlib's HOG box convention.

    Why: every detector feeds dlib's 68-point predictor, which was trained on HOG boxes.
    """
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    cx = boxes[:, 0] + w / 2
    cy = boxes[:, 1] + h / 2
    nose = points[:, 2, 0] - cx
    x = cx + _DLIB_X_W * w + _DLIB_X_NOSE * nose
    y = cy + _DLIB_Y_H * h + _DLIB_Y_NOSE * np.abs(nose)
    half = _DLIB_SIDE_W * w / 2
    return np.stack([x - half, y - half, x + half, y + half], axis=1)


# --------------------------------------------------------------------------------------------
# The cascade.
# --------------------------------------------------------------------------------------------

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


class MtcnnDetector:
    """MTCNN with boxes mapped to dlib's HOG convention and the five keypoints kept."""

    name = "mtcnn"

    def __init__(self, device: str = "cpu", params: MtcnnParams | None = None) -> None:
        self.device = resolve_device(device)
        self.params = params or MtcnnParams()
        self._nets = _nets(self.device)

    def detect(self, image: np.ndarray) -> list[Detection]:
        boxes, scores, points = detect_raw(self._nets, image, self.params, self.device)
        log.debug("mtcnn: %d face(s) in a %s image", len(boxes), image.shape)
        return [
            Detection(box=(b[0], b[1], b[2], b[3]), score=s, points5=p.astype(np.float32))
            for b, s, p in zip(
                to_dlib_box(boxes, points).tolist(), scores.tolist(), points, strict=True
            )
        ]


@DETECTORS.register("mtcnn", help="MTCNN, profiles and small faces")
def _make(device: str = "cpu") -> MtcnnDetector:
    return MtcnnDetector(device=device)
