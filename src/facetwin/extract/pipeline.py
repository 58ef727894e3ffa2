"""``facetwin extract``: photos and videos in, a crash-safe, resumable face set out.

Per frame: detect (or follow known faces), 68 landmarks, align to the mean face, masks, blur,
pose, identity. On video the detector runs on the whole frame only every ``redetect_every``
processed frames or when a face is lost; in between each known face is looked for in a small
region around where it was, which is several times cheaper and keeps recall (a lost face triggers
a full detection on the same frame). Embeddings are the slowest step (~60 ms a face on 2 cores),
so a track reuses its embedding for ``embed_every`` frames (``embedding_frame`` says which frame
it came from); ``--embed-every 1`` computes one per face.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from facetwin.device import resolve_device
from facetwin.errors import InputError, NoFaceError
from facetwin.extract.config import ExtractConfig, ExtractSummary, check_config
from facetwin.extract.detect import detect_full, detect_near
from facetwin.extract.detectors import Detection, Detector, create_detector
from facetwin.extract.identity import Embedder, matches
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.align import alignment_matrix, transform_points, warp_face
from facetwin.face.boxes import iou
from facetwin.face.masks import face_mask
from facetwin.face.pose import head_pose
from facetwin.face.tracking import smooth_track
from facetwin.faceset import DB_NAME, FACES_DIR, FaceRow, FaceSet, encode_png
from facetwin.interrupt import GracefulStop
from facetwin.lock import exclusive, lock_path_for
from facetwin.media.files import atomic_write_bytes, make_folder
from facetwin.media.image import contact_sheet, is_image_path, read_image
from facetwin.media.video import is_video_path, iter_frames, probe

log = logging.getLogger(__name__)

CONTACT_SHEET = "contact_sheet.png"


@dataclass
class FaceData:
    """Everything computed for one face in one frame."""

    det: Detection
    landmarks: np.ndarray
    matrix: np.ndarray
    aligned: np.ndarray
    masks: np.ndarray
    blur: float
    pose: tuple[float, float, float]


@dataclass
class Track:
    """A face followed through a video; ``keep`` says whether it passed the identity filter."""

    id: int
    box: tuple[float, float, float, float]
    last_frame: int
    emb: np.ndarray | Future[np.ndarray] | None = None
    emb_frame: int | None = None
    keep: bool = True


# -- per-face work ---------------------------------------------------------------------------


def analyse_face(image: np.ndarray, det: Detection, size: int, coverage: float) -> FaceData:
    """Landmarks, alignment, masks, blur and pose of one detected face."""
    lm = landmarks_68(image, det.box)
    m = alignment_matrix(lm, size, coverage)
    aligned = warp_face(image, m, size)
    lm_al = transform_points(lm, m)
    # one grey channel holds both masks (components lies inside extended): 255 components,
    # 128 extended only - half the PNG encoding of two channels
    ext = face_mask(lm_al, size, "extended")
    masks = np.maximum(face_mask(lm_al, size, "components"), (ext > 0).astype(np.uint8) * 128)
    gray = cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY)
    q = size // 4
    blur = float(cv2.Laplacian(gray[q:-q, q:-q], cv2.CV_64F).var())
    return FaceData(det, lm, m, aligned, masks, blur, head_pose(lm, image.shape[:2]))


def _emb_bytes(emb: np.ndarray | Future[np.ndarray] | bytes | None) -> bytes | None:
    if isinstance(emb, Future):
        emb = emb.result()
    if emb is None or isinstance(emb, bytes):
        return emb
    return np.asarray(emb, np.float32).tobytes()


# -- inputs ---------------------------------------------------------------------------------


def expand_inputs(inputs: list[str | Path]) -> list[tuple[Path, str, bool]]:
    """(path, 'image'|'video', explicit) for each input; folders give their images and videos."""
    out: list[tuple[Path, str, bool]] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            try:
                items = sorted(q for q in p.iterdir() if q.is_file())
            except OSError as e:
                raise InputError(f"{p}: cannot list the folder ({e.strerror or e})") from None
            media = [
                (q, "video" if is_video_path(q) else "image", False)
                for q in items
                if is_image_path(q) or is_video_path(q)
            ]
            if not media:
                raise InputError(f"{p}: folder holds no images or videos")
            out.extend(media)
        elif p.is_file():
            if is_video_path(p):
                out.append((p, "video", True))
            elif is_image_path(p):
                out.append((p, "image", True))
            else:
                raise InputError(
                    f"{p}: not an image or video file (unknown extension {p.suffix!r})"
                )
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def reference_embeddings(
    paths: list[str], det: Detector, max_side: int, embed: Embedder
) -> np.ndarray:
    """One embedding per reference photo: its largest face."""
    embs = []
    for path in paths:
        img = read_image(path)
        found = detect_full(det, img, max_side)
        if not found:
            raise NoFaceError(f"{path}: no face found in the reference photo")
        d = max(found, key=lambda d: d.width * d.height)
        embs.append(embed(img, landmarks_68(img, d.box)))
    return np.asarray(embs, np.float32).reshape(-1, 128)


# -- the extractor --------------------------------------------------------------------------


class Extractor:
    """Runs one extraction into one face set. Use :func:`extract`."""

    def __init__(
        self, fs: FaceSet, det: Detector, cfg: ExtractConfig, refs: np.ndarray, embed: Embedder
    ) -> None:
        self.fs, self.det, self.cfg, self.refs, self.embed = fs, det, cfg, refs, embed
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
    ) -> FaceRow:
        name = self.fs.face_file(sid, stem, frame, face)
        # PNG encoding (cv2 drops the GIL) overlaps with the next frames; _commit waits for it
        masks = self.pool.submit(self._write_face, name, fd.aligned, fd.masks)
        return FaceRow(
            source_id=sid,
            frame=frame,
            face=face,
            file=name,
            box=fd.det.box,
            score=round(float(fd.det.score), 5),
            landmarks=fd.landmarks,
            landmarks_smooth=fd.landmarks if track is None else None,
            matrix=fd.matrix,
            detector=self.cfg.detector,
            track=face if track is None else track.id,
            masks=masks,
            embedding=emb,
            embedding_frame=emb_frame,
            blur=round(fd.blur, 4),
            yaw=round(fd.pose[0], 3),
            pitch=round(fd.pose[1], 3),
            roll=round(fd.pose[2], 3),
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
            row.embedding = _emb_bytes(row.embedding)
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
        for d in detect_full(self.det, img, self.cfg.max_detect_side):
            fd = analyse_face(img, d, self.cfg.size, self.cfg.coverage)
            emb = self.embed(img, fd.landmarks)
            if len(self.refs) and not matches(emb, self.refs, self.cfg.threshold):
                continue
            rows.append(self._face_row(sid, path.stem, 0, len(rows), fd, None, emb, 0))
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
        tracks = self._restore_tracks(sid, start)
        bar.update(start)
        frames: list[tuple[int, int]] = []
        rows: list[FaceRow] = []
        last = start - 1
        # Ctrl-C is honoured between frames, after a commit of every finished frame; a second
        # Ctrl-C stops at once and only the frames since the last commit are redone on resume
        with GracefulStop() as stop:
            for idx, frame in iter_frames(path, start):
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
        state = [
            (
                sid,
                t.id,
                t.last_frame,
                json.dumps([float(v) for v in t.box]),
                _emb_bytes(t.emb),
                t.emb_frame,
                int(t.keep),
            )
            for t in tracks
        ]
        self.fs.commit_frames(sid, next_frame, frames, self._resolve(rows), state)

    def _restore_tracks(self, sid: int, start: int) -> list[Track]:
        """Tracks alive at the last committed frame: the tracker resumes from exactly there."""
        if start == 0:
            return []
        last_processed = ((start - 1) // self.cfg.every) * self.cfg.every
        out = []
        for tid, last_frame, box, emb, emb_frame, keep in self.fs.tracks(sid):
            if last_frame == last_processed:
                out.append(
                    Track(
                        tid,
                        tuple(json.loads(box)),
                        last_frame,  # type: ignore[arg-type]
                        None if emb is None else np.frombuffer(emb, np.float32).copy(),
                        emb_frame,
                        bool(keep),
                    )
                )
        return out

    def _next_track_id(self, sid: int, tracks: list[Track]) -> int:
        ids = [t[0] for t in self.fs.tracks(sid)] + [t.id for t in tracks]
        return max(ids, default=-1) + 1

    def _video_frame(
        self, sid: int, stem: str, idx: int, frame: np.ndarray, tracks: list[Track]
    ) -> tuple[list[Track], list[FaceRow]]:
        cfg = self.cfg
        k = idx // cfg.every
        found: list[tuple[Track | None, Detection]] = []
        full = k % cfg.redetect_every == 0 or not tracks
        if not full:
            for t in tracks:
                near = detect_near(self.det, frame, t.box)
                if near is None:
                    full = True
                    break
                found.append((t, near))
        if full:
            found = []
            free = list(tracks)
            for d in sorted(
                detect_full(self.det, frame, cfg.max_detect_side),
                key=lambda d: (d.box[0], d.box[1]),
            ):
                best = max(free, key=lambda t: iou(t.box, d.box), default=None)
                if best is not None and iou(best.box, d.box) > 0.3:
                    free.remove(best)
                    found.append((best, d))
                else:
                    found.append((None, d))
        alive: list[Track] = []
        rows: list[FaceRow] = []
        next_id = self._next_track_id(sid, tracks)
        for known, d in found:
            t = known or Track(next_id, d.box, idx)
            if known is None:
                next_id += 1
            fd = analyse_face(frame, d, cfg.size, cfg.coverage)
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
        recs = self.fs.faces(source_id=sid)
        per_frame: dict[int, int] = {}
        for r in recs:
            per_frame[r.frame] = per_frame.get(r.frame, 0) + 1
        smooth: dict[int, np.ndarray] = {}
        bridged: list[FaceRow] = []
        by_track: dict[int, list] = {}
        for r in recs:
            by_track.setdefault(r.track or 0, []).append(r)
        for tid, rs in sorted(by_track.items()):
            frames = np.array([r.frame for r in rs])
            f_out, lm_out, is_b = smooth_track(
                frames, np.stack([r.landmarks for r in rs]), self.cfg.smooth, self.cfg.every
            )
            by_frame = {r.frame: r for r in rs}
            for f, lm, b in zip(f_out.tolist(), lm_out, is_b):
                if not b:
                    smooth[by_frame[f].id] = lm
                    continue
                prev = max((r for r in rs if r.frame < f), key=lambda r: r.frame)
                face = per_frame.get(f, 0)
                per_frame[f] = face + 1
                x0, y0 = lm.min(0)
                x1, y1 = lm.max(0)
                bridged.append(
                    FaceRow(
                        source_id=sid,
                        frame=f,
                        face=face,
                        file=None,
                        box=(x0, y0, x1, y1),
                        score=0.0,
                        landmarks=lm,
                        landmarks_smooth=lm,
                        matrix=alignment_matrix(lm, self.cfg.size, self.cfg.coverage),
                        detector="bridge",
                        track=tid,
                        embedding=prev.embedding,
                        embedding_frame=prev.embedding_frame,
                        bridged=True,
                    )
                )
        self.fs.finish_source(sid, smooth, bridged)


def extract(
    inputs: list[str | Path], output: str | Path, cfg: ExtractConfig | None = None
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
    det = create_detector(cfg.detector, device=device)
    embed = Embedder(cfg.embedder, device=device)
    refs = reference_embeddings(cfg.refs, det, cfg.max_detect_side, embed)
    out = Path(output)
    made_dir = not out.exists()
    make_folder(out, "face set")
    try:
        with exclusive(out, f"face set {out}"):
            return _extract_into(out, sources, total, cfg, det, embed, refs, made_dir)
    except Exception:
        if made_dir:  # e.g. the lock could not be taken: leave no empty folder
            with contextlib.suppress(OSError):
                out.rmdir()
        raise


def _extract_into(
    out: Path,
    sources: list[tuple[Path, str, bool]],
    total: int,
    cfg: ExtractConfig,
    det: Detector,
    embed: Embedder,
    refs: np.ndarray,
    made_dir: bool,
) -> ExtractSummary:
    """:func:`extract` once the face set's lock is held."""
    fresh = not (out / DB_NAME).exists()
    had_faces_dir = (out / FACES_DIR).exists()
    try:
        fs = FaceSet.create(out, cfg.settings(refs))
    except Exception:
        if fresh:
            _discard_empty(out, made_dir, had_faces_dir)
        raise
    t0 = time.perf_counter()
    ex = Extractor(fs, det, cfg, refs, embed)
    try:
        try:
            _run_sources(ex, sources, total, cfg.progress)
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
        if fresh and _stored_faces(out) == 0:
            _discard_empty(out, made_dir, had_faces_dir)
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


