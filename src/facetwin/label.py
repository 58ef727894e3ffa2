"""Label every facetwin output as synthetic: an invisible watermark plus a metadata tag.

facetwin is a dual-use tool, so each image or video it writes says that it is synthetic in two
independent ways:

* a **metadata tag** (PNG ``tEXt``, JPEG ``COM``, video container ``comment``/``description``)
  that any tool can read, but that is lost by a screenshot or a re-encode; and
* an **invisible watermark** in the luma channel that survives the ordinary life of a shared
  image: JPEG at quality 50, H.264 at CRF 28, and down-scaling to half size.

Watermark design (why it looks like this):

* The mark lives on a *canonical grid*: the luma is resized to ``CANONICAL`` x ``CANONICAL``
  whatever the image size, so the grid is defined relative to the frame. A resized copy maps
  onto the same grid again, which is what makes detection work at any size; there is no scale
  search and hence no extra false-positive risk from trying many scales.
* On that grid we take the 8x8 block DCT and add a key-derived pseudo-random +-``STRENGTH``
  pattern to a low/mid band of coefficients (``BAND``). Low enough to survive JPEG, H.264 and a
  0.5x ``INTER_AREA`` resize (which halves every frequency's headroom), high enough that the
  host image's own energy there is small. The delta is computed on the canonical grid and then
  resized back to the image size, so only luma changes (R, G and B get the same offset).
* It is additive spread spectrum: 64 payload bits, each spread over 160 coefficients at
  random positions across the whole frame, so no region (a face, the sky) carries a bit alone.
* The detector is a *locally normalised correlation*: each coefficient is divided by the local
  energy of the band around it before correlating with the key. Flat regions, where the host
  barely interferes, then count for more than busy texture. The statistic is built to be
  close to a standard normal on unmarked images (about N(0, 1.1) measured on real photos and
  video frames), so ``DETECTION_THRESHOLD`` is a real false-positive bound rather than a
  tuned guess; marked images score about 20-30 even after the attacks above.
* The key stream comes from SHAKE-256, not from numpy's RNG, whose streams may change between
  numpy versions: a mark written today must still be found by every later facetwin.

Known limits: the grid is tied to the full frame, so cropping (even by 1-2 %), rotation or
mirroring removes the mark; heavier compression than CRF ~32 weakens it below the threshold.
The metadata tag covers those cases only while the file itself is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import struct
import zlib
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from facetwin import __version__
from facetwin.errors import InputError, OutputError, UsageError

log = logging.getLogger(__name__)

# --- watermark parameters: changing any of these breaks detection of existing marks ---------------

#: Payload written by facetwin: a fixed signature, so every facetwin output carries the same mark.
DEFAULT_PAYLOAD = b"facetwin"
#: Secret-less key of the carrier; versioned so that a future scheme can use a new one.
WATERMARK_KEY = b"facetwin-watermark-v1"
#: Side of the square grid the mark is defined on (the luma is resized to it).
CANONICAL = 256
#: DCT block size on the canonical grid.
BLOCK = 8
#: (row, col) DCT coefficients that carry the mark: u+v in 2..4, no DC and no (0,1)/(1,0),
#: whose host energy is large and whose change would show as block-wise brightness gradients.
BAND: tuple[tuple[int, int], ...] = (
    (1, 1),
    (0, 2),
    (2, 0),
    (1, 2),
    (2, 1),
    (0, 3),
    (3, 0),
    (2, 2),
    (1, 3),
    (3, 1),
)
#: Amplitude added to each band coefficient (orthonormal DCT units, i.e. grey levels).
#: 6.0 gives a PSNR of about 42 dB on real photos.
STRENGTH = 6.0
#: Payload size in bits; shorter payloads are repeated to fill it.
PAYLOAD_BITS = 64
#: Score above which an image counts as marked. Unmarked photos/frames score about N(0, 1.1)
#: (max 3.6 over ~2,500 crops and frames); marked ones 20+ after JPEG q50 / H.264 CRF 28 / 0.5x.
DETECTION_THRESHOLD = 8.0
#: Floor of the local energy used to normalise coefficients, so flat areas do not blow up.
_ENERGY_FLOOR = 2.0
#: Smallest side we mark or check: below it the canonical grid is mostly interpolation.
MIN_SIDE = 64

# --- metadata -------------------------------------------------------------------------------------

#: Prefix that identifies our tag wherever it is stored.
TAG_PREFIX = "synthetic:"
#: Text of the metadata tag; fill it with :func:`synthetic_tag`.
SYNTHETIC_TAG = TAG_PREFIX + " face swapped by facetwin {version}, model {model_id}"
#: PNG tEXt keyword we write the tag under (a standard keyword, shown by common viewers).
PNG_KEYWORD = "Comment"
#: Container metadata keys that carry the tag in a video (mp4/mov/mkv all keep both).
VIDEO_KEYS = ("comment", "description")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
#: Videos with at most this many frames are decoded straight through when sampling frames;
#: longer ones are sampled by seeking, which is faster there but less exact.
_SEQUENTIAL_LIMIT = 1500
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class WatermarkResult:
    """Outcome of :func:`detect_watermark`.

    ``score`` is a z-score: about N(0, 1.1) on unmarked images, so it tells how sure we are,
    not only whether. ``bits_ok`` is the fraction of the expected payload bits that decoded
    correctly (about 0.5 on unmarked images). ``payload`` is what was decoded, right or not.
    """

    found: bool
    score: float
    bits_ok: float
    payload: bytes


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found in one file."""

    path: Path
    kind: Literal["image", "video"]
    metadata_tag: str | None
    watermark_found: bool
    frames_checked: int
    frames_marked: int
    score: float

    @property
    def labelled(self) -> bool:
        """True when either label survives: the tag or the watermark."""
        return self.metadata_tag is not None or self.watermark_found

    def summary(self) -> str:
        """One line for the CLI."""
        tag = repr(self.metadata_tag) if self.metadata_tag else "none"
        mark = "found" if self.watermark_found else "not found"
        return (
            f"{self.path}: {self.kind}, metadata tag {tag}, watermark {mark} "
            f"({self.frames_marked}/{self.frames_checked} frames, score {self.score:.1f})"
        )


