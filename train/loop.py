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

from .config import TrainConfig, to_toml
from .dist import all_reduce_mean, broadcast_ints
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


def _cost_ratio(cfg: TrainConfig, step: int) -> float:
    """The mean cost of a step over the rest of the schedule, relative to the current crop side's (a step
    costs about the crop's area), so a progressive schedule's larger late crops are budgeted for."""
    now = cfg.crop_at(step)
    bounds = sorted({step / cfg.steps, 1.0} | {f for f, _ in cfg.size_schedule if step / cfg.steps < f < 1})
    total = sum((b - a) * (cfg.crop_at(int(a * cfg.steps)) / now) ** 2 for a, b in zip(bounds, bounds[1:]))
    return total / max(1e-9, 1.0 - step / cfg.steps)


def fit_steps_to_time(trainer: Trainer, seconds_per_step: float) -> str:
    """`auto_steps`: the schedule's length from the measured speed, so its LR decay and GAN phase end when
    the time limit does; the GAN phase keeps the recipe's share (a GAN phase already begun stays begun).
    Rank 0 decides for every rank. Stored with the run, so a resume keeps it."""
    cfg, step = trainer.cfg, trainer.step
    left = cfg.time_limit_min * 60 - trainer.elapsed
    steps = max(step + 1, step + int(0.95 * left / (seconds_per_step * _cost_ratio(cfg, step))))
    pre = cfg.pretrain_steps if step >= cfg.pretrain_end() else max(step, round(steps * cfg.pretrain_steps / cfg.steps))
    cfg.steps, cfg.pretrain_steps = broadcast_ints([steps, pre], trainer.info, trainer.device)
    return f"auto_steps: {seconds_per_step * 1000:.0f} ms a step -> steps {cfg.steps}, pretrain_steps {cfg.pretrain_steps}"


class AutoSteps:
    """When `auto_steps` fits the schedule: after AUTO_WARMUP_STEPS plain steps, then once more after the
    first checkpoint, whose validation cost the first fit could not see; then the schedule is fixed."""

    def __init__(self, trainer: Trainer, budget: float):
        self.trainer, self.on = trainer, trainer.cfg.auto_steps and budget < math.inf
        self.start: tuple[int, float] | None = None
        self.fits = 0

    def after_step(self, log: Callable[[str], None]) -> None:
        if not self.on:
            return
        self.start = self.start or (self.trainer.step, time.perf_counter())
        if self.fits == 0 and self.trainer.step - self.start[0] >= AUTO_WARMUP_STEPS:
            self._fit(log)

    def after_checkpoint(self, log: Callable[[str], None]) -> None:
        if self.on and self.fits == 1:
            self._fit(log)
            self.on = self.trainer.cfg.auto_steps = False

    def _fit(self, log: Callable[[str], None]) -> None:
        rate = (time.perf_counter() - self.start[1]) / max(1, self.trainer.step - self.start[0])
        log(fit_steps_to_time(self.trainer, rate))
        self.fits += 1


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
    last_save, auto = time.perf_counter(), AutoSteps(trainer, budget)
    while trainer.step < cfg.steps:
        t0 = time.perf_counter()
        trainer.set_input(trainer.data.next(cfg.crop_at(trainer.step)))
        losses = trainer.optimize_parameters()
        trainer.elapsed = time.perf_counter() - started
        if on_step and info.is_main:
            on_step(trainer.step, losses, cfg.batch * info.world / max(1e-9, time.perf_counter() - t0))
        auto.after_step(log)
        out_of_time = budget < math.inf and bool(broadcast_ints([trainer.elapsed > budget], info, trainer.device)[0])
        if trainer.step % cfg.ckpt_every == 0 or trainer.step >= cfg.steps or out_of_time:
            checkpoint(trainer, run, losses, validator, log)
            auto.after_checkpoint(log)
            last_save = time.perf_counter()
        elif info.is_main and time.perf_counter() - last_save > cfg.save_minutes * 60:
            save_state(trainer, run)
            last_save = time.perf_counter()
        if out_of_time:
            log(f"time limit reached at step {trainer.step} ({trainer.elapsed / 60:.1f} min of training); continue "
                f"with --resume {run} --time-limit MIN, MIN counting the training time so far")
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
    (run / "recipe.toml").write_text(to_toml(trainer.cfg))  # a fitted schedule is part of the recipe
    row = {"step": trainer.step, "seconds": round(trainer.elapsed, 1),
           "images": trainer.step * trainer.cfg.batch * trainer.info.world, "L1": round(float(loss), 5),
           **{k: round(v, 4) for k, v in scores.items()}}
    append_row(run / "metrics.csv", row)
    log("checkpoint " + " ".join(f"{k}={v}" for k, v in row.items() if ":" not in k))
