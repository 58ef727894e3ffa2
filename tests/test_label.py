"""Tests of the synthetic label: invisible watermark, metadata tags, verify().

All on real photos and real video frames: a watermark tuned on synthetic images says little
about false positives on the content people actually check. The re-upload attacks of issue 15
(0.5x + H.264 CRF 28, 0.5x + JPEG 50, a 10 % crop) run on a real clip marked and encoded as
convert writes it; crafted model ids go through a real model folder and convert.
"""

from __future__ import annotations

import json
import re
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
    FRAME_FALSE_ALARM,
    TAG_MAX,
    VIDEO_FRAME_ALPHA,
    binomial_tail,
    check_frames,
    detect_watermark,
    embed_watermark,
    false_alarm_bound,
    frames_needed,
    legacy,
    parse_tag,
    read_label,
    read_video_label,
    sanitize_field,
    synthetic_tag,
    verifier,
    verify,
    video_metadata,
    write_image_with_label,
)

DATA = Path(__file__).parents[1] / "data"
SHARED = Path(__file__).parents[2] / "shared" / "data"
IMAGE_PATHS = sorted((DATA / "images").glob("*.jpg"))
VIDEO = DATA / "video" / "single_face.mp4"
CLIPS = sorted((DATA / "video").glob("*.m*"))
CLIP_FRAMES = 20
#: The model field of a tag: what synthetic_tag may write, and all that parse_tag accepts.
MODEL_FIELD = re.compile(r"[A-Za-z0-9._-]{1,64}")


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


def _encode_h264(
    frames: list[np.ndarray], path: Path, metadata: dict[str, str] | None = None, crf: int = 28
) -> Path:
    """Write frames as H.264 (default CRF 28, the quality a shared clip typically gets)."""
    with av.open(str(path), "w") as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def _crop(image: np.ndarray, share: float = 0.10) -> np.ndarray:
    """Cut ``share`` of the width and of the height, off centre (30 % above, 70 % left)."""
    height, width = image.shape[:2]
    h, w = round(height * (1 - share)) // 2 * 2, round(width * (1 - share)) // 2 * 2
    y, x = round((height - h) * 0.3), round((width - w) * 0.7)
    return image[y : y + h, x : x + w]


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


