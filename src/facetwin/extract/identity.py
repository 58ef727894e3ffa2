"""Face identity: dlib's 128-D ResNet embedding, distances, filtering and clustering.

Two faces are the same person when their embeddings are closer than ~0.6 (Euclidean), the
threshold dlib's model was trained for (99.38 % on LFW).
"""

from __future__ import annotations

import numpy as np

from facetwin.errors import UsageError
from facetwin.extract.landmarks import to_rect
from facetwin.extract.models import face_recognizer

SAME_PERSON = 0.6


def embedding(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(128,) float32 embedding of the face with these 68 landmarks in an RGB image."""
    import dlib

    pts = [dlib.point(round(float(x)), round(float(y))) for x, y in landmarks]
    x0, y0 = np.floor(landmarks.min(0))
    x1, y1 = np.ceil(landmarks.max(0))
    shape = dlib.full_object_detection(to_rect((x0, y0, x1, y1)), pts)
    desc = face_recognizer().compute_face_descriptor(np.ascontiguousarray(image), shape)
    return np.asarray(desc, dtype=np.float32)


class Embedder:
    """Computes embeddings with dlib itself or with facetwin's torch port of the same network.

    The port (extract/face_resnet.py) gives the same vectors to ~1e-6 and runs ~7x faster on a
    CPU (dlib-bin is single-threaded without BLAS) and on GPUs; ``dlib`` stays as the reference.
    """

    BACKENDS = ("torch", "dlib")

    def __init__(self, backend: str = "torch", device: str = "cpu") -> None:
        if backend not in self.BACKENDS:
            raise UsageError(f"unknown embedder {backend!r}; choose one of {self.BACKENDS}")
        self.backend = backend
        self._net = None
        if backend == "torch":
            from facetwin.extract.face_resnet import FaceResNet

            self._net = FaceResNet.from_dlib(device=device)

    def __call__(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        if self._net is None:
            return embedding(image, landmarks)
        return self._net.embed_faces(image, [np.asarray(landmarks)])[0]


def distances(emb: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """Euclidean distances from one (128,) embedding to each row of (K, 128) refs."""
    return np.linalg.norm(np.asarray(refs) - np.asarray(emb)[None], axis=1)


def matches(emb: np.ndarray, refs: np.ndarray, threshold: float = SAME_PERSON) -> bool:
    """True when the face is within ``threshold`` of any reference embedding."""
    return bool(len(refs)) and float(distances(emb, refs).min()) < threshold


def cluster(embeddings: np.ndarray, threshold: float = SAME_PERSON) -> np.ndarray:
    """Group embeddings into identities (greedy leader clustering on the running mean).

    Returns an int label per row, 0 for the largest group. Enough for summarising a face set;
    order-dependent in ambiguous cases, which is why labels are never stored as truth.
    """
    labels = np.full(len(embeddings), -1, int)
    centres: list[np.ndarray] = []
    counts: list[int] = []
    for i, e in enumerate(embeddings):
        if centres:
            d = distances(e, np.stack(centres))
            j = int(d.argmin())
            if d[j] < threshold:
                labels[i] = j
                counts[j] += 1
                centres[j] += (e - centres[j]) / counts[j]
                continue
        labels[i] = len(centres)
        centres.append(e.astype(np.float64).copy())
        counts.append(1)
    order = np.argsort(-np.bincount(labels, minlength=len(centres)), kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    return remap[labels] if len(labels) else labels
