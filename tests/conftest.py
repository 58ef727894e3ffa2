"""Shared fixtures: the bundled real clips and photos, and face sets extracted from them once."""

from __future__ import annotations

from pathlib import Path

import pytest

from facetwin.extract.pipeline import ExtractConfig, extract

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared" / "data"

WOMAN = DATA / "video" / "WolfgangLanger_Pexels.mp4"
MAN = DATA / "video" / "single_face.mp4"
MAN_NOFACE = DATA / "video" / "face_noface.mov"


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
