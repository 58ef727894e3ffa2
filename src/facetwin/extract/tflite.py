"""Running MediaPipe's ``.tflite`` networks with OpenCV's importer (the mediapipe wheel's model
files only; its own runtime wants numpy < 2): one square crop in, the named outputs back."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def run_on_crop(
    net: cv2.dnn.Net,
    image: np.ndarray,
    crop_to_image: np.ndarray,
    side: int,
    outputs: Sequence[str],
    interp: int = cv2.INTER_LINEAR,
) -> list[np.ndarray]:
    """``outputs`` of ``net`` on the ``side`` x ``side`` crop that ``crop_to_image`` (2x3, crop
    -> image pixels) maps into ``image`` (RGB uint8), fed as MediaPipe's graphs feed it: RGB
    kept, NCHW floats in [0, 1], black outside the image."""
    crop = cv2.warpAffine(
        image,
        crop_to_image,
        (side, side),
        flags=interp | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )
    net.setInput(cv2.dnn.blobFromImage(crop, 1.0 / 255))
    return list(net.forward(list(outputs)))
