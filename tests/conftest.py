"""Shared fixtures: the bundled real clips and photos, and face sets extracted from them once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facetwin.extract.pipeline import ExtractConfig, extract

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared" / "data"

WOMAN = DATA / "video" / "WolfgangLanger_Pexels.mp4"
MAN = DATA / "video" / "single_face.mp4"
MAN_NOFACE = DATA / "video" / "face_noface.mov"


def train_lite(faceset_a: Path, faceset_b: Path, model_dir: Path, iterations: int, **kw):  # type: ignore[no-untyped-def]
    """A short ``lite`` training for tests (one snapshot at the end, no preview, no workers);
    ``kw`` overrides any TrainConfig field."""
    from facetwin.train.trainer import TrainConfig, train

    cfg = dict(
        faceset_a=str(faceset_a), faceset_b=str(faceset_b), model_dir=str(model_dir),
        arch="lite", iterations=iterations, batch=8, workers=0, save_every=iterations,
        preview_every=0,
    )  # fmt: skip
    cfg.update(kw)
    return train(TrainConfig(**cfg), progress=False)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def faceset_woman(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Face set of the woman's clip (472 frames, every frame)."""
    out = tmp_path_factory.mktemp("fs") / "woman"
    extract([WOMAN], out, ExtractConfig(progress=False))
    return out


@pytest.fixture(scope="session")
def faceset_man(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Face set of the man: single_face.mp4 and the face part of face_noface.mov."""
    out = tmp_path_factory.mktemp("fs") / "man"
    extract([MAN, MAN_NOFACE], out, ExtractConfig(progress=False))
    return out


class FixedFace(torch.nn.Module):
    """Draws one real, sharp face (an aligned face of a face set) whatever comes in.

    The output then moves only as the conversion's geometry moves it, so re-detected landmarks
    measure placement jitter - what smoothing is for - free of a blurry model's noise.
    """

    def __init__(self, face: np.ndarray) -> None:
        super().__init__()
        self.face = torch.nn.Parameter(torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255)

    def forward(self, x: torch.Tensor, side: str) -> torch.Tensor:
        return self.face.expand(len(x), -1, -1, -1)
