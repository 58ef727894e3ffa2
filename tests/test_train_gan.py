"""The ``original128`` and ``gan`` architectures and the GAN losses / step, on real faces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facetwin.errors import UsageError
from facetwin.extract.face_resnet import FaceResNet
from facetwin.face.align import recrop
from facetwin.faceset import FaceSet
from facetwin.train.augment import AugmentConfig
from facetwin.train.data import PairDataset, load_bank
from facetwin.train.gan import (
    GanLossConfig,
    GanStep,
    PatchDiscriminator,
    d_loss,
    generator_terms,
)
from facetwin.train.models import arch_info, build_model, forward_flops
from facetwin.train.models.base import AutoencoderSpec
from facetwin.train.models.gan import GanSwap
from facetwin.train.models.original128 import original_spec

# quarter-width gan for the CPU-bound tests (the registered one is ~82 M parameters)
SMALL = AutoencoderSpec(
    input_size=64,
    encoder_filters=(16, 32, 64, 128),
    encoder_dim=128,
    bottleneck_filters=64,
    encoder_upscale=64,
    decoder_filters=(32, 16, 16),
)
TERMS = (
    "recon", "self_recon", "adversarial", "identity", "mask_l1", "mask_tv", "mask_prior", "colour"
)  # fmt: skip


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def real_faces(path, n: int, size: int, coverage: float) -> torch.Tensor:
    """``n`` faces spread over the set, (n, 3, size, size) float in [0, 1]."""
    with FaceSet.open(path) as fs:
        recs = fs.faces()
        picks = [recs[i] for i in np.linspace(0, len(recs) - 1, n).astype(int)]
        crops = [recrop(fs.load_aligned(r), fs.coverage, coverage, size) for r in picks]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255


@pytest.fixture(scope="module")
def face_net() -> FaceResNet:
    return FaceResNet.from_dlib()


def test_original128_shapes_and_pinned_size(faceset_woman):
    info = arch_info("original128")
    assert (info.input_size, info.output_size, info.default_coverage) == (128, 128, 1.5)
    torch.manual_seed(0)
    model = build_model("original128")
    assert n_params(model) == 82_405_446  # 82.41 M with both decoders
    assert n_params(model.encoder) == 69_863_040
    assert n_params(model.decoders["a"]) == n_params(model.decoders["b"]) == 6_271_203
    assert model.spec.encoder_filters == (64, 128, 256, 512, 1024)
    assert model.spec.decoder_filters == (256, 128, 64, 32)
    assert sum(forward_flops(model.spec).values()) == 4_882_694_144
    # the factory reproduces ``original`` at 64 px and scales on
    assert original_spec(64) == build_model("original").spec
    assert original_spec(256).output_size == 256
    with pytest.raises(ValueError):
        original_spec(96)
    x = real_faces(faceset_woman, 2, 128, 1.5)
    with torch.no_grad():
        out = model(x, "b")
    assert out.shape == (2, 3, 128, 128)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_gan_arch_shapes_masks_and_convert_compatibility(faceset_man):
    info = arch_info("gan")
    assert (info.input_size, info.output_size) == (64, 64)
    torch.manual_seed(0)
    model = build_model("gan")
    assert isinstance(model, GanSwap)
    assert n_params(model) == 82_213_384
    assert model.decoders["a"].out.out_channels == 4
    x = real_faces(faceset_man, 2, 64, 1.0)
    with torch.no_grad():
        rgb, alpha = model.forward_rgba(x, "a")
        plain = model(x, "a")
        swapped = model.swap(x, "a2b")
        pa, pb = model.forward_pair(x, x)
    assert rgb.shape == plain.shape == swapped.shape == pa.shape == pb.shape == (2, 3, 64, 64)
    assert alpha.shape == (2, 1, 64, 64)
    assert torch.equal(plain, rgb)  # forward is the raw RGB, as convert expects
    assert torch.allclose(pa, rgb, atol=1e-5)
    for t in (rgb, alpha):
        assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    comp = model.composite(x, rgb, alpha)
    assert torch.allclose(comp, alpha * rgb + (1 - alpha) * x)
    assert torch.allclose(model.composite(x, rgb, torch.zeros_like(alpha)), x)
    assert torch.allclose(model.composite(x, rgb, torch.ones_like(alpha)), rgb)
    # convert and the preview paste the composite through the predicted mask
    with torch.no_grad():
        rgb_b, alpha_b = model.forward_rgba(x, "b")
        assert torch.allclose(swapped, model.composite(x, rgb_b, alpha_b), atol=1e-6)
        assert torch.allclose(model.draw(x, "a"), comp, atol=1e-6)


def test_each_term_reaches_the_generator_and_adversarial_the_discriminator(faceset_woman, face_net):
    torch.manual_seed(1)
    model = GanSwap(SMALL)
    disc = PatchDiscriminator()
    x = real_faces(faceset_woman, 2, 64, 1.0)
    target = x.flip(-1)  # any different real face image will do as a target
    last = model.decoders["a"].out.weight
    # one forward (the dlib net is the slow part); each term's backward on its own
    rgb, alpha = model.forward_rgba(x, "a")
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    face_mask = ((xx / 0.6) ** 2 + (yy / 0.8) ** 2 < 1).float().expand(2, 1, 64, 64)
    terms = generator_terms(model, disc, face_net, x, target, rgb, alpha, face_mask=face_mask)
    assert set(terms) == set(TERMS)
    for name in TERMS:
        model.zero_grad(set_to_none=True)
        assert math.isfinite(float(terms[name].detach())), name
        terms[name].backward(retain_graph=True)
        g = last.grad
        assert g is not None and torch.isfinite(g).all() and float(g.abs().sum()) > 0, name
    # the discriminator learns from its side of the adversarial loss: real vs (detached) fake
    disc.zero_grad(set_to_none=True)
    with torch.no_grad():
        rgb, alpha = model.forward_rgba(x, "a")
    fake = model.composite(x, rgb, alpha)
    for kind in ("lsgan", "hinge"):
        disc.zero_grad(set_to_none=True)
        d_loss(kind, disc(target), disc(fake)).backward()
        grads = [p.grad for p in disc.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0
    assert disc(x).shape == (2, 1, 8, 8)


def test_loss_config_warmup_and_validation():
    cfg = GanLossConfig(adversarial=0.2, identity=0.4, adversarial_warmup=100, identity_warmup=0)
    assert cfg.weights(0)["adversarial"] == 0.0
    assert cfg.weights(50)["adversarial"] == pytest.approx(0.1)
    assert cfg.weights(500)["adversarial"] == pytest.approx(0.2)
    assert cfg.weights(0)["identity"] == pytest.approx(0.4)
    assert set(cfg.weights(0)) == set(TERMS)
    with pytest.raises(UsageError):
        GanLossConfig(adversarial_kind="wgan")
    with pytest.raises(UsageError):
        GanLossConfig(identity_warmup=-1)


def test_gan_step_trains_generator_and_discriminators(faceset_woman, faceset_man, face_net):
    torch.manual_seed(2)
    banks = {}
    for side, path in (("a", faceset_woman), ("b", faceset_man)):
        with FaceSet.open(path) as fs:
            banks[side] = load_bank(fs, 64, 1.0)
    # batch 2: the identity term (dlib ResNet at 150 px) dominates a CPU step
    data = PairDataset(banks, batch=2, seed=0, augment_cfg=AugmentConfig())
    cfg = GanLossConfig(adversarial_kind="hinge", adversarial_warmup=2, identity_warmup=2)
    step = GanStep(GanSwap(SMALL), cfg, face_net=face_net, lr=1e-3, d_lr=1e-3)
    g_before = [p.detach().clone() for p in step.model.parameters()]
    d_before = [p.detach().clone() for p in step.discriminators.parameters()]
    history = []
    for i in range(3):
        batch = data[i]
        history.append(step.step(batch["a"], batch["b"]))
    assert step.iteration == 3
    first, last = history[0], history[-1]
    assert first["w_adversarial"] == 0.0 and "adversarial_a" not in first  # warm-up
    assert last["w_adversarial"] == pytest.approx(cfg.adversarial)
    for key in ("recon_a", "recon_b", "identity_a", "adversarial_b", "d_a", "d_b", "g_total"):
        assert math.isfinite(last[key]), key
    assert any(not torch.equal(a, p) for a, p in zip(g_before, step.model.parameters()))
    assert any(not torch.equal(a, p) for a, p in zip(d_before, step.discriminators.parameters()))
    # the state round-trips into a fresh step
    other = GanStep(GanSwap(SMALL), cfg)
    other.load_state_dict(step.state_dict())
    assert other.iteration == 3
    for p, q in zip(other.discriminators.parameters(), step.discriminators.parameters()):
        assert torch.equal(p, q)


# -- the trainer drives the GAN step ---------------------------------------------------------
def gan_cfg(faceset_a, faceset_b, model_dir, **kw):
    from facetwin.train import TrainConfig

    base = dict(
        faceset_a=str(faceset_a), faceset_b=str(faceset_b), model_dir=str(model_dir),
        arch="gan-lite", batch=4, preview_every=0, log_every=1, workers=0, device="cpu",
        seed=5, save_every=2,
        gan=GanLossConfig(adversarial_warmup=2, identity_warmup=2),
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def test_trainer_trains_gan_with_every_term_and_resumes_exactly(
    tmp_path, faceset_woman, faceset_man
):
    from facetwin.train import read_loss_log, train
    from facetwin.train.checkpoint import latest_snapshot, load_model, read_state

    straight = train(gan_cfg(faceset_woman, faceset_man, tmp_path / "s", iterations=4), False)
    assert straight.iterations == 4 and straight.skipped_steps == 0
    log = read_loss_log(tmp_path / "s")
    assert [r["iteration"] for r in log] == [1, 2, 3, 4]
    # every generator term and both discriminator losses are logged; the warm-ups ramp up
    for name in (*TERMS, "d"):
        for s in "ab":
            assert all(math.isfinite(r[f"{name}_{s}"]) for r in log[2:]), name
    assert log[0]["w_adversarial"] == 0 and log[-1]["w_adversarial"] == pytest.approx(0.1)
    assert log[-1]["loss_a"] == pytest.approx(log[-1]["recon_a"], abs=1e-6)
    # the snapshot holds the discriminators and their optimizer next to the generator
    doc = read_state(latest_snapshot(tmp_path / "s"))
    assert {"aux-discriminators.safetensors", "aux-d_optim.safetensors"} <= set(doc["files"])
    assert doc["config"]["gan"]["adversarial_warmup"] == 2

    # stopped after 2, resumed from the model dir alone: bit-identical to the straight run
    first = train(gan_cfg(faceset_woman, faceset_man, tmp_path / "r", iterations=2), False)
    assert first.iterations == 2
    from facetwin.train import TrainConfig

    resumed = train(TrainConfig(model_dir=str(tmp_path / "r"), iterations=4), False)
    assert resumed.start_iteration == 2 and resumed.digest == straight.digest
    log_r = read_loss_log(tmp_path / "r")
    assert [r["d_b"] for r in log_r] == [r["d_b"] for r in log]

    # convert loads it like any model and gets the composite through the predicted mask
    model, meta = load_model(tmp_path / "r", "cpu")
    assert meta["arch"] == "gan-lite" and isinstance(model, GanSwap)
    x = real_faces(faceset_woman, 2, 64, 1.0)
    with torch.no_grad():
        rgb, alpha = model.forward_rgba(x, "b")
        assert torch.allclose(model.swap(x, "a2b"), alpha * rgb + (1 - alpha) * x, atol=1e-6)


def test_gan_settings_parse_and_reject_bad_ones():
    cfg = GanLossConfig.parse("identity=0, adversarial=0.25,adversarial-kind=hinge,emphasis=1")
    assert (cfg.identity, cfg.adversarial, cfg.adversarial_kind, cfg.emphasis) == (
        0.0, 0.25, "hinge", 1.0,
    )  # fmt: skip
    assert GanLossConfig.parse("spectral_norm=false").spectral_norm is False
    assert GanLossConfig.parse("identity_warmup=7", cfg).identity_warmup == 7
    assert GanLossConfig.parse("identity_warmup=7", cfg).adversarial == 0.25  # keeps the base
    for bad in ("identity", "sharpness=1", "identity=x", "adversarial_kind=wgan", "colour=-1"):
        with pytest.raises(UsageError):
            GanLossConfig.parse(bad)
