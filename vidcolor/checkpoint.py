"""One-file model checkpoints, loaded with `torch.load(weights_only=True)` only.

A checkpoint is a dict of plain types and tensors:
`{"format": FORMAT, "arch": name, "config": {...}, "state_dict": {...}, "meta": {...}}`.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelError
from .files import TempTarget
from .nets import build_generator

FORMAT = "vidcolor-generator-v1"
def make_checkpoint(generator: nn.Module, arch: str, config: dict[str, Any],
                    meta: dict[str, Any] | None = None, half: bool = False) -> dict[str, Any]:
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
             for k, v in generator.state_dict().items()}
    return {"format": FORMAT, "arch": arch, "config": dict(config), "state_dict": state, "meta": dict(meta or {})}


def save_checkpoint(path: str | Path, generator: nn.Module, arch: str, config: dict[str, Any],
                    meta: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Write atomically (temp name, then rename) so an interrupted save never leaves a broken model."""
    path = Path(path)
    with TempTarget(path) as tmp:
        torch.save(make_checkpoint(generator, arch, config, meta, half), tmp)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint dict without building the network."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ModelError(f"cannot read model file {path}: not a PyTorch checkpoint or corrupt")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelError(f"refusing to load {path}: it contains code or objects that are not plain "
                         f"weights (only weights_only checkpoints are accepted)") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(f"cannot read model file {path}: not a PyTorch checkpoint or corrupt") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ModelError(f"{path} is not a vidcolor model (expected format {FORMAT!r})")
    for key in ("arch", "config", "state_dict"):
        if key not in ckpt:
            raise ModelError(f"{path} is missing {key!r}")
    return ckpt


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the generator a checkpoint declares, load its weights in fp32, eval mode.

    Returns (generator, checkpoint-without-state_dict) so callers can read arch/config/meta.
    """
    ckpt = read_checkpoint(path)
    try:
        net = build_generator(ckpt["arch"], ckpt["config"])
        state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
        net.load_state_dict(state)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelError(f"{path}: weights do not match architecture {ckpt['arch']!r}: "
                         f"{str(exc).splitlines()[0]}") from exc
    net.eval().to(device)
    info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return net, info