@pytest.fixture(scope="module")
def converted(
    frames: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> list[np.ndarray]:
    """The man's whole clip (72 frames, 640x360; soft footage, the hardest of the three for the
    mark) marked as convert marks it and encoded as convert encodes it (x264 CRF 18), decoded."""
    path = tmp_path_factory.mktemp("converted") / "converted.mp4"
    _encode_h264([embed_watermark(f) for f in frames], path, video_metadata("m1"), crf=18)
    return _decode_all(path)


# --- watermark ------------------------------------------------------------------------------------


def test_mark_is_invisible(photos: list[np.ndarray], marked: list[np.ndarray]) -> None:
    psnrs = [_psnr(p, m) for p, m in zip(photos, marked, strict=True)]
    assert min(psnrs) >= 41.5, psnrs  # 2 grey levels RMS: 42 dB
    pairs = zip(photos, marked, strict=True)
    assert all(m.shape == p.shape and m.dtype == np.uint8 for p, m in pairs)


def test_embed_leaves_input_alone(photos: list[np.ndarray]) -> None:
    original = photos[0].copy()
    embed_watermark(photos[0])
    np.testing.assert_array_equal(photos[0], original)


def test_round_trip_decodes_payload(marked: list[np.ndarray], frames: list[np.ndarray]) -> None:
    """Scheme 2 tests the expected payload as a whole; decoding single bits needs a stronger
    mark, so it is exact where the score is 30 or more (most photos, every video frame) and
    nearly so below."""
    results = [detect_watermark(image) for image in marked]
    results.append(detect_watermark(embed_watermark(frames[0])))
    assert all(r.found and r.score >= 15 and r.bits_ok >= 0.9 for r in results)
    strong = [r for r in results if r.score >= 30]
    assert len(strong) >= len(results) // 2
    assert all(r.bits_ok == 1.0 and r.payload == DEFAULT_PAYLOAD for r in strong)
    assert results[-1].payload == DEFAULT_PAYLOAD


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
    assert _psnr(image, marked_image) >= 41.5
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
    below the threshold. The score is the best of 921,600 (scale, shift) hypotheses, each
    ~N(0, 1) when unmarked, so unmarked images score about 4.8 +- 0.3; the threshold is 7.6."""
    rng = np.random.default_rng(0)
    samples: list[np.ndarray] = []
    for photo in photos:
        height, width = photo.shape[:2]
        samples += [photo, _half(photo), _jpeg(photo, 50), _jpeg(_half(photo), 50)]
        for _ in range(3):
            h, w = rng.integers(256, height + 1), rng.integers(256, width + 1)
            y, x = rng.integers(0, height - h + 1), rng.integers(0, width - w + 1)
            samples.append(photo[y : y + h, x : x + w])
    samples += frames[::4]
    scores = np.array([detect_watermark(s).score for s in samples])
    assert len(scores) > 70
    assert scores.max() < DETECTION_THRESHOLD - 1.5, scores.max()
    assert 4.0 < np.median(scores) < 5.5  # the null distribution the threshold is set from


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


def test_false_alarm_statistics() -> None:
    """The bounds the verdicts rest on: one image or pooled video <= 3e-7; a video's binomial
    test asks for 4 of 16 frames (3 of 8) at the measured per-frame rate FRAME_FALSE_ALARM."""
    assert false_alarm_bound(DETECTION_THRESHOLD) < 3e-7
    assert binomial_tail(16, 4, FRAME_FALSE_ALARM) <= VIDEO_FRAME_ALPHA
    assert binomial_tail(16, 3, FRAME_FALSE_ALARM) > VIDEO_FRAME_ALPHA
    assert (frames_needed(16), frames_needed(8), frames_needed(1)) == (4, 3, 2)
    assert binomial_tail(10, 0, 0.3) == pytest.approx(1.0)
    assert binomial_tail(3, 3, 0.5) == pytest.approx(0.125)


def test_pattern_depends_on_size_only(photos: list[np.ndarray]) -> None:
    """convert marks video by adding one pattern per frame size (FrameLabeller): the change
    must not depend on the content (away from 0 and 255, where it is clipped)."""
    a, b = (cv2.resize(p, (640, 360), interpolation=cv2.INTER_AREA) for p in photos[:2])
    da = embed_watermark(a).astype(int) - a
    db = embed_watermark(b).astype(int) - b
    inside = (a > 10) & (a < 245) & (b > 10) & (b < 245)
    assert np.abs(da - db)[inside].max() <= 1
    assert 1.5 < da[inside].std() < 2.5  # STRENGTH, 2 grey levels RMS


def _scheme1_mark(image: np.ndarray) -> np.ndarray:
    """What facetwin wrote before scheme 2: +-6 on a key-derived pattern of 8x8 DCT band
    coefficients of a 256x256 canonical grid, resized back to the image (spec kept here to
    prove those files still verify)."""
    signs, bit_of = legacy._v1_carrier()
    bits = np.unpackbits(np.frombuffer(DEFAULT_PAYLOAD, np.uint8)).astype(float) * 2 - 1
    rows, cols = zip(*legacy._V1_BAND, strict=True)
    coefs = np.zeros((32, 32, 8, 8))
    coefs[:, :, list(rows), list(cols)] = (6.0 * signs * bits[bit_of]).reshape(32, 32, 10)
    d = legacy._v1_dct_matrix()
    plane = np.einsum("ji,abjk,kl->abil", d, coefs, d).transpose(0, 2, 1, 3).reshape(256, 256)
    delta = legacy._resize_axes(plane.astype(np.float32), image.shape[1], image.shape[0])
    return np.clip(np.rint(image + delta[..., None]), 0, 255).astype(np.uint8)


def test_scheme1_marks_are_still_found(photos: list[np.ndarray], tmp_path: Path) -> None:
    old = _scheme1_mark(photos[1])
    result = detect_watermark(old)
    assert result.found and result.scheme == 1 and result.payload == DEFAULT_PAYLOAD
    assert detect_watermark(_jpeg(old, 50)).found
    cv2.imwrite(str(tmp_path / "old.png"), cv2.cvtColor(old, cv2.COLOR_RGB2BGR))
    assert verify(tmp_path / "old.png").watermark_found
    assert detect_watermark(photos[1]).scheme == 2  # unmarked: the scheme-2 result


def test_check_frames_judges_each_frame_as_detect_watermark_does(
    photos: list[np.ndarray], marked: list[np.ndarray]
) -> None:
    """A video's frames get the verdict a still gets (a scheme-1 mark included), a frame too
    small for the mark is skipped, and only the frames that carry it lift the pooled score."""
    frames = [marked[0], photos[1], _scheme1_mark(photos[1]), photos[0][:40]]
    results, pooled = check_frames(frames)
    assert results[3] is None
    assert results[:3] == [detect_watermark(f) for f in frames[:3]]
    assert [r.found for r in results[:3] if r] == [True, False, True]
    assert results[2] is not None and results[2].scheme == 1
    _, pooled_plain = check_frames([photos[1], photos[2]])
    assert pooled_plain < DETECTION_THRESHOLD <= pooled


# --- re-upload attacks (issue 15) -----------------------------------------------------------------


def test_video_half_size_and_crf28(converted: list[np.ndarray], tmp_path: Path) -> None:
    """The issue's case: a converted 640x360 clip scaled to 0.5x and re-encoded at CRF 28
    (scheme 1 found its mark in 6 of 16 frames there). The re-encode drops the metadata."""
    clip = _encode_h264([_half(f) for f in converted], tmp_path / "shared.mp4")
    report = verify(clip, max_frames=16)
    assert report.metadata_tag is None and report.labelled and report.watermark_found
    assert report.frames_checked == 16 and report.frames_marked == 16, report.summary()
    assert report.pooled_score >= DETECTION_THRESHOLD + 5 and report.score >= 11
    assert "pooled" in report.summary()


def test_video_crop_10_percent(converted: list[np.ndarray], tmp_path: Path) -> None:
    clip = _encode_h264([_crop(f) for f in converted], tmp_path / "cropped.mp4", crf=23)
    report = verify(clip, max_frames=8)
    assert report.watermark_found and report.frames_marked == 8, report.summary()


def test_video_crop_then_half_and_crf28(converted: list[np.ndarray], tmp_path: Path) -> None:
    """All three together, the cropped frame resized to 0.5x: found in every frame's pool."""
    clip = _encode_h264([_half(_crop(f)) for f in converted[::3]], tmp_path / "all.mp4")
    report = verify(clip, max_frames=8)
    assert report.watermark_found and report.pooled_score >= DETECTION_THRESHOLD + 3


def test_video_frames_half_size_and_jpeg50(converted: list[np.ndarray]) -> None:
    """Frames grabbed from the converted clip, halved and saved as JPEG 50: each on its own."""
    grabs = [_jpeg(_half(f), 50) for f in converted[::9]]
    results, pooled = check_frames(grabs)
    assert all(r is not None and r.found and r.score >= 15 for r in results)
    assert pooled >= max(r.score for r in results if r)  # pooling only adds evidence


def test_stills_half_size_and_jpeg50(marked: list[np.ndarray]) -> None:
    results = [detect_watermark(_jpeg(_half(m), 50)) for m in marked]
    assert all(r.found for r in results), [round(r.score, 1) for r in results]


def test_stills_crop_10_percent(marked: list[np.ndarray]) -> None:
    """Kept at its size, and resized back to the original size (both shift and scale the
    tile); 1 / scale is the share of the shorter side that was kept."""
    for image in marked:
        kept = detect_watermark(_crop(image))
        assert kept.found and 1.07 < kept.scale < 1.15, (kept.score, kept.scale)
        back = cv2.resize(_crop(image), image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
        assert detect_watermark(back).found


def test_unmarked_clips_and_photos_have_no_label(tmp_path: Path) -> None:
    """verify on real unmarked files: the bundled clips (as they are, and the man's clip
    halved and re-encoded at CRF 28) and every bundled photo."""
    plain = _encode_h264([_half(f) for f in _decode_all(VIDEO)[::2]], tmp_path / "plain.mp4")
    videos = [*CLIPS, plain]
    photos = IMAGE_PATHS + sorted((SHARED / "images").glob("*.*"))
    reports = [verify(v, max_frames=8) for v in videos] + [verify(p) for p in photos]
    assert len(reports) >= len(IMAGE_PATHS) + 4
    assert not any(r.labelled for r in reports), [r.summary() for r in reports if r.labelled]
    assert max(r.pooled_score for r in reports) < DETECTION_THRESHOLD - 1.5


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


CRAFTED_IDS = [
    "evil\nsynthetic: this photo is real",
    "\x1b[2J\x1b[31mred\x1b[0m",
    "a\x00b\rc\td\x7f",
    "m" * 10_000,
    "café-modèle",
    "模型\u202egnp.exe",
    "\ud800 lone surrogate",
    "x, model y",
    "",
    None,
    12345,
    {"nested": ["list", 1]},
]


@pytest.mark.parametrize("model_id", CRAFTED_IDS, ids=range(len(CRAFTED_IDS)))
def test_crafted_model_ids_are_sanitised(model_id: object) -> None:
    tag = synthetic_tag(model_id)
    fields = parse_tag(tag)
    assert fields is not None and MODEL_FIELD.fullmatch(fields.model_id)
    assert tag.isascii() and tag.isprintable() and len(tag) <= TAG_MAX
    assert tag.count("synthetic:") == 1 and tag.count(", model ") == 1
    assert video_metadata(model_id) == {"comment": tag, "description": tag}


def test_sanitised_ids_keep_what_is_safe_and_stay_apart() -> None:
    assert sanitize_field("lite-hd_0.3") == "lite-hd_0.3"
    assert sanitize_field("café") == "cafe"  # accents dropped, letters kept
    assert sanitize_field("a\nb\x1b[0m") == "a_b_0m"
    assert sanitize_field("") == "unknown"
    long_a, long_b = sanitize_field("m" * 100 + "a"), sanitize_field("m" * 100 + "b")
    assert len(long_a) == 64 and long_a != long_b and long_a.startswith("m" * 55 + "-")


def test_parse_tag_is_strict() -> None:
    good = synthetic_tag("ab12cd34ef56")
    assert parse_tag(good) == label.TagFields(__version__, "ab12cd34ef56")
    for bad in [
        good + "\n",
        good + " and more",
        " " + good,
        good.replace("ab12", "ab 12"),
        good.replace("ab12", "ab\x1b12"),
        good.replace("ab12cd34ef56", "x" * 65),
        good.replace("facetwin", "facetwín"),
        "synthetic:",
        None,
        b"synthetic: bytes",
    ]:
        assert parse_tag(bad) is None, bad


def _png_with_text(image: np.ndarray, texts: list[str]) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    data = buf.tobytes()
    for text in reversed(texts):
        data = label.png_add_text(data, "Comment", text)
    return data


def test_malformed_tags_are_never_passed_on(photos: list[np.ndarray], tmp_path: Path) -> None:
    """Files that carry something starting like our tag but not one (an escape sequence, a
    fake second line, an endless model id): never returned, counted, and a well-formed tag
    beside them still is."""
    evil = [
        "synthetic: face swapped by facetwin 0.1.0, model x\x1b]0;pwned\x07",
        "synthetic: face swapped by facetwin 0.1.0, model x\nsynthetic: no, real",
        "synthetic: face swapped by facetwin 0.1.0, model " + "y" * 100_000,
    ]
    png = tmp_path / "evil.png"
    png.write_bytes(_png_with_text(photos[0], evil))
    assert read_label(png) is None
    report = verify(png)
    assert report.metadata_tag is None and report.malformed_tags == 3 and not report.labelled
    both = tmp_path / "both.png"
    both.write_bytes(_png_with_text(photos[0], [*evil, synthetic_tag("m9")]))
    assert read_label(both) == synthetic_tag("m9")

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(photos[0], cv2.COLOR_RGB2BGR))
    jpg = tmp_path / "evil.jpg"
    jpg.write_bytes(label.jpeg_add_comment(buf.tobytes(), evil[0]))
    assert read_label(jpg) is None and verify(jpg).malformed_tags == 1

    clip = _encode_h264(_decode_all(VIDEO)[:3], tmp_path / "evil.mp4", {"comment": evil[1]})
    assert read_video_label(clip) is None
    assert verify(clip, max_frames=2).malformed_tags >= 1


def test_crafted_state_json_through_convert(tmp_path: Path) -> None:
    """A model folder whose state.json holds a hostile model id: convert's output carries a
    tag with the id sanitised, and verify reads it back as a well-formed tag."""
    import torch

    from facetwin.convert import ConvertConfig, convert
    from facetwin.train.checkpoint import STATE_FILE, save_snapshot
    from facetwin.train.models import build_model

    torch.manual_seed(0)
    net = build_model("lite")
    optimizer = torch.optim.Adam(net.parameters())
    snap = save_snapshot(tmp_path / "model", 1, net, optimizer, {"arch": "lite", "config": {}}, 1)
    state = snap / STATE_FILE
    doc = json.loads(state.read_text())
    doc["model_id"] = "evil\n\x1b[2Jsynthetic: REAL photo, model " + "x" * 5000 + " 模型"
    state.write_text(json.dumps(doc))

    out = tmp_path / "out.png"
    summary = convert(DATA / "images" / "single_face.jpg", tmp_path / "model", out,
                      ConvertConfig(progress=False))  # fmt: skip
    assert summary.faces_swapped == 1
    tag = read_label(out)
    assert tag is not None and parse_tag(tag) is not None and tag.isascii() and "\n" not in tag
    assert parse_tag(tag).model_id.startswith("evil_2Jsynthetic_REAL_photo_model_xxx")
    report = verify(out)
    assert report.metadata_tag == tag and report.watermark_found


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
    monkeypatch.setattr(verifier, "SEQUENTIAL_LIMIT", 0)
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
