"""Convert's hand search on the woman's clip: what it keeps in front of the face, and its cost.

Every frame of data/video/WolfgangLanger_Pexels.mp4 (a hand covers part of her face in about a
third of them) is swapped three ways with a trained model and the face set's landmarks: hands
not searched (the reconstruction-based occlusion only), searched on convert's schedule
(``Swapper.hands_due``: every 8th frame and every frame while a hand was seen within the last
8; and any frame where the reconstruction sees an occluder), and searched on every frame.
Where the finder run on the frame itself sees a hand inside the face's landmark hull, the mean
|output - frame| over those hand pixels says how much of the hand was painted over (0 = the
hand kept exactly). That reference is the finder's own answer, so "every frame" is ~0 by
construction: the figure says what the schedule loses against searching
every frame, and what no search loses - not how well the finder outlines a hand
(bench_occluders.py measures that against pasted hands of known mask). Milliseconds per frame
are the swap's own (model, occlusion, hands, blend), all three measured in the same run, frame
by frame interleaved.

    python benchmarks/bench_hands_convert.py [--model DIR] [--publish]

The model defaults to the demo recipe's of ``benchmarks/quality.py`` (bench_out/quality); the
benchmark is skipped when it is not there.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from publish import PUBLISH_HELP, text_table, write_result  # noqa: E402

Q = ROOT / "bench_out" / "quality"
CLIP = ROOT / "data" / "video" / "WolfgangLanger_Pexels.mp4"
WAYS = ("not searched", "scheduled", "every frame")


def swappers(model_dir: Path) -> dict[str, Any]:
    from facetwin.convert.blend import BLENDERS, BlendParams
    from facetwin.convert.color import COLOR_MATCHERS
    from facetwin.convert.config import ConvertConfig
    from facetwin.convert.occlusion import OcclusionConfig
    from facetwin.convert.swap import Swapper, load_swap_model

    cfg = ConvertConfig()
    model = load_swap_model(model_dir, "cpu")

    def make(hands: bool) -> Swapper:
        return Swapper(
            model=model, side="b", source_side="a",
            color=COLOR_MATCHERS.bind(cfg.color, cfg.settings_of(cfg.color)),
            blend=BLENDERS.bind(cfg.blend, cfg.settings_of(cfg.blend)),
            params=BlendParams(erode=cfg.erode, feather=cfg.feather, sharpen=cfg.sharpen),
            occlusion=OcclusionConfig(hands=hands),
        )  # fmt: skip

    return {w: make(w != WAYS[0]) for w in WAYS}


def hand_region(finder: Any, frame: np.ndarray, lm: np.ndarray) -> np.ndarray | None:
    """bool mask of the hand pixels inside the face's landmark hull, or None without one."""
    from facetwin.extract.hands import hands_mask

    box = (*lm.min(0), *lm.max(0))
    hands = finder.near(frame, tuple(float(v) for v in box))
    if not hands:
        return None
    hull = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(lm.astype(np.int32)), 255)
    region = (hands_mask(hands, frame.shape) > 0) & (hull > 0)
    return region if region.any() else None


def measure(model_dir: Path, faceset: Path) -> dict[str, Any]:
    from facetwin.convert.faces import plan_from_records
    from facetwin.extract.hands import HandFinder
    from facetwin.faceset import FaceSet
    from facetwin.media.video import iter_frames

    with FaceSet.open(faceset) as fs:
        src = next(r for r in fs.source_records() if Path(r.path).name == CLIP.name)
        recs = fs.faces(include_bridged=True, source_id=src.id)
        plan = plan_from_records(recs, None, 0.6, True, 6.0, fs.every)
    sw, finder = swappers(model_dir), HandFinder()
    seconds = dict.fromkeys(WAYS, 0.0)
    errors: dict[str, list[float]] = {w: [] for w in WAYS}
    frames = 0
    for i, frame in iter_frames(CLIP):
        faces = plan.faces(i)
        if not faces:
            continue
        frames += 1
        outs = {}
        for w, s in sw.items():
            t0 = time.perf_counter()
            outs[w] = s.swap_frame(frame, faces, None if w == WAYS[2] else i % 240)
            seconds[w] += time.perf_counter() - t0
        region = hand_region(finder, frame, np.asarray(faces[0]))
        if region is not None:
            for w in WAYS:
                errors[w].append(float(np.abs(outs[w].astype(int) - frame)[region].mean()))
    return {
        "frames": frames,
        "hand_frames": len(errors[WAYS[0]]),
        "rows": [
            {
                "hands": w,
                "ms_per_frame": round(1000 * seconds[w] / frames, 1),
                "hand_error": round(float(np.mean(errors[w])), 2),
                "hand_search_s": round(sw[w].timer.seconds.get("hands", 0.0), 1),
            }
            for w in WAYS
        ],
    }


def table(rows: list[dict[str, Any]]) -> str:
    keys = ["hands", "ms_per_frame", "hand_error", "hand_search_s"]
    return text_table(rows, keys, ["hands", "ms/frame", "|out - frame| on hands", "search s"])


def run(quick: bool = False, model: Path | None = None) -> list[dict[str, Any]]:
    model = model or Q / "model_demo@it2000"
    if not (model / "config.json").exists():
        print(f"no model at {model}: run benchmarks/quality.py --recipes demo first")
        return []
    result = measure(model, Q / "faceset_woman")
    print(table(result["rows"]))
    return result["rows"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=Q / "model_demo@it2000")
    p.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    a = p.parse_args()
    result = measure(a.model, Q / "faceset_woman")
    print(table(result["rows"]))
    rows = result.pop("rows")
    write_result("hands-convert", rows, a.publish, model=str(a.model), **result)


if __name__ == "__main__":
    main()
