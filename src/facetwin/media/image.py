"""Still images: read as RGB uint8, write atomically, find them in folders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facetwin.errors import InputError, OutputError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTS


def read_image(path: str | Path) -> np.ndarray:
    """RGB uint8 (H, W, 3); greyscale and alpha images are converted. InputError if unreadable."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is None:
        raise InputError(f"{p}: not a readable image (corrupt or unsupported format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


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
    from facetwin.faceset import atomic_write_bytes

    p = Path(path)
    atomic_write_bytes(p, encode_image(image, p.suffix or ".png", quality))


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p))


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
