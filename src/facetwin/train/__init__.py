"""``facetwin train``: a shared-encoder face-swap autoencoder trained on two face sets.

Public API (the CLI wraps it): :class:`TrainConfig`, :func:`train` -> :class:`TrainResult`, and
:func:`load_model` for the convert stage. Architectures are plugins in
:mod:`facetwin.train.models` (``original``, ``lite``, ``original128``, ``gan``, ``gan-lite``).
"""

from __future__ import annotations

from facetwin.train.augment import AugmentConfig
from facetwin.train.checkpoint import load_model
from facetwin.train.config import TrainConfig, TrainResult
from facetwin.train.models import ARCHITECTURES, arch_info, build_model, swap
from facetwin.train.preview import read_loss_log
from facetwin.train.trainer import train

__all__ = [
    "ARCHITECTURES",
    "AugmentConfig",
    "TrainConfig",
    "TrainResult",
    "arch_info",
    "build_model",
    "load_model",
    "read_loss_log",
    "swap",
    "train",
]
