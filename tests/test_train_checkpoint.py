"""Snapshots: exact round trips, pruning, and one clear error for damaged or foreign ones."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from facetwin.errors import InputError, ModelMismatchError
from facetwin.faceset import FaceSet
from facetwin.model_meta import ModelMeta
from facetwin.train import TrainConfig, load_model, train
from facetwin.train.checkpoint import (
    MODEL_FILE,
    STATE_FILE,
    flatten_optimizer,
    latest_snapshot,
    list_snapshots,
    load_snapshot,
    unflatten_optimizer,
)
from facetwin.train.models import build_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory, faceset_woman, faceset_man):
    """A lite model trained for 3 iterations, a snapshot after each, the newest 2 kept."""
    model_dir = tmp_path_factory.mktemp("ckpt") / "model"
    cfg = TrainConfig(
        faceset_a=str(faceset_woman), faceset_b=str(faceset_man), model_dir=str(model_dir),
        arch="lite", batch=2, iterations=3, save_every=1, keep=2, preview_every=0, workers=0,
        device="cpu", seed=5,
    )  # fmt: skip
    result = train(cfg, progress=False)
    return model_dir, result


def copy_of(trained, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(trained[0], dst)
    return dst


def test_snapshots_are_pruned_and_load_for_convert(trained, faceset_woman, faceset_man):
    model_dir, result = trained
    snaps = list_snapshots(model_dir)
    assert [s.name for s in snaps] == ["it-00000002", "it-00000003"]
    assert result.snapshot == str(snaps[-1])
    model, meta = load_model(model_dir, device="cpu")
    assert not model.training
    assert meta["arch"] == "lite" and meta["input_size"] == 64 and meta["coverage"] == 1.0
    assert meta["iteration"] == 3
    state = json.loads((snaps[-1] / STATE_FILE).read_text())
    assert meta["model_id"] == state["model_id"] and len(meta["model_id"]) == 12
    # each side carries its face set's mean identity (what convert and eval compare faces to)
    for side, faceset in (("a", faceset_woman), ("b", faceset_man)):
        emb = meta["identities"][side]["mean_embedding"]
        with FaceSet.open(faceset) as fs:
            expected = fs.mean_embedding()
        assert expected is not None and emb is not None and len(emb) == 128
        np.testing.assert_allclose(emb, expected, atol=1e-6)
    # the same, read without torch (what eval uses)
    mm = ModelMeta.read(model_dir)
    assert (mm.arch, mm.iteration, mm.model_id) == ("lite", 3, meta["model_id"])
    assert mm.snapshot == snaps[-1] and mm.coverage == 1.0
    np.testing.assert_allclose(mm.mean_embedding("b"), meta["identities"]["b"]["mean_embedding"])
    assert meta["identities"]["a"]["faces"] > 0
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64), "b")
    assert out.shape == (1, 3, 64, 64)
    # The weights are exactly the ones trained.
    from facetwin.train.trainer import weights_digest

    assert weights_digest(model) == result.digest


def test_optimizer_state_round_trips_exactly():
    torch.manual_seed(0)
    model = build_model("lite")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    model(torch.rand(2, 3, 64, 64), "a").mean().backward()
    opt.step()
    tensors, meta = flatten_optimizer(opt.state_dict())
    assert all(k.startswith("state.") for k in tensors)
    meta = json.loads(json.dumps(meta))  # it really is JSON
    back = unflatten_optimizer(tensors, meta)
    orig = opt.state_dict()
    assert back["param_groups"] == orig["param_groups"]
    for pid, entry in orig["state"].items():
        for name, value in entry.items():
            assert torch.equal(back["state"][pid][name], value), (pid, name)
            assert back["state"][pid][name].dtype == value.dtype


def test_corrupt_checkpoint_is_a_clear_input_error(trained, tmp_path):
    model_dir = copy_of(trained, tmp_path)
    weights = list_snapshots(model_dir)[-1] / MODEL_FILE
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(InputError, match="corrupt \\(checksum mismatch\\)"):
        load_model(model_dir, device="cpu")
    with pytest.raises(InputError, match="corrupt"):
        train(TrainConfig(model_dir=str(model_dir), iterations=4), progress=False)
    state = list_snapshots(model_dir)[-1] / STATE_FILE
    state.write_text(state.read_text()[:100])
    with pytest.raises(InputError, match="state .* is corrupt"):
        load_model(model_dir, device="cpu")
    with pytest.raises(InputError, match="no trained model"):
        load_model(tmp_path, device="cpu")


def test_wrong_architecture_is_a_model_mismatch(trained, tmp_path):
    model_dir = copy_of(trained, tmp_path)
    snap = list_snapshots(model_dir)[-1]
    with pytest.raises(ModelMismatchError, match="holds a 'lite' model, not 'original'"):
        load_snapshot(snap, build_model("original"), "original")
    with pytest.raises(ModelMismatchError, match="cannot continue as 'original'"):
        train(TrainConfig(model_dir=str(model_dir), arch="original"), progress=False)
    # A snapshot whose label says original but whose tensors are lite's.
    state = snap / STATE_FILE
    doc = json.loads(state.read_text())
    doc["arch"] = "original"
    state.write_text(json.dumps(doc))
    with pytest.raises(ModelMismatchError, match="does not fit this architecture"):
        load_model(model_dir, device="cpu")


def test_model_dir_alone_resumes(trained, tmp_path):
    model_dir = copy_of(trained, tmp_path)
    result = train(TrainConfig(model_dir=str(model_dir), iterations=4), progress=False)
    assert (result.start_iteration, result.iterations) == (3, 4)
    saved = json.loads((model_dir / "config.json").read_text())
    assert saved["arch"] == "lite" and saved["iterations"] == 4 and saved["batch"] == 2
    again = train(TrainConfig(model_dir=str(model_dir)), progress=False)
    assert again.stopped == "done" and again.iterations == 4


def test_restored_adam_state_takes_the_channels_last_layout(trained, tmp_path):
    # CUDA trains channels_last; fused Adam there refuses NCHW moments for channels_last
    # parameters, which is what a snapshot (contiguous tensors) gives back without the fix
    snap = latest_snapshot(trained[0])
    torch.manual_seed(0)
    model = build_model("lite").to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    load_snapshot(snap, model, "lite", opt)
    conv = [p for p in model.parameters() if p.ndim == 4]
    assert conv and all(not p.is_contiguous() for p in conv)
    for p in model.parameters():
        for k in ("exp_avg", "exp_avg_sq"):
            assert opt.state[p][k].stride() == p.stride(), k
    # and a channels_last run resumes through train()
    model_dir = copy_of(trained, tmp_path)
    result = train(
        TrainConfig(model_dir=str(model_dir), iterations=5, channels_last=True), progress=False
    )
    assert (result.start_iteration, result.iterations, result.skipped_steps) == (3, 5, 0)
