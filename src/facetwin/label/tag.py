"""The metadata tag: ``synthetic: face swapped by facetwin ...`` in PNG ``tEXt``, JPEG ``COM`` and
the video container's ``comment``/``description``; writing labelled images, reading tags back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facetwin import __version__
from facetwin.errors import InputError, OutputError, UsageError
from facetwin.label.watermark import check_rgb, embed_watermark
from facetwin.media.files import atomic_write_bytes

log = logging.getLogger(__name__)


# --- metadata -------------------------------------------------------------------------------------

#: Prefix that identifies our tag wherever it is stored.
TAG_PREFIX = "synthetic:"
#: Text of the metadata tag; fill it with :func:`synthetic_tag`.
SYNTHETIC_TAG = TAG_PREFIX + " face swapped by facetwin {version}, model {model_id}"
#: PNG tEXt keyword we write the tag under (a standard keyword, shown by common viewers).
PNG_KEYWORD = "Comment"
#: Container metadata keys that carry the tag in a video (mp4/mov/mkv all keep both).
VIDEO_KEYS = ("comment", "description")
#: The characters and the longest length each tag field may have. Nothing outside them is ever
#: written (:func:`sanitize_field`) or accepted when reading (:func:`parse_tag`): no spaces,
#: commas or quotes that could fake another field, no control characters that a terminal would
#: obey, nothing that is not ASCII.
MODEL_ID_CHARS = "A-Za-z0-9._-"
MODEL_ID_MAX = 64
VERSION_CHARS = "A-Za-z0-9.+-"
VERSION_MAX = 32
#: The whole tag, filled with the longest fields.
TAG_MAX = len(SYNTHETIC_TAG.format(version="", model_id="")) + VERSION_MAX + MODEL_ID_MAX
_TAG_RE = re.compile(
    re.escape(SYNTHETIC_TAG)
    .replace(r"\{version\}", f"([{VERSION_CHARS}]{{1,{VERSION_MAX}}})")
    .replace(r"\{model_id\}", f"([{MODEL_ID_CHARS}]{{1,{MODEL_ID_MAX}}})"),
    re.ASCII,
)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


# --- metadata tag ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagFields:
    """The fields of a well-formed tag (:func:`parse_tag`)."""

    version: str
    model_id: str


def sanitize_field(
    value: object, allowed: str = MODEL_ID_CHARS, max_len: int = MODEL_ID_MAX
) -> str:
    """``value`` as text of the characters in ``allowed`` (a regex class body), at most
    ``max_len`` long.

    Accents are dropped (``é`` -> ``e``); every run of other characters - control characters,
    newlines, spaces, punctuation, other scripts - becomes one ``_``. A value that does not fit
    is cut and ends in ``-`` + 8 hex digits of its SHA-256, so two long ids stay apart. Empty
    results become ``unknown``.
    """
    text = str(value)
    digest = hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()[:8]
    head = text[: 4 * max_len]  # enough to fill the field; the digest covers the rest
    head = "".join(c for c in unicodedata.normalize("NFKD", head) if not unicodedata.combining(c))
    clean = re.sub(f"[^{allowed}]+", "_", head, flags=re.ASCII)
    if len(clean) > max_len or len(text) > len(head):
        clean = clean[: max_len - len(digest) - 1] + "-" + digest
    return clean or "unknown"


def synthetic_tag(model_id: object) -> str:
    """The tag text for ``model_id``, every field kept to its safe characters and length.

    The model id comes from the model's state.json, which anyone can edit: it is never copied
    into the label as it is (see :func:`sanitize_field`).
    """
    return SYNTHETIC_TAG.format(
        version=sanitize_field(__version__, VERSION_CHARS, VERSION_MAX),
        model_id=sanitize_field(model_id, MODEL_ID_CHARS, MODEL_ID_MAX),
    )


def parse_tag(text: object) -> TagFields | None:
    """The fields of ``text`` if it is exactly a tag that :func:`synthetic_tag` could have
    written (safe characters, bounded lengths, nothing before or after); otherwise None."""
    if not isinstance(text, str) or len(text) > TAG_MAX:
        return None
    match = _TAG_RE.fullmatch(text)
    return TagFields(version=match[1], model_id=match[2]) if match else None


def _pick_tag(values: list[str]) -> tuple[str | None, int]:
    """The first well-formed tag among ``values``, and how many looked like ours but were not.

    Those are logged without their text, which could hold anything (terminal escapes, fake
    lines), and never returned.
    """
    tag, malformed = None, 0
    for value in values:
        if not str(value).startswith(TAG_PREFIX):
            continue
        if parse_tag(value) is None:
            malformed += 1
        elif tag is None:
            tag = str(value)
    if malformed:
        log.warning("ignored %d malformed synthetic tag(s) in the metadata", malformed)
    return tag, malformed


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type+data."""
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png_chunks(png: bytes) -> list[tuple[bytes, int, int]]:
    """(type, data start, data end) of each chunk; stops quietly at a truncated chunk."""
    if not png.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    chunks = []
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        start, end = pos + 8, pos + 8 + length
        if end + 4 > len(png):
            break
        chunks.append((kind, start, end))
        if kind == b"IEND":
            break
        pos = end + 4
    return chunks


