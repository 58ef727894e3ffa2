"""The mesh's head pose at a fraction of its cost on video: a small state per track that decides
when the 3-D mesh must run and what pose to report in between.

Running MediaPipe's mesh on every face of a video costs extract a tenth of its frames/s on the
woman's clip (docs/landmarks.md), while a head turns little from one frame to the next. So a
video face (extract says which: :class:`FaceAt`, its source, track and processed frame number)
runs the mesh on its track's first frame, on every ``mesh_every``-th processed frame, after a
frame its track was not seen on, and at once when the cheap rigid-landmark pose
(facetwin.face.pose, ~0.5 ms, which extract computes anyway) has moved more than ``max_turn``
degrees on any axis since the mesh last ran; in between it reports

    mesh pose at the last run + gain * (rigid pose now - rigid pose at the last run)

The gain is below 1 because the rigid pose jitters more from frame to frame than the mesh's
(0.6-0.9 against 0.4-0.6 degrees on the woman's clip): the change carries the motion plus that
jitter, and half of it followed every-frame mesh more closely than all of it or none. A face
with no :class:`FaceAt` (a photo, ``facetwin eval``) always gets the mesh.

Resumable. The state is a function of the track's stored faces: the mesh poses are kept
rounded as the face set stores them, and the rigid pose is recomputed from the stored float32
points, so :meth:`PoseTracker.replay` of a live track's stored faces rebuilds exactly the state
an uninterrupted run had (extract calls it at a resume). A second call for the same face on the
same frame (extract refits a face whose points contradict the detector) replaces the first.
No clock, no randomness: the same calls give the same poses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from facetwin.extract.landmarkers.base import FaceAt, Pose, StoredFace, stored_pose

MESH_EVERY = 8  # processed frames from one scheduled mesh run to the next
MAX_TURN = 5.0  # degrees of rigid-pose change (any axis) that call for the mesh at once
GAIN = 0.5  # share of the rigid pose's change added to the last mesh pose


def read_back(pose: Pose) -> Callable[[], Pose]:
    """A stand-in for the mesh that answers the pose a face set stored."""
    return lambda: pose


@dataclass(frozen=True)
class TrackState:
    """One track's pose state after its last call."""

    rigid: np.ndarray  # the rigid pose when the mesh last ran
    mesh: np.ndarray  # the mesh pose then, as stored
    step: int  # the processed frame of the track's last call


class PoseTracker:
    """Decides per call whether the mesh runs, and the pose reported (module docstring)."""

    def __init__(
        self, mesh_every: int = MESH_EVERY, max_turn: float = MAX_TURN, gain: float = GAIN
    ) -> None:
        self.mesh_every, self.max_turn, self.gain = mesh_every, max_turn, gain
        # (source, track) -> (the state before the track's last step, the state after it)
        self.tracks: dict[tuple[int, int], tuple[TrackState | None, TrackState]] = {}
        self.mesh_runs = 0
        self.calls = 0

    def due(self, state: TrackState | None, step: int, rigid: np.ndarray) -> bool:
        """Whether the mesh must run for a face at ``step`` with rigid pose ``rigid``, given its
        track's ``state`` (None: a new track)."""
        if state is None or step % self.mesh_every == 0 or state.step != step - 1:
            return True
        turn = float(np.max(np.abs(rigid - state.rigid)))  # NaN when a rigid fit failed
        return not turn <= self.max_turn

    def step(
        self, state: TrackState | None, step: int, rigid: np.ndarray, mesh: Callable[[], Pose]
    ) -> tuple[TrackState, Pose]:
        """The state after one call and the pose to report; ``mesh()`` runs only when due."""
        if state is not None and not self.due(state, step, rigid):
            moved = state.mesh + self.gain * (rigid - state.rigid)
            return replace(state, step=step), (float(moved[0]), float(moved[1]), float(moved[2]))
        measured = stored_pose(mesh())
        return TrackState(rigid, np.asarray(measured, np.float64), step), measured

    def pose(self, at: FaceAt | None, rigid: Pose, mesh: Callable[[], Pose]) -> Pose:
        """The pose of the face ``at``: ``mesh()`` when it must run, else the last mesh pose
        moved by the damped change of ``rigid`` (this call's rigid-landmark pose)."""
        self.calls += 1
        now = np.asarray(rigid, np.float64)
        if at is None:
            self.mesh_runs += 1
            return stored_pose(mesh())
        key = (at.source, at.track)
        before, after = self.tracks.get(key, (None, None))
        state = before if after is not None and after.step == at.step else after

        def counted() -> Pose:
            self.mesh_runs += 1
            return mesh()

        new, pose = self.step(state, at.step, now, counted)
        self.tracks[key] = (state, new)
        return pose

    def replay(
        self,
        source: int,
        track: int,
        faces: list[StoredFace],
        shape: tuple[int, int],
        rigid_pose: Callable[[np.ndarray, tuple[int, int]], Pose],
    ) -> None:
        """Rebuild a track's state from its stored ``faces`` (in frame order, from its first):
        the same decisions as the run that stored them, the mesh poses read back instead of
        measured. ``rigid_pose(points, shape)`` is the rigid pose the live calls computed.
        Only the faces from the last one where the mesh ran whatever the state (a scheduled
        frame, or the first after a gap) are replayed: nothing before it is in the state."""
        start = max(
            (
                i
                for i, face in enumerate(faces)
                if face.step % self.mesh_every == 0 or (i and faces[i - 1].step != face.step - 1)
            ),
            default=0,
        )
        state: TrackState | None = None
        for face in faces[start:]:
            now = np.asarray(rigid_pose(face.points, shape), np.float64)
            state, _ = self.step(state, face.step, now, read_back(face.pose))
        if state is not None:
            self.tracks[(source, track)] = (None, state)
