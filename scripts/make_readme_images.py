"""The README's held-out pictures: original | swap for three held-out frames per direction.

    python scripts/make_readme_images.py SWAPS_DIR   (default bench_out/quality/swaps_demo@it2000,
    written by ``python benchmarks/quality.py --recipes demo --iterations 2000``)
    python scripts/make_readme_images.py --compare NAME DIR=LABEL DIR=LABEL ...

The second form puts several models' swaps of the same frames side by side (original | one
column per model), e.g. the CPU demo against ``benchmarks/gpu_quality.py``'s GPU models, into
docs/images/NAME_<direction>.jpg. Crops follow each original face's landmarks in the face sets
the CPU benchmark extracted (bench_out/quality).
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


def header(width: int, text: str) -> np.ndarray:
    bar = np.full((24, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def picture(name: str, swaps: list[Path], sets: Path) -> np.ndarray:
    """Rows of held-out frames: the original, then each swap folder's version of it."""
    clip, faceset, wanted, _, _ = SHOTS[name]
    sources = [frames_at(ROOT / "data/video" / clip, wanted)]
    sources += [frames_at(s / f"{name}.mp4", wanted) for s in swaps]
    with FaceSet.open(sets / faceset) as fs:
        rows = [r for r in fs.faces() if r.frame in wanted and r.source.endswith(clip)]
    marks = {r.frame: r.landmarks for r in rows}
    if len(swaps) == 1:  # one row: three (original, swap) pairs
        return np.hstack([crop(src[i], marks[i]) for i in wanted for src in sources])
    return np.vstack([np.hstack([crop(src[i], marks[i]) for src in sources]) for i in wanted])


def main() -> None:
    sets = ROOT / "bench_out/quality"
    if sys.argv[1:2] == ["--compare"]:
        stem, specs = sys.argv[2], [a.partition("=") for a in sys.argv[3:]]
        for name, (_, _, wanted, who, _) in SHOTS.items():
            grid = picture(name, [Path(d) for d, _, _ in specs], sets)
            labels = " | ".join(label for _, _, label in specs)
            text = f"{who}, held-out frames {', '.join(map(str, wanted))}: original | {labels}"
            out = ROOT / "docs/images" / f"{stem}_{name}.jpg"
            bar = header(grid.shape[1], text + " (SYNTHETIC)")
            write_image(out, np.vstack([bar, grid]), quality=88)
            print(out)
        return
    swaps = Path(sys.argv[1]) if len(sys.argv) > 1 else sets / "swaps_demo@it2000"
    for name, (_, _, wanted, who, as_who) in SHOTS.items():
        row = picture(name, [swaps], swaps.parent)
        text = (
            f"held-out frames {', '.join(map(str, wanted))} of {who}: original | as {as_who} "
            "(SYNTHETIC, facetwin demo, lite-hd 2000 it)"
        )
        out = ROOT / "docs/images" / f"demo_heldout_{name}.jpg"
        write_image(out, np.vstack([header(row.shape[1], text), row]), quality=88)
        print(out)


if __name__ == "__main__":
    main()
