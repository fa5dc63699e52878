"""The engine that runs the generator: torch on any device, or ONNX Runtime on an int8 copy on the CPU.

On a CPU the model is most of a run's time. `vidcolor train quantize` writes an int8 copy of a checkpoint
beside it (`<name>.int8.onnx`, the packaged model has one); ONNX Runtime runs it about 2x faster than torch
runs the fp32 weights, at the same colours (docs/benchmarks.md). "auto" takes it on the CPU when ONNX
Runtime is installed (the `fast` extra) and the copy was made from these very weights (their SHA-256 is in
its metadata); otherwise, and on CUDA, torch runs the checkpoint as it is.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from .controls import ENGINES
from .errors import ModelError
from .modelfiles import FAST_EXTRA, INPUT, OUTPUTS, file_sha256, int8_path, open_session
from .nets import for_inference


class Engine(Protocol):
    """Normalized, padded L (B,1,H,W) -> ab/110, or (ab/110, stride-16 features) when made with `features`."""
    name: str
    size_multiple: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]: ...


class TorchEngine:
    """The checkpoint in torch, BatchNorm folded and channels_last (`nets.for_inference`); fp16 autocast on CUDA."""

    name = "torch"

    def __init__(self, net: nn.Module, features: bool, device: torch.device):
        self.net = for_inference(net, features=features)
        self.size_multiple = self.net.size_multiple
        self.cuda = device.type == "cuda"

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast("cuda", dtype=torch.float16) if self.cuda else nullcontext():
            return self.net(x.contiguous(memory_format=torch.channels_last))


class OnnxEngine:
    """An int8 copy in ONNX Runtime on the CPU (`modelfiles.open_session`)."""

    name = "onnxruntime int8"

    def __init__(self, path: Path, source_sha256: str, features: bool, threads: int, size_multiple: int):
        self.session = open_session(path, source_sha256, threads)
        self.features = features
        self.size_multiple = size_multiple
        self.path = path

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        ab, features = self.session.run(list(OUTPUTS), {INPUT: x.float().contiguous().numpy()})
        return (torch.from_numpy(ab), torch.from_numpy(features)) if self.features else torch.from_numpy(ab)


def onnx_unusable(model: Path, device: torch.device) -> str | None:
    """Why the int8 engine cannot run `model` here (checks that cost nothing), or None."""
    if device.type != "cpu":
        return f"the int8 engine runs on the CPU only (device {device})"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return f"ONNX Runtime is not installed ({FAST_EXTRA})"
    if not int8_path(model).is_file():
        return f"no int8 copy of {model.name}: `vidcolor train quantize` writes {int8_path(model).name}"
    return None


def make_engine(choice: str, net: nn.Module, model: Path, device: torch.device, features: bool,
                threads: int) -> tuple[Engine, str | None]:
    """The engine for `choice` ("auto", "torch", "onnxruntime") and, when "auto" fell back to torch, why.
    "onnxruntime" that cannot run is a ModelError (one line)."""
    if choice not in ENGINES:
        raise ModelError(f"unknown engine {choice!r} (use {', '.join(ENGINES)})")
    why = None if choice == "torch" else onnx_unusable(model, device)
    if why is None and choice != "torch":
        try:
            return OnnxEngine(int8_path(model), file_sha256(model), features, threads, net.size_multiple), None
        except ModelError as exc:
            why = str(exc)
    if choice == "onnxruntime":
        raise ModelError(f"--engine onnxruntime: {why}")
    return TorchEngine(net, features, device), why
