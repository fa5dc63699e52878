"""The host, without torch: its CPU's name, the model's threads and batch on CPU, and whether a GPU may be there.

Torch-free so that `vidcolor info` and the torch-free preview (`quicklook`) can ask without its ~2.4 s import.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

CPU_BATCH_SIZE = 4  # batching beyond this buys nothing on CPU and only holds more frames
CPU_BATCH_PIXELS = 4 * 1920 * 1080  # at most this many pixels a batch on CPU (4K and 8K: one frame)
IO_THREADS = 2  # cores left to the decode and encode threads on a machine of more than SMALL_MACHINE cores
SMALL_MACHINE = 4
GPU_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg")  # NVIDIA, ROCm, WSL2


def cpu_name() -> str:
    """The CPU's model name as lscpu shows it (/proc/cpuinfo on Linux), else what the platform says."""
    import platform

    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine() or "unknown CPU"


def model_threads(cores: int | None = None) -> int:
    """The model's threads on CPU (torch's or ONNX Runtime's). Decoding and encoding run at a lower priority
    than the model (`stage`), so on a small machine the model gets every core and they fill its gaps: on 2 cores
    that made a 720p `run` 1.27x faster than leaving them one core (docs/benchmarks.md). Larger machines keep
    IO_THREADS cores for them (not measured: x264 alone can use several)."""
    cores = cores or os.cpu_count() or 1
    return cores if cores <= SMALL_MACHINE else cores - IO_THREADS


def cpu_batch_size(width: int, height: int) -> int:
    """Frames a batch on CPU: at most CPU_BATCH_SIZE and CPU_BATCH_PIXELS pixels (full-size chroma maths take
    ~30 float bytes a pixel: 8K peaks at 4.7 GiB with 4 frames, 2.4 GiB with 1)."""
    return max(1, min(CPU_BATCH_SIZE, CPU_BATCH_PIXELS // (width * height)))


def gpu_possible() -> bool:
    """Whether torch's "auto" device could be a GPU here, answered without importing torch: never with a CPU
    build of torch (its version ends in +cpu) or on macOS (no CUDA there); on Linux where a GPU driver is
    loaded (NVIDIA's, ROCm's, WSL2's); elsewhere (Windows) whenever the build may have CUDA."""
    try:
        if metadata.version("torch").endswith("+cpu"):
            return False
    except metadata.PackageNotFoundError:
        return False
    if sys.platform == "darwin":
        return False
    return sys.platform != "linux" or any(Path(f).exists() for f in GPU_DRIVER_FILES)
