"""``dlib-mesh-pose`` at about the cost of ``dlib`` on video: dlib's 68 points, and the head pose
of MediaPipe's mesh run on a track's first frame and then only every few frames or when the
rigid-landmark pose has turned (landmarkers/_pose_track.py). Photos get the mesh every time;
on the bundled clips the pose stays within a degree of the every-frame mesh's on average
(docs/landmarks.md).

Its per-track state is keyed by what extract stores (source, track, processed frame), and
rebuilt from the stored faces at a resume (:meth:`resume`): a video whose extraction was
interrupted stores the same poses as one that ran through. Calls without a :class:`FaceAt`
(photos, ``facetwin eval``) run the mesh and change no state."""

from __future__ import annotations

import numpy as np

from facetwin.extract.landmarkers import LANDMARKERS, _mesh
from facetwin.extract.landmarkers._pose_track import PoseTracker
from facetwin.extract.landmarkers.base import FaceAt, LandmarkFit, Pose, StoredFace
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.pose import head_pose


def rigid_pose(points: np.ndarray, shape: tuple[int, int]) -> Pose:
    """The rigid-landmark pose extract would compute anyway (analyse_face) when no pose is
    given: from the float32 points, so a replay from the stored ones gives the same."""
    return head_pose(np.asarray(points, np.float32), shape)


class DlibMeshPoseFastLandmarker:
    name = "dlib-mesh-pose-fast"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device  # a 192 px network: the CPU is the right place for it
        self.net = _mesh.mesh_net()  # loaded (and the model file checked) before the first frame
        self.tracker = PoseTracker()
        # stored faces of the tracks a resume continues, replayed at their first call (which
        # knows the frame's size, that the rigid pose depends on)
        self.pending: dict[tuple[int, int], list[StoredFace]] = {}

    def resume(self, source: int, track: int, faces: list[StoredFace]) -> None:
        """Continue track ``track`` of ``source`` after its stored ``faces`` (frame order)."""
        self.pending[(source, track)] = faces

    def fit(
        self, image: np.ndarray, box: tuple[float, float, float, float], at: FaceAt | None = None
    ) -> LandmarkFit:
        points = landmarks_68(image, box)
        shape = (image.shape[0], image.shape[1])
        if at is not None and (faces := self.pending.pop((at.source, at.track), None)):
            self.tracker.replay(at.source, at.track, faces, shape, rigid_pose)

        def mesh() -> Pose:
            m = _mesh.roi(points)
            return _mesh.mesh_pose(_mesh.run_mesh(self.net, image, m), m)

        return LandmarkFit(points, self.tracker.pose(at, rigid_pose(points, shape), mesh))


@LANDMARKERS.register(
    "dlib-mesh-pose-fast",
    help="dlib's 68 points, MediaPipe mesh's head pose run every few frames of a face on video",
)
def _make(device: str = "cpu") -> DlibMeshPoseFastLandmarker:
    return DlibMeshPoseFastLandmarker(device)
