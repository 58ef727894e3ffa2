"""When extract looks for hands in front of a face, and what a resumed run knows of the last look.

The hand finder (:mod:`facetwin.extract.hands`) costs ~5x a frame's other work (~45 ms a face on
one loaded core, against ~10 ms), so a video does not run it on every frame: each face's
neighbourhood is searched every ``hands_every`` processed frames, and on *every* frame while one
of the face's last ``hands_every`` processed frames had a hand cut out of it - a hand is followed
for as long as it stays (a frame where the finder misses it does not end the search), and one that
comes in is found within ``hands_every`` frames. A photo is always searched.

Which frames are searched depends on the previous frame's result, so a resumed extraction must
know it: :meth:`HandCuts.restore` reads it back from each live track's stored masks (their
occluder cuts), exactly what an uninterrupted run held in memory (:meth:`HandCuts.note` keeps the
same fact, not the finder's raw answer), and an interrupted run resumes to the same face set.

A face set made before the cuts records no ``hands_every``; resuming one keeps it that way
(:func:`settings_for`), so no set holds cut and uncut faces side by side.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.extract.config import ExtractConfig
from facetwin.extract.hands import PHOTO_SCALES, VIDEO_SCALES, HandFinder, Scales
from facetwin.extract.landmarkers import PLAIN_LANDMARKER
from facetwin.face.boxes import Box
from facetwin.face.masks import OCCLUDER_CUT
from facetwin.faceset import DB_NAME, FaceRecord, FaceSet

log = logging.getLogger(__name__)


class HandCuts:
    """The hand search of one extraction: the finder (made on first use), per track the last
    processed frame number (frame // ``stride``) whose face had a hand cut out, and the seconds
    spent (for the benchmarks)."""

    def __init__(self, every: int, stride: int = 1) -> None:
        self.every = every
        self.stride = stride
        self._finder: HandFinder | None = None
        self.seen: dict[tuple[int, int], int] = {}
        self.seconds = 0.0
        self.searches = 0

    @property
    def enabled(self) -> bool:
        return self.every > 0

    def _search(self, image: np.ndarray, box: Box, scales: Scales) -> list[np.ndarray]:
        if self._finder is None:
            self._finder = HandFinder()
        t0 = time.perf_counter()
        hands = self._finder.near(image, box, scales)
        self.seconds += time.perf_counter() - t0
        self.searches += 1
        return [h.polygon for h in hands]

    def photo(self, image: np.ndarray, box: Box) -> list[np.ndarray] | None:
        """The hand polygons near a photo's face; None when the cuts are off."""
        return self._search(image, box, PHOTO_SCALES) if self.enabled else None

    def frame(
        self, image: np.ndarray, box: Box, source: int, track: int, step: int
    ) -> list[np.ndarray] | None:
        """The hand polygons near a video face of ``track`` at processed frame number ``step``:
        searched on the schedule or while the track has a hand, else none (only the frame's
        edge is cut); None when the cuts are off."""
        if not self.enabled:
            return None
        last = self.seen.get((source, track))
        if step % self.every == 0 or (last is not None and step - last <= self.every):
            return self._search(image, box, VIDEO_SCALES)
        return []

    def note(self, source: int, track: int, step: int, masks: np.ndarray) -> None:
        """Remember processed frame ``step`` if the face just analysed there had a hand cut
        out of its ``masks``."""
        if self.enabled and (masks == OCCLUDER_CUT).any():
            self.seen[(source, track)] = step

    def restore(
        self, fs: FaceSet, source: int, tracks: list[Any], stored: list[FaceRecord]
    ) -> None:
        """What an uninterrupted run would know at a resume: for each live track, the last of
        its ``stored`` faces (the source's, in frame order) within ``every`` processed frames of
        its last with a hand cut out."""
        if not self.enabled or not tracks:
            return
        since = {t.id: t.last_frame // self.stride - self.every for t in tracks}
        for rec in stored:
            step = rec.frame // self.stride
            if rec.track is None or rec.track not in since or step < since[rec.track]:
                continue
            if fs.load_cut(rec, "occluder").any():
                self.seen[(source, rec.track)] = step


#: Options a face set made before them records nothing of, with the value that means "off"
#: (for the landmarker: the one extract used before the choice).
NEWER_OPTIONS: dict[str, Any] = {
    "hands_every": 0,
    "photo_detector": "",
    "landmarker": PLAIN_LANDMARKER,
}


def settings_for(cfg: ExtractConfig, out: Path) -> ExtractConfig:
    """``cfg`` for a run into ``out``: each of :data:`NEWER_OPTIONS` off when ``out`` is a face
    set made before it (its settings do not name it), so that it resumes as it was made."""
    on = [k for k, off in NEWER_OPTIONS.items() if getattr(cfg, k) != off]
    if not on or not (out / DB_NAME).exists():
        return cfg
    try:
        with FaceSet.open(out) as fs:
            old = fs.settings()
    except Exception:  # noqa: BLE001 - FaceSet.create reports what is wrong with it
        return cfg
    missing: dict[str, Any] = {k: NEWER_OPTIONS[k] for k in on if old and k not in old}
    if missing:
        log.info("%s was made without %s: resuming it without them", out, ", ".join(missing))
        return dataclasses.replace(cfg, **missing)
    return cfg


__all__ = ["HandCuts", "settings_for"]