def png_add_text(png: bytes, keyword: str, text: str) -> bytes:
    """Insert a tEXt chunk right after IHDR, so readers that stop early still see it."""
    chunks = _png_chunks(png)
    if not chunks or chunks[0][0] != b"IHDR":
        raise ValueError("PNG does not start with IHDR")
    data = keyword.encode("latin-1") + b"\0" + text.encode("latin-1", errors="replace")
    after_ihdr = chunks[0][2] + 4
    return png[:after_ihdr] + _png_chunk(b"tEXt", data) + png[after_ihdr:]


def png_texts(png: bytes) -> list[tuple[str, str]]:
    """(keyword, text) of every tEXt chunk."""
    out = []
    for kind, start, end in _png_chunks(png):
        if kind == b"tEXt":
            keyword, _, text = png[start:end].partition(b"\0")
            out.append((keyword.decode("latin-1"), text.decode("latin-1")))
    return out


def jpeg_add_comment(jpeg: bytes, text: str) -> bytes:
    """Insert a COM segment after the leading APPn segments (JFIF needs APP0 to stay first)."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG file")
    data = text.encode("utf-8")
    if len(data) > 0xFFFF - 2:
        raise ValueError("comment too long for one JPEG segment")
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and 0xE0 <= jpeg[pos + 1] <= 0xEF:
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        pos += 2 + length
    segment = b"\xff\xfe" + struct.pack(">H", len(data) + 2) + data
    return jpeg[:pos] + segment + jpeg[pos:]


def jpeg_comments(jpeg: bytes) -> list[str]:
    """Text of every COM segment before the image data (start of scan)."""
    if not jpeg.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG file")
    out = []
    pos = 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # segments without a length
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no more headers
            break
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        if marker == 0xFE:
            out.append(jpeg[pos + 4 : pos + 2 + length].decode("utf-8", errors="replace"))
        pos += 2 + length
    return out


def tags_in_bytes(data: bytes) -> tuple[str | None, int]:
    """Our tag in PNG or JPEG bytes (None for other formats or when absent), and the number of
    malformed look-alikes (see :func:`_pick_tag`)."""
    try:
        if data.startswith(_PNG_SIGNATURE):
            texts = [text for _, text in png_texts(data)]
        elif data.startswith(b"\xff\xd8"):
            texts = jpeg_comments(data)
        else:
            return None, 0
    except (ValueError, struct.error):
        return None, 0
    return _pick_tag(texts)


def _label_in_bytes(data: bytes) -> str | None:
    """The first well-formed tag in PNG or JPEG bytes; None for other formats or when absent."""
    return tags_in_bytes(data)[0]


def read_bytes(path: Path) -> bytes:
    """File contents, or an InputError that says which file and why."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def write_image_with_label(
    path: str | os.PathLike[str],
    image_rgb: np.ndarray,
    model_id: str,
    label: bool = True,
    *,
    jpeg_quality: int = 95,
) -> Path:
    """Write ``image_rgb`` to a PNG or JPEG, watermarked and tagged as synthetic.

    ``label=False`` writes the plain image (the CLI's explicit opt-out); it is logged, because
    an unlabelled output should never happen by accident. Embedding on an image that already
    carries the mark is harmless: the pattern adds up and stays detectable.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise UsageError(f"{path}: can only write .png or .jpg images, not {suffix or 'no suffix'}")
    check_rgb(image_rgb)
    if label:
        image_rgb = embed_watermark(image_rgb)
    else:
        log.warning("writing %s WITHOUT the synthetic label (labelling was turned off)", path)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if suffix != ".png" else []
    ok, encoded = cv2.imencode(suffix, cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OutputError(f"{path}: could not encode the image")
    data = encoded.tobytes()
    if label:
        tag = synthetic_tag(model_id)
        data = (
            png_add_text(data, PNG_KEYWORD, tag)
            if suffix == ".png"
            else jpeg_add_comment(data, tag)
        )
    atomic_write_bytes(path, data, fsync=True)
    return path


def read_label(path: str | os.PathLike[str]) -> str | None:
    """The synthetic tag stored in a PNG or JPEG file, or None when it carries none.

    Only a well-formed tag is returned (:func:`parse_tag`); anything else that starts with
    ``synthetic:`` is ignored (and logged), never passed on.
    """
    return _label_in_bytes(read_bytes(Path(path)))


def video_metadata(model_id: object) -> dict[str, str]:
    """Container metadata to set on an output video: ``container.metadata.update(...)``."""
    tag = synthetic_tag(model_id)
    return dict.fromkeys(VIDEO_KEYS, tag)


def open_video(path: Path):  # type: ignore[no-untyped-def]
    """av.open with our errors: missing -> 'no such file', anything else -> unreadable."""
    import av

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable video ({exc})") from None


def read_video_label(path: str | os.PathLike[str]) -> str | None:
    """The well-formed synthetic tag in a video's container (or stream) metadata, or None."""
    with open_video(Path(path)) as container:
        return video_tags(container)[0]


def video_tags(container) -> tuple[str | None, int]:  # type: ignore[no-untyped-def]
    """Our tag from an open container (container-level first, then per-stream metadata; keys
    differ between muxers, so every value is checked) and the number of malformed ones."""
    values = [str(v) for v in dict(container.metadata).values()]
    for stream in container.streams:
        values += [str(v) for v in dict(stream.metadata).values()]
    return _pick_tag(values)
