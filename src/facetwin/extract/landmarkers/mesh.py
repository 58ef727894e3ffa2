"""MediaPipe Face Mesh (468 points, 3-D) mapped to the 68 iBUG points, with its own head pose.

Needs the ``mediapipe`` 0.10.x wheel for its model file only (``pip install --no-deps
mediapipe==0.10.21``; 1.x ships no models); OpenCV runs it, ~3 ms a face on one core plus
dlib's 1 ms for the crop. Its 68 points are less accurate than dlib's on the annotated faces,
its pose more accurate on the known-yaw stills (docs/landmarks.md): ``dlib-mesh-pose`` takes
the best of both.
"""

from __future__ import annotations

import numpy as np

from facetwin.extract.landmarkers import LANDMARKERS, _mesh
from facetwin.extract.landmarkers.base import FaceAt, LandmarkFit
from facetwin.extract.landmarks import landmarks_68


class MeshLandmarker:
    name = "mesh"
    keep_dlib_points = False

    def __init__(self, device: str = "cpu") -> None:
        self.device = device  # a 192 px network: the CPU is the right place for it
        self.net = _mesh.mesh_net()  # loaded (and the model file checked) before the first frame

    def fit(
        self, image: np.ndarray, box: tuple[float, float, float, float], at: FaceAt | None = None
    ) -> LandmarkFit:
        # dlib's points (1 ms) place the crop as MediaPipe's tracker places it from its own
        # points: level eyes, 1.5x the face's extent - the detector box alone is looser
        first = landmarks_68(image, box)
        m = _mesh.roi(first)
        mesh = _mesh.run_mesh(self.net, image, m)
        points = first if self.keep_dlib_points else _mesh.ibug68(_mesh.to_image(mesh, m))
        return LandmarkFit(points, _mesh.mesh_pose(mesh, m))


@LANDMARKERS.register("mesh", help="MediaPipe Face Mesh mapped to 68 points, pose from the mesh")
def _make(device: str = "cpu") -> MeshLandmarker:
    return MeshLandmarker(device)
