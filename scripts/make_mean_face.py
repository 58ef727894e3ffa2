"""Recompute facetwin's mean face (src/facetwin/face/mean_face.json) from the bundled real faces.

Runs dlib's HOG detector and 68-point predictor on every bundled photo and every 4th frame of the
bundled clips, aligns the 51 inner points (eyebrows, eyes, nose, mouth) of all faces to each other
with generalised Procrustes (similarity transforms), and writes their mean, scaled so that its
inner points span the unit square and centred on (0.5, 0.5).
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import dlib
import numpy as np

from facetwin.extract.models import shape_predictor_68
from facetwin.face.align import INNER, umeyama

ROOT = Path(__file__).resolve().parents[1]


def frames() -> list[np.ndarray]:
    out = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        for p in sorted((ROOT / "data/images").glob("*.jpg"))
    ]
    for p in sorted((ROOT / "data/video").glob("*")):
        with av.open(str(p)) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i % 4 == 0:
                    out.append(f.to_ndarray(format="rgb24"))
    return out


def main() -> None:
    det = dlib.get_frontal_face_detector()
    sp = shape_predictor_68()
    shapes = []
    for im in frames():
        for r in det(im, 1):
            s = sp(im, r)
            shapes.append(np.array([[p.x, p.y] for p in s.parts()], np.float64))
    pts = np.stack(shapes)[:, INNER]
    ref = pts[0]
    for _ in range(10):
        aligned = []
        for p in pts:
            m = umeyama(p, ref)
            aligned.append(p @ m[:, :2].T + m[:, 2])
        mean = np.mean(aligned, axis=0)
        mean -= mean.mean(0)
        mean /= np.linalg.norm(mean)
        ref = mean
    lo, hi = ref.min(0), ref.max(0)
    unit = (ref - (lo + hi) / 2) / (hi - lo).max() + 0.5
    out = ROOT / "src/facetwin/face/mean_face.json"
    out.write_text(
        json.dumps({"faces": len(shapes), "inner_points": np.round(unit, 5).tolist()}) + "\n"
    )
    print(f"mean face from {len(shapes)} faces -> {out}")


if __name__ == "__main__":
    main()