def _run_sources(
    ex: Extractor, sources: list[tuple[Path, str, bool]], total: int, progress: bool
) -> None:
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


def _stored_faces(root: Path) -> int:
    """Faces committed to the face set at ``root`` (0 when there is none or it cannot be read)."""
    try:
        with FaceSet.open(root) as fs:
            return fs.counts()["faces"]
    except Exception:  # noqa: BLE001 - an unreadable new set holds nothing worth keeping
        return 0


def _discard_empty(root: Path, made_dir: bool, had_faces_dir: bool) -> None:
    """Remove what this run created of a face set that holds no face: the database, the faces
    folder (unless it was there before), the contact sheet, and the folder if this run made it."""
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", CONTACT_SHEET):
        with contextlib.suppress(OSError):
            (root / name).unlink(missing_ok=True)
    if not had_faces_dir:
        shutil.rmtree(root / FACES_DIR, ignore_errors=True)
    if made_dir:
        with contextlib.suppress(OSError):
            lock_path_for(root).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            root.rmdir()
    log.debug("removed the empty face set %s this run had created", root)


def write_contact_sheet(fs: FaceSet, max_faces: int = 100) -> Path:
    """A PNG grid of up to ``max_faces`` faces spread evenly through the set."""
    recs = fs.faces()
    if len(recs) > max_faces:
        recs = [recs[i] for i in np.linspace(0, len(recs) - 1, max_faces).round().astype(int)]
    sheet = contact_sheet([fs.load_aligned(r) for r in recs])
    path = fs.root / CONTACT_SHEET
    atomic_write_bytes(path, encode_png(sheet))
    return path


__all__ = ["FACES_DIR", "ExtractConfig", "ExtractSummary", "extract", "write_contact_sheet"]
