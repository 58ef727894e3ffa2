"""Live swap: frames from a camera (a video file stands in for it) swapped as they arrive and
streamed to the page as MJPEG, with frames/s and latency measured on the way.

:class:`CameraStandIn` plays a video at its own frame rate in a thread and keeps only the newest
frame, as a camera driver does: when the swap is slower than the camera, frames are dropped,
never queued, so latency stays one frame's work instead of growing without bound.

:class:`LiveSwap` finds the faces cheaply: a whole-frame detection only when no face is tracked
(or every ``redetect_every`` frames), in between extract's ``detect_near`` on a small region
around the last box; identity is checked once when a track starts, not per frame. The swap
itself is convert's :meth:`Converter.render`, the same blend, colour and label as a render.
Latency is measured from the moment a frame "arrives" (is due from the camera) to the moment
its JPEG is ready to send.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from facetwin.convert.pipeline import Converter
from facetwin.convert.swap import SwapModel
from facetwin.extract.detect import detect_full, detect_near
from facetwin.extract.identity import distances, embedding
from facetwin.extract.landmarks import landmarks_68
from facetwin.media.image import encode_image
from facetwin.media.video import decode_frames, probe
from facetwin.studio.merger import MergeSettings

BOUNDARY = "facetwinframe"
#: Landmark smoothing of a live track: new = a * measured + (1 - a) * previous (causal EMA).
LIVE_SMOOTH = 0.6
STATS_WINDOW = 60


@dataclass
class Arrival:
    seq: int
    image: np.ndarray
    at: float  # perf_counter when the frame was due from the camera


class CameraStandIn:
    """A video file played in real time (looping), newest frame only - a webcam's behaviour."""

    def __init__(
        self, video: Path, realtime: bool = True, loop: bool = True, fps: float | None = None
    ) -> None:
        self.video = video
        self.realtime = realtime
        self.loop = loop
        self.fps = fps or probe(video).fps or 25.0  # ``fps``: play as a camera of that rate
        self._latest: Arrival | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name="camera-stand-in", daemon=True)
        self.produced = 0
        self.finished = False

    def start(self) -> CameraStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _play(self) -> None:
        t0 = time.perf_counter()
        n = 0
        while not self._stop.is_set():
            for f in decode_frames(self.video):
                if self._stop.is_set():
                    break
                if self.realtime:
                    due = t0 + n / self.fps
                    time.sleep(max(0.0, due - time.perf_counter()))
                self._publish(n, f.image)
                n += 1
            if not self.loop:
                break
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    def _publish(self, seq: int, image: np.ndarray) -> None:
        with self._cond:
            if not self.realtime:  # offline: wait until the consumer took the last frame
                while self._latest is not None and not self._stop.is_set():
                    self._cond.wait(0.1)
            self._latest = Arrival(seq, image, time.perf_counter())
            self.produced += 1
            self._cond.notify_all()

    def next(self, timeout: float = 5.0) -> Arrival | None:
        """The newest frame not yet taken (waits for one); None at the end or on stop."""
        with self._cond:
            end = time.perf_counter() + timeout
            while self._latest is None and not self.finished and not self._stop.is_set():
                if not self._cond.wait(max(0.0, end - time.perf_counter())):
                    return None
            out, self._latest = self._latest, None
            self._cond.notify_all()
            return out


@dataclass
class LiveStats:
    """Frames/s and latency over the last :data:`STATS_WINDOW` frames shown."""

    shown: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    frames: int = 0
    dropped: int = 0
    all_latency: list[float] = field(default_factory=list)
    _last_seq: int = -1

    def add(self, arrival: Arrival, done: float) -> None:
        self.frames += 1
        if self._last_seq >= 0:
            self.dropped += max(0, arrival.seq - self._last_seq - 1)
        self._last_seq = arrival.seq
        self.shown.append(done)
        ms = 1000 * (done - arrival.at)
        self.latency.append(ms)
        self.all_latency.append(ms)

    def as_dict(self) -> dict[str, Any]:
        fps = None
        if len(self.shown) >= 2 and self.shown[-1] > self.shown[0]:
            fps = round((len(self.shown) - 1) / (self.shown[-1] - self.shown[0]), 2)
        lat = round(float(np.mean(self.latency)), 1) if self.latency else None
        return {"fps": fps, "latency_ms": lat, "frames": self.frames, "dropped": self.dropped}


@dataclass
class Track:
    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    swap: bool
    age: int = 0


class LiveSwap:
    """Per frame: find the faces (tracked), swap the source person's, label."""

    def __init__(
        self, model: SwapModel, settings: MergeSettings, detector: Any, redetect_every: int = 30
    ) -> None:
        # no hand search: at ~45 ms a face it alone would overrun a 40 ms frame; the model's
        # own reconstruction still keeps occluders in front
        self.converter = Converter(model, replace(settings.config(), hands=False))
        self.timer = self.converter.timer  # find, model, blend, occlusion, label: seconds
        self.detector = detector
        self.redetect_every = redetect_every
        self.reference = model.identity_embedding(settings.direction[0])
        self.threshold = settings.threshold
        self.track: Track | None = None

    def find(self, frame: np.ndarray) -> list[np.ndarray]:
        """Landmarks of the face to swap (one tracked face: the camera's subject)."""
        t = self.track
        det = None
        if t is not None and t.age < self.redetect_every:
            det = detect_near(self.detector, frame, t.box)
        if det is None:
            found = detect_full(self.detector, frame, 640)
            if not found:
                self.track = None
                return []
            det = max(found, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
            t = None
        lm = landmarks_68(frame, det.box)
        if t is None:
            t = Track(det.box, lm, self._is_source(frame, lm))
        else:
            t = Track(det.box, LIVE_SMOOTH * lm + (1 - LIVE_SMOOTH) * t.landmarks, t.swap, t.age)
        t.age += 1
        self.track = t
        return [t.landmarks.astype(np.float32)] if t.swap else []

    def _is_source(self, frame: np.ndarray, lm: np.ndarray) -> bool:
        """Checked once per new track (an embedding costs ~60 ms, a frame's budget is 40)."""
        if self.reference is None:
            return True
        d = float(distances(embedding(frame, lm), self.reference[None])[0])
        return d < self.threshold

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        with self.timer("find"):
            faces = self.find(frame)
        # the track's age paces the hand search as a video's frame number does
        index = self.track.age if self.track is not None else None
        return self.converter.render(frame, faces, label=True, index=index)


def frames(
    camera: CameraStandIn, swap: LiveSwap, stats: LiveStats, stop: threading.Event
) -> Iterator[bytes]:
    """Swapped frames as JPEG, as they come; stats updated per frame."""
    while not stop.is_set():
        arrival = camera.next()
        if arrival is None:
            return
        out = swap(arrival.image)
        with swap.timer("encode"):
            jpeg = encode_image(out, ".jpg", 80)
        stats.add(arrival, time.perf_counter())
        yield jpeg


def mjpeg_part(jpeg: bytes) -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode() + jpeg + b"\r\n"
