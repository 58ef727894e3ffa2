"""dlib's weight file for the face-recognition ResNet: parsing it and copying it into the port.

Separate from the network (:mod:`facetwin.extract.face_resnet` and its blocks) because this is
dlib's storage format, not the model: it is read once, at load time, and the parser
(:func:`parse_dlib_net`) needs numpy only. :func:`plan_of` checks that the parsed layers have
the shape of dlib's face ResNet and :func:`load_layer_params` copies one parsed layer into the
matching torch module, checking every size.

The weight file is dlib's own binary serialization, parsed here (no dlib needed to load it):

* integers: one control byte (low nibble = byte count, bit 7 = negative), then little-endian
  bytes; floats: an integer mantissa and an integer exponent (value = m * 2**e);
* strings: an integer length then the bytes; bools: the characters ``'1'`` / ``'0'``;
* tensors (version 2): four integer dimensions then raw little-endian float32 data;
* the network is written outermost layer first, each wrapper writing its version number before
  recursing into its sub-network, so the file starts with the loss layer and a run of version
  numbers (2 for a computational layer, 1 for tag/skip layers, 3 for the layer on the input),
  then the input layer and each computational layer's parameters from the input upwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from facetwin.errors import InputError
from facetwin.extract.resnet_layers import Affine


@dataclass
class DlibLayer:
    """One computational layer of a dlib network as stored: its name, settings and parameters."""

    name: str
    settings: dict[str, int] = field(default_factory=dict)
    params: np.ndarray | None = None


@dataclass
class DlibNet:
    """What the weight file holds: input normalisation and the layers from the input upwards."""

    channel_means: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[DlibLayer]


class _Reader:
    """Sequential reader for dlib's ``serialize`` primitives; errors name the byte offset."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> InputError:
        return InputError(f"dlib model file: {what} at byte {self.pos}")

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail("unexpected end of file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def read_int(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size > 8:
            raise self.fail(f"bad integer control byte {control:#x}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def read_float(self) -> float:
        mantissa = self.read_int()
        exponent = self.read_int()
        return float(mantissa * 2.0**exponent)

    def read_string(self) -> str:
        n = self.read_int()
        if not 0 <= n < 1 << 16:
            raise self.fail(f"implausible string length {n}")
        return self._take(n).decode("latin-1")

    def read_bool(self) -> bool:
        c = self._take(1)
        if c not in (b"0", b"1"):
            raise self.fail(f"expected a bool ('0'/'1'), got {c!r}")
        return c == b"1"

    def read_version(self, *allowed: int) -> int:
        v = self.read_int()
        if v not in allowed:
            raise self.fail(f"unsupported serialization version {v} (expected {allowed})")
        return v

    def read_tensor(self) -> np.ndarray:
        self.read_version(2)
        shape = tuple(self.read_int() for _ in range(4))
        n = int(np.prod(shape))
        raw = self._take(4 * n)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def read_alias(self) -> tuple[int, ...]:
        """An alias_tensor: only the shape of a view into a params tensor (no data)."""
        self.read_version(1)
        return tuple(self.read_int() for _ in range(4))


def _read_layer(r: _Reader) -> DlibLayer:
    """One layer's details (the part each dlib layer class writes in its own ``serialize``)."""
    name = r.read_string()
    layer = DlibLayer(name)
    if name == "con_4":
        layer.params = r.read_tensor()
        conv_keys = ("filters", "nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x")
        layer.settings = {k: r.read_int() for k in conv_keys}
        filt, _bias = r.read_alias(), r.read_alias()
        layer.settings["in_channels"] = filt[1]
        for _ in range(4):  # learning-rate and weight-decay multipliers: training only
            r.read_float()
    elif name == "affine_":
        layer.params = r.read_tensor()
        r.read_alias(), r.read_alias()
        layer.settings = {"mode": r.read_int()}
    elif name in ("max_pool_2", "avg_pool_2"):
        pool_keys = ("nr", "nc", "stride_y", "stride_x", "pad_y", "pad_x")
        layer.settings = {k: r.read_int() for k in pool_keys}
    elif name == "fc_2":
        layer.settings = {"outputs": r.read_int(), "inputs": r.read_int()}
        layer.params = r.read_tensor()
        r.read_alias(), r.read_alias()
        layer.settings["bias_mode"] = r.read_int()
        for _ in range(4):
            r.read_float()
    elif name not in ("relu_", "add_prev_"):
        raise r.fail(f"unsupported layer {name!r}")
    return layer


def _read_layer_state(r: _Reader) -> None:
    """Skip what dlib's add_layer writes after its layer: three flags and three scratch tensors."""
    for _ in range(3):
        r.read_bool()
    for _ in range(3):
        if r.read_tensor().size:
            raise r.fail("expected an empty scratch tensor")


def parse_dlib_net(data: bytes) -> DlibNet:
    """Parse a serialized ``loss_metric`` network (dlib's face-recognition model format)."""
    r = _Reader(data)
    r.read_version(1)  # add_loss_layer
    loss = r.read_string()
    if not loss.startswith("loss_metric"):
        raise r.fail(f"expected a loss_metric network, found {loss!r}")
    r.read_float(), r.read_float()  # margin and distance threshold: training only
    wrappers = []
    while (v := r.read_version(1, 2, 3)) != 3:
        wrappers.append(v)
    if r.read_string() != "input_rgb_image_sized":
        raise r.fail("expected an input_rgb_image_sized input layer")
    means = (r.read_float(), r.read_float(), r.read_float())
    size = (r.read_int(), r.read_int())
    layers = [_read_layer(r)]
    _read_layer_state(r)
    r.read_int()  # sample expansion factor of the input
    while r.pos < len(data):
        layers.append(_read_layer(r))
        _read_layer_state(r)
    if len(layers) != wrappers.count(2) + 1:
        raise r.fail(f"{len(layers)} layers but {wrappers.count(2) + 1} layer wrappers")
    return DlibNet(means, size, layers)


# -- from parsed layers to the torch modules ----------------------------------------------------


def plan_of(layers: list[DlibLayer]) -> tuple[tuple[int, bool], ...]:
    """The residual-block plan of a parsed network, checking it has dlib's face-net shape."""
    names = [layer.name for layer in layers]
    stem = ["con_4", "affine_", "relu_", "max_pool_2"]
    head = ["avg_pool_2", "fc_2"]
    if names[:4] != stem or names[-2:] != head:
        raise InputError("dlib model file is not dlib's face-recognition ResNet (stem/head differ)")
    plan: list[tuple[int, bool]] = []
    i, body = 0, layers[4:-2]
    block = ["con_4", "affine_", "relu_", "con_4", "affine_"]
    while i < len(body):
        down = i + 5 < len(body) and body[i + 5].name == "avg_pool_2"
        want = block + (["avg_pool_2"] if down else []) + ["add_prev_", "relu_"]
        if [layer.name for layer in body[i : i + len(want)]] != want:
            raise InputError(f"dlib model file: unexpected layers at residual block {len(plan)}")
        first = body[i].settings
        stride = (first["stride_y"], first["stride_x"])
        if stride != ((2, 2) if down else (1, 1)) or (first["pad_y"], first["pad_x"]) != (
            (0, 0) if down else (1, 1)
        ):
            raise InputError(f"dlib model file: unexpected conv geometry in block {len(plan)}")
        plan.append((first["filters"], down))
        i += len(want)
    return tuple(plan)


def load_layer_params(module: nn.Module, layer: DlibLayer) -> None:
    """Copy one dlib layer's flat params into a torch module (dlib keeps weights then biases)."""
    assert layer.params is not None
    flat = torch.from_numpy(layer.params.reshape(-1).copy())
    if isinstance(module, nn.Conv2d) and layer.name == "con_4":
        s = layer.settings
        geometry = (s["filters"], s["in_channels"], s["nr"], s["nc"])
        want = (*module.weight.shape, *module.stride, *module.padding)
        got = (*geometry, s["stride_y"], s["stride_x"], s["pad_y"], s["pad_x"])
        n = module.weight.numel()
        if want != got or module.bias is None or flat.numel() != n + module.bias.numel():
            raise InputError(f"dlib conv {got} ({flat.numel()} params) does not fit {want}")
        module.weight.data.copy_(flat[:n].view_as(module.weight))
        module.bias.data.copy_(flat[n:])
    elif isinstance(module, Affine) and layer.name == "affine_":
        c = module.gamma.numel()
        if flat.numel() != 2 * c or layer.settings["mode"] != 0:
            raise InputError(f"dlib affine of {flat.numel()} params does not fit {c} channels")
        module.gamma.data.copy_(flat[:c])
        module.beta.data.copy_(flat[c:])
    elif isinstance(module, nn.Linear) and layer.name == "fc_2":
        s = layer.settings
        if (s["outputs"], s["inputs"]) != tuple(module.weight.shape) or s["bias_mode"] != 1:
            raise InputError(f"dlib fc {s} does not fit {tuple(module.weight.shape)}")
        # dlib stores an (inputs, outputs) matrix and computes x @ W
        module.weight.data.copy_(flat.view(s["inputs"], s["outputs"]).T)
    else:
        raise InputError(f"dlib layer {layer.name} where {type(module).__name__} was expected")
