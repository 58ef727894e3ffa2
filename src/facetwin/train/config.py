"""What a training run is: its settings (:class:`TrainConfig`), how they are checked and
merged with a saved run's on resume, and what a run reports (:class:`TrainResult`).

Kept apart from the loop (:mod:`facetwin.train.trainer`) so that the CLI, the demo and the
benchmarks can build, check and read configurations without the run's machinery.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from facetwin.device import resolve_device
from facetwin.errors import (
    InputError,
    ModelMismatchError,
    UsageError,
)
from facetwin.faceset import FaceSet
from facetwin.train.augment import AugmentConfig
from facetwin.train.gan import GanLossConfig
from facetwin.train.losses import parse_loss
from facetwin.train.models import arch_info
from facetwin.train.schedule import LrSchedule

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
LOSS_LOG = "loss.jsonl"
PREVIEW_FILE = "preview.png"
AMP_CHOICES = ("auto", "off", "bf16", "fp16")
MASK_CHOICES = ("components", "extended")
MAX_BAD_STEPS = 10  # consecutive non-finite losses before giving up
# Fields that only steer this session; changing them on resume is routine and not logged.
SESSION_FIELDS = frozenset(
    {
        "iterations",
        "minutes",
        "device",
        "workers",
        "save_every",
        "save_minutes",
        "preview_every",
        "log_every",
        "keep",
        "amp",
        "channels_last",
        "faceset_a",
        "faceset_b",
    }
)


@dataclass
class TrainConfig:
    """Everything a training run needs. ``model_dir`` alone resumes the run saved there.

    arch and coverage define the model: None means "original" / the architecture's default
    coverage for a new model and the saved value when resuming (a different explicit value is
    a ModelMismatchError). Every other field left at its default takes the saved value on
    resume; one set to something else overrides it (logged, except for session fields).

    iterations is the total to reach (a resumed run continues to it); minutes bounds this
    session's wall time; with neither, training runs until Ctrl-C. amp: "auto" is bf16 autocast
    on CUDA GPUs that have it (else fp16 with a GradScaler) and fp32 elsewhere; "bf16" also
    works on CPUs. channels_last: None chooses it on CUDA only.
    """

    faceset_a: str | None = None
    faceset_b: str | None = None
    model_dir: str = ""
    arch: str | None = None
    batch: int = 16  # per identity (and per process under DDP)
    iterations: int | None = None
    minutes: float | None = None
    device: str = "auto"
    lr: float = 5e-5
    betas: tuple[float, float] = (0.5, 0.999)
    schedule: LrSchedule = field(default_factory=LrSchedule)  # of lr over the iterations
    holdout: float = 0.0  # last fraction of each clip's face frames kept out of training
    coverage: float | None = None
    loss: str = "l1"
    emphasis: float = 0.0  # extra weight over eyes and mouth: 3.0 makes them count 4x
    mask: str = "extended"  # face mask kind for the mask_l1 loss
    save_every: int = 500  # a snapshot every this many iterations
    save_minutes: float = 5.0  # and at least every this many minutes (0: by iterations only)
    preview_every: int = 250  # 0: no preview
    log_every: int = 10
    keep: int = 3
    seed: int = 0
    workers: int = 2
    amp: str = "auto"
    channels_last: bool | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # last fraction of ``iterations`` trained without the random warp (DeepFaceLab's late
    # "random warp off"): the warp's ambiguity is what an L1 model averages into blur
    warp_off: float = 0.0
    gan: GanLossConfig = field(default_factory=GanLossConfig)  # the gan arch's loss weights

    def __post_init__(self) -> None:
        # Accept the JSON shapes too (lists, nested dicts), so TrainConfig(**json) round-trips.
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        self.augment = _nested(AugmentConfig, self.augment)
        self.gan = _nested(GanLossConfig, self.gan)
        self.schedule = _nested(LrSchedule, self.schedule)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TrainConfig:
        """Build from saved JSON, ignoring keys a newer facetwin may have added."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


def _nested(cls: Any, value: Any) -> Any:
    """A nested config from its saved JSON dict (keys a newer facetwin added are ignored)."""
    if not isinstance(value, dict):
        return value
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in value.items() if k in known})


@dataclass
class TrainResult:
    """What a finished (or time-limited) session did."""

    model_dir: str
    arch: str
    start_iteration: int
    iterations: int  # completed iterations in total (including earlier sessions)
    loss_a: float | None
    loss_b: float | None
    seconds: float
    samples_per_s: float
    data_wait_share: float  # fraction of the loop spent waiting for batches
    stopped: str  # "iterations", "minutes" or "done" (the target was already reached)
    snapshot: str | None
    skipped_steps: int = 0
    digest: str = ""  # sha256 of the final weights (equal on every DDP rank)


