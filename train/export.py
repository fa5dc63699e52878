"""Export a training run's generator as an inference checkpoint (fp16 weights + metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vidcolor.checkpoint import load_generator, save_checkpoint
from vidcolor.errors import VidcolorError
from vidcolor.nets import build_generator

from .loop import TrainConfig, load_state
from .select import pick_best, read_metrics


def export_run(run: Path, out: Path, half: bool = True, pick: str = "last",
               temperature: float | None = None) -> tuple[Path, dict[str, Any]]:
    """`pick`: "last" (the run's current state), "best" (chosen by validation, `select.py`) or a step.
    `temperature`: the bins head's decoding temperature to store (default: the run's)."""
    state = load_state(run)
    cfg = TrainConfig(**state["config"])
    if temperature is not None:
        if cfg.head != "bins":
            raise VidcolorError("--temperature applies only to a model with the bins head")
        cfg.temperature = temperature
    rows = read_metrics(run)
    if pick == "last":
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
        if temperature is not None:
            net.temperature = temperature
    meta: dict[str, Any] = {"steps": step, "train_seconds": round(row["seconds"] if row else state["elapsed"], 1),
                            "data": cfg.data, "size": cfg.size, "phase": cfg.phase, "head": cfg.head,
                            "lambda_l1": cfg.lambda_l1, "batch": cfg.batch, "images_seen": step * cfg.batch,
                            "picked": pick}
    if row:
        meta["validation"] = row
    return save_checkpoint(out, net, cfg.arch, cfg.generator_config(), meta, half=half), meta