# --- watermark: small pure helpers ----------------------------------------------------------------


def _check_rgb(image_rgb: np.ndarray) -> None:
    """Reject what the mark is not defined for, with a message that says what was wrong."""
    if not isinstance(image_rgb, np.ndarray) or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        shape = getattr(image_rgb, "shape", None)
        raise ValueError(f"expected an RGB image of shape HxWx3, got {shape}")
    if image_rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image_rgb.dtype}")
    if min(image_rgb.shape[:2]) < MIN_SIDE:
        raise ValueError(
            f"image {image_rgb.shape[1]}x{image_rgb.shape[0]} is too small for the watermark "
            f"(needs at least {MIN_SIDE} px a side)"
        )


def _luma(image_rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma as float32: the channel that video codecs and JPEG keep at full resolution."""
    return image_rgb.astype(np.float32) @ _LUMA


def _resize(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize one axis at a time: area-average where it shrinks (no aliasing), linear where it
    grows. One cv2.resize call would have to pick a single method for both axes."""
    out = plane
    if out.shape[1] != width:
        shrink = width < out.shape[1]
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        out = cv2.resize(out, (width, out.shape[0]), interpolation=interp)
    if out.shape[0] != height:
        shrink = height < out.shape[0]
        interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        out = cv2.resize(out, (out.shape[1], height), interpolation=interp)
    return out


@cache
def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix, so that coefficient units equal grey levels (energy kept)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    m.setflags(write=False)
    return m


def _block_dct(plane: np.ndarray) -> np.ndarray:
    """All 8x8 block DCTs of a canonical plane at once: (nb, nb, B, B), no Python loop."""
    nb = plane.shape[0] // BLOCK
    d = _dct_matrix(BLOCK)
    blocks = plane.reshape(nb, BLOCK, nb, BLOCK).transpose(0, 2, 1, 3)
    return np.einsum("ij,abjk,lk->abil", d, blocks, d)


def _block_idct(coefs: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_block_dct` back to a (nb*B, nb*B) plane."""
    nb = coefs.shape[0]
    d = _dct_matrix(BLOCK)
    blocks = np.einsum("ji,abjk,kl->abil", d, coefs, d)
    return blocks.transpose(0, 2, 1, 3).reshape(nb * BLOCK, nb * BLOCK)


def _band_vector(coefs: np.ndarray) -> np.ndarray:
    """The band coefficients of every block as one flat vector (block-major)."""
    rows, cols = zip(*BAND, strict=True)
    return coefs[:, :, list(rows), list(cols)].reshape(-1)


def _band_to_blocks(vector: np.ndarray, nb: int) -> np.ndarray:
    """Put a band vector back into an otherwise zero (nb, nb, B, B) coefficient array."""
    rows, cols = zip(*BAND, strict=True)
    coefs = np.zeros((nb, nb, BLOCK, BLOCK))
    coefs[:, :, list(rows), list(cols)] = vector.reshape(nb, nb, len(BAND))
    return coefs


@lru_cache(maxsize=4)
def _carrier(key: bytes = WATERMARK_KEY) -> tuple[np.ndarray, np.ndarray]:
    """Key-derived (sign, bit index) of every band coefficient.

    SHAKE-256 rather than numpy's RNG: its output is fixed by a standard, so marks stay
    readable across numpy versions. Each bit gets the same number of coefficients, scattered
    over the frame by a key-derived permutation.
    """
    nb = CANONICAL // BLOCK
    n = nb * nb * len(BAND)
    raw = np.frombuffer(hashlib.shake_256(key).digest(8 * n), dtype="<u4").reshape(n, 2)
    signs = np.where(raw[:, 0] & 1, 1.0, -1.0)
    bit_of = np.empty(n, dtype=np.intp)
    bit_of[np.argsort(raw[:, 1], kind="stable")] = np.arange(n) % PAYLOAD_BITS
    signs.setflags(write=False)
    bit_of.setflags(write=False)
    return signs, bit_of


def _payload_symbols(payload: bytes) -> np.ndarray:
    """Payload as PAYLOAD_BITS symbols of +-1 (short payloads repeat to fill the slots)."""
    if not payload or len(payload) * 8 > PAYLOAD_BITS:
        raise ValueError(f"payload must be 1 to {PAYLOAD_BITS // 8} bytes, got {len(payload)}")
    bits = np.unpackbits(np.frombuffer(payload, dtype=np.uint8))
    return np.resize(bits, PAYLOAD_BITS).astype(np.float64) * 2.0 - 1.0


def _local_weights(band: np.ndarray, nb: int) -> np.ndarray:
    """1 / local RMS of the band (3x3 blocks), one weight per band coefficient.

    This whitens the host: textured blocks, where the image itself dominates, are turned down
    and flat blocks, where the mark dominates, up. The weights depend on magnitudes only, so
    on an unmarked image the signs still average out and the score stays ~N(0, 1).
    """
    energy = (band.reshape(nb, nb, len(BAND)) ** 2).mean(axis=-1).astype(np.float32)
    energy = cv2.blur(energy, (3, 3), borderType=cv2.BORDER_REFLECT)
    weights = 1.0 / np.sqrt(energy.astype(np.float64) + _ENERGY_FLOOR**2)
    return np.repeat(weights.reshape(-1), len(BAND))


def _canonical_band(image_rgb: np.ndarray) -> np.ndarray:
    """Band coefficients of the image's luma on the canonical grid."""
    plane = _resize(_luma(image_rgb), CANONICAL, CANONICAL).astype(np.float64)
    return _band_vector(_block_dct(plane))


# --- watermark: public API ------------------------------------------------------------------------


def embed_watermark(image_rgb: np.ndarray, payload: bytes = DEFAULT_PAYLOAD) -> np.ndarray:
    """Return a copy of ``image_rgb`` (uint8 RGB, HxWx3) carrying the invisible watermark.

    The change is a luma-only, zero-mean pattern of about 2 grey levels RMS (PSNR ~42 dB).
    The input is not modified.
    """
    _check_rgb(image_rgb)
    signs, bit_of = _carrier()
    nb = CANONICAL // BLOCK
    delta_band = STRENGTH * signs * _payload_symbols(payload)[bit_of]
    delta = _block_idct(_band_to_blocks(delta_band, nb)).astype(np.float32)
    height, width = image_rgb.shape[:2]
    delta = _resize(delta, width, height)
    marked = image_rgb.astype(np.float32) + delta[..., None]
    return np.clip(np.rint(marked), 0, 255).astype(np.uint8)


def detect_watermark(image_rgb: np.ndarray, payload: bytes = DEFAULT_PAYLOAD) -> WatermarkResult:
    """Look for the watermark carrying ``payload`` in an image of any size.

    Works on the image as found: re-compressed, or resized with its aspect ratio kept.
    """
    _check_rgb(image_rgb)
    signs, bit_of = _carrier()
    nb = CANONICAL // BLOCK
    band = _canonical_band(image_rgb)
    weighted = band * _local_weights(band, nb)
    num = np.bincount(bit_of, weights=weighted * signs, minlength=PAYLOAD_BITS)
    den = np.sqrt(np.bincount(bit_of, weights=weighted**2, minlength=PAYLOAD_BITS))
    z = num / np.maximum(den, 1e-9)  # per-bit z-score, ~N(0, 1) when unmarked
    expected = _payload_symbols(payload)
    score = float(z @ expected / np.sqrt(PAYLOAD_BITS))
    decoded = np.packbits(z > 0).tobytes()
    bits_ok = float(np.mean((z > 0) == (expected > 0)))
    return WatermarkResult(
        found=score >= DETECTION_THRESHOLD, score=score, bits_ok=bits_ok, payload=decoded
    )


# --- metadata tag ---------------------------------------------------------------------------------


def synthetic_tag(model_id: str) -> str:
    """The tag text for ``model_id``, kept to printable ASCII.

    PNG tEXt is Latin-1 and many readers show raw bytes, so anything else in a model id (or
    a newline that could fake a second field) becomes '?'.
    """
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in str(model_id))[:200]
    return SYNTHETIC_TAG.format(version=__version__, model_id=clean or "unknown")


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


def _label_in_bytes(data: bytes) -> str | None:
    """The first of our tags in PNG or JPEG bytes; None for other formats or when absent."""
    try:
        if data.startswith(_PNG_SIGNATURE):
            texts = [text for _, text in png_texts(data)]
        elif data.startswith(b"\xff\xd8"):
            texts = jpeg_comments(data)
        else:
            return None
    except (ValueError, struct.error):
        return None
    return next((t for t in texts if t.startswith(TAG_PREFIX)), None)


def _read_bytes(path: Path) -> bytes:
    """File contents, or an InputError that says which file and why."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and os.replace.

    A crash or a full disk then never leaves a half-written image under the final name. The
    temporary file is created with mode 0o666 so the umask applies, as for a plain open().
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


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
    _check_rgb(image_rgb)
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
    _atomic_write(path, data)
    return path


def read_label(path: str | os.PathLike[str]) -> str | None:
    """The synthetic tag stored in a PNG or JPEG file, or None when it carries none."""
    return _label_in_bytes(_read_bytes(Path(path)))


def video_metadata(model_id: str) -> dict[str, str]:
    """Container metadata to set on an output video: ``container.metadata.update(...)``."""
    tag = synthetic_tag(model_id)
    return dict.fromkeys(VIDEO_KEYS, tag)


def _open_video(path: Path):  # type: ignore[no-untyped-def]
    """av.open with our errors: missing -> 'no such file', anything else -> unreadable."""
    import av

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable video ({exc})") from None


def _tag_in_metadata(metadata: dict[str, str]) -> str | None:
    """The first value that is one of our tags (keys differ between muxers, so check all)."""
    return next((v for v in metadata.values() if str(v).startswith(TAG_PREFIX)), None)


def read_video_label(path: str | os.PathLike[str]) -> str | None:
    """The synthetic tag in a video's container (or stream) metadata, or None."""
    with _open_video(Path(path)) as container:
        return _video_tag(container)


def _video_tag(container) -> str | None:  # type: ignore[no-untyped-def]
    """Our tag from an open container: container-level first, then per-stream metadata."""
    tag = _tag_in_metadata(dict(container.metadata))
    for stream in container.streams:
        tag = tag or _tag_in_metadata(dict(stream.metadata))
    return tag


# --- verify ---------------------------------------------------------------------------------------


def _frame_indices(total: int, count: int) -> set[int]:
    """``count`` frame numbers spread evenly over ``total`` frames (both ends included)."""
    return {int(i) for i in np.linspace(0, total - 1, min(count, total)).round()}


def _sample_frames(container, count: int) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """Up to ``count`` RGB frames spread through the first video stream.

    Short videos are decoded straight through (exact positions); long ones are sampled by
    seeking to evenly spaced times, so checking an hour-long file stays quick.
    """
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    total = stream.frames
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    if not total and duration and stream.average_rate:
        total = int(duration * float(stream.average_rate))
    frames: list[np.ndarray] = []
    if total > _SEQUENTIAL_LIMIT and duration and stream.time_base is not None:
        start = stream.start_time or 0
        for t in (np.arange(count) + 0.5) / count * duration:
            target = start + int(t / stream.time_base)
            container.seek(target, stream=stream)
            for frame in container.decode(stream):
                if frame.pts is None or frame.pts >= target:
                    frames.append(frame.to_ndarray(format="rgb24"))
                    break
        return frames
    wanted = _frame_indices(total, count) if total else set(range(count))
    for index, frame in enumerate(container.decode(stream)):
        if index in wanted:
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= len(wanted):
                break
    return frames


def verify(path: str | os.PathLike[str], max_frames: int = 16) -> VerifyReport:
    """Check a file for both labels: the metadata tag and the watermark.

    For a video, up to ``max_frames`` frames spread through it are checked, and the watermark
    counts as found when at least half of them carry it (a single frame could be a fluke of
    the content; half cannot). ``score`` is the median frame score.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in _IMAGE_SUFFIXES:
        data = _read_bytes(path)
        bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"{path}: not a readable image")
        result = _detect_or_none(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return VerifyReport(
            path=path,
            kind="image",
            metadata_tag=_label_in_bytes(data),
            watermark_found=bool(result and result.found),
            frames_checked=1,
            frames_marked=int(bool(result and result.found)),
            score=result.score if result else 0.0,
        )
    import av

    with _open_video(path) as container:
        if not container.streams.video:
            raise InputError(f"{path}: has no video stream")
        tag = _video_tag(container)
        try:
            frames = _sample_frames(container, max_frames)
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"{path}: cannot decode video ({exc})") from None
    if not frames:
        raise InputError(f"{path}: no frames could be decoded")
    results = [_detect_or_none(frame) for frame in frames]
    scores = [r.score if r else 0.0 for r in results]
    marked = sum(bool(r and r.found) for r in results)
    return VerifyReport(
        path=path,
        kind="video",
        metadata_tag=tag,
        watermark_found=2 * marked >= len(frames),
        frames_checked=len(frames),
        frames_marked=marked,
        score=float(np.median(scores)),
    )


def _detect_or_none(image_rgb: np.ndarray) -> WatermarkResult | None:
    """detect_watermark, or None for an image too small to carry the mark (not an error)."""
    if min(image_rgb.shape[:2]) < MIN_SIDE:
        return None
    return detect_watermark(image_rgb)
