"""dlib's 68 points with MediaPipe Face Mesh's head pose: the lower landmark error of the one and
the lower pose error of the other (docs/landmarks.md), ~5 ms a face."""

from __future__ import annotations

from facetwin.extract.landmarkers import LANDMARKERS
from facetwin.extract.landmarkers.mesh import MeshLandmarker


class DlibMeshPoseLandmarker(MeshLandmarker):
    name = "dlib-mesh-pose"
    keep_dlib_points = True


@LANDMARKERS.register("dlib-mesh-pose", help="dlib's 68 points, head pose from MediaPipe's mesh")
def _make(device: str = "cpu") -> DlibMeshPoseLandmarker:
    return DlibMeshPoseLandmarker(device)
