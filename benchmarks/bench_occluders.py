"""Hands in the face set's masks (issue 16 "occluders"): a real hand pasted on real faces it was
not cut from, at known positions; how much of it extract's stored mask leaves out of the face,
how much visible face it cuts by mistake, false alarms on clean faces, and the cost.

The hands: three frames of the woman's clip where the hand finder finds her hand over her face
(``HAND_FRAMES``). The pasted occluder's mask is **the hull itself**, tight: the convex hull of
the finder's 21 points on her frame grown by ``PASTE_GROW`` palm widths (about half a finger's
width), not a hand segmentation - so it holds bits of her cheek between spread fingers, which
are occluder on the target all the same (they are pasted pixels that are not the target's face).
The hand goes onto each target face through the two faces' alignment (so it keeps its size and
place relative to the face), then shifted by ``SHIFTS`` (fractions of the aligned crop).

Targets: the man's clip (every 6th frame) and the stills in data/images (every face dlib-hog
finds) - none of them the woman. The hull growth :data:`facetwin.extract.hands.GROW` is chosen
on the man's frames (the smallest growth that leaves >= 95 % of the pasted hand out of the face
mask on the pastes where the finder found the hand - growth cannot make up for a miss) and
reported on the stills, which played no part in the choice.

Per row: ``hand_out`` share of the pasted hand's pixels inside the aligned crop that the stored
mask (extended, >= 128) leaves out; ``face_cut`` share of the visible face (the mask's hull
minus the pasted hand) cut as occluder; ``found`` share of pasted faces whose hand was found;
``hand_out_found`` the same over the pastes whose hand was found;
``convert_kept`` share of hand pixels convert's keep mask (``hand_keep``) keeps from the frame
(keep < 0.5); ``false_alarm`` hands found on the clean targets. ``ms_hands`` per face, beside
``ms_face`` (landmarks, alignment, masks) measured in the same run.

    python benchmarks/bench_occluders.py [--publish]   # benchmarks/results/occluders-cpu.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from facetwin.convert.occlusion import OcclusionConfig, hand_keep  # noqa: E402
from facetwin.extract.analyse import analyse_face  # noqa: E402
from facetwin.extract.detect import detect_full  # noqa: E402
from facetwin.extract.detectors import create_detector  # noqa: E402
from facetwin.extract.hands import (  # noqa: E402
    GROW,
    PHOTO_SCALES,
    VIDEO_SCALES,
    HandFinder,
    Scales,
    hand_polygon,
)
from facetwin.face.align import compose, invert  # noqa: E402
from facetwin.face.masks import OCCLUDER_CUT  # noqa: E402
from facetwin.media.image import read_image  # noqa: E402
from facetwin.media.video import iter_frames  # noqa: E402
from publish import PUBLISH_HELP, text_table, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WOMAN = ROOT / "data/video/WolfgangLanger_Pexels.mp4"
MAN = ROOT / "data/video/single_face.mp4"
STILLS = ROOT / "data/images"
HAND_FRAMES = (72, 120, 200)
PASTE_GROW = 0.12
SHIFTS = ((0.0, 0.0), (0.1, 0.0), (-0.08, 0.08))
GROWS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
SIZE, COVERAGE = 256, 2.0
CHOOSE_AT = 0.95


def hands_to_paste(det: Any, finder: HandFinder) -> list[dict[str, Any]]:
    """Each hand frame of the woman: the frame, her face's alignment and the hand's tight mask."""
    frames = {i: f for i, f in iter_frames(WOMAN) if i in HAND_FRAMES}
    out = []
    for i in HAND_FRAMES:
        frame = frames[i]
        d = detect_full(det, frame, 1280)[0]
        hands = finder.near(frame, d.box)
        assert hands, f"no hand found on the woman's frame {i}"
        mask = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillConvexPoly(mask, hand_polygon(hands[0].points, PASTE_GROW), 255)
        fd = analyse_face(frame, d, SIZE, COVERAGE)
        out.append({"frame": i, "image": frame, "mask": mask, "matrix": fd.matrix})
    return out


def targets(det: Any) -> list[tuple[str, str, np.ndarray]]:
    """(split, name, image) of every target: the man's frames choose, the stills test."""
    out = [("choose", f"man#{i}", f) for i, f in iter_frames(MAN) if i % 6 == 0]
    for p in sorted(STILLS.iterdir()):
        if p.suffix.lower() in (".jpg", ".png"):
            out.append(("test", p.name, read_image(p)))
    return out


