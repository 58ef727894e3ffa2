"""What a run leaves for a person to look at: the preview grid (rows A, A->A, A->B, B, B->B,
B->A) and the loss log (one JSON line per logged iteration), with the helpers that read them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from facetwin.media.files import atomic_write_bytes
from facetwin.train.config import LOSS_LOG
from facetwin.train.models import SwapAutoencoder
from facetwin.train.step import (
    Precision,
    autocast,
    to_images,
)


def preview_grid(
    model: SwapAutoencoder,
    faces: dict[str, torch.Tensor],
    device: torch.device,
    precision: Precision,
    channels_last: bool,
    title: str,
    scale: int = 2,
) -> np.ndarray:
    """RGB uint8 grid: rows A, A->A, A->B, B, B->B, B->A; one column per fixed face.

    A header line marks the image as synthetic, as every facetwin output is.
    """
    rows = []
    size = model.input_size()
    with torch.no_grad(), autocast(device, precision):
        for side, other in (("a", "b"), ("b", "a")):
            face = to_images(faces[side], device, channels_last)  # at the output size
            x = face if face.shape[-1] == size else F.interpolate(face, size=size, mode="area")
            for img in (face, model.draw(x, side), model.draw(x, other)):
                tiles = (img.float().clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu()
                rows.append(np.hstack(list(tiles.numpy())))
    # a face set with fewer faces than preview columns gives a shorter row: pad it with white
    width = max(r.shape[1] for r in rows)
    grid = np.vstack(
        [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    )
    grid = cv2.resize(grid, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    header = np.full((22, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([header, grid])


def truncate_log(path: Path, iteration: int) -> None:
    """Drop log lines past ``iteration`` (written after the snapshot a resume starts from)."""
    if not path.is_file():
        return

    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["iteration"] <= iteration:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut short by a crash
    atomic_write_bytes(path, "".join(k + "\n" for k in kept).encode())


def read_loss_log(model_dir: str | Path) -> list[dict[str, Any]]:
    """The loss log of a model directory as a list of dicts (empty if none)."""
    path = Path(model_dir) / LOSS_LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
