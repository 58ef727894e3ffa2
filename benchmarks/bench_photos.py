"""Faces found in the bundled photos by the default ``facetwin extract`` (issue 16, group photos):
dlib-hog alone against dlib-hog with the photo path's second detector (``--photo-detector``).

Each photo's people were counted by eye (``PEOPLE``; one where not listed). Per row: faces
stored, people, recall (each person counted once: a stored face per person at most), extra
faces (stored beyond the people: false alarms or doubles) and seconds per photo - the two rows
run in one process on the same machine, so their time ratio is the second pass's cost.

    python benchmarks/bench_photos.py [--publish]   # benchmarks/results/photos-cpu.json
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from facetwin.extract.pipeline import ExtractConfig, extract  # noqa: E402
from facetwin.faceset import FaceSet  # noqa: E402
from publish import table_main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "data" / "images"
PEOPLE = {"multi_face.jpg": 5}  # the rest show one person each


def measure(photo_detector: str) -> dict[str, Any]:
    photos = sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set"
        cfg = ExtractConfig(progress=False, photo_detector=photo_detector, hands_every=0)
        t0 = time.perf_counter()
        extract(photos, out, cfg)
        seconds = time.perf_counter() - t0
        with FaceSet.open(out) as fs:
            names = {s["id"]: Path(s["path"]).name for s in fs.sources()}
            per: dict[str, int] = {}
            for f in fs.faces():
                per[names[f.source_id]] = per.get(names[f.source_id], 0) + 1
    people = {p.name: PEOPLE.get(p.name, 1) for p in photos}
    found = sum(min(per.get(n, 0), k) for n, k in people.items())
    return {
        "photo_detector": photo_detector or "none",
        "photos": len(photos),
        "people": sum(people.values()),
        "faces": sum(per.values()),
        "recall": round(found / sum(people.values()), 3),
        "extra_faces": sum(max(per.get(n, 0) - k, 0) for n, k in people.items()),
        "missed_in": sorted(n for n, k in people.items() if per.get(n, 0) < k),
        "s_per_photo": round(seconds / len(photos), 3),
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    rows = [measure(""), measure("auto")]
    base = rows[0]["s_per_photo"]
    for r in rows:
        r["time_ratio"] = round(r["s_per_photo"] / base, 2) if base else None
    return rows


def main() -> None:
    keys = ["photo_detector", "photos", "people", "faces", "recall", "extra_faces"]
    keys += ["missed_in", "s_per_photo", "time_ratio"]
    table_main(__doc__, "photos", run, keys)


if __name__ == "__main__":
    main()
