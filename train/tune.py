"""Pick the fastest numerically sound training settings on the machine the run is on.

bf16 autocast is fast only where the CPU has AVX512-BF16 or AMX, and channels_last helps some
oneDNN kernels and hurts others; which wins depends on the CPU, the thread count and what else
runs, so it is measured at the start of each run (and of each resume) instead of hard-coded.
The measurement leaves the networks exactly as it found them.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any

import torch

from .data import to_lab_batch

BF16_MAX_LOSS_ERROR = 0.03   # relative
BF16_MIN_GRAD_COSINE = 0.98
GIVE_UP_RATIO = 5.0  # a candidate whose warm-up step is this much slower than the fastest warm-up is not timed


def _candidates(device: torch.device) -> list[tuple[torch.dtype | None, bool]]:
    """fp32 first (the reference); bf16 only where it can be fast: on a CPU, one with native bf16
    (AVX512-BF16 or AMX, which oneDNN reports), as emulated bf16 was 20x slower than fp32 (AMD EPYC, AVX2)."""
    fp32 = [(None, False), (None, True)]
    if device.type == "cpu" and not getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)():
        return fp32
    return fp32 + [(torch.bfloat16, False), (torch.bfloat16, True)]


def _tuning_batch(trainer: Any) -> torch.Tensor:
    n = min(trainer.cfg.batch, len(trainer.dataset))
    if hasattr(trainer.dataset, "batch"):
        return trainer.dataset.batch(list(range(n)))
    return torch.stack([trainer.dataset[i] for i in range(n)])


def choose_settings(trainer: Any, repeats: int = 3) -> dict[str, Any]:
    """{"amp_dtype", "channels_last", "timings"}: the fastest candidate whose loss and gradient
    agree with fp32's. Times one generator forward + backward (no optimiser step)."""
    from .loop import TrainForward

    G = trainer.G
    saved = copy.deepcopy(G.state_dict())
    trainer._prepare_modes()
    L, ab = to_lab_batch(_tuning_batch(trainer).to(trainer.device))
    trainer.real_ab = ab
    view = TrainForward(G)
    timings: dict[str, float] = {}
    reference: tuple[float, torch.Tensor] | None = None
    sound: dict[str, bool] = {}
    choice: tuple[torch.dtype | None, bool] = (None, False)
    best = fastest_warm = float("inf")
    for dtype, channels_last in _candidates(trainer.device):
        name = f"{'bf16' if dtype else 'fp32'}{'+channels_last' if channels_last else ''}"
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        G.to(memory_format=fmt)
        x = L.contiguous(memory_format=fmt)

        def step() -> tuple[float, torch.Tensor]:
            with torch.autocast(trainer.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                fake, logits = view(x)
            loss, _ = trainer.generator_loss(fake.float(), logits)
            loss.backward()
            grad = torch.cat([p.grad.flatten() for p in G.parameters() if p.grad is not None])
            G.zero_grad(set_to_none=True)
            return float(loss.detach()), grad

        try:
            t0 = time.perf_counter()
            value, grad = step()  # warm-up (oneDNN builds its kernels)
            warm = time.perf_counter() - t0
            if warm > GIVE_UP_RATIO * fastest_warm:  # emulated bf16 ran 20x slower: minutes lost at every start
                timings[name] = warm
                continue
            fastest_warm = min(fastest_warm, warm)
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
        except RuntimeError:  # a dtype/layout this build cannot train in
            continue
        timings[name] = statistics.median(times)
        if reference is None:
            reference = (value, grad)
        ok = True
        if dtype is not None:
            rel = abs(value - reference[0]) / max(1e-8, abs(reference[0]))
            cos = float(torch.nn.functional.cosine_similarity(grad, reference[1], dim=0))
            ok = rel < BF16_MAX_LOSS_ERROR and cos > BF16_MIN_GRAD_COSINE
        sound[name] = ok
        if ok and timings[name] < best:
            best, choice = timings[name], (dtype, channels_last)
    G.to(memory_format=torch.contiguous_format)
    G.load_state_dict(saved)
    return {"amp_dtype": choice[0], "channels_last": choice[1], "timings": timings, "sound": sound}
