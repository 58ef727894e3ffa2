"""DistributedDataParallel: two CPU processes (gloo) launched by torchrun stay bit-identical,
for the plain architectures and for the GAN (generator and both discriminators)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from facetwin.train import read_loss_log
from facetwin.train.checkpoint import aux_file, latest_snapshot, list_snapshots, load_model
from facetwin.train.trainer import weights_digest

RANK_SCRIPT = """
import json, os, sys
from dataclasses import asdict
from facetwin.train import TrainConfig, train
cfg, out = json.loads(sys.argv[1]), sys.argv[2]
result = train(TrainConfig(**cfg), progress=False)
with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as f:
    json.dump(asdict(result), f)
"""

# The GAN's rank also reports its discriminators (they are not in TrainResult): the step is
# caught as the trainer builds it, and its weights are hashed before and after training.
GAN_RANK_SCRIPT = """
import hashlib, json, os, sys
from dataclasses import asdict
import facetwin.train.gan as gan
from facetwin.train import TrainConfig, train
from facetwin.train.trainer import weights_digest

def tensors_digest(tensors):
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

steps, init = [], gan.GanStep.__init__
def caught(self, *args, **kw):
    init(self, *args, **kw)
    self.start = [weights_digest(self.model), tensors_digest(self.discriminators.state_dict())]
    steps.append(self)
gan.GanStep.__init__ = caught
cfg, out = json.loads(sys.argv[1]), sys.argv[2]
result = train(TrainConfig(**cfg), progress=False)
(step,) = steps
report = {
    **asdict(result),
    "start": step.start,
    "d_digest": tensors_digest(step.discriminators.state_dict()),
    "wrapped": [type(step.generator).__name__, type(step.judge).__name__],
}
with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as f:
    json.dump(report, f)
"""


def tensors_digest(tensors) -> str:
    """The GAN script's hash of a state dict (keys sorted: safetensors does not keep order)."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def run_two_ranks(tmp_path: Path, script: str, cfg: dict) -> list[dict]:
    """``script`` under ``torchrun --standalone --nproc_per_node 2`` (gloo on the CPU); each
    rank's JSON report."""
    path = tmp_path / "rank.py"
    path.write_text(script)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(path), json.dumps(cfg), str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_two_gloo_ranks_end_with_identical_weights(tmp_path, faceset_woman, faceset_man):
    cfg = dict(
        faceset_a=str(faceset_woman), faceset_b=str(faceset_man),
        model_dir=str(tmp_path / "model"), arch="lite", batch=2, iterations=4, save_every=2,
        preview_every=0, log_every=1, workers=0, device="cpu", seed=2,
    )  # fmt: skip
    ranks = run_two_ranks(tmp_path, RANK_SCRIPT, cfg)
    assert ranks[0]["iterations"] == ranks[1]["iterations"] == 4
    assert ranks[0]["digest"] == ranks[1]["digest"]  # gradients averaged: same weights
    assert ranks[0]["loss_a"] != ranks[1]["loss_a"]  # but each rank saw its own faces
    assert ranks[0]["samples_per_s"] > 0
    # Only rank 0 writes: one log line per iteration, snapshots at 2 and 4.
    assert [r["iteration"] for r in read_loss_log(tmp_path / "model")] == [1, 2, 3, 4]
    assert [s.name for s in list_snapshots(tmp_path / "model")] == ["it-00000002", "it-00000004"]


@pytest.mark.slow
def test_gan_under_two_gloo_ranks_ends_with_identical_generator_and_discriminators(
    tmp_path, faceset_woman, faceset_man
):
    # adversarial weight from iteration 1 on, so the generator's gradient also passes through
    # the discriminators; the identity term (a frozen network) is off to keep the test short
    gan = dict(identity=0, adversarial_warmup=1)
    cfg = dict(
        faceset_a=str(faceset_woman), faceset_b=str(faceset_man),
        model_dir=str(tmp_path / "model"), arch="gan-lite", batch=2, iterations=3,
        save_every=2, preview_every=0, log_every=1, workers=0, device="cpu", seed=3, gan=gan,
    )  # fmt: skip
    ranks = run_two_ranks(tmp_path, GAN_RANK_SCRIPT, cfg)
    assert [r["wrapped"] for r in ranks] == [["DistributedDataParallel"] * 2] * 2
    assert ranks[0]["iterations"] == ranks[1]["iterations"] == 3
    assert ranks[0]["skipped_steps"] == ranks[1]["skipped_steps"] == 0
    # both ranks start from the same weights and end on the same, other ones
    assert ranks[0]["start"] == ranks[1]["start"]
    assert ranks[0]["digest"] == ranks[1]["digest"] != ranks[0]["start"][0]  # generator
    assert ranks[0]["d_digest"] == ranks[1]["d_digest"] != ranks[0]["start"][1]  # discriminators
    assert ranks[0]["loss_a"] != ranks[1]["loss_a"]  # each rank trained on its own faces
    # rank 0's snapshot holds those weights, under the bare modules' keys
    log = read_loss_log(tmp_path / "model")
    assert [r["iteration"] for r in log] == [1, 2, 3] and log[-1]["w_adversarial"] > 0
    model, meta = load_model(tmp_path / "model", "cpu")
    assert meta["iteration"] == 3 and weights_digest(model) == ranks[0]["digest"]
    discs = load_file(latest_snapshot(tmp_path / "model") / aux_file("discriminators"))
    assert tensors_digest(discs) == ranks[0]["d_digest"]  # the bare modules' keys, no "module."
