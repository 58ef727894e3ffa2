"""What a conversion writes besides frames: the synthetic label on every frame and image
(:class:`FrameLabeller`), labelled image files, and the journal that lets a folder conversion
resume (:class:`FolderJournal`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.convert.config import ConvertConfig
from facetwin.errors import OutputError
from facetwin.label import embed_watermark, write_image_with_label
from facetwin.media.files import atomic_write_bytes
from facetwin.media.image import write_image

log = logging.getLogger(__name__)


class FrameLabeller:
    """``label.embed_watermark`` for every frame of a video, at the cost of one addition.

    The watermark is an additive luma pattern that depends on the frame size and the key only
    (facetwin.label), so it is taken once per size from a mid-grey frame and added. The first real
    frame is checked against ``embed_watermark`` itself; should the scheme ever depend on the
    content, the check fails and every frame goes through ``embed_watermark``.
    """

    def __init__(self) -> None:
        self._delta: dict[tuple[int, ...], np.ndarray] = {}
        self._exact = False

    def __call__(self, image: np.ndarray) -> np.ndarray:

        if self._exact:
            return embed_watermark(image)
        delta = self._delta.get(image.shape)
        if delta is not None:
            return np.clip(image + delta, 0, 255).astype(np.uint8)
        reference = embed_watermark(image)
        delta = embed_watermark(np.full(image.shape, 128, np.uint8)).astype(np.int16) - 128
        fast = np.clip(image + delta, 0, 255)
        if np.abs(fast - reference).max() > 1:
            log.debug("watermark depends on the content: embedding every frame")
            self._exact = True
        else:
            self._delta[image.shape] = delta
        return reference


def write_output_image(path: Path, image: np.ndarray, model_id: str, cfg: ConvertConfig) -> None:
    """Write a converted image, labelled unless ``cfg.label`` is off."""
    if cfg.label:
        write_image_with_label(path, image, model_id, True, jpeg_quality=cfg.jpeg_quality)
    else:
        write_image(path, image, cfg.jpeg_quality)


def job_digest(job: dict[str, Any]) -> str:
    """Short stable key of a :meth:`Converter.job` description."""
    return hashlib.sha1(json.dumps(job, sort_keys=True, default=str).encode()).hexdigest()


class FolderJournal:
    """Which images of a folder conversion are finished: ``OUTPUT/.facetwin-convert.jsonl``.

    One JSON line per finished image, appended after its output file was written atomically, so
    a line means a complete output; a line cut short by a crash is ignored. The first line holds
    the job key (model and settings): a journal of another job is started over. An image is
    taken as done only if its size and mtime are unchanged and its output still exists.
    """

    NAME = ".facetwin-convert.jsonl"

    def __init__(self, output: Path, key: str) -> None:
        self.path = output / self.NAME
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except OSError:  # none yet (or unreadable: started over)
            lines = []
        rows = []
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):  # anything else is not a line this class wrote
                rows.append(row)
        if rows and rows[0].get("key") == key:
            self.entries = {
                r["input"]: r
                for r in rows[1:]
                if isinstance(r.get("input"), str) and isinstance(r.get("output"), str)
            }
        else:
            if rows:
                log.warning("%s was left by a conversion with other settings: redoing", output)
            try:
                atomic_write_bytes(self.path, (json.dumps({"key": key}) + "\n").encode())
            except OSError as e:
                raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    @staticmethod
    def _stamp(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]

    def done(self, path: Path) -> dict[str, Any] | None:
        e = self.entries.get(path.name)
        if e is None or e.get("stamp") != self._stamp(path) or not Path(e["output"]).is_file():
            return None
        return e

    def add(self, path: Path, output: Path, counts: dict[str, int]) -> None:
        row = {"input": path.name, "stamp": self._stamp(path), "output": str(output), **counts}
        try:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None