def paste(
    target: np.ndarray, tmatrix: np.ndarray, hand: dict[str, Any], shift: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """``target`` with the hand pasted through the two faces' alignment, shifted by ``shift``
    crop sides; and the pasted pixels (uint8 0/255)."""
    move = np.array([[1.0, 0.0, shift[0] * SIZE], [0.0, 1.0, shift[1] * SIZE]])
    to_target = compose(invert(tmatrix), compose(move, hand["matrix"]))
    h, w = target.shape[:2]
    img = cv2.warpAffine(hand["image"], to_target, (w, h), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(hand["mask"], to_target, (w, h), flags=cv2.INTER_NEAREST)
    out = np.where(alpha[..., None] > 0, img, target)
    return out, alpha


def measure(
    image: np.ndarray,
    alpha: np.ndarray,
    det: Any,
    finder: HandFinder,
    fallback: Any,
    scales: Scales = VIDEO_SCALES,
) -> dict[str, Any]:
    """One pasted face: its hand points and, per hull growth, the stored mask's figures."""
    found = detect_full(det, image, 1280)
    d = found[0] if found else fallback
    t0 = time.perf_counter()
    hands = finder.near(image, d.box, scales)
    ms_hands = 1000 * (time.perf_counter() - t0)
    t0 = time.perf_counter()
    plain = analyse_face(image, d, SIZE, COVERAGE)
    ms_face = 1000 * (time.perf_counter() - t0)
    truth = cv2.warpAffine(alpha, plain.matrix, (SIZE, SIZE), flags=cv2.INTER_NEAREST) > 0
    visible = (plain.masks >= 128) & ~truth
    row: dict[str, Any] = {
        "detected": bool(found),
        "found": bool(hands),
        "ms_hands": ms_hands,
        "ms_face": ms_face,
    }
    row["plain_out"] = float((plain.masks[truth] < 128).mean()) if truth.any() else 1.0
    for g in GROWS:
        polys = [hand_polygon(h.points, g) for h in hands]
        fd = analyse_face(image, d, SIZE, COVERAGE, hands=polys)
        row[f"out@{g}"] = float((fd.masks[truth] < 128).mean()) if truth.any() else 1.0
        row[f"cut@{g}"] = (
            float((fd.masks[visible] == OCCLUDER_CUT).mean()) if visible.any() else 0.0
        )
        keep = hand_keep(polys, fd.matrix, SIZE, OcclusionConfig())
        row[f"kept@{g}"] = float((keep[truth] < 0.5).mean()) if truth.any() else 1.0
    return row


def summarise(split: str, rows: list[dict[str, Any]], grow: float) -> dict[str, Any]:
    def mean(key: str) -> float:
        return round(100 * float(np.mean([r[key] for r in rows])), 1)

    return {
        "split": split,
        "pastes": len(rows),
        "grow": grow,
        "found": mean("found"),
        "hand_out": mean(f"out@{grow}"),
        "hand_out_found": round(
            100 * float(np.mean([r[f"out@{grow}"] for r in rows if r["found"]])), 1
        ),
        "hand_out_no_cut": mean("plain_out"),
        "face_cut": mean(f"cut@{grow}"),
        "convert_kept": mean(f"kept@{grow}"),
        "worst_hand_out": round(100 * min(r[f"out@{grow}"] for r in rows), 1),
        "ms_hands": round(float(np.median([r["ms_hands"] for r in rows])), 1),
        "ms_face": round(float(np.median([r["ms_face"] for r in rows])), 1),
    }


def run(quick: bool = False, scales: Scales = VIDEO_SCALES) -> list[dict[str, Any]]:
    cv2.setNumThreads(1)
    det = create_detector("dlib-hog", "cpu", {})
    finder = HandFinder()
    hands = hands_to_paste(det, finder)
    per: dict[str, list[dict[str, Any]]] = {"choose": [], "test": []}
    alarms: dict[str, list[Any]] = {"choose": [0, 0, []], "test": [0, 0, []]}
    for split, name, image in targets(det)[:: 3 if quick else 1]:
        for d in detect_full(det, image, 1280):
            fd = analyse_face(image, d, SIZE, COVERAGE)
            n = len(finder.near(image, d.box, scales))
            alarms[split][0] += n
            alarms[split][1] += 1
            if n:
                alarms[split][2].append(name)
            for hand in hands:
                for shift in SHIFTS:
                    pasted, alpha = paste(image, fd.matrix, hand, shift)
                    row = measure(pasted, alpha, det, finder, d, scales)
                    per[split].append({"target": name, **row})
    hits = [r for r in per["choose"] if r["found"]]
    chosen = next(
        (g for g in GROWS if np.mean([r[f"out@{g}"] for r in hits]) >= CHOOSE_AT), GROWS[-1]
    )
    rows = [summarise(s, per[s], chosen) for s in ("choose", "test")]
    for r in rows:
        r["clean_faces"], r["false_alarm"] = alarms[r["split"]][1], alarms[r["split"]][0]
        r["false_alarm_on"] = alarms[r["split"]][2]
    curve = [
        {
            "grow": g,
            **{
                f"{s}_{k}": round(100 * float(np.mean([r[f"{k}@{g}"] for r in per[s]])), 1)
                for s in per
                for k in ("out", "cut")
            },
        }
        for g in GROWS
    ]
    return rows + [{"split": "grow curve", "curve": curve, "chosen": chosen, "shipped": GROW}]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--publish", action="store_true", help=PUBLISH_HELP)
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    rows = run(a.quick)
    # the photo search (wider squares where the first finds no hand); GROW stays the video's
    photo = run(a.quick, PHOTO_SCALES)[:2]
    for r in rows[:2]:
        r["search"] = f"video {list(VIDEO_SCALES)}"
    for r in photo:
        r["search"] = f"photo {list(PHOTO_SCALES)}"
    rows = rows[:2] + photo + rows[2:]
    keys = [
        "search",
        "split",
        "pastes",
        "grow",
        "found",
        "hand_out",
        "hand_out_found",
        "hand_out_no_cut",
        "face_cut",
        "convert_kept",
        "worst_hand_out",
        "false_alarm",
        "clean_faces",
        "ms_hands",
        "ms_face",
    ]
    print(text_table(rows[:4], keys, keys))
    for c in rows[4]["curve"]:
        print(c)
    write_result(
        "occluders",
        rows,
        a.publish,
        seconds=round(time.perf_counter() - t0, 1),
        hand_frames=list(HAND_FRAMES),
        paste_grow=PASTE_GROW,
        shifts=[list(s) for s in SHIFTS],
    )


if __name__ == "__main__":
    main()
