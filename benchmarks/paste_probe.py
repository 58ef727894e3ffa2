"""How much sharpness the paste itself costs: the frame's own face through convert's paste path.

The sharpness ratio (swap / original Laplacian variance in the face, `facetwin eval`) cannot
reach 1 even for a perfect model: the drawn face is a fixed-size crop enlarged into the frame.
This probe measures that ceiling on the demo's held-out woman -> man frames by pasting the
*frame's own* aligned face, cut at 64, 128 or 256 px (what a perfect model of that output size
would draw), through the real convert path (colour match, blend, sharpen), with the crop cut
and pasted back bilinear or bicubic. It then converts both demo clips with a trained model,
pasted bilinear and bicubic, to show what the interpolation is worth on a real swap.

    python benchmarks/paste_probe.py [--model bench_out/quality/model_demo@it2000] [--publish]

Needs the face sets and model of ``python benchmarks/quality.py --recipes demo --iterations
2000`` (bench_out/quality). Writes bench_out/paste-probe.json (--publish: also
benchmarks/results/paste-probe.json). Swapping the pasted face for the frame's own is a probe,
done by patching ``Swapper._paste`` here; nothing in the library can do it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality import machine  # noqa: E402

Q = ROOT / "bench_out" / "quality"
KEYS = ("id_retrieval", "nearer_b_by", "sharpness_ratio", "landmark_jitter_ratio", "flicker_ratio")
ORIGINAL: dict[str, Any] = {}  # the library's functions, before any patch
INTERP = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}


def patched(interp: int, own_size: int | None) -> None:
    """Paste the face with ``interp`` (masks stay as the library has them); with ``own_size``,
    paste the frame's own face cut at that size instead of the model's."""
    from facetwin.convert import swap as S
    from facetwin.face.align import compose, recrop_matrix

    base_warp, base_paste = ORIGINAL.setdefault("swap", (S.warp_back, S.Swapper._paste))

    def warp_back(crop, m, size, border, value=0.0, **kw):  # type: ignore[no-untyped-def]
        if "interp" in kw:  # make_patch names it for the face only
            kw["interp"] = interp
        return base_warp(crop, m, size, border, value, **kw)

    S.warp_back = warp_back  # type: ignore[assignment]
    S.Swapper._paste = base_paste  # type: ignore[method-assign]
    if own_size is None:
        return

    def own_face(self, out, frame, landmarks, m_in, face, *rest):  # type: ignore[no-untyped-def]
        cov = self.model.coverage
        m = compose(recrop_matrix(self.model.input_size, cov, own_size, cov), m_in)
        own = cv2.warpAffine(
            frame, m, (own_size, own_size), flags=interp, borderMode=cv2.BORDER_REPLICATE
        )
        return base_paste(self, out, frame, landmarks, m_in, own, *rest)

    S.Swapper._paste = own_face  # type: ignore[method-assign]


def one(model: Path, direction: str, interp: str, own: int | None, out: Path) -> dict[str, Any]:
    """Convert one demo clip with the paste of ``interp`` (``own``: the frame's own face at that
    size) and eval its held-out frames."""
    from facetwin.convert.pipeline import ConvertConfig, convert
    from facetwin.demo import clips, heldout_start
    from facetwin.eval.pipeline import EvalConfig, evaluate

    patched(INTERP[interp], own)
    src = clips()["a" if direction == "a2b" else "b"][0]
    fs, target = (Q / "faceset_woman", Q / "faceset_man")[:: 1 if direction == "a2b" else -1]
    video = out / f"{direction}_{interp}_{own}.mp4"
    shutil.rmtree(video.with_suffix(".mp4.parts"), ignore_errors=True)
    video.unlink(missing_ok=True)
    # occlusion off: the probe compares pastes, not what the reconstruction keeps
    cfg = ConvertConfig(direction=direction, faceset=str(fs), progress=False, occlusion=False)
    convert(src, model, video, cfg)
    m = evaluate(
        src, video, model_dir=model, faceset_a=fs, faceset_b=target,
        output_dir=out / f"report_{video.stem}",
        cfg=EvalConfig(start_frame=heldout_start(fs, src), progress=False, direction=direction),
    )  # fmt: skip
    flat = {k: v for sec in m.values() if isinstance(sec, dict) for k, v in sec.items()}
    return {k: flat.get(k) for k in KEYS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(Q / "model_demo@it2000"))
    ap.add_argument("--publish", action="store_true")
    a = ap.parse_args()
    out = ROOT / "bench_out" / "paste_probe"
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    rows = []
    for interp in INTERP:
        for own in (64, 128, 256):
            r = one(Path(a.model), "a2b", interp, own, out)
            rows.append(
                {"face": f"the frame's own, {own} px", "direction": "a2b", "paste": interp, **r}
            )
            print(json.dumps(rows[-1]), flush=True)
        for direction in ("a2b", "b2a"):
            r = one(Path(a.model), direction, interp, None, out)
            rows.append({"face": "model", "direction": direction, "paste": interp, **r})
            print(json.dumps(rows[-1]), flush=True)
    doc = {
        "what": __doc__.splitlines()[0],
        "model": a.model,
        "note": "held-out frames only (the demo split); convert defaults (rct colour, mask blend, "
        "sharpen 0.5) with occlusion off; sharpness_ratio is facetwin eval's median ratio",
        "rows": rows,
        "seconds": round(time.time() - t0, 1),
        **machine(),
    }
    text = json.dumps(doc, indent=1)
    (ROOT / "bench_out" / "paste-probe.json").write_text(text)
    if a.publish:
        (ROOT / "benchmarks" / "results" / "paste-probe.json").write_text(text)
    for r in rows:
        print(f"{r['face']:<26} {r['direction']} {r['paste']:<8} sharp {r['sharpness_ratio']:.2f}")


if __name__ == "__main__":
    main()
