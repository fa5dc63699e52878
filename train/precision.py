"""The number format and memory layout a run trains in.

On CUDA: bf16 autocast and channels_last where the GPU supports bf16 (what tensor cores are fast at). On a
CPU the answer depends on the CPU, the thread count and what else runs (bf16 is fast only with AVX512-BF16
or AMX; channels_last helps some oneDNN kernels and hurts others), so `measure` times the candidates at the
start of each run and keeps the fastest whose loss and gradient agree with fp32's. The networks are left
exactly as they were found.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

BF16_MAX_LOSS_ERROR = 0.03   # relative
BF16_MIN_GRAD_COSINE = 0.98
GIVE_UP_RATIO = 5.0  # a candidate whose warm-up step is this much slower than the fastest warm-up is not timed


@dataclass
class Settings:
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False
    timings: dict[str, float] = field(default_factory=dict)   # seconds per step, by candidate
    sound: dict[str, bool] = field(default_factory=dict)      # agreed with fp32 (absent: not timed)

    @property
    def name(self) -> str:
        return f"{'bf16' if self.amp_dtype else 'fp32'}{'+channels_last' if self.channels_last else ''}"


def choose(precision: str, device: torch.device, measure_fn: Callable[[], Settings]) -> Settings:
    """`precision` auto | fp32 | bf16 on `device`; auto on a CPU calls `measure_fn`."""
    cuda = device.type == "cuda"
    if precision == "fp32":
        return Settings(None, cuda)
    if precision == "bf16":
        return Settings(torch.bfloat16, cuda)
    if cuda:
        return Settings(torch.bfloat16 if torch.cuda.is_bf16_supported() else None, True)
    return measure_fn()


def _candidates(device: torch.device) -> list[tuple[torch.dtype | None, bool]]:
    """fp32 first (the reference); bf16 only where it can be fast: on a CPU, one with native bf16
    (AVX512-BF16 or AMX, which oneDNN reports), as emulated bf16 was 20x slower than fp32 on an AVX2 CPU."""
    fp32 = [(None, False), (None, True)]
    if device.type == "cpu" and not getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)():
        return fp32
    return fp32 + [(torch.bfloat16, False), (torch.bfloat16, True)]


def measure(G: nn.Module, L: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor],
            repeats: int = 3) -> Settings:
    """Time one generator forward + backward on input `L` per candidate; `loss_fn(ab)` is the step's loss."""
    saved = copy.deepcopy(G.state_dict())
    out = Settings()
    reference: tuple[float, torch.Tensor] | None = None
    best = fastest_warm = float("inf")
    for dtype, channels_last in _candidates(L.device):
        cand = Settings(dtype, channels_last)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        G.to(memory_format=fmt)
        x = L.contiguous(memory_format=fmt)

        def step() -> tuple[float, torch.Tensor]:
            with torch.autocast(L.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                fake = G(x)
            loss = loss_fn(fake.float())
            loss.backward()
            grad = torch.cat([p.grad.flatten() for p in G.parameters() if p.grad is not None])
            G.zero_grad(set_to_none=True)
            return float(loss.detach()), grad

        try:
            t0 = time.perf_counter()
            value, grad = step()  # warm-up (oneDNN builds its kernels)
            warm = time.perf_counter() - t0
            if warm > GIVE_UP_RATIO * fastest_warm:  # not worth minutes at every start
                out.timings[cand.name] = warm
                continue
            fastest_warm = min(fastest_warm, warm)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
        except RuntimeError:  # a dtype/layout this build cannot train in
            continue
        out.timings[cand.name] = statistics.median(times)
        if reference is None:
            reference = (value, grad)
        ok = True
        if dtype is not None:
            rel = abs(value - reference[0]) / max(1e-8, abs(reference[0]))
            cos = float(nn.functional.cosine_similarity(grad, reference[1], dim=0))
            ok = rel < BF16_MAX_LOSS_ERROR and cos > BF16_MIN_GRAD_COSINE
        out.sound[cand.name] = ok
        if ok and out.timings[cand.name] < best:
            best, out.amp_dtype, out.channels_last = out.timings[cand.name], dtype, channels_last
    G.to(memory_format=torch.contiguous_format)
    G.load_state_dict(saved)
    return out


def describe(s: Settings, threads: int) -> str:
    """One log line: the choice and, when measured, each candidate's step time."""
    if not s.timings:
        return f"settings: {s.name}"
    parts = [f"{k} {v * 1000:.0f} ms" + ("" if s.sound.get(k, True) else " unsound") +
             ("" if k in s.sound else " warm-up only, too slow") for k, v in s.timings.items()]
    return f"settings: {s.name} (step time {', '.join(parts)}; {threads} threads)"
