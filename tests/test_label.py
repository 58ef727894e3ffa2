"""Tests of the synthetic label: invisible watermark, metadata tags, verify().

All on real photos and real video frames: a watermark tuned on synthetic images says little
about false positives on the content people actually check.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facetwin import __version__, label
from facetwin.errors import InputError, UsageError
from facetwin.label import (
    DEFAULT_PAYLOAD,
    DETECTION_THRESHOLD,
    detect_watermark,
    embed_watermark,
    read_label,
    read_video_label,
    synthetic_tag,
    verify,
    video_metadata,
    write_image_with_label,
)

DATA = Path(__file__).parents[1] / "data"
IMAGE_PATHS = sorted((DATA / "images").glob("*.jpg"))
VIDEO = DATA / "video" / "single_face.mp4"
CLIP_FRAMES = 20


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _half(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    return cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _encode_h264(frames: list[np.ndarray], path: Path, metadata: dict[str, str]) -> None:
    """Write frames as H.264 CRF 28, the quality a shared clip typically gets."""
    with av.open(str(path), "w") as container:
        container.metadata.update(metadata)
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "28"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _decode_all(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    assert IMAGE_PATHS, "no test photos in data/images"
    return [_read_rgb(p) for p in IMAGE_PATHS]


@pytest.fixture(scope="module")
def marked(photos: list[np.ndarray]) -> list[np.ndarray]:
    return [embed_watermark(p) for p in photos]


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return _decode_all(VIDEO)


# --- watermark ------------------------------------------------------------------------------------


def test_mark_is_invisible(photos: list[np.ndarray], marked: list[np.ndarray]) -> None:
    psnrs = [_psnr(p, m) for p, m in zip(photos, marked, strict=True)]
    assert min(psnrs) >= 38.0, psnrs
    pairs = zip(photos, marked, strict=True)
    assert all(m.shape == p.shape and m.dtype == np.uint8 for p, m in pairs)


def test_embed_leaves_input_alone(photos: list[np.ndarray]) -> None:
    original = photos[0].copy()
    embed_watermark(photos[0])
    np.testing.assert_array_equal(photos[0], original)


def test_round_trip_decodes_payload(marked: list[np.ndarray]) -> None:
    for image in marked:
        result = detect_watermark(image)
        assert result.found and result.bits_ok == 1.0 and result.payload == DEFAULT_PAYLOAD


def test_found_after_jpeg_q50(marked: list[np.ndarray]) -> None:
    results = [detect_watermark(_jpeg(m, 50)) for m in marked]
    assert all(r.found for r in results), [round(r.score, 1) for r in results]


def test_found_after_half_size(marked: list[np.ndarray]) -> None:
    results = [detect_watermark(_half(m)) for m in marked]
    assert all(r.found for r in results), [round(r.score, 1) for r in results]


@pytest.mark.parametrize("size", [(256, 256), (1920, 1080)])
def test_extreme_sizes(photos: list[np.ndarray], size: tuple[int, int]) -> None:
    """The smallest frame we promise, halved to 128 px, and full HD (real photos, resized)."""
    image = cv2.resize(photos[0], size, interpolation=cv2.INTER_AREA)
    marked_image = embed_watermark(image)
    assert _psnr(image, marked_image) >= 38.0
    assert detect_watermark(_half(marked_image)).found
    assert detect_watermark(_jpeg(marked_image, 50)).found
    assert not detect_watermark(image).found


def test_found_after_h264_crf28(frames: list[np.ndarray], tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    _encode_h264([embed_watermark(f) for f in frames[:CLIP_FRAMES]], clip, video_metadata("m1"))
    decoded = _decode_all(clip)
    assert len(decoded) == CLIP_FRAMES
    found = [detect_watermark(f).found for f in decoded]
    assert sum(found) >= 0.9 * len(found)

    assert read_video_label(clip) == synthetic_tag("m1")
    report = verify(clip, max_frames=8)
    assert report.kind == "video" and report.metadata_tag == synthetic_tag("m1")
    assert report.watermark_found and report.frames_checked == 8
    assert report.frames_marked >= 7 and report.labelled


def test_no_mark_on_unmarked_content(photos: list[np.ndarray], frames: list[np.ndarray]) -> None:
    """Unmarked photos, crops, resized and recompressed copies and video frames all score far
    below the threshold (they are ~N(0, 1); the threshold sits at 8)."""
    rng = np.random.default_rng(0)
    samples: list[np.ndarray] = []
    for photo in photos:
        height, width = photo.shape[:2]
        samples += [photo, _half(photo), _jpeg(photo, 50)]
        for _ in range(8):
            h, w = rng.integers(256, height + 1), rng.integers(256, width + 1)
            y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
            samples.append(photo[y : y + h, x : x + w])
    samples += frames
    scores = np.array([detect_watermark(s).score for s in samples])
    assert len(scores) > 150
    assert not any(detect_watermark(s).found for s in samples[:5])
    assert scores.max() < DETECTION_THRESHOLD - 3.0, scores.max()


def test_other_payload_is_not_confused(marked: list[np.ndarray]) -> None:
    result = detect_watermark(marked[0], payload=b"\x00" * 8)
    assert result.payload == DEFAULT_PAYLOAD and result.bits_ok < 0.8


def test_rejects_what_it_cannot_mark() -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        embed_watermark(np.zeros((300, 300), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        detect_watermark(np.zeros((300, 300, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="too small"):
        embed_watermark(np.zeros((32, 300, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="payload"):
        embed_watermark(np.zeros((300, 300, 3), dtype=np.uint8), payload=b"x" * 9)


# --- metadata -------------------------------------------------------------------------------------


def _png_chunks_crc_ok(data: bytes) -> list[bytes]:
    """Chunk types of a PNG, asserting every CRC (our inserted chunk must be well formed)."""
    kinds, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        kinds.append(kind)
        pos += 12 + length
    return kinds


def test_png_label_round_trip(photos: list[np.ndarray], tmp_path: Path) -> None:
    path = write_image_with_label(tmp_path / "out.png", photos[6], model_id="celeb-ab12")
    assert read_label(path) == synthetic_tag("celeb-ab12")
    assert read_label(path).startswith("synthetic: face swapped by facetwin ")
    assert _png_chunks_crc_ok(path.read_bytes())[:2] == [b"IHDR", b"tEXt"]
    np.testing.assert_array_equal(_read_rgb(path), embed_watermark(photos[6]))  # lossless
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no temporary file left


def test_jpeg_label_round_trip(photos: list[np.ndarray], tmp_path: Path) -> None:
    path = write_image_with_label(tmp_path / "out.jpg", photos[0], model_id="m2")
    assert read_label(path) == synthetic_tag("m2")
    assert detect_watermark(_read_rgb(path)).found


def test_unlabelled_write_has_neither(photos: list[np.ndarray], tmp_path: Path) -> None:
    path = write_image_with_label(tmp_path / "plain.png", photos[0], "m", label=False)
    assert read_label(path) is None
    np.testing.assert_array_equal(_read_rgb(path), photos[0])


def test_tag_cannot_smuggle_control_characters() -> None:
    assert "\n" not in synthetic_tag("evil\nsynthetic: no")
    expected = f"synthetic: face swapped by facetwin {__version__}, model m1"
    assert synthetic_tag("m1") == expected


def test_write_rejects_unknown_suffix(photos: list[np.ndarray], tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        write_image_with_label(tmp_path / "out.gif", photos[0], "m")


# --- verify ---------------------------------------------------------------------------------------


def test_verify_marked_png(photos: list[np.ndarray], tmp_path: Path) -> None:
    path = write_image_with_label(tmp_path / "swap.png", photos[2], "m3")
    report = verify(path)
    assert report.kind == "image" and report.metadata_tag == synthetic_tag("m3")
    assert report.watermark_found and report.frames_marked == 1 and report.score > 15
    assert "watermark found" in report.summary()


def test_verify_unmarked_jpeg() -> None:
    report = verify(IMAGE_PATHS[0])
    assert report.metadata_tag is None and not report.watermark_found
    assert report.frames_checked == 1 and report.frames_marked == 0 and not report.labelled


def test_verify_unmarked_video() -> None:
    report = verify(VIDEO, max_frames=6)
    assert report.metadata_tag is None and not report.watermark_found
    assert report.frames_checked == 6 and report.frames_marked == 0


def test_verify_long_video_path_seeks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long videos are sampled by seeking; force that path on the short test clip."""
    monkeypatch.setattr(label, "_SEQUENTIAL_LIMIT", 0)
    report = verify(VIDEO, max_frames=4)
    assert report.frames_checked == 4 and not report.watermark_found


@pytest.mark.parametrize("name", ["missing.png", "missing.mp4"])
def test_missing_file_is_an_input_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="no such file"):
        verify(tmp_path / name)
    with pytest.raises(InputError, match="no such file"):
        read_label(tmp_path / name)
    with pytest.raises(InputError, match="no such file"):
        read_video_label(tmp_path / name)


@pytest.mark.parametrize("name", ["junk.png", "junk.mp4"])
def test_corrupt_file_is_an_input_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not media\n" * 10)
    with pytest.raises(InputError):
        verify(path)
    assert read_label(path) is None
