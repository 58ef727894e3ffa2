"""Still images: read as RGB uint8, write atomically, find them in folders.

Decoding a damaged file must end in facetwin's one line, not in the codec libraries' own: libpng
prints "libpng error: ..." straight to the process's stderr (file descriptor 2, past Python and
past OpenCV's log level), so :func:`decode_image` points descriptor 2 at /dev/null while a codec
runs (:func:`quiet_stderr`).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from facetwin.errors import InputError, OutputError
from facetwin.media.files import atomic_write_bytes

# what OpenCV's imread reads (the portable any-maps included: .ppm, .pgm, .pbm, .pnm)
IMAGE_EXTS = {
    ".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"
}  # fmt: skip

_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: int | None = None


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence what native code writes to file descriptor 2 inside the block.

    Threads may nest and overlap: the first one in redirects, the last one out restores, so
    descriptor 2 always comes back. ``sys.stderr`` is flushed first; what another thread
    writes to stderr during the few milliseconds of a decode is dropped too.
    """
    global _quiet_depth, _quiet_saved
    with _quiet_lock:
        if _quiet_depth == 0:
            saved = -1  # stays -1 without a usable descriptor 2 (closed, embedded): just decode
            try:
                if sys.stderr is not None:
                    sys.stderr.flush()
                devnull = os.open(os.devnull, os.O_WRONLY)
                try:
                    saved = os.dup(2)
                    os.dup2(devnull, 2)
                finally:
                    os.close(devnull)
            except (OSError, ValueError):
                if saved >= 0:
                    os.close(saved)
                    saved = -1
            _quiet_saved = saved
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                if _quiet_saved >= 0:
                    os.dup2(_quiet_saved, 2)
                    os.close(_quiet_saved)
                _quiet_saved = None


def decode_image(data: bytes | np.ndarray, grey: bool = False) -> np.ndarray | None:
    """Encoded image bytes to RGB uint8 (H, W, 3), or (H, W) with ``grey``; None when the data
    is not a readable image. The codecs' own messages are silenced."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray) else data
    if not buf.size:
        return None
    with quiet_stderr():
        try:
            img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
        except cv2.error:
            img = None
    if img is None or grey:
        return img
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3); greyscale and alpha images are converted. InputError if unreadable."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        data = np.fromfile(p, dtype=np.uint8)
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or e})") from None
    if not data.size:
        raise InputError(f"{p}: empty file (0 bytes)")
    img = decode_image(data)
    if img is None:
        raise InputError(f"{p}: not a readable image (corrupt or unsupported format)")
    return img


def encode_image(image: np.ndarray, suffix: str = ".png", quality: int = 95) -> bytes:
    """Encode RGB (or single-channel) uint8 to PNG/JPEG bytes."""
    img = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix.lower() in {".jpg", ".jpeg"} else []
    ok, buf = cv2.imencode(suffix, img, params)
    if not ok:
        raise OutputError(f"cannot encode image as {suffix}")
    return buf.tobytes()


def write_image(path: str | Path, image: np.ndarray, quality: int = 95) -> None:
    """Write an RGB image atomically (temp file + rename), PNG or JPEG by suffix."""

    p = Path(path)
    atomic_write_bytes(p, encode_image(image, p.suffix or ".png", quality))


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))
    except OSError as e:
        raise InputError(f"{folder}: cannot list the folder ({e.strerror or e})") from None


def contact_sheet(images: list[np.ndarray], columns: int = 10, cell: int = 96) -> np.ndarray:
    """A grid of images (each resized to ``cell``) for people to look at."""
    if not images:
        return np.zeros((cell, cell, 3), np.uint8)
    rows = (len(images) + columns - 1) // columns
    sheet = np.zeros((rows * cell, min(columns, len(images)) * cell, 3), np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell] = cv2.resize(
            im, (cell, cell), interpolation=cv2.INTER_AREA
        )
    return sheet
