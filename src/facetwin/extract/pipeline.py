"""``facetwin extract``: photos and videos in, a crash-safe, resumable face set out.

Per frame: detect (or follow known faces), 68 landmarks, align to the mean face, masks, blur,
pose, identity. On video the detector runs on the whole frame only every ``redetect_every``
processed frames or when a face is lost; in between each known face is looked for in a small
region around where it was, which is several times cheaper and keeps recall (a lost face triggers
a full detection on the same frame). Embeddings are the slowest step (~60 ms a face on 2 cores),
so a track reuses its embedding for ``embed_every`` frames (``embedding_frame`` says which frame
it came from); ``--embed-every 1`` computes one per face.

This module is the :class:`Extractor`'s loops (a photo; a video frame by frame, with its commits
and resume) and :func:`extract`, which runs them into a locked face set. The parts they use are
beside it: :mod:`.analyse` (one face: landmarks, alignment, masks, its row), :mod:`.tracks`
(following faces, tracker state, bridging), :mod:`.inputs` (inputs and reference photos, read
before anything is written) and :mod:`.output` (contact sheet, removing an empty new set).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facetwin.device import resolve_device
from facetwin.errors import InputError, NoFaceError
from facetwin.extract.analyse import FaceData, analyse_face, emb_bytes, face_row
from facetwin.extract.config import ExtractConfig, ExtractSummary, check_config
from facetwin.extract.detect import SecondDetector, detect_full
from facetwin.extract.detectors import Detection, Detector, create_detector
from facetwin.extract.identity import Embedder, matches
from facetwin.extract.inputs import Source, expand_inputs, reference_embeddings
from facetwin.extract.landmarkers import FaceAt, create_landmarker
from facetwin.extract.occluders import HandCuts, settings_for
from facetwin.extract.output import (
    CONTACT_SHEET,
    discard_empty,
    stored_faces,
    write_contact_sheet,
)
from facetwin.extract.tracks import (
    Track,
    follow_tracks,
    match_detections,
    next_track_id,
    restore_tracks,
    resume_landmarker,
    smooth_and_bridge,
    track_state,
)
from facetwin.faceset import DB_NAME, FACES_DIR, FaceRow, FaceSet, encode_png
from facetwin.interrupt import GracefulStop
from facetwin.lock import exclusive
from facetwin.media.files import make_folder
from facetwin.media.image import read_image
from facetwin.media.video import iter_frames, probe, read_ahead

log = logging.getLogger(__name__)


class Extractor:
    """Runs one extraction into one face set. Use :func:`extract`."""

    def __init__(
        self, fs: FaceSet, det: Detector, cfg: ExtractConfig, refs: np.ndarray, embed: Embedder
    ) -> None:
        self.fs, self.det, self.cfg, self.refs, self.embed = fs, det, cfg, refs, embed
        self.landmarker = create_landmarker(cfg.landmarker)
        # hands (and the frame's edge) out of the masks
        self.cuts = HandCuts(cfg.hands_every, cfg.every)
        self.second = SecondDetector(cfg.second_detector(), cfg.device, cfg.max_detect_side)
        self.frames_done = 0
        self.skipped: list[str] = []
        self.no_face: list[str] = []
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="facetwin-png")

    # rows ---------------------------------------------------------------------------------
    def _face_row(
        self,
        sid: int,
        stem: str,
        frame: int,
        face: int,
        fd: FaceData,
        track: Track | None,
        emb: np.ndarray | Future[np.ndarray] | None,
        emb_frame: int | None,
        detector: str | None = None,
    ) -> FaceRow:
        name = self.fs.face_file(sid, stem, frame, face)
        # PNG encoding (cv2 drops the GIL) overlaps with the next frames; _commit waits for it
        masks = self.pool.submit(self._write_face, name, fd.aligned, fd.masks)
        return face_row(
            fd,
            source_id=sid,
            frame=frame,
            face=face,
            file=name,
            track=face if track is None else track.id,
            detector=detector or self.cfg.detector,
            masks=masks,
            emb=emb,
            emb_frame=emb_frame,
            landmarks_final=track is None,
        )

    def _write_face(self, name: str, aligned: np.ndarray, masks: np.ndarray) -> bytes:
        self.fs.write_png(name, encode_png(aligned))
        return encode_png(masks, rgb=False)

    @staticmethod
    def _resolve(rows: list[FaceRow]) -> list[FaceRow]:
        """Wait for the face images of ``rows`` to be on disk; put their mask PNGs in."""
        for row in rows:
            if isinstance(row.masks, Future):
                row.masks = row.masks.result()
            row.embedding = emb_bytes(row.embedding)
        return rows

    # images -------------------------------------------------------------------------------
    def image(self, path: Path, explicit: bool) -> None:
        key = str(path.resolve())
        row = self.fs.source(key)
        if row is not None and row["status"] == "done":
            return
        try:
            img = read_image(path)
        except InputError:
            if explicit:
                raise
            log.warning("skipping unreadable image %s", path)
            self.skipped.append(str(path))
            return
        h, w = img.shape[:2]
        sid = self.fs.add_source(key, "image", w, h, None, 1)
        rows: list[FaceRow] = []
        found = detect_full(self.det, img, self.cfg.max_detect_side)
        extra = self.second.missed(img, found)
        for d, by in [(d, None) for d in found] + extra:
            hands = self.cuts.photo(img, d.box)
            fd = analyse_face(img, d, self.cfg.size, self.cfg.coverage, self.landmarker, hands)
            if fd.suspect:  # landmarks that contradict the detection are not stored
                continue
            emb = self.embed(img, fd.landmarks)
            if len(self.refs) and not matches(emb, self.refs, self.cfg.threshold):
                continue
            rows.append(self._face_row(sid, path.stem, 0, len(rows), fd, None, emb, 0, by))
        self.fs.commit_frames(sid, 1, [(0, len(rows))], self._resolve(rows))
        self.fs.finish_source(sid, {}, [])
        self.frames_done += 1
        if not rows:
            self.no_face.append(str(path))

    # videos -------------------------------------------------------------------------------
    def video(self, path: Path, bar: tqdm) -> None:
        key = str(path.resolve())
        row = self.fs.source(key)
        if row is not None and row["status"] == "done":
            bar.update(row["frame_count"] or 0)
            return
        info = probe(path)
        sid = self.fs.add_source(key, "video", info.width, info.height, info.fps, info.frame_count)
        start = int(self.fs.source(key)["next_frame"])  # type: ignore[index]
        # the tracks alive at the last commit and what they stored: all resume from exactly there
        tracks = restore_tracks(self.fs.tracks(sid), start, self.cfg.every) if start else []
        stored = sorted(self.fs.faces(source_id=sid), key=lambda r: r.frame) if tracks else []
        self.cuts.restore(self.fs, sid, tracks, stored)
        resume_landmarker(self.landmarker, sid, tracks, stored, self.cfg.every)
        bar.update(start)
        frames: list[tuple[int, int]] = []
        rows: list[FaceRow] = []
        last = start - 1
        # Ctrl-C is honoured between frames, after a commit of every finished frame; a second
        # Ctrl-C stops at once and only the frames since the last commit are redone on resume
        with GracefulStop() as stop:
            for idx, frame in read_ahead(iter_frames(path, start)):
                if idx % self.cfg.every == 0:
                    tracks, new_rows = self._video_frame(sid, path.stem, idx, frame, tracks)
                    frames.append((idx, len(new_rows)))
                    rows.extend(new_rows)
                    self.frames_done += 1
                last = idx
                bar.update(1)
                if len(frames) >= self.cfg.commit_every or stop.requested:
                    self._commit(sid, idx + 1, frames, rows, tracks)
                    frames, rows = [], []
                    stop.check()
            self._commit(sid, last + 1, frames, rows, tracks)
        self._finish_video(sid)
        if info.frame_count and last + 1 < 0.95 * info.frame_count:
            raise InputError(
                f"{path}: video ends at frame {last + 1} of {info.frame_count} (truncated?); "
                "the faces of the frames before are saved"
            )

    def _commit(
        self,
        sid: int,
        next_frame: int,
        frames: list[tuple[int, int]],
        rows: list[FaceRow],
        tracks: list[Track],
    ) -> None:
        state = track_state(sid, tracks)
        self.fs.commit_frames(sid, next_frame, frames, self._resolve(rows), state)

    def _find_faces(
        self, idx: int, frame: np.ndarray, tracks: list[Track]
    ) -> list[tuple[Track | None, Detection]]:
        """The faces of frame ``idx``, each with the track it continues (None: a new face).

        Near each known face, except every ``redetect_every`` processed frames, with no track
        yet, or when a face is lost: then on the whole frame.
        """
        cfg = self.cfg
        found = None
        if (idx // cfg.every) % cfg.redetect_every != 0 and tracks:
            found = follow_tracks(self.det, frame, tracks)
        if found is None:
            found = match_detections(tracks, detect_full(self.det, frame, cfg.max_detect_side))
        return found

    def _video_frame(
        self, sid: int, stem: str, idx: int, frame: np.ndarray, tracks: list[Track]
    ) -> tuple[list[Track], list[FaceRow]]:
        cfg = self.cfg
        found = self._find_faces(idx, frame, tracks)
        alive: list[Track] = []
        rows: list[FaceRow] = []
        next_id = next_track_id(self.fs.tracks(sid), tracks)
        for known, d in found:
            t = known or Track(next_id, d.box, idx)
            if known is None:
                next_id += 1
            step = idx // cfg.every
            hands = self.cuts.frame(frame, d.box, sid, t.id, step)
            at = FaceAt(sid, t.id, step)
            fd = analyse_face(frame, d, cfg.size, cfg.coverage, self.landmarker, hands, at)
            if fd.suspect:  # landmarks that contradict the detection are not stored
                continue
            self.cuts.note(sid, t.id, step, fd.masks)
            t.box, t.last_frame = d.box, idx
            if t.emb is None or idx - (t.emb_frame or 0) >= cfg.embed_every * cfg.every:
                t.emb_frame = idx
                if len(self.refs):
                    t.emb = self.embed(frame, fd.landmarks)
                    t.keep = matches(t.emb, self.refs, cfg.threshold)
                else:  # nothing waits for it: compute it beside the main loop
                    t.emb = self.pool.submit(self.embed, frame, fd.landmarks)
            alive.append(t)
            if t.keep:
                rows.append(self._face_row(sid, stem, idx, len(rows), fd, t, t.emb, t.emb_frame))
        return alive, rows

    def _finish_video(self, sid: int) -> None:
        """Bridge short gaps and smooth every track, in one transaction that ends the source."""
        smooth, bridged = smooth_and_bridge(self.fs.faces(source_id=sid), sid, self.cfg)
        self.fs.finish_source(sid, smooth, bridged)


#: What processes the sources of one run into its face set: in this process by default
#: (:func:`run_sources`), on a Ray cluster with ``extract/on_ray.py``. It fills the Extractor's
#: counts (frames done, skipped and face-less files) for the summary.
SourceRunner = Callable[["Extractor", list[Source], int, bool], None]


def extract(
    inputs: list[str | Path],
    output: str | Path,
    cfg: ExtractConfig | None = None,
    run: SourceRunner | None = None,
) -> ExtractSummary:
    """Extract every face of ``inputs`` into the face set at ``output`` (resuming if it exists).

    Inputs, options and reference photos are checked before ``output`` is touched, one process
    at a time writes a face set (a second gets a BusyError at once), and a face set this run
    created but stored no face in (no face found, an unreadable input, a full disk) is removed
    again rather than left behind empty.
    """
    cfg = cfg or ExtractConfig()
    check_config(cfg)
    sources = expand_inputs(inputs)
    # every video's header before the face set exists: an unreadable one must not leave an empty
    # face set behind (and the progress bar wants the frame counts)
    total = sum(probe(p).frame_count or 0 for p, kind, _ in sources if kind == "video")

    device = resolve_device(cfg.device)
    det = create_detector(cfg.detector, device=device, settings=cfg.detector_settings())
    embed = Embedder(cfg.embedder, device=device)
    refs = reference_embeddings(cfg.refs, det, cfg.max_detect_side, embed)
    out = Path(output)
    made_dir = not out.exists()
    make_folder(out, "face set")
    try:
        with exclusive(out, f"face set {out}"):
            return _extract_into(
                out, sources, total, cfg, (det, embed, refs), made_dir, run or run_sources
            )
    except Exception:
        if made_dir:  # e.g. the lock could not be taken: leave no empty folder
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _extract_into(
    out: Path,
    sources: list[Source],
    total: int,
    cfg: ExtractConfig,
    models: tuple[Detector, Embedder, np.ndarray],
    made_dir: bool,
    run: SourceRunner,
) -> ExtractSummary:
    """:func:`extract` once the face set's lock is held; ``models`` are the detector, the
    embedder and the reference identities."""
    det, embed, refs = models
    fresh = not (out / DB_NAME).exists()
    cfg = settings_for(cfg, out)  # a set made before the hand cuts resumes without them
    had_faces_dir = (out / FACES_DIR).exists()
    try:
        fs = FaceSet.create(out, cfg.settings(refs))
    except Exception:
        if fresh:
            discard_empty(out, made_dir, had_faces_dir)
        raise
    t0 = time.perf_counter()
    ex = Extractor(fs, det, cfg, refs, embed)
    try:
        try:
            run(ex, sources, total, cfg.progress)
            counts = fs.counts()
            if counts["faces"]:
                write_contact_sheet(fs)
        finally:
            ex.pool.shutdown(wait=True)
            fs.close()
        if counts["faces"] == 0:
            names = ", ".join(str(p) for p, _, _ in sources[:3])
            raise NoFaceError(f"no face found in {names}{' ...' if len(sources) > 3 else ''}")
    except Exception:  # not on Ctrl-C: an interrupted set is resumed, however empty
        if fresh and stored_faces(out) == 0:
            discard_empty(out, made_dir, had_faces_dir)
        raise
    secs = time.perf_counter() - t0
    return ExtractSummary(
        faceset=str(out),
        sources=counts["sources"],
        frames=counts["frames"],
        faces=counts["faces"],
        bridged=counts["bridged"],
        skipped=ex.skipped,  # type: ignore[attr-defined]
        seconds=round(secs, 2),
        frames_per_second=round(ex.frames_done / secs, 2) if secs else 0.0,
        processed=ex.frames_done,
        no_face=ex.no_face,
    )


def run_sources(ex: Extractor, sources: list[Source], total: int, progress: bool) -> None:
    """Photos first (one bar), then the videos (one bar over all their frames)."""
    videos = [s for s in sources if s[1] == "video"]
    images = [s for s in sources if s[1] == "image"]
    # no bar at all for a kind that is not there (an empty bar reads as a failure)
    for path, _, explicit in tqdm(
        images, desc="photos", unit="img", disable=not progress or not images
    ):
        ex.image(path, explicit)
    with tqdm(
        total=total or None,
        desc="video",
        unit="frame",
        disable=not progress or not videos,  # no empty bar for photos only
        smoothing=0.1,
    ) as bar:
        for path, _, _ in videos:
            bar.set_postfix_str(path.name)
            ex.video(path, bar)


__all__ = [
    "CONTACT_SHEET",
    "FACES_DIR",
    "ExtractConfig",
    "ExtractSummary",
    "Extractor",
    "FaceData",
    "Track",
    "analyse_face",
    "expand_inputs",
    "extract",
    "reference_embeddings",
    "run_sources",
    "write_contact_sheet",
]
