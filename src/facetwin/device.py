"""Pick the torch device: ``auto`` prefers CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from facetwin.errors import UsageError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> str:
    """Return a concrete torch device string, or a UsageError when the asked one is missing."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    base = name.split(":")[0]
    if base == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA GPU (try --device auto)")
    if base == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise UsageError("--device mps asked for, but this torch build has no MPS")
    if base not in DEVICE_CHOICES:
        raise UsageError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    return name


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads on the CPU (0: leave torch's choice), restoring
    the previous count after.

    Why convert and the live swap use one: their model call is a batch of one or two faces, too
    small for intra-op parallelism to pay, while the other stages (decoding, PNG and x264
    encoding) run threads of their own. On 2 cores a second torch thread then waits on busy
    cores at every layer: converting 98 frames took 11.3 s with two threads against 3.6 s with
    one while another process kept a core busy, for a gain of 3.2 -> 2.6 s on an idle machine
    (benchmarks/results/threads-cpu.json).
    """
    if n <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
