"""Label every facetwin output as synthetic: an invisible watermark plus a metadata tag.

facetwin is a dual-use tool, so each image or video it writes says that it is synthetic in two
independent ways:

* a **metadata tag** (PNG ``tEXt``, JPEG ``COM``, video container ``comment``/``description``)
  that any tool can read, but that is lost by a screenshot or a re-encode; and
* an **invisible watermark** in the luma channel that survives what a shared file goes through:
  half-size scaling *and* re-encoding (H.264 CRF 28, JPEG quality 50) together, and cropping.

Watermark design (scheme 2; why it looks like this):

* **A tile that spans the frame's shorter side.** The mark is one periodic luma pattern whose
  period is the shorter side of the frame, repeated along the longer one. Sizes are relative
  to the frame, so a resized copy carries the same pattern at the same relative size; a crop
  only shifts it (the tile is periodic) and makes it larger relative to the new shorter side.
  The detector therefore searches over a *relative scale* (``SCALES``: 0.96-1.37, i.e. crops
  of up to a quarter of the shorter side) and over every cyclic *shift* of the tile.
* **Low frequencies that survive a re-upload.** The pattern holds ``BAND`` = 8-40 cycles per
  shorter side (wavelengths of 9-45 px in a 640x360 frame, 4.5-22 px after 0.5x), every
  frequency with the same amplitude and a key-derived phase. Measured on the bundled clips,
  0.5x + H.264 CRF 28 keeps 25-70 % of the amplitude at 8-24 cycles, 10-30 % at 24-32 and
  under 15 % above 32, where scheme 1 lived (16-48 cycles); below 8 cycles the picture itself
  is too strong. The upper part of the band carries most of a still's score (JPEG and
  resizing keep it), the lower part most of a re-encoded video's.
* **Only luma changes**, by ``STRENGTH`` = 2 grey levels RMS (PSNR about 42 dB). The pattern
  depends on the frame size and the key only, never on the content, so a video is marked by
  adding one precomputed pattern to each frame (convert's ``FrameLabeller``).
* **Detection folds the image onto one tile.** The luma is brought to a working size whose
  shorter side is ``TILE`` px, high-passed and divided by its local contrast (flat areas, where
  the picture hides the mark least, count as much as busy ones). For each scale it is folded
  modulo the tile (the tiles are summed) and correlated with the key over every cyclic shift at
  once by FFT, each frequency weighted by the inverse of the fold's own local spectral
  magnitude. A video adds the folds of its sampled frames before correlating, so the mark, the
  same in every frame, adds up while changing pictures average out.
* **A score with a known false-alarm bound.** Each correlation is divided by its exact
  standard deviation over random key phases, computed from the image's own magnitudes. The
  key's phases owe nothing to a picture that was not marked with them, so for *any* unmarked
  image the score at one (scale, shift) is a sum of cosines of independent uniform phases,
  sub-Gaussian with variance 1: ``P(score >= t) <= exp(-t^2 / 2)``. With
  ``SEARCH_SIZE`` = 25 scales x 192^2 shifts, ``DETECTION_THRESHOLD`` = 7.6 bounds the false
  alarm of one image at 921,600 * exp(-28.9) = 2.6e-7 (:func:`false_alarm_bound`). Unmarked
  real frames and photos score 4.8 +- 0.3 (the best of 921,600 near-N(0, 1) values), marked
  ones 10-50 after the attacks above (benchmarks/results/label-cpu.json).
* **Payload.** Half of the frequencies (``PILOT_SHARE``) are a fixed pilot; the other half carry
  64 payload bits by sign. The score tests the expected payload as a whole; single bits are
  decoded at the best (scale, shift), exactly once the score is about 30 (``bits_ok``).
* The key stream comes from SHAKE-256, not from numpy's RNG, whose streams may change between
  numpy versions: a mark written today must still be found by every later facetwin. For the
  same reason the scheme-1 detector (8x8 DCT band on a 256x256 canonical grid, what facetwin
  wrote before scheme 2) is kept: outputs marked by it are still found (``scheme`` 1).

A video's verdict (:func:`verify`) combines two tests over the sampled frames:

* pooled: the folds of all sampled frames, added up, reach DETECTION_THRESHOLD. P <= 2.6e-7
  for any unmarked video, however alike its frames (the bound above holds for any picture).
* binomial: at least :func:`frames_needed` frames (4 of 16, 3 of 8) carry the mark on their own.
  Against ``FRAME_FALSE_ALARM`` = 1e-3, an upper bound on the per-frame false-alarm rate
  measured on unmarked real frames, that count has P <= ``VIDEO_FRAME_ALPHA`` = 5e-7 when
  frames are independent. Frames of one still shot are not; for them Markov's inequality with
  the per-frame bound above gives P <= 16 * 2.6e-7 / 4 = 1.1e-6.

So an unmarked video is called labelled with probability below 1e-6 (independent frames).

Known limits (measured in the benchmark): a crop of more than about a quarter of the shorter
side, rotation (2 degrees), mirroring, a changed aspect ratio (width squeezed 10 %) and bars
that lengthen the shorter side (letterboxing a landscape frame) lose the mark; heavier
compression weakens it (0.5x + CRF 32: 3 of 4 frames, every video still labelled). The metadata
tag covers those cases only while the file itself is kept.

Where things are: ``watermark.py`` (the public calls: embed, detect, check a video's frames),
``carrier.py`` (the parameters and key that embedding and detection share), ``search.py``
(scheme-2 detection), ``legacy.py`` (scheme 1's detector), ``tag.py`` (the metadata tag) and
``verifier.py`` (:func:`verify`, the verdict on a file).
"""

from __future__ import annotations

from facetwin.label.tag import (
    TAG_MAX,
    TagFields,
    jpeg_add_comment,
    jpeg_comments,
    parse_tag,
    png_add_text,
    png_texts,
    read_label,
    read_video_label,
    sanitize_field,
    synthetic_tag,
    video_metadata,
    write_image_with_label,
)
from facetwin.label.verifier import VerifyReport, verify
from facetwin.label.watermark import (
    DEFAULT_PAYLOAD,
    DETECTION_THRESHOLD,
    FRAME_FALSE_ALARM,
    STRENGTH,
    VIDEO_FRAME_ALPHA,
    WatermarkResult,
    binomial_tail,
    check_frames,
    detect_watermark,
    embed_watermark,
    false_alarm_bound,
    frames_needed,
)

__all__ = [
    "DEFAULT_PAYLOAD",
    "DETECTION_THRESHOLD",
    "FRAME_FALSE_ALARM",
    "STRENGTH",
    "TAG_MAX",
    "VIDEO_FRAME_ALPHA",
    "TagFields",
    "VerifyReport",
    "WatermarkResult",
    "binomial_tail",
    "check_frames",
    "detect_watermark",
    "embed_watermark",
    "false_alarm_bound",
    "frames_needed",
    "jpeg_add_comment",
    "jpeg_comments",
    "parse_tag",
    "png_add_text",
    "png_texts",
    "read_label",
    "read_video_label",
    "sanitize_field",
    "synthetic_tag",
    "verify",
    "video_metadata",
    "write_image_with_label",
]
