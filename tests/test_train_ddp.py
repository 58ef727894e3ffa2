"""DistributedDataParallel: two CPU processes (gloo) launched by torchrun stay bit-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from facetwin.train import read_loss_log
from facetwin.train.checkpoint import list_snapshots

RANK_SCRIPT = """
import json, os, sys
from dataclasses import asdict
from facetwin.train import TrainConfig, train
cfg, out = json.loads(sys.argv[1]), sys.argv[2]
result = train(TrainConfig(**cfg), progress=False)
with open(os.path.join(out, f"rank{os.environ['RANK']}.json"), "w") as f:
    json.dump(asdict(result), f)
"""


@pytest.mark.slow
def test_two_gloo_ranks_end_with_identical_weights(tmp_path, faceset_woman, faceset_man):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    cfg = dict(
        faceset_a=str(faceset_woman), faceset_b=str(faceset_man),
        model_dir=str(tmp_path / "model"), arch="lite", batch=2, iterations=4, save_every=2,
        preview_every=0, log_every=1, workers=0, device="cpu", seed=2,
    )  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(script), json.dumps(cfg), str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["iterations"] == ranks[1]["iterations"] == 4
    assert ranks[0]["digest"] == ranks[1]["digest"]  # gradients averaged: same weights
    assert ranks[0]["loss_a"] != ranks[1]["loss_a"]  # but each rank saw its own faces
    assert ranks[0]["samples_per_s"] > 0
    # Only rank 0 writes: one log line per iteration, snapshots at 2 and 4.
    assert [r["iteration"] for r in read_loss_log(tmp_path / "model")] == [1, 2, 3, 4]
    assert [s.name for s in list_snapshots(tmp_path / "model")] == ["it-00000002", "it-00000004"]
