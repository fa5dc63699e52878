"""The training run's settings, declared once: `TrainConfig`'s field defaults are what `vidcolor train fit`
shows and uses, and the bounds below are the ones its options enforce.

No torch import, so `vidcolor train --help` stays quick.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from vidcolor.controls import BIN_TEMPERATURE

TEMPERATURE_RANGE = (0.01, 1.0)  # the bins head's annealed-mean temperature
SIZE_RANGE = (32, 1024)  # training crop and validation sides


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
    # Generator options (merged into gen_config for effnet_unet).
    head: str = "regression"         # regression (L1) | bins (rebalanced cross-entropy)
    global_context: bool = False
    input_norm: str = "imagenet"     # imagenet | tf: (x - 127) / 128, what the Lite0 weights expect
    temperature: float = BIN_TEMPERATURE
    # The fast recipe.
    in_memory: bool = False          # decode the pack into RAM once; no JPEG decoding per step
    crop_scale: float = 0.35         # smallest random-resized-crop area fraction
    crop_max_scale: float = 1.0      # largest: below 1 keeps crops near the render size's scale
    freeze_steps: int = 0            # first steps with the pretrained encoder frozen
    encoder_lr_mult: float = 1.0     # encoder LR = lr x this once unfrozen
    freeze_encoder_bn: bool = False  # keep the encoder's BatchNorm statistics (ImageNet's)
    precision: str = "auto"          # auto | fp32 | bf16 (autocast); auto measures at start
    threads: int | None = None       # torch intra-op threads; None: torch's default
    # NoGAN-style adversarial phase.
    d_pretrain_steps: int = 0        # first GAN-phase steps train D alone on G's outputs
    gan_lr: float | None = None      # G's LR in the GAN phase (None: lr)
    d_lr_mult: float = 1.0           # D's LR = (gan_lr or lr) x this in the GAN phase
    lambda_ce: float = 1.0           # weight of the bins cross-entropy beside the GAN loss
    val_size: int | None = None      # validation centre crops (None: size)
    val_fd: bool = True              # fd_lite0 at validation when the extra is installed

    def generator_config(self) -> dict[str, Any]:
        if self.arch != "effnet_unet":
            return dict(self.gen_config)
        extra = {"head": self.head, "global_context": self.global_context, "input_norm": self.input_norm}
        if self.head == "bins":
            extra["temperature"] = self.temperature
        return {**self.gen_config, **extra}

    def phase_bounds(self) -> tuple[int, int]:
        """(first gan step, total steps): steps before the first bound are L1 pretraining."""
        if self.phase == "pretrain":
            return self.steps, self.steps
        if self.phase == "gan":
            return 0, self.steps
        return (self.pretrain_steps if self.pretrain_steps is not None else self.steps // 2), self.steps


def default(name: str) -> Any:
    """The default of `TrainConfig.name`, for the CLI's options."""
    f = {f.name: f for f in fields(TrainConfig)}[name]
    return f.default_factory() if f.default_factory is not MISSING else f.default
