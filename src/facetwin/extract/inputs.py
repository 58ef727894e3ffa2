"""What an extraction reads before it writes anything: its inputs and its reference faces.

Separate from the Extractor (:mod:`facetwin.extract.pipeline`) because both run before the face
set is touched, so that a missing file, an empty folder or a reference photo without a face
fails at once and leaves no empty face set behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facetwin.errors import InputError, NoFaceError
from facetwin.extract.detect import detect_full
from facetwin.extract.detectors import Detector
from facetwin.extract.identity import Embedder
from facetwin.extract.landmarks import landmarks_68
from facetwin.media.image import is_image_path, read_image
from facetwin.media.video import is_video_path

#: (path, 'image' or 'video', explicit): explicit inputs were named on the command line, so an
#: unreadable one is an error; a folder's files are skipped with a warning instead.
Source = tuple[Path, str, bool]


def _folder_media(p: Path) -> list[Source]:
    """The images and videos of folder ``p``, in name order (InputError when it holds none)."""
    try:
        items = sorted(q for q in p.iterdir() if q.is_file())
    except OSError as e:
        raise InputError(f"{p}: cannot list the folder ({e.strerror or e})") from None
    media = [
        (q, "video" if is_video_path(q) else "image", False)
        for q in items
        if is_image_path(q) or is_video_path(q)
    ]
    if not media:
        raise InputError(f"{p}: folder holds no images or videos")
    return media


def expand_inputs(inputs: list[str | Path]) -> list[Source]:
    """(path, 'image'|'video', explicit) for each input; folders give their images and videos."""
    out: list[Source] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            out.extend(_folder_media(p))
        elif p.is_file():
            if is_video_path(p):
                out.append((p, "video", True))
            elif is_image_path(p):
                out.append((p, "image", True))
            else:
                raise InputError(
                    f"{p}: not an image or video file (unknown extension {p.suffix!r})"
                )
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def reference_embeddings(
    paths: list[str], det: Detector, max_side: int, embed: Embedder
) -> np.ndarray:
    """One embedding per reference photo: its largest face."""
    embs = []
    for path in paths:
        img = read_image(path)
        found = detect_full(det, img, max_side)
        if not found:
            raise NoFaceError(f"{path}: no face found in the reference photo")
        d = max(found, key=lambda d: d.width * d.height)
        embs.append(embed(img, landmarks_68(img, d.box)))
    return np.asarray(embs, np.float32).reshape(-1, 128)
