"""Every figure the README publishes is the one in its committed result file.

Each claim below is a sentence or table row of README.md rebuilt from a JSON file under
benchmarks/results/ (with the commit, machine, load and command that made it); the test fails
when a benchmark is re-run and published without updating the README, or the README is edited
without a result behind it. Rounding is half-up, as a person reads a figure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = (ROOT / "README.md").read_text()


def normal(text: str) -> str:
    return " ".join(text.split())


def r(value: float, digits: int = 0) -> str:
    """``value`` rounded half-up to ``digits`` decimals."""
    q = Decimal(1).scaleb(-digits)
    return str(Decimal(repr(value)).quantize(q, rounding=ROUND_HALF_UP))


def pct(value: float, digits: int = 0) -> str:
    return f"{r(100 * value, digits)} %"


def thousands(value: float) -> str:
    return f"{int(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)):,}"


def load(name: str) -> Any:
    return json.loads((RESULTS / name).read_text())


def demo_claims() -> Iterator[tuple[str, str]]:
    d = load("demo-cpu-2000it-summary.json")
    w, m = d["heldout_metrics"]["woman_as_man"], d["heldout_metrics"]["man_as_woman"]

    def row(label: str, key: str, fmt: Any) -> str:
        return f"| {label} | {fmt(w[key])} | {fmt(m[key])} |"

    def span(x: dict) -> str:
        return f"{x['frames']} ({x['start_frame']}-{x['start_frame'] + x['frames'] - 1})"

    def nearer(x: dict) -> str:
        return f"{r(x['nearer_target_by'], 2)} ({r(x['swap_to_target'], 2)} vs {r(x['swap_to_source'], 2)})"  # noqa: E501

    yield "demo frames", f"| frames compared | {span(w)} | {span(m)} |"
    yield "demo ID", row("ID retrieval (swaps nearer the target than the source)", "id_retrieval", pct)  # fmt: skip
    yield "demo nearer", f"| nearer the target than the source by (mean 128-D distance) | {nearer(w)} | {nearer(m)} |"  # noqa: E501  # fmt: skip
    yield "demo sharpness", row("sharpness, swap / original (variance of the Laplacian)", "sharpness_ratio", lambda v: r(v, 2))  # fmt: skip
    yield "demo pose", row("pose error, degrees", "pose_error_mean", lambda v: r(v, 1))
    yield "demo pose centred", row("pose error with the constant offset removed, degrees", "pose_error_centred_mean", lambda v: r(v, 1))  # fmt: skip
    yield "demo expression", row("expression error (eyes + mouth, per IOD)", "expression_error_mean", lambda v: r(v, 3))  # fmt: skip
    yield "demo jitter", row("landmark jitter ratio, swap / original", "landmark_jitter_ratio", lambda v: r(v, 2))  # fmt: skip
    yield "demo flicker", row("flicker ratio, swap / original", "flicker_ratio", lambda v: r(v, 2))  # fmt: skip
    s = d["seconds"]
    yield (
        "demo times",
        (
            f"extract {r(s['extract'])} s, train {r(s['train'])} s ({r(d['samples_per_s'])} "
            f"samples/s), convert {r(s['convert'])} s, eval {r(s['eval'])} s"
        ),
    )
    again = load("quality-demo-2000/row.json")

    def both(key: str, digits: int) -> str:
        return (
            f"{r(again['woman_as_man.' + key], digits)} / {r(again['man_as_woman.' + key], digits)}"  # noqa: E501
        )

    yield (
        "demo again",
        (
            f"gave {both('sharpness_ratio', 2)} sharpness, {both('pose_error_mean', 1)} degrees and "
            f"jitter {both('landmark_jitter_ratio', 2)}"
        ),
    )
    seed = load("quality-cpu.json")["rows"][0]
    assert seed["config"] == {"arch": "lite", "lr": 5e-05, "schedule": {"kind": "constant"}, "loss": "l1"}  # fmt: skip

    def seed2(key: str, fmt: Any) -> str:
        return f"{fmt(seed['woman_as_man.' + key])} / {fmt(seed['man_as_woman.' + key])}"

    yield (
        "seed recipe",
        (
            f"ID retrieval {seed2('id_retrieval', pct)}, nearer the target by "
            f"{seed2('nearer_target_by', lambda v: r(v, 2))}, sharpness "
            f"{seed2('sharpness_ratio', lambda v: r(v, 2))}, jitter "
            f"{seed2('landmark_jitter_ratio', lambda v: r(v, 2))}"
        ),
    )
    sharpen = {row["sharpen"]: row["sharpness_ratio"] for row in load("sharpen-probe.json")["rows"]}
    yield "sharpen", f"sharpness {r(sharpen[0.0], 2)} -> {r(sharpen[0.5], 2)}"
    hands = {row["hands"]: row["hand_error"] for row in load("hands-convert-cpu.json")["rows"]}
    yield (
        "hands",
        f"mean |output - frame| is {r(hands['not searched'], 1)} without the hand search and "
        f"{r(hands['scheduled'], 1)} with it",
    )


def gpu_claims() -> Iterator[tuple[str, str]]:
    d = load("gpu-quality-h200.json")
    first, second = d["session_1"], d["session_2_resumed"]
    for name, label in (("original", "`original`"), ("gan", "`gan`")):
        t1 = first[f"train_{name}"]
        for session, before in ((first, 0.0), (second, t1["train_seconds"])):
            t = session[f"train_{name}"]
            minutes = before + t["train_seconds"]  # the resumed session adds to the first
            w, m = session[f"eval_{name}"]["woman_as_man"], session[f"eval_{name}"]["man_as_woman"]

            def two(key: str, digits: int, w: dict = w, m: dict = m) -> str:
                return f"{r(w[key], digits)} / {r(m[key], digits)}"

            pose = f"{two('pose_error_mean', 1)} ({two('pose_error_centred_mean', 1)})"
            yield (
                f"gpu {name} {t['iterations']}",
                (
                    f"| {label}, {thousands(t['iterations'])} it | {r(minutes / 60, 1)} min, H200 | "
                    f"{r(100 * w['id_retrieval'])} / {r(100 * m['id_retrieval'])} % | "
                    f"{two('nearer_target_by', 2)} | {two('sharpness_ratio', 2)} | {pose} | "
                    f"{two('expression_error_mean', 3)} | {two('landmark_jitter_ratio', 2)} | "
                    f"{two('flicker_ratio', 2)} |"
                ),
            )


def speed_claims() -> Iterator[tuple[str, str]]:
    gpu = {row["case"]: row for row in load("gpu-h200.json")}
    big = gpu["original step, batch 64+64, bf16, channels_last"]
    yield (
        "gpu speed",
        (
            f"`original` trains at {thousands(big['samples_per_s'])} samples/s at batch 64+64 "
            f"({r(big['tflops'])} TFLOP/s, {r(big['pct_bf16_peak'])} % of the bf16 matmul peak"
        ),
    )
    loop = gpu["original train(), 400 it + resume 20, 8 loader workers, cuda"]
    gan = gpu["gan step, batch 64+64, bf16, channels_last, every GAN term"]
    yield (
        "gpu loop",
        (
            f"{thousands(loop['samples_per_s'])} samples/s in the real `train()` loop at batch 16; "
            f"the GAN step with every term {thousands(gan['samples_per_s'])}"
        ),
    )
    arch = {row["arch"]: row for row in load("arch-compare-cpu-8min.json")}
    lite, gl = arch["lite"], arch["gan-lite"]
    big_its = [arch[a]["iterations"] for a in ("original", "gan", "original128")]
    yield (
        "arch lite",
        (
            f"({thousands(lite['iterations'])} iterations, {pct(lite['id_retrieval'], 1)} ID "
            "retrieval on the held-out frames); the 82 M-parameter models get "
            f"{min(big_its)}-{max(big_its)} iterations"
        ),
    )
    yield (
        "arch gan-lite",
        (
            f"The GAN (`gan-lite`, {gl['iterations']} iterations) loses on identity "
            f"({pct(gl['id_retrieval'], 1)}) and jitter ({r(gl['landmark_jitter_ratio'], 2)}x the "
            f"original's, `lite` {r(lite['landmark_jitter_ratio'], 2)}x) but already draws the "
            f"sharpest faces (Laplacian variance {pct(gl['sharpness_ratio'])} of the real face's, "
            f"`lite` {pct(lite['sharpness_ratio'])})"
        ),
    )
    label = load("label-cpu.json")
    worst = next(x for x in label["rows"] if x["attack"] == "0.5x + CRF 28")
    fa = label["false_alarms"]
    yield (
        "label",
        (
            f"({worst['found']}/{worst['frames']} sampled frames, the lowest scoring "
            f"{worst['min_score']} against a threshold of {fa['threshold']})"
        ),
    )
    yield (
        "label false alarms",
        (
            f"no false alarm in {thousands(fa['frames_and_photos'])} unmarked frames and photos nor "
            f"in {fa['videos']} unmarked videos"
        ),
    )
    yield "label psnr", f"PSNR {label['visual_cost']['psnr_video_frames_mean']:.1f} dB"


def cpu_bench_claims() -> Iterator[tuple[str, str]]:
    ex = load("extract-cpu.json")
    rows = {(x["detector"], x["clip"]): x for x in ex["rows"] if x["bench"] == "extract"}
    w, m = rows["dlib-hog", "woman"], rows["dlib-hog", "man"]
    off = next(x for x in ex["rows"] if x["bench"] == "extract-hands" and x["hands_every"] == 0)
    small, noface = rows["dlib-hog", "man-176px"], rows["dlib-hog", "noface-264px"]

    def found(x: dict) -> str:
        return f"{r(x['recall'] * x['frames'])}/{x['frames']}"

    yield (
        "extract",
        f"dlib-hog finds a face in {found(w)} frames of the woman's clip and {found(m)} of the "
        f"man's, at {r(w['fps'], 1)} frames/s on her 640x360 clip with the hand search on "
        f"({r(off['fps'], 1)} with `--hands-every 0`; 2 cores, load "
        f"{ex['meta']['load_1min']}), peak memory {r(w['peak_mb'])} MB; in {found(small)} "
        f"frames of the man's clip shrunk to 176 px, and no false alarm in the cartoon frames "
        f"of face_noface.mov ({noface['frames']} frames at 264 px)",
    )
    ra = {x["case"]: x for x in load("read-ahead-cpu.json")["rows"]}
    off, on = ra["extract, hand search off"], ra["extract, hand search every 8"]
    yield (
        "read ahead",
        f"extract on the woman's clip {off['fps_off']} -> {off['fps_on']} frames/s with "
        f"`--hands-every 0` (x{off['ratio_on_off']}) and {on['fps_off']} -> {on['fps_on']} with "
        f"the hand search on (x{on['ratio_on_off']}); convert "
        f"x{ra['convert from a face set (lite)']['ratio_on_off']}",
    )
    idn = load("identity-cpu.json")["rows"]
    fid = next(x for x in idn if x["kind"] == "fidelity")
    speed = {(x["impl"], x["input"], x["batch"], x["threads"]): x["emb_per_s"] for x in idn if x["kind"] == "speed"}  # noqa: E501  # fmt: skip

    def ratio(batch: int) -> str:
        return r(speed["torch", "chips", batch, 1] / speed["dlib", "chips", batch, 1], 1)

    yield (
        "identity",
        f"gives dlib's descriptors to {fid['max_dist_to_dlib']:.1e} ({fid['faces']} faces) and, "
        f"on one thread, runs {ratio(1)}x (batch 1) to {ratio(32)}x (batch 32) as fast as dlib",
    )
    tr = {x["case"]: x for x in load("train-cpu.json")["rows"]}
    mm = tr["fp32 matmul peak (torch.matmul 4096^2)"]["gflops"]
    conv = tr["fp32 conv peak (oneDNN 3x3, 512 ch, channels_last)"]["gflops"]
    orig = tr["original step, batch 16+16, channels_last, fp32"]
    lite = tr["lite step, batch 16+16, channels_last, fp32"]
    yield (
        "train",
        f"`original` {r(orig['samples_per_s'], 1)} samples/s at batch 16+16 in fp32 "
        f"channels_last ({r(orig['gflops'])} GFLOP/s, {r(orig['pct_peak'])} % of the machine's "
        f"fp32 peak: oneDNN's convolutions reach {r(conv)} GFLOP/s, torch.matmul {r(mm)}); "
        f"`lite` {r(lite['samples_per_s'])}",
    )
    cv = {(x["case"], x["arch"]): x for x in load("convert-cpu.json")["rows"]}
    yield (
        "convert",
        f"`lite` {r(cv['from scratch', 'lite']['frames_per_s'], 1)} frames/s detecting the faces "
        f"itself, {r(cv['from face set', 'lite']['frames_per_s'], 1)} with a face set's "
        f"landmarks; `original` {r(cv['from scratch', 'original']['frames_per_s'], 1)}",
    )


def scale_claims() -> Iterator[tuple[str, str]]:
    """The studio's live swap, convert's thread count and Ray (issues 13 and 14)."""
    live = {x["case"]: x for x in load("live-cpu.json")["rows"]}["camera"]
    yield (
        "live",
        f"a {r(live['camera_fps'])} frames/s stream swapped at {r(live['frames_per_s'], 1)} "
        f"frames/s, latency {r(live['latency_ms_p50'])} ms median and "
        f"{r(live['latency_ms_p95'])} ms at the 95th percentile",
    )
    th = {(x["other_core"], x["threads"]): x for x in load("threads-cpu.json")["rows"]}
    yield (
        "threads",
        f"{r(th['idle', 1]['seconds'], 1)} s with one thread against "
        f"{r(th['idle', 2]['seconds'], 1)} s with two on an idle machine, but "
        f"{r(th['busy', 1]['seconds'], 1)} s against {r(th['busy', 2]['seconds'], 1)} s when "
        "another process keeps one core busy",
    )
    rows = load("scale-cpu.json")["rows"]
    conv = {x["workers"]: x for x in rows if x["bench"] == "convert"}
    start = next(x for x in rows if x["bench"] == "ray start-up")
    writer = next(x for x in rows if x["bench"] == "writer")
    yield (
        "ray",
        f"two Ray workers convert the woman's clip at {r(conv[2]['frames_per_s'], 1)} frames/s "
        f"against the single process's {r(conv['single process']['frames_per_s'], 1)} (a local "
        f"cluster takes {r(start['seconds'], 1)} s to start); the face set's single writer "
        f"merges {thousands(round(writer['faces_per_s'], -2))} faces/s",
    )


CLAIMS = dict(
    [*demo_claims(), *gpu_claims(), *speed_claims(), *cpu_bench_claims(), *scale_claims()]
)


@pytest.mark.parametrize("claim", list(CLAIMS))
def test_readme_quotes_its_result_file(claim: str) -> None:
    assert normal(CLAIMS[claim]) in normal(README), CLAIMS[claim]


def test_every_result_file_the_docs_name_exists() -> None:
    docs = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    named = {m for p in docs for m in re.findall(r"benchmarks/results/[\w./@=-]+", p.read_text())}
    assert named, "the docs name no result file?"
    missing = [n for n in sorted(named) if not (ROOT / n.rstrip(".")).exists()]
    assert not missing, missing
