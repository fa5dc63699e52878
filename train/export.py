"""Export a training run's generator as an inference checkpoint (fp16 weights + metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vidcolor.checkpoint import load_generator, save_checkpoint
from vidcolor.errors import VidcolorError
from vidcolor.nets import build_generator

from .loop import TrainConfig, load_state
from .select import pick_best, read_metrics


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform mean of several checkpoints' weights (and BatchNorm statistics), as in stochastic
    weight averaging: late checkpoints of one run lie in one basin, and their mean swings less on
    single scenes than they do (model card, session 12). Integer buffers (BatchNorm's batch counters)
    are the last state's."""
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = torch.stack([s[key].float() for s in states]).mean(0).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


def export_run(run: Path, out: Path, half: bool = True, pick: str = "last",
               temperature: float | None = None) -> tuple[Path, dict[str, Any]]:
    """`pick`: "last" (the run's current state), "best" (chosen by validation, `select.py`), a step, or
    several steps "S1,S2,..." whose generators are averaged.
    `temperature`: the bins head's decoding temperature to store (default: the run's)."""
    state = load_state(run)
    cfg = TrainConfig(**state["config"])
    if temperature is not None:
        if cfg.head != "bins":
            raise VidcolorError("--temperature applies only to a model with the bins head")
        cfg.temperature = temperature
    rows = read_metrics(run)
    averaged: list[int] = []
    if "," in pick:
        averaged = sorted({int(p) for p in pick.split(",")})
        paths = [Path(run) / "checkpoints" / f"G_{s:07d}.pt" for s in averaged]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise VidcolorError(f"{run}: checkpoint {', '.join(missing)} is missing")
        nets = [load_generator(p)[0] for p in paths]
        net = nets[-1]
        net.load_state_dict(average_state_dicts([n.state_dict() for n in nets]))
        step = averaged[-1]
        row = next((r for r in rows if int(r["step"]) == step), None)
    elif pick == "last":
        net = build_generator(cfg.arch, cfg.generator_config())
        net.load_state_dict(state["G"])
        step, row = state["step"], (rows[-1] if rows else None)
    else:
        row = pick_best(rows) if pick == "best" else next((r for r in rows if int(r["step"]) == int(pick)), None)
        if row is None:
            raise VidcolorError(f"{run}: no validated checkpoint {'to choose from' if pick == 'best' else pick}")
        step = int(row["step"])
        path = Path(run) / "checkpoints" / f"G_{step:07d}.pt"
        if not path.is_file():
            raise VidcolorError(f"{run}: checkpoint {path.name} is missing")
        net, _ = load_generator(path)
    if temperature is not None and pick != "last":  # a loaded checkpoint carries its own temperature
        net.temperature = temperature
    meta: dict[str, Any] = {"steps": step, "train_seconds": round(row["seconds"] if row else state["elapsed"], 1),
                            "data": cfg.data, "size": cfg.size, "phase": cfg.phase, "head": cfg.head,
                            "lambda_l1": cfg.lambda_l1, "batch": cfg.batch, "images_seen": step * cfg.batch,
                            "picked": pick}
    if averaged:
        meta["averaged_steps"] = averaged
    elif row:  # an average's own validation is not the last step's
        meta["validation"] = row
    return save_checkpoint(out, net, cfg.arch, cfg.generator_config(), meta, half=half), meta
