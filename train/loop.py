"""The training loop and a run folder's files.

A run folder holds `recipe.toml` (the resolved recipe: `--resume` needs nothing else), `checkpoints/last.pt`
(the resumable state, rewritten at least every `save_minutes` of wall time, so a run cut off by a lent
machine's limit loses at most that), `checkpoints/G_STEP.pt` (a generator every `ckpt_every` steps, loadable
by `vidcolor run --model`), `metrics.csv` (validation at those steps) and `val_STEP.png`. Every file is
written under a temporary name and renamed, so a killed run never leaves half a file.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any, Callable

import torch

from vidcolor.checkpoint import save_checkpoint

from .config import to_toml
from .dist import all_reduce_mean
from .model import Trainer
from .precision import describe
from .validate import Validator

STATE_NAME = "last.pt"
AUTO_WARMUP_STEPS = 20  # steps timed before `auto_steps` fits the schedule to the time limit


def load_state(run: Path) -> dict[str, Any]:
    return torch.load(Path(run) / "checkpoints" / STATE_NAME, map_location="cpu", weights_only=True)


def save_state(trainer: Trainer, run: Path) -> None:
    ckpt_dir = run / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_dir / f".{STATE_NAME}.tmp"
    torch.save(trainer.state_dict(), tmp)
    tmp.replace(ckpt_dir / STATE_NAME)


def append_row(csv_path: Path, row: dict[str, Any]) -> None:
    """Add a row to metrics.csv; a row with new columns rewrites the file with the union of the columns."""
    rows = list(csv.DictReader(csv_path.open())) if csv_path.exists() else []
    fields = list(rows[0].keys()) if rows else []
    if rows and all(k in fields for k in row):
        with open(csv_path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=fields).writerow(row)
        return
    fields += [k for k in row if k not in fields]
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows + [row])
    tmp.replace(csv_path)


def fit_steps_to_time(trainer: Trainer, seconds_per_step: float, log: Callable[[str], None]) -> None:
    """`auto_steps`: the schedule's length from the measured speed, so its LR decay and GAN phase end when
    the time limit does; the GAN phase keeps the recipe's share. Stored with the run, so a resume keeps it."""
    cfg = trainer.cfg
    left = cfg.time_limit_min * 60 - trainer.elapsed
    steps = max(trainer.step + 1, trainer.step + int(0.95 * left / seconds_per_step))
    share = cfg.pretrain_steps / cfg.steps
    cfg.pretrain_steps, cfg.steps, cfg.auto_steps = max(trainer.step, round(steps * share)), steps, False
    log(f"auto_steps: {seconds_per_step * 1000:.0f} ms a step -> steps {cfg.steps}, pretrain_steps {cfg.pretrain_steps}")


def fit(trainer: Trainer, run: Path, on_step: Callable[[int, dict[str, float], float], None] | None = None,
        log: Callable[[str], None] = print) -> None:
    """Steps until the schedule or the time limit ends; validation and checkpoints on the way."""
    cfg, info = trainer.cfg, trainer.info
    run.mkdir(parents=True, exist_ok=True)
    validator = Validator(cfg.data, cfg.size, cfg.val_max, cfg.batch, trainer.device, cfg.val_fd) \
        if info.is_main else None
    if info.is_main:
        (run / "recipe.toml").write_text(to_toml(cfg))
        log(describe(trainer.settings, torch.get_num_threads()))
    budget = cfg.time_limit_min * 60 if cfg.time_limit_min else math.inf
    started = time.perf_counter() - trainer.elapsed
    last_save, warm = time.perf_counter(), None
    while trainer.step < cfg.steps:
        t0 = time.perf_counter()
        trainer.set_input(trainer.data.next())
        losses = trainer.optimize_parameters()
        trainer.elapsed = time.perf_counter() - started
        if on_step and info.is_main:
            on_step(trainer.step, losses, cfg.batch * info.world / max(1e-9, time.perf_counter() - t0))
        if cfg.auto_steps and budget < math.inf:
            warm = warm or (trainer.step, time.perf_counter())
            if trainer.step - warm[0] >= AUTO_WARMUP_STEPS:
                fit_steps_to_time(trainer, (time.perf_counter() - warm[1]) / (trainer.step - warm[0]), log)
        out_of_time = trainer.elapsed > budget
        if trainer.step % cfg.ckpt_every == 0 or trainer.step >= cfg.steps or out_of_time:
            checkpoint(trainer, run, losses, validator, log)
            last_save = time.perf_counter()
        elif info.is_main and time.perf_counter() - last_save > cfg.save_minutes * 60:
            save_state(trainer, run)
            last_save = time.perf_counter()
        if out_of_time:
            log(f"time limit reached at step {trainer.step}; continue with --resume {run}")
            break


def checkpoint(trainer: Trainer, run: Path, losses: dict[str, float], validator: Validator | None,
               log: Callable[[str], None]) -> None:
    """Validate, keep the generator, save the state and add a metrics row (main rank)."""
    loss = all_reduce_mean(torch.tensor(losses["L1"], device=trainer.device), trainer.info)  # NCCL needs CUDA
    if validator is None:
        return
    scores = validator(trainer.G, trainer.autocast(), run / f"val_{trainer.step:07d}.png", trainer.cfg.val_images)
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_checkpoint(run / "checkpoints" / f"G_{trainer.step:07d}.pt", trainer.G, trainer.cfg.arch,
                    trainer.cfg.generator_config(), trainer.meta())
    save_state(trainer, run)
    row = {"step": trainer.step, "seconds": round(trainer.elapsed, 1),
           "images": trainer.step * trainer.cfg.batch * trainer.info.world, "L1": round(float(loss), 5),
           **{k: round(v, 4) for k, v in scores.items()}}
    append_row(run / "metrics.csv", row)
    log("checkpoint " + " ".join(f"{k}={v}" for k, v in row.items() if ":" not in k))
