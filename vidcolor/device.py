"""The compute device: choosing it, moving 8-bit planes to and from it, and the automatic batch size.

Kept apart from `pipeline` so the orchestration does not hold the host/device details: only
integer planes cross (Y up, Cb/Cr down), pinned and asynchronous on CUDA.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from .colorspec import code_scale
from .errors import DeviceError
from .machine import cpu_batch_size

MAX_BATCH_SIZE = 64
CUDA_MEMORY_SHARE = 0.5  # of the free GPU memory, for the automatic batch size


def resolve_device(name: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> a usable device, or DeviceError saying why not."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no GPU found"
            raise DeviceError(f"device {name!r} is not available: {why}")
        if (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} is not available: {torch.cuda.device_count()} GPU(s) found")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r} (use auto, cpu, cuda or cuda:N)")
    return device


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with `count` intra-op threads, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def upload_luma(planes: Sequence[np.ndarray], device: torch.device, bits: int = 8) -> torch.Tensor:
    """Y planes of `bits` (uint8 or uint16) as one (B,1,H,W) float tensor on `device` (code values / 255,
    `colorspec.code_scale`).

    Only Y is uploaded: the source's chroma is never used. On CUDA the planes are stacked
    into pinned memory and copied without blocking.
    """
    cuda = device.type == "cuda"
    dtype = torch.uint8 if planes[0].dtype == np.uint8 else torch.uint16
    host = torch.empty((len(planes), 1, *planes[0].shape), dtype=dtype, pin_memory=cuda)
    np.stack(planes, out=host.numpy()[:, 0])
    return host.to(device, non_blocking=True).float().div_(code_scale(bits))


def download(x: torch.Tensor) -> np.ndarray:
    """A device tensor as a host array (through pinned memory on CUDA, waiting for the copy only)."""
    if x.device.type != "cuda":
        return x.numpy()
    host = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
    host.copy_(x, non_blocking=True)
    torch.cuda.current_stream(x.device).synchronize()
    return host.numpy()


def auto_batch_size(device: torch.device, width: int, height: int, render_hw: tuple[int, int],
                    predict: Callable[[torch.Tensor], torch.Tensor]) -> int:
    """On CUDA, as many frames as half the free memory holds, measured with one frame through `predict`;
    on CPU, `machine.cpu_batch_size`."""
    if device.type != "cuda":
        return cpu_batch_size(width, height)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with torch.inference_mode():
        predict(torch.zeros(1, 1, *render_hw, device=device))
    per_frame = torch.cuda.max_memory_allocated(device) - before
    per_frame += 4 * 4 * width * height  # the frame's float planes and chroma maths
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(1, min(MAX_BATCH_SIZE, CUDA_MEMORY_SHARE * free // per_frame)))
