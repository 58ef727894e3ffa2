"""Uploads: a video or photo streamed into the project's ``media/`` folder.

The body is the file itself (``PUT /api/upload?name=clip.mp4``): no multipart parser, no spooled
copy. It is refused before a byte is stored when the declared length is over the limit, and
stopped (the partial file removed) as soon as the bytes received pass it, whatever the header
said. Only the media types facetwin reads are accepted, by file name *and* by the file's first
bytes, and the name is reduced to safe characters, so an upload can neither land outside
``media/`` nor pose as another kind of file.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from facetwin.media.image import is_image_path
from facetwin.media.video import is_video_path

DEFAULT_MAX_BYTES = 2 * 1024**3
#: The first bytes of each accepted container (offset, signature).
SIGNATURES: tuple[tuple[int, bytes], ...] = (
    (0, b"\xff\xd8\xff"),  # JPEG
    (0, b"\x89PNG\r\n\x1a\n"),  # PNG
    (0, b"BM"),  # BMP
    (0, b"RIFF"),  # AVI, WebP
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska, WebM
    (4, b"ftyp"),  # MP4, MOV, M4V
    (4, b"moov"),  # old QuickTime
    (4, b"mdat"),
    (4, b"wide"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"GIF8"),
    (0, b"II*\x00"),  # TIFF
    (0, b"MM\x00*"),
    (0, b"FLV"),
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)


class UploadRefused(ValueError):
    """The upload breaks a limit; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = DEFAULT_MAX_BYTES


def safe_name(name: str) -> str:
    """``name`` reduced to a plain file name of letters, digits, ``.``, ``-`` and ``_``; 415
    when it is not a video or image facetwin reads."""
    base = os.path.basename(name.replace("\\", "/"))
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")[:120]
    path = Path(clean)
    if not clean or not (is_video_path(path) or is_image_path(path)):
        raise UploadRefused(f"{name!r}: only videos and photos can be uploaded", 415)
    return clean


def looks_like_media(head: bytes) -> bool:
    return any(head[off : off + len(sig)] == sig for off, sig in SIGNATURES)


def free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or ``stem-2.ext``... when that exists: an upload never overwrites."""
    path = folder / name
    n = 2
    while path.exists():
        path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        n += 1
    return path


async def receive_upload(
    chunks: AsyncIterator[bytes],
    folder: Path,
    name: str,
    declared: int | None,
    limits: UploadLimits,
) -> Path:
    """Stream ``chunks`` into a new file in ``folder``; :class:`UploadRefused` on any limit."""
    clean = safe_name(name)
    if declared is not None and declared > limits.max_bytes:
        raise UploadRefused(f"upload of {declared} bytes is over the {limits.max_bytes} limit", 413)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".upload-{os.getpid()}-{id(chunks)}-{clean}"
    size = 0
    head = b""
    try:
        with open(tmp, "wb") as f:
            async for chunk in chunks:
                size += len(chunk)
                if size > limits.max_bytes:
                    raise UploadRefused(f"upload is over the {limits.max_bytes} byte limit", 413)
                if len(head) < 16:
                    head += chunk[:16]
                f.write(chunk)
        if size == 0 or not looks_like_media(head):
            raise UploadRefused(f"{clean}: the content is not a video or photo", 415)
        final = free_name(folder, clean)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final
