"""``dlib-mesh-pose`` at about the cost of ``dlib`` on video: dlib's 68 points, and the head pose
of MediaPipe's mesh run on a face's first call and then only every few calls or when the
rigid-landmark pose has turned (landmarkers/_pose_track.py). Photos get the mesh every time;
on the bundled clips the pose stays within a degree of the every-frame mesh's on average
(docs/landmarks.md).

Its state lives in this object, so what it reports depends on the calls before: a video whose
extraction is resumed after an interruption restarts it (poses after the resume point differ
from an uninterrupted run's within that bound; the 68 points, alignment and masks do not), and
one object must see one stream of frames - ``facetwin eval --pose`` alternates the original
and the swapped frame through one landmarker, so use ``dlib-mesh-pose`` there."""

from __future__ import annotations

import numpy as np

from facetwin.extract.landmarkers import LANDMARKERS, _mesh
from facetwin.extract.landmarkers._pose_track import Pose, PoseTracker
from facetwin.extract.landmarkers.base import LandmarkFit
from facetwin.extract.landmarks import landmarks_68
from facetwin.face.pose import head_pose


class DlibMeshPoseFastLandmarker:
    name = "dlib-mesh-pose-fast"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device  # a 192 px network: the CPU is the right place for it
        self.net = _mesh.mesh_net()  # loaded (and the model file checked) before the first frame
        self.tracker = PoseTracker()

    def fit(self, image: np.ndarray, box: tuple[float, float, float, float]) -> LandmarkFit:
        points = landmarks_68(image, box)
        # extract would compute this rigid pose anyway (analyse_face) when no pose is given
        rigid = head_pose(points, image.shape[:2])

        def mesh() -> Pose:
            m = _mesh.roi(points)
            return _mesh.mesh_pose(_mesh.run_mesh(self.net, image, m), m)

        return LandmarkFit(points, self.tracker.pose(image, box, rigid, mesh))


@LANDMARKERS.register(
    "dlib-mesh-pose-fast",
    help="dlib's 68 points, MediaPipe mesh's head pose run every few frames of a face on video",
)
def _make(device: str = "cpu") -> DlibMeshPoseFastLandmarker:
    return DlibMeshPoseFastLandmarker(device)
