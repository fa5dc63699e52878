"""The Trainer, pix2pix's model object: it owns the networks and optimisers and one training step
(`set_input`, `optimize_parameters`), so the loop that drives it stays short.

Phase 1 trains the generator on L1 alone; phase 2 adds the PatchGAN discriminator on (L, ab) pairs and the
generator's loss becomes L1 x lambda + adversarial. Each job of building a trainer has its own home here:
`build_networks`, `open_train_data`, `precision.choose`, `wrap_ddp`, `make_optimizers`.
"""

from __future__ import annotations

import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidcolor.lab import denormalize_ab, denormalize_l, join_lab, lab_to_rgb
from vidcolor.nets import build_discriminator, build_generator, init_weights

from . import precision
from .augment import degrade_l, to_lab_batch
from .config import TrainConfig
from .datasets import TrainData, open_split
from .dist import DistInfo, broadcast_ints
from .losses import GANLoss, feature_loss


def build_networks(cfg: TrainConfig, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """G (with ImageNet encoder weights when it has an encoder and `pretrained`) and D, seeded by the recipe."""
    torch.manual_seed(cfg.seed)
    if cfg.generator.get("head", "regression") != "regression":
        raise ValueError("only the regression head is trained (generator.head = \"regression\")")
    G = init_weights(build_generator(cfg.arch, cfg.generator_config())).to(device)
    if cfg.pretrained and hasattr(G, "load_imagenet_encoder"):
        from vidcolor.nets.lite_features import lite_weights
        G.load_imagenet_encoder(lite_weights(cfg.generator.get("encoder", "lite0")))
    D = init_weights(build_discriminator({"ndf": cfg.ndf})).to(device)
    return G, D


def open_train_data(cfg: TrainConfig, device: torch.device, info: DistInfo) -> TrainData:
    """The training split of `cfg.data`: a tensor pack goes to the training device whole."""
    dataset = open_split(cfg.data, "train", cfg.size, cfg.seed, (cfg.crop_scale, 1.0), cfg.in_memory, device)
    return TrainData(dataset, cfg.mix, cfg.batch, cfg.seed, cfg.workers, device.type == "cuda", info.rank, info.world)


def wrap_ddp(net: nn.Module, device: torch.device, info: DistInfo) -> nn.Module:
    if not info.enabled:
        return net
    from torch.nn.parallel import DistributedDataParallel as DDP
    return DDP(net, device_ids=[device.index] if device.type == "cuda" else None)


def make_optimizers(cfg: TrainConfig, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    betas = (cfg.beta1, cfg.beta2)
    return (torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=betas),
            torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=betas))


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Constant, then linear decay to 0 over the last `decay` fraction of the current phase."""
    gan_start = cfg.pretrain_end()
    start, end = (0, gan_start) if step < gan_start else (gan_start, cfg.steps)
    length = max(1, end - start)
    decay_from = start + length * (1 - cfg.decay)
    if step < decay_from:
        return cfg.lr
    return cfg.lr * max(0.0, (end - step) / max(1.0, end - decay_from))


class Trainer:
    def __init__(self, cfg: TrainConfig, device: torch.device, info: DistInfo = DistInfo()):
        self.cfg, self.device, self.info, self.cuda = cfg, device, info, device.type == "cuda"
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.G, self.D = build_networks(cfg, device)
        self.data = open_train_data(cfg, device, info)
        self.settings = self._precision()
        if self.settings.channels_last:
            self.G, self.D = (n.to(memory_format=torch.channels_last) for n in (self.G, self.D))
        self.G_train, self.D_train = wrap_ddp(self.G, device, info), wrap_ddp(self.D, device, info)
        self.opt_G, self.opt_D = make_optimizers(cfg, self.G, self.D)
        self.gan_loss = GANLoss(cfg.gan_mode, cfg.real_label)
        self.feature_loss = feature_loss(cfg.feature_net, device) if cfg.lambda_feature > 0 else None
        self.step, self.elapsed = 0, 0.0

    def _precision(self) -> precision.Settings:
        def measure() -> precision.Settings:
            L, ab = to_lab_batch(self.data.first(self.cfg.batch).to(self.device))
            return precision.measure(self.G, L, lambda fake: self.cfg.lambda_l1 * nn.functional.l1_loss(fake, ab))

        s = precision.choose(self.cfg.precision, self.device, measure)
        # every rank must train alike (DDP checks the layouts): rank 0 decides
        bf16, s.channels_last = broadcast_ints([s.amp_dtype is not None, s.channels_last], self.info, self.device)
        s.amp_dtype = torch.bfloat16 if bf16 else None
        s.channels_last = bool(s.channels_last)
        return s

    # -- one step -----------------------------------------------------------------------------
    def set_input(self, rgb: torch.Tensor) -> None:
        self.real_rgb = rgb = rgb.to(self.device, non_blocking=True)
        self.real_L, self.real_ab = to_lab_batch(rgb)
        gen = torch.Generator(self.device if self.cuda else "cpu").manual_seed(self.cfg.seed * 7919 + self.step)
        self.input_L = degrade_l(self.real_L, gen, self.cfg.degrade)
        if self.settings.channels_last:
            self.input_L = self.input_L.contiguous(memory_format=torch.channels_last)

    def autocast(self) -> Any:
        dtype = self.settings.amp_dtype
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def _set_lrs(self) -> None:
        lr = lr_at(self.cfg, self.step)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr

    def backward_D(self, fake_ab: torch.Tensor) -> float:
        """D on (clean L, ab): real against generated. The degraded L is only G's input."""
        self.D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            pred_fake = self.D_train(torch.cat([self.real_L, fake_ab.detach()], 1))
            pred_real = self.D_train(torch.cat([self.real_L, self.real_ab], 1))
        loss_D = 0.5 * (self.gan_loss(pred_fake, False) + self.gan_loss(pred_real, True))
        loss_D.backward()
        self.opt_D.step()
        self.D.requires_grad_(False)
        return loss_D.item()

    def backward_G(self, fake_ab: torch.Tensor, adversarial: bool) -> dict[str, float]:
        loss_l1 = nn.functional.l1_loss(fake_ab, self.real_ab)
        loss, losses = self.cfg.lambda_l1 * loss_l1, {"L1": loss_l1.item()}
        if self.feature_loss is not None:
            fake_rgb = lab_to_rgb(join_lab(denormalize_l(self.real_L), denormalize_ab(fake_ab)))
            with self.autocast():
                loss_feat = self.feature_loss(fake_rgb, self.real_rgb)
            loss = loss + self.cfg.lambda_feature * loss_feat
            losses["feat"] = loss_feat.item()
        if adversarial:
            with self.autocast():  # the raw module: D's weights are not updated by this backward
                pred = self.D(torch.cat([self.real_L, fake_ab], 1))
            loss_G_gan = self.gan_loss(pred, True, smooth=False)
            loss = loss + loss_G_gan
            losses["G_gan"] = loss_G_gan.item()
        self.opt_G.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_G.step()
        return losses

    def optimize_parameters(self) -> dict[str, float]:
        adversarial = self.step >= self.cfg.pretrain_end()
        self._set_lrs()
        with self.autocast():
            fake_ab = self.G_train(self.input_L).float()
        losses = {"D": self.backward_D(fake_ab)} if adversarial else {}
        losses.update(self.backward_G(fake_ab, adversarial))
        self.step += 1
        return losses

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"config": asdict(self.cfg), "step": self.step, **self.data.state(), "elapsed": self.elapsed,
                "G": self.G.state_dict(), "D": self.D.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state() if self.cuda else torch.empty(0, dtype=torch.uint8)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.step, self.elapsed = state["step"], state["elapsed"]
        self.data.load(state)
        torch.set_rng_state(state["rng_cpu"])
        if self.cuda and state["rng_cuda"].numel():
            torch.cuda.set_rng_state(state["rng_cuda"])

    def meta(self) -> dict[str, Any]:
        """What a generator checkpoint says about how it was made."""
        return {"steps": self.step, "train_seconds": round(self.elapsed, 1), "data": Path(self.cfg.data).name,
                "size": self.cfg.size, "lambda_l1": self.cfg.lambda_l1, "batch": self.cfg.batch,
                "images_seen": self.step * self.cfg.batch * self.info.world,
                "hardware": torch.cuda.get_device_name(self.device) if self.cuda else platform.processor() or "cpu",
                "world": self.info.world}
