"""The README's held-out pictures: original | swap for three held-out frames per direction.

    python scripts/make_readme_images.py SWAPS_DIR   (default bench_out/quality/swaps_demo@it2000,
    written by ``python benchmarks/quality.py --recipes demo --iterations 2000``)

Crops follow each original face's landmarks in the face sets the benchmark extracted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from facetwin.faceset import FaceSet
from facetwin.media.image import write_image
from facetwin.media.video import iter_frames

ROOT = Path(__file__).resolve().parents[1]
TILE = (280, 330)  # width, height
SHOTS = {  # swap -> (clip, face set, frames, who, as whom)
    "woman_as_man": ("WolfgangLanger_Pexels.mp4", "faceset_woman", (385, 420, 455), "the woman",
                     "the man"),
    "man_as_woman": ("single_face.mp4", "faceset_man", (60, 66, 71), "the man", "the woman"),
}  # fmt: skip


def frames_at(path: Path, wanted: tuple[int, ...]) -> dict[int, np.ndarray]:
    return {i: f for i, f in iter_frames(path) if i in wanted}


def crop(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A TILE-shaped box around the face, 1.6x its landmark extent."""
    (x0, y0), (x1, y1) = landmarks.min(0), landmarks.max(0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.1 * (y1 - y0)
    h = 1.6 * max(x1 - x0, y1 - y0)
    w = h * TILE[0] / TILE[1]
    m = np.array([[TILE[0] / w, 0, TILE[0] / 2 - cx * TILE[0] / w],
                  [0, TILE[1] / h, TILE[1] / 2 - cy * TILE[1] / h]])  # fmt: skip
    return cv2.warpAffine(frame, m, TILE, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)


def main() -> None:
    swaps = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench_out/quality/swaps_demo@it2000"
    sets = swaps.parent
    for name, (clip, faceset, wanted, who, as_who) in SHOTS.items():
        orig = frames_at(ROOT / "data/video" / clip, wanted)
        swap = frames_at(swaps / f"{name}.mp4", wanted)
        with FaceSet.open(sets / faceset) as fs:
            marks = {
                r.frame: r.landmarks
                for r in fs.faces()
                if r.frame in wanted and r.source.endswith(clip)
            }
        tiles = [crop(src[i], marks[i]) for i in wanted for src in (orig, swap)]
        row = np.hstack(tiles)
        header = np.full((24, row.shape[1], 3), 255, np.uint8)
        text = (
            f"held-out frames {', '.join(map(str, wanted))} of {who}: original | as {as_who} "
            "(SYNTHETIC, facetwin demo, lite-hd 2000 it)"
        )
        cv2.putText(header, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        out = ROOT / "docs/images" / f"demo_heldout_{name}.jpg"
        write_image(out, np.vstack([header, row]), quality=88)
        print(out)


if __name__ == "__main__":
    main()
