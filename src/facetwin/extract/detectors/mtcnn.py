"""MTCNN face detector plugin: our own PyTorch P-Net / R-Net / O-Net cascade on facenet-pytorch's
weights, its boxes mapped to dlib's convention.

Why our own code: facenet-pytorch's package pins an old torch, so we never import it and load only
its three weight files (``facenet_pytorch/data/{pnet,rnet,onet}.pt``); the layer names in
:mod:`._mtcnn_nets` match their state-dict keys so that they load with ``strict=True``.

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

Where things are: the networks and their weights in :mod:`._mtcnn_nets`, the cascade (box
arithmetic, the three stages, :class:`MtcnnParams`) in :mod:`._mtcnn_cascade`; this module is
the plugin, the MTCNN -> dlib box mapping and its fit, and re-exports the other two's names.
"""

from __future__ import annotations

import logging

import numpy as np

from facetwin.device import resolve_device
from facetwin.extract.detectors import DETECTORS
from facetwin.extract.detectors._mtcnn_cascade import (
    MtcnnParams,
    detect_raw,
    nms,
    pyramid_scales,
    regress,
    square,
)
from facetwin.extract.detectors._mtcnn_nets import ONet, PNet, RNet, load_nets
from facetwin.extract.detectors.base import Detection
from facetwin.registry import Setting

log = logging.getLogger(__name__)


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


class MtcnnDetector:
    """MTCNN with boxes mapped to dlib's HOG convention and the five keypoints kept."""

    name = "mtcnn"

    def __init__(self, device: str = "cpu", params: MtcnnParams | None = None) -> None:
        self.device = resolve_device(device)
        self.params = params or MtcnnParams()
        self._nets = load_nets(self.device)

    def detect(self, image: np.ndarray) -> list[Detection]:
        boxes, scores, points = detect_raw(self._nets, image, self.params, self.device)
        log.debug("mtcnn: %d face(s) in a %s image", len(boxes), image.shape)
        return [
            Detection(box=(b[0], b[1], b[2], b[3]), score=s, points5=p.astype(np.float32))
            for b, s, p in zip(
                to_dlib_box(boxes, points).tolist(), scores.tolist(), points, strict=True
            )
        ]


_DEFAULTS = MtcnnParams()


@DETECTORS.register(
    "mtcnn",
    help="MTCNN, profiles and small faces",
    settings=(
        Setting(
            "threshold",
            float,
            _DEFAULTS.thresholds[2],
            "final (O-Net) face probability a face must reach: lower finds more faces and more "
            "false ones (MTCNN's published value is 0.7)",
            low=0.0,
            high=1.0,
        ),
        Setting(
            "min_face",
            float,
            _DEFAULTS.min_face,
            "smallest face side in pixels to look for: larger is faster (a shallower pyramid)",
            low=12.0,
        ),
    ),
)
def _make(
    device: str = "cpu",
    threshold: float = _DEFAULTS.thresholds[2],
    min_face: float = _DEFAULTS.min_face,
) -> MtcnnDetector:
    p_net, r_net, _ = _DEFAULTS.thresholds
    params = MtcnnParams(
        min_face=min_face, thresholds=(p_net, r_net, threshold), factor=_DEFAULTS.factor
    )
    return MtcnnDetector(device=device, params=params)


__all__ = [
    "MtcnnDetector",
    "MtcnnParams",
    "ONet",
    "PNet",
    "RNet",
    "detect_raw",
    "nms",
    "pyramid_scales",
    "regress",
    "square",
    "to_dlib_box",
]
