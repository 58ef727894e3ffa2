"""``facetwin eval``: how good is a swap? A converted video or image set against its original.

For every frame (or image) the faces of the *original* are found (detected on video every
``redetect_every`` frames and followed in between, as extract does) and each is looked for at
the same place in the *swapped* frame. Each matched pair gives identity (embeddings), kept
attributes (pose, expression), the colour step at the mask border and the face-region
brightness; on video the pairs of one tracked face over consecutive frames give landmark jitter
and flicker for the input and for the output. docs/metrics.md defines every number.

Measuring with a common frame of reference: by default the swapped face's landmarks are fitted
starting from the *original* face's box (``landmark_box="original"``), and flicker is measured
in the original face's region in both videos. The swap is pasted where the original face was,
so this is the right place to look, and it keeps detector box noise - which differs between two
different faces - out of the comparison: a frame compared with itself gives exactly zero error.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import facetwin
from facetwin.device import resolve_device
from facetwin.errors import InputError, NoFaceError, UsageError
from facetwin.eval.config import EvalConfig
from facetwin.eval.faces import FacePair, Finder, analyse
from facetwin.eval.measures import Inputs, Measure, columns, needs, ordered, run
from facetwin.eval.references import IdentityRefs, identity_refs
from facetwin.eval.report import Sample, write_outputs
from facetwin.eval.summary import clean_json, per_frame_rows, unpad
from facetwin.extract.detectors import Detection, create_detector
from facetwin.extract.identity import Embedder
from facetwin.media.files import make_folder
from facetwin.media.image import list_images, read_image
from facetwin.media.video import iter_frames, media_kind, probe
from facetwin.media.video_writer import check_complete, count_video_packets

log = logging.getLogger(__name__)

# -- inputs ----------------------------------------------------------------------------------


def _kind(path: Path) -> str:
    kind = media_kind(path)
    return "images" if kind == "folder" else kind


def pair_images(original: Path, swapped: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
    """Original/swapped image pairs of two folders by file name (else by unique stem: convert
    may change the format), and the original names that have no swapped counterpart."""
    orig = list_images(original)
    if not orig:
        raise InputError(f"{original}: folder holds no images")
    swap = list_images(swapped)
    by_name = {p.name: p for p in swap}
    stems: dict[str, list[Path]] = {}
    for p in swap:
        stems.setdefault(p.stem, []).append(p)
    pairs, missing = [], []
    for p in orig:
        q = by_name.get(p.name)
        if q is None and len(stems.get(p.stem, [])) == 1:
            q = stems[p.stem][0]
        if q is None:
            missing.append(p.name)
        else:
            pairs.append((p, q))
    if not pairs:
        raise InputError(f"{swapped}: no image matches a file name in {original}")
    return pairs, missing


def _video_pairs(
    original: Path, swapped: Path, limit: int | None, info: dict[str, object], start: int = 0
) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
    """Frames of two videos in lockstep from ``start`` until either ends (``info`` says which)."""
    a, b = iter_frames(original, start), iter_frames(swapped, start)
    n = 0
    try:
        while limit is None or n < limit:
            fa, fb = next(a, None), next(b, None)
            if fa is None or fb is None:
                if fa is not None or fb is not None:
                    info["ended_first"] = "original" if fa is None else "swapped"
                break
            yield fa[0], f"{fa[0]:06d}", fa[1], fb[1]
            n += 1
    finally:
        for it in (a, b):  # generators: close now, so the decoders and files are released
            close = getattr(it, "close", None)
            if close is not None:
                close()


def _image_pairs(
    pairs: list[tuple[Path, Path]], limit: int | None
) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
    for i, (p, q) in enumerate(pairs[:limit]):
        yield i, p.name, read_image(p), read_image(q)


# -- samples ---------------------------------------------------------------------------------


class _SampleKeeper:
    """Keeps frames spread evenly over a sequence of unknown length with bounded memory: every
    ``stride``-th frame, and when more than 2n are held, every other one and twice the stride."""

    def __init__(self, n: int, max_side: int = 360) -> None:
        self.n, self.max_side, self.stride = n, max_side, 1
        self.kept: list[Sample] = []

    def wants(self, frame: int) -> bool:
        return self.n > 0 and frame % self.stride == 0

    def add(self, frame: int, name: str, orig: np.ndarray, swap: np.ndarray) -> None:
        scale = min(1.0, self.max_side / max(orig.shape[:2]))
        small = [
            cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            if scale < 1
            else im.copy()
            for im in (orig, swap)
        ]
        self.kept.append(Sample(frame, name, small[0], small[1]))
        if len(self.kept) > 2 * self.n:
            self.kept = self.kept[::2]
            self.stride *= 2

    def chosen(self) -> list[Sample]:
        if len(self.kept) <= self.n:
            return self.kept
        idx = np.linspace(0, len(self.kept) - 1, self.n).round().astype(int)
        return [self.kept[i] for i in idx]


# -- the evaluation --------------------------------------------------------------------------


@dataclass
class _Source:
    """The two inputs opened: their frames in lockstep and what is known of them up front."""

    original: Path
    swapped: Path
    kind: str  # video | images | image
    frames: Iterator[tuple[int, str, np.ndarray, np.ndarray]]
    total: int | None  # frames to compare, when known (the progress bar's length)
    info: dict[str, object]  # metrics.json's ``inputs``


def _kinds(original: Path, swapped: Path) -> str:
    """The kind both inputs are; UsageError when they differ."""
    kind_o, kind_s = _kind(original), _kind(swapped)
    if kind_o != kind_s:
        raise UsageError(
            f"{original} is {'a' if kind_o != 'images' else 'an'} {kind_o} "
            f"but {swapped} is {kind_s}: give two videos, two folders or two images"
        )
    return kind_o


def _open(original: Path, swapped: Path, kind: str, cfg: EvalConfig) -> _Source:
    """The frame pairs to compare; a video pair is checked first (:func:`check_video_pair`)."""
    info: dict[str, object] = {}
    if kind == "video":
        counts = check_video_pair(original, swapped, cfg)
        info["frame_counts"] = counts
        total = min((c for c in counts if c), default=None)
        if total is not None:
            total = max(total - cfg.start_frame, 0)
        info["start_frame"] = cfg.start_frame
        frames = _video_pairs(original, swapped, cfg.max_frames, info, cfg.start_frame)
    else:
        if kind == "images":
            pairs_io, missing = pair_images(original, swapped)
        else:
            pairs_io, missing = [(original, swapped)], []
        info["missing_in_swapped"] = missing
        total = len(pairs_io)
        frames = _image_pairs(pairs_io, cfg.max_frames)
    if cfg.max_frames is not None:
        total = min(total or cfg.max_frames, cfg.max_frames)
    return _Source(original, swapped, kind, frames, total, info)


@contextlib.contextmanager
def _output_folder(output_dir: str | Path | None) -> Iterator[Path | None]:
    """The report's folder, made before the work (a report that cannot be written is found out
    now, not after), and removed again when the work fails and it was made here and is still
    empty (a report written before is kept)."""
    if output_dir is None:
        yield None
        return
    out = Path(output_dir)
    made = not out.exists()
    make_folder(out, "output folder")
    try:
        yield out
    except BaseException:
        if made:
            with contextlib.suppress(OSError):
                out.rmdir()  # only when empty
        raise


def evaluate(
    original: str | Path,
    swapped: str | Path,
    model_dir: str | Path | None = None,
    faceset_a: str | Path | None = None,
    faceset_b: str | Path | None = None,
    output_dir: str | Path | None = None,
    cfg: EvalConfig | None = None,
) -> dict[str, object]:
    """Measure a swapped video, image folder or image against its original.

    ``original`` and ``swapped`` are two videos, two folders (paired by file name) or two
    images, frame for frame the same size. Identity A (the original person) and B (the swap's
    target) come from ``faceset_a``/``faceset_b`` or the model's meta in ``model_dir``; without
    A the original faces stand in for it, without B only distances are reported. ``cfg.metrics``
    picks the measures (all by default). With ``output_dir``, writes metrics.json and
    report.html there. Returns the metrics (the same dict as metrics.json, JSON-clean).
    """
    cfg = cfg or EvalConfig()
    cfg.check()
    measures = ordered(cfg.metrics)  # UsageError for an unknown name
    # metrics.json records the measures and the pose estimator that ran, not "all" or "auto"
    cfg = replace(cfg, metrics=tuple(m.name for m in measures), pose=cfg.resolve_pose())
    t0 = time.perf_counter()
    original, swapped = Path(original), Path(swapped)
    kind = _kinds(original, swapped)
    refs = identity_refs(model_dir, faceset_a, faceset_b, cfg.direction)
    src = _open(original, swapped, kind, cfg)
    with _output_folder(output_dir) as out_dir:
        result, samples = _evaluate(src, refs, measures, cfg, t0)
        if out_dir is not None:
            write_outputs(result, samples, out_dir)
    return result


def _same_size(orig: tuple[int, int], swap: tuple[int, int]) -> bool:
    """Equal, or the swap one column/row larger where the original is odd (see :func:`unpad`)."""
    dw, dh = swap[0] - orig[0], swap[1] - orig[1]
    return dw in (0, 1) and dh in (0, 1) and dw <= orig[0] % 2 and dh <= orig[1] % 2


def check_video_pair(original: Path, swapped: Path, cfg: EvalConfig) -> list[int]:
    """Frame counts of two videos that can be a swap and its original; InputError (exit 3)
    before any work when they cannot: either is truncated, their frame sizes differ, or their
    frame counts differ by more than a rounding of the container (a swap keeps every frame)."""
    infos = [probe(original), probe(swapped)]
    counts = []
    for path, vi in zip((original, swapped), infos):
        check_complete(path, vi.frame_count)
        counts.append(vi.frame_count or count_video_packets(path))
    (wo, ho), (ws, hs) = [(vi.width, vi.height) for vi in infos]
    if not _same_size((wo, ho), (ws, hs)):
        raise InputError(
            f"{swapped}: frames are {ws}x{hs} but the original's are {wo}x{ho}; a swap must keep "
            "the original's size"
        )
    n_o, n_s = counts
    if abs(n_o - n_s) > max(2, max(n_o, n_s) // 100):
        needed = None if cfg.max_frames is None else cfg.start_frame + cfg.max_frames
        if needed is None or min(n_o, n_s) < needed:
            raise InputError(
                f"{swapped} has {n_s} frames but {original} has {n_o}; a swap keeps every frame "
                "of its original - are these a video and its swap?"
            )
    if cfg.start_frame >= min(n_o, n_s):
        raise UsageError(
            f"--start-frame {cfg.start_frame} is past the end ({min(n_o, n_s)} frames)"
        )
    return counts


def _measure(
    src: _Source, finder: Finder, samples: _SampleKeeper, embed_orig: bool, cfg: EvalConfig
) -> tuple[list[FacePair], int]:
    """Every original face of every frame paired with its swapped counterpart (and the frame
    count); the report's sample frames are kept on the way. Faces are embedded only when the
    finder has an embedder (a measure run needs them), the originals only with ``embed_orig``."""
    pairs: list[FacePair] = []
    n_frames = 0
    with tqdm(
        total=src.total, desc="eval", unit="frame", disable=not cfg.progress, smoothing=0.1
    ) as bar:
        for idx, name, orig, swap in src.frames:
            swap = unpad(swap, orig.shape)
            if orig.shape != swap.shape:
                raise InputError(
                    f"{src.swapped}: {name} is {swap.shape[1]}x{swap.shape[0]} but the original is "
                    f"{orig.shape[1]}x{orig.shape[0]}; a swap must keep the original's size"
                )
            embed = finder.embed is not None and (not finder.video or idx % cfg.embed_every == 0)
            full: list[Detection] | None = None
            for face, (track, d) in enumerate(finder.original(orig)):
                track_id = track if finder.video else len(pairs)
                pair, full = analyse(
                    orig, swap, idx, name, face, track_id, d, finder, full,
                    embed and embed_orig, embed, cfg,
                )  # fmt: skip
                if pair is not None:
                    pairs.append(pair)
            if samples.wants(idx):
                samples.add(idx, name, orig, swap)
            n_frames += 1
            bar.update(1)
    return pairs, n_frames


def _check_found(src: _Source, pairs: list[FacePair], n_frames: int) -> None:
    """InputError / NoFaceError when there is nothing to measure; a warning when one input
    ended before the other."""
    if n_frames == 0:
        raise InputError(f"{src.original}: nothing to compare (no frames)")
    if not pairs:
        raise NoFaceError(f"{src.original}: no face found in any of the {n_frames} frames compared")
    if not any(p.found for p in pairs):
        raise NoFaceError(
            f"{src.swapped}: no face found where the original has one "
            f"({len(pairs)} faces in {n_frames} frames)"
        )
    if src.info.get("ended_first"):
        log.warning(
            "%s ended first; compared the first %d frames", src.info["ended_first"], n_frames
        )


def _evaluate(
    src: _Source, refs: IdentityRefs, measures: list[Measure], cfg: EvalConfig, t0: float
) -> tuple[dict[str, object], list[Sample]]:
    """The measurement of :func:`evaluate` (its inputs checked): the metrics and the report's
    sample frames."""
    device = resolve_device(cfg.device)
    embeds = "embeddings" in needs(measures)
    finder = Finder(create_detector(cfg.detector, device=device), cfg, src.kind == "video",
                    Embedder(cfg.embedder, device=device) if embeds else None)  # fmt: skip
    samples = _SampleKeeper(cfg.samples)
    embed_orig = embeds and (cfg.embed_original or refs.mean_a is None)
    pairs, n_frames = _measure(src, finder, samples, embed_orig, cfg)
    _check_found(src, pairs, n_frames)
    sections, per_face = run(measures, Inputs(pairs, refs, finder.video))
    n_found = sum(p.found for p in pairs)
    secs = time.perf_counter() - t0
    result = {
        "facetwin_version": facetwin.__version__,
        "kind": src.kind,
        "original": str(src.original),
        "swapped": str(src.swapped),
        "inputs": src.info,
        "frames": {
            "compared": n_frames,
            "faces": len(pairs),
            "swap_found": n_found,
            "swap_found_rate": n_found / len(pairs),
        },
        **sections,
        "per_frame": per_frame_rows(pairs, per_face, columns(measures)),
        "config": asdict(cfg),
        "seconds": secs,
        "frames_per_second": n_frames / secs if secs > 0 else None,
    }
    return clean_json(result), samples.chosen()  # type: ignore[return-value]


__all__ = ["EvalConfig", "FacePair", "Sample", "evaluate"]
