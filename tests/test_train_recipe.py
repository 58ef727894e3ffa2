"""The pieces of the CPU recipe (issue 11): the learning-rate schedule, the held-out split,
the 64 -> 128 px ``lite-hd`` model and its data, eval on the held-out frames only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import MAN, MAN_NOFACE, WOMAN
from facetwin.errors import UsageError
from facetwin.faceset import FaceSet
from facetwin.train import TrainConfig, read_loss_log, train
from facetwin.train.augment import AugmentConfig
from facetwin.train.data import PairDataset, holdout_splits, load_bank
from facetwin.train.models import arch_info, build_model
from facetwin.train.schedule import LrSchedule


def test_cosine_schedule_warms_up_peaks_and_decays_to_final():
    s = LrSchedule("cosine", warmup=10, final=0.05)
    f = [s.factor(i, 110) for i in range(110)]
    assert f[0] == pytest.approx(1 / 11) and all(a < b for a, b in zip(f[:10], f[1:11]))
    assert f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))  # never rises after the peak
    assert f[60] == pytest.approx(0.05 + 0.95 * 0.5, abs=1e-9)  # half-way: the cosine's middle
    assert s.factor(110, 110) == pytest.approx(0.05) and s.factor(500, 110) == pytest.approx(0.05)
    # no total known (training by minutes): warm-up, then the peak
    assert s.factor(5, None) == pytest.approx(6 / 11) and s.factor(50, None) == 1.0
    assert LrSchedule().factor(7, 100) == 1.0
    with pytest.raises(UsageError):
        LrSchedule("steps").check()
    with pytest.raises(UsageError):
        LrSchedule("cosine", final=2).check()


def test_trainer_follows_the_schedule_and_resumes_on_it(tmp_path, faceset_woman, faceset_man):
    sched = {"kind": "cosine", "warmup": 2, "final": 0.1}
    cfg = TrainConfig(
        faceset_a=str(faceset_woman), faceset_b=str(faceset_man), model_dir=str(tmp_path / "m"),
        arch="lite", batch=2, iterations=4, lr=1e-3, schedule=sched, log_every=1,
        preview_every=0, workers=0, device="cpu", save_every=2,
    )  # fmt: skip
    train(cfg, progress=False)
    train(TrainConfig(model_dir=str(tmp_path / "m"), iterations=6), progress=False)
    lrs = [r["lr"] for r in read_loss_log(tmp_path / "m")]
    want = [1e-3 * LrSchedule("cosine", 2, 0.1).factor(i, 4) for i in range(4)]
    assert lrs[:4] == pytest.approx(want)
    # the resumed session lays the cosine over its own new total
    assert lrs[4:] == pytest.approx(
        [1e-3 * LrSchedule("cosine", 2, 0.1).factor(i, 6) for i in (4, 5)]
    )


def test_holdout_cuts_each_clip_at_the_same_moment(faceset_woman, faceset_man):
    with FaceSet.open(faceset_man) as fs:
        records = fs.faces()
    splits = holdout_splits(records, 0.2)
    # the man's two clips are two encodings of one take: cut at the same frame
    assert splits[str(MAN.resolve())] == splits[str(MAN_NOFACE.resolve())] == 58
    assert holdout_splits(records, 0.0) == {}
    with FaceSet.open(faceset_woman) as fs:
        bank = load_bank(fs, 64, 1.0, holdout=0.2)
        every = fs.faces()
    start = bank.splits[str(WOMAN.resolve())]
    kept = [r for r in every if r.frame < start]
    assert len(bank) == len(kept) and bank.ids == [r.id for r in kept]
    assert 0.78 < len(bank) / len(every) < 0.82
    # the identity reference is the training faces' mean, not the held-out ones'
    mean = np.mean([r.embedding for r in kept if r.embedding is not None], axis=0)
    assert np.allclose(bank.mean_embedding, mean, atol=1e-6)


class _OneFace:
    def __init__(self, source: str, frame: int) -> None:
        self.source, self.frame = source, frame


def test_holdout_never_takes_a_photo():
    assert holdout_splits([_OneFace("photo.jpg", 0)], 0.5) == {}
    clip = [_OneFace("v.mp4", i) for i in (0, 1, 2, 3, 10, 11, 12, 13, 14, 15)]
    assert holdout_splits(clip, 0.3) == {"v.mp4": 13}


def test_lite_hd_reads_64_and_draws_128_from_a_128_target(faceset_woman):
    info = arch_info("lite-hd")
    assert (info.input_size, info.output_size) == (64, 128)
    model = build_model("lite-hd")
    assert model(torch.rand(2, 3, 64, 64), "b").shape == (2, 3, 128, 128)
    with FaceSet.open(faceset_woman) as fs:
        bank = load_bank(fs, info.output_size, 1.0)
    ds = PairDataset({"a": bank}, 2, 0, AugmentConfig.none(), input_size=64)
    batch = ds.side_batch("a", 0)
    assert batch["warped"].shape == (2, 3, 64, 64) and batch["target"].shape == (2, 3, 128, 128)
    # with no augmentation the input is the target shrunk by area averaging
    target = batch["target"][0].float()
    shrunk = torch.nn.functional.avg_pool2d(target[None], 2)[0]
    assert (shrunk - batch["warped"][0].float()).abs().mean() < 1.0


def test_lite_hd_trains_and_previews(tmp_path, faceset_woman, faceset_man):
    import cv2

    cfg = TrainConfig(
        faceset_a=str(faceset_woman), faceset_b=str(faceset_man), model_dir=str(tmp_path / "m"),
        arch="lite-hd", batch=2, iterations=3, preview_every=3, workers=0, device="cpu",
        holdout=0.2,
    )  # fmt: skip
    r = train(cfg, progress=False)
    assert r.iterations == 3 and math.isfinite(r.loss_a)
    preview = cv2.imread(str(tmp_path / "m" / "preview.png"))
    assert preview.shape == (22 + 6 * 256, 4 * 256, 3)


def test_bad_recipe_settings_are_usage_errors(tmp_path, faceset_woman, faceset_man):
    for kw in ({"holdout": 1.0}, {"schedule": {"kind": "linear"}}):
        cfg = TrainConfig(
            faceset_a=str(faceset_woman), faceset_b=str(faceset_man),
            model_dir=str(tmp_path / "m"), arch="lite", **kw,
        )  # fmt: skip
        with pytest.raises(UsageError):
            train(cfg, progress=False)


def test_default_arch_on_a_cpu_says_what_it_costs(tmp_path, faceset_woman, faceset_man, caplog):
    from facetwin.train.config import resolve_config

    cfg = TrainConfig(
        faceset_a=str(faceset_woman), faceset_b=str(faceset_man), model_dir=str(tmp_path / "m"),
        device="cpu",
    )  # fmt: skip
    with caplog.at_level("WARNING"):
        assert resolve_config(cfg).arch == "original"
    assert "--arch lite-hd" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        resolve_config(TrainConfig(**{**cfg.to_json(), "arch": "lite"}))
    assert caplog.text == ""


def test_demo_figures_table_marks_the_goals_not_met():
    from facetwin.demo import format_figures

    good = {
        "frames": 94, "id_retrieval": 0.97, "nearer_b_by": 0.14, "sharpness_ratio": 0.7,
        "pose_error_mean": 3.0, "expression_error_mean": 0.02, "landmark_jitter_ratio": 1.05,
        "flicker_ratio": 1.0,
    }  # fmt: skip
    bad = {**good, "id_retrieval": 0.5, "sharpness_ratio": 0.25, "flicker_ratio": None}
    text = format_figures({"woman_as_man": good, "man_as_woman": bad})
    lines = {line.split("  ")[1].strip(): line for line in text.splitlines()[1:-1]}
    assert "97%" in lines["ID retrieval"] and "50% *" in lines["ID retrieval"]
    assert "0.25 *" in lines["sharpness swap/original"] and "n/a" in lines["flicker ratio"]
    assert text.count("*") == 3  # two unmet goals and the legend
    assert "+0.140" in lines["nearer the target by"]


def test_a_new_figure_is_one_catalogue_entry(tmp_path):
    """Adding a figure to the catalogue puts it in the report's table and, with a demo label
    and a goal, in the demo's table, goal marks included; nothing else is edited."""
    from facetwin.demo import format_figures
    from facetwin.eval import catalog
    from facetwin.eval.report import render_html

    fig = catalog.Figure("blending", "test_grain", "grain ratio (test figure)", "1 = same grain",
                         "{:.2f}", "grain ratio", lambda v: v <= 1.2, "<= 1.2")  # fmt: skip
    catalog.add(fig)
    try:
        html = render_html({"blending": {"test_grain": 1.5}, "frames": {}, "identity": {}}, [])
        assert "grain ratio (test figure)" in html and "1 = same grain" in html
        text = format_figures({"w": {"frames": 1, "test_grain": 1.5}})
        assert "grain ratio" in text and "1.50 *" in text and "<= 1.2" in text
    finally:
        catalog.ORDER.remove("test_grain")
        catalog.FIGURES._items.pop("test_grain")


def test_demo_refuses_a_budget_it_cannot_train(tmp_path):
    from facetwin.demo import run_demo

    for kw in ({"iterations": 0}, {"minutes": 0.0}, {"minutes": -1.0}):
        with pytest.raises(UsageError):
            run_demo(tmp_path / "out", **kw)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()  # refused before anything is written