# -- configuration -----------------------------------------------------------------------------
def validate(cfg: TrainConfig) -> None:
    """UsageError for settings no run can use."""
    checks = [
        (cfg.batch >= 1, "--batch must be >= 1"),
        (cfg.lr > 0 and all(0 <= b < 1 for b in cfg.betas), "need lr > 0 and 0 <= betas < 1"),
        (cfg.iterations is None or cfg.iterations >= 0, "--iterations must be >= 0"),
        (cfg.minutes is None or cfg.minutes > 0, "--minutes must be > 0"),
        (cfg.save_every >= 1 and cfg.log_every >= 1, "save/log intervals must be >= 1"),
        (cfg.save_minutes >= 0, "--save-minutes must be >= 0 (0: save by iterations only)"),
        (cfg.preview_every >= 0 and cfg.keep >= 1, "need --preview-every >= 0 and --keep >= 1"),
        (cfg.workers >= 0, "--workers must be >= 0"),
        (cfg.amp in AMP_CHOICES, f"--amp must be one of {', '.join(AMP_CHOICES)}"),
        (cfg.mask in MASK_CHOICES, f"--mask must be one of {', '.join(MASK_CHOICES)}"),
        (cfg.coverage is None or 0.5 <= cfg.coverage <= 4.0, "need 0.5 <= --coverage <= 4"),
        (0 <= cfg.holdout < 1, "need 0 <= --holdout < 1"),
        (0 <= cfg.warp_off < 1, "need 0 <= --warp-off < 1"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UsageError(msg)
    arch_info(cfg.arch or "original")
    parse_loss(cfg.loss, cfg.emphasis)
    cfg.schedule.check()


def read_saved_config(model_dir: Path) -> TrainConfig | None:
    path = model_dir / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        return TrainConfig.from_json(json.loads(path.read_text()))
    except (OSError, json.JSONDecodeError, TypeError) as e:
        raise InputError(f"{path} is not a readable training config ({e})") from None


def resolve_config(cfg: TrainConfig) -> TrainConfig:
    """Merge ``cfg`` with the config saved in its model_dir (see :class:`TrainConfig`)."""
    if not cfg.model_dir:
        raise UsageError("a model directory is required")
    saved = read_saved_config(Path(cfg.model_dir))
    if saved is None:
        if not (cfg.faceset_a and cfg.faceset_b):
            raise UsageError(
                f"{cfg.model_dir} holds no training run; a new one needs face sets A and B"
            )
        arch = cfg.arch or "original"
        if cfg.arch is None:
            _warn_original_on_cpu(cfg.device)
        out = replace(
            cfg,
            arch=arch,
            coverage=cfg.coverage or arch_info(arch).default_coverage,
            faceset_a=_absolute(cfg.faceset_a),
            faceset_b=_absolute(cfg.faceset_b),
        )
        validate(out)
        check_distinct(out)
        return out
    for name in ("arch", "coverage"):
        new, old = getattr(cfg, name), getattr(saved, name)
        if new is not None and new != old:
            raise ModelMismatchError(
                f"{cfg.model_dir} holds a model with {name} {old!r}; it cannot continue as "
                f"{new!r} (use a new model directory)"
            )
    default = TrainConfig()
    merged: dict[str, Any] = {
        "model_dir": cfg.model_dir,
        "arch": saved.arch,
        "coverage": saved.coverage,
    }
    for f in fields(TrainConfig):
        if f.name in merged:
            continue
        new, old = getattr(cfg, f.name), getattr(saved, f.name)
        if new == getattr(default, f.name) or new == old:
            merged[f.name] = old
        else:
            if f.name not in SESSION_FIELDS:
                log.warning("resuming with %s=%r instead of the saved %r", f.name, new, old)
            merged[f.name] = new
    out = replace(
        TrainConfig(**merged),
        faceset_a=_absolute(merged["faceset_a"]),
        faceset_b=_absolute(merged["faceset_b"]),
    )
    validate(out)
    check_distinct(out)
    return out


def check_distinct(cfg: TrainConfig) -> None:
    """UsageError if face sets A and B are one folder, however the two paths are spelled
    (relative, ``..``, a symlink, a bind mount)."""
    a, b = cfg.faceset_a, cfg.faceset_b
    if not (a and b):
        return
    same = Path(a).resolve() == Path(b).resolve()
    if not same:
        try:
            same = os.path.samefile(a, b)
        except OSError:  # one of them is missing: the face set check says so
            same = False
    if same:
        raise UsageError(
            f"face sets A and B are the same folder ({a}); train on two people's face sets"
        )


def check_facesets(cfg: TrainConfig) -> None:
    """InputError unless both face sets open (cheap: the database only, not the faces)."""

    for side, path in (("A", cfg.faceset_a), ("B", cfg.faceset_b)):
        if not path:
            raise UsageError(f"face set {side} is not set")
        FaceSet.open(path).close()


def _warn_original_on_cpu(device: str) -> None:
    """Say what the default architecture costs where it cannot finish in reasonable time."""

    if resolve_device(device) != "cpu":
        return
    log.warning(
        "no --arch given: training 'original' (82 M parameters, ~1 GB snapshots) on a CPU takes "
        "tens of seconds an iteration and days to a usable swap; on a CPU use --arch lite-hd "
        "--batch 8 --lr 5e-4 --schedule cosine --warmup 100 --loss l1+ssim_half --iterations "
        "2000 (the demo's recipe, ~5 minutes on 2 cores)"
    )


def _absolute(path: str | None) -> str | None:
    """Face set paths are saved absolute, so ``model_dir`` alone resumes from any directory."""
    return None if path is None else str(Path(path).expanduser().resolve())
