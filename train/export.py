"""Export a training run's generator as an inference checkpoint (fp16 weights + metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vidcolor.checkpoint import load_generator, save_checkpoint
from vidcolor.errors import VidcolorError
from vidcolor.nets import build_generator

from .config import RECIPE_KEYS, TrainConfig
from .loop import load_state
from .select import from_metrics, pick_best, read_csv, read_metrics

CURVE_NAME = "curve.csv"


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform mean of several checkpoints' weights (and BatchNorm statistics), as in stochastic weight
    averaging: late checkpoints of one run lie in one basin, and their mean swings less on single scenes than
    they do. Integer buffers (BatchNorm's batch counters) are the last state's."""
    out = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            out[key] = torch.stack([s[key].float() for s in states]).mean(0).to(last.dtype)
        else:
            out[key] = last.clone()
    return out


def best_step(run: Path, cfg: TrainConfig) -> tuple[int, str]:
    """The step the recipe's rule picks, and on what: the product-path curve when `evaluate RUN` wrote one."""
    curve = [r for r in read_csv(Path(run) / CURVE_NAME) if r.get("set") == "val"]
    rows, source = (curve, CURVE_NAME) if curve else (from_metrics(read_metrics(run)), "metrics.csv")
    row = pick_best(rows, cfg.select_psnr_margin, cfg.select_cf_floor)
    if row is None:
        raise VidcolorError(f"{run}: no validated checkpoint to choose from")
    return int(row["step"]), source


def _checkpoint(run: Path, step: int) -> Path:
    path = Path(run) / "checkpoints" / f"G_{step:07d}.pt"
    if not path.is_file():
        raise VidcolorError(f"{run}: checkpoint {path.name} is missing")
    return path


def export_run(run: Path, out: Path, half: bool = True, pick: str = "last") -> tuple[Path, dict[str, Any]]:
    """`pick`: "last" (the run's current state), "best" (`best_step`), a step, or steps "S1,S2,..." whose
    generators are averaged."""
    state = load_state(run)
    cfg = TrainConfig(**state["config"])
    rows = {int(r["step"]): r for r in read_metrics(run)}
    meta: dict[str, Any] = {"picked": pick}
    if "," in pick:
        steps = sorted({int(p) for p in pick.split(",")})
        nets = [load_generator(_checkpoint(run, s))[0] for s in steps]
        net, step = nets[-1], steps[-1]
        net.load_state_dict(average_state_dicts([n.state_dict() for n in nets]))
        meta["averaged_steps"] = steps
    elif pick == "last":
        net = build_generator(cfg.arch, cfg.generator_config())
        net.load_state_dict(state["G"])
        step = state["step"]
    else:
        step, meta["chosen_on"] = best_step(run, cfg) if pick == "best" else (int(pick), "")
        net, _ = load_generator(_checkpoint(run, step))
    row = rows.get(step)
    meta.update({"steps": step, "train_seconds": round(row["seconds"] if row else state["elapsed"], 1),
                 "data": Path(cfg.data).name, "size": cfg.size, "batch": cfg.batch, "lambda_l1": cfg.lambda_l1,
                 "images_seen": int(row["images"]) if row and "images" in row else step * cfg.batch, "recipe": {k: state["config"][k] for k in RECIPE_KEYS}})
    if row and "averaged_steps" not in meta:  # an average's own validation is not the last step's
        meta["validation"] = {k: v for k, v in row.items() if ":" not in k}
    return save_checkpoint(out, net, cfg.arch, cfg.generator_config(), meta, half=half), meta


def run_pack(run: Path) -> Path | None:
    """The pack RUN trained on, where it is still found (None: moved or deleted)."""
    data = TrainConfig(**load_state(run)["config"]).data
    return Path(data) if data and Path(data).exists() else None
