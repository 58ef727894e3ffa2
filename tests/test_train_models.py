"""Architecture pins: ``original`` must stay the 2017 deepfakes autoencoder, layer for layer."""

from __future__ import annotations

import pytest
import torch

from facetwin.errors import UsageError
from facetwin.train.models import ARCHITECTURES, arch_info, build_model, forward_flops, swap


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def layer_shapes(model: torch.nn.Module, x: torch.Tensor, side: str) -> list[tuple]:
    """(layer type, output shape) of every leaf module, in call order."""
    seen: list[tuple] = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.append((type(m).__name__, tuple(o.shape))))
        for m in model.modules()
        if not list(m.children())
    ]
    with torch.no_grad():
        model(x, side)
    for h in hooks:
        h.remove()
    return seen


def test_registry_lists_plugins_with_metadata():
    assert {"original", "lite"} <= set(ARCHITECTURES.names())
    info = arch_info("original")
    assert (info.input_size, info.output_size, info.default_coverage) == (64, 64, 1.0)
    with pytest.raises(UsageError, match="unknown architecture 'nope'"):
        arch_info("nope")


def test_original_is_pinned():
    torch.manual_seed(0)
    model = build_model("original")
    assert n_params(model) == 82_062_470  # 82.06 M with both decoders
    assert n_params(model.encoder) == 69_662_976
    assert n_params(model.decoders["a"]) == n_params(model.decoders["b"]) == 6_199_747
    conv_shapes = [
        tuple(m.weight.shape) for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)
    ]
    assert conv_shapes[:4] == [(128, 3, 5, 5), (256, 128, 5, 5), (512, 256, 5, 5),
                               (1024, 512, 5, 5)]  # fmt: skip
    x = torch.rand(2, 3, 64, 64)
    shapes = layer_shapes(model, x, "a")
    assert shapes == [
        ("Conv2d", (2, 128, 32, 32)), ("LeakyReLU", (2, 128, 32, 32)),
        ("Conv2d", (2, 256, 16, 16)), ("LeakyReLU", (2, 256, 16, 16)),
        ("Conv2d", (2, 512, 8, 8)), ("LeakyReLU", (2, 512, 8, 8)),
        ("Conv2d", (2, 1024, 4, 4)), ("LeakyReLU", (2, 1024, 4, 4)),
        ("Flatten", (2, 16384)), ("Linear", (2, 1024)), ("Linear", (2, 16384)),
        ("Unflatten", (2, 1024, 4, 4)),
        ("Conv2d", (2, 2048, 4, 4)), ("LeakyReLU", (2, 2048, 4, 4)),
        ("PixelShuffle", (2, 512, 8, 8)),
        ("Conv2d", (2, 1024, 8, 8)), ("LeakyReLU", (2, 1024, 8, 8)),
        ("PixelShuffle", (2, 256, 16, 16)),
        ("Conv2d", (2, 512, 16, 16)), ("LeakyReLU", (2, 512, 16, 16)),
        ("PixelShuffle", (2, 128, 32, 32)),
        ("Conv2d", (2, 256, 32, 32)), ("LeakyReLU", (2, 256, 32, 32)),
        ("PixelShuffle", (2, 64, 64, 64)),
        ("Conv2d", (2, 3, 64, 64)),
    ]  # fmt: skip
    leaky = [m for m in model.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert all(m.negative_slope == 0.1 for m in leaky)
    with torch.no_grad():
        out = model(x, "b")
    assert out.shape == (2, 3, 64, 64)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_lite_same_layout_fewer_channels():
    model = build_model("lite")
    assert n_params(model) == 7_234_598
    x = torch.rand(1, 3, 64, 64)
    assert model.encoder(x).shape == (1, 128, 8, 8)
    assert [t for t, _ in layer_shapes(model, x, "a")] == [
        t for t, _ in layer_shapes(build_model("original"), x, "a")
    ]


def test_flop_count_and_swap_helper():
    assert sum(forward_flops(build_model("original").spec).values()) == 3_800_301_568
    assert sum(forward_flops(build_model("lite").spec).values()) == 252_772_352
    torch.manual_seed(1)
    model = build_model("lite").eval()
    faces = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(swap(model, faces, "a2b"), model(faces, "b"))
        assert torch.equal(swap(model, faces, "b2a"), model(faces, "a"))
        assert torch.equal(model.swap(faces, "a2b"), model(faces, "b"))
        pa, pb = model.forward_pair(faces, faces)
        assert torch.allclose(pa, model(faces, "a"), atol=1e-6)
    with pytest.raises(ValueError):
        swap(model, faces, "sideways")


@pytest.mark.parametrize("arch", ["original", "lite"])
def test_flop_count_matches_torchs_own_counter(arch):
    """The per-layer count that bench_train turns into FLOP/s is what torch's FlopCounterMode
    counts for the same forward, and forward + backward is ~3x it (so a share of a peak above
    100 % would mean a wrong peak, not a wrong count)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(arch)
    x = torch.rand(2, 3, 64, 64)
    with FlopCounterMode(display=False) as forward:
        model(x, "a")
    counted = forward.get_total_flops() / 2
    assert counted == sum(forward_flops(model.spec).values())
    with FlopCounterMode(display=False) as both:
        (model(x, "a") - x).abs().mean().backward()
    assert 2.9 < both.get_total_flops() / 2 / counted < 3.0
