"""A training run's settings: `TrainConfig` is the one place their defaults live, and recipes are small
TOML files (`train/recipes/NAME.toml`, BasicSR's option files in spirit) that override them.

A recipe may start from another with `extends = "NAME"`; `--set key=value` overrides a recipe on the
command line, `--set mix.GROUP=W` one group's sampling weight. Unknown keys are refused with the nearest
known one. No torch import, so `vidcolor train --help` stays quick.
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from vidcolor.errors import OptionError

RECIPES_DIR = Path(__file__).parent / "recipes"
TENSOR_SIDE, TENSOR_MIB = 144, 44.0  # a tensor pack's default frame side and size limit (see pack.py)


@dataclass
class TrainConfig:
    # -- what is trained ---------------------------------------------------------------------
    arch: str = "effnet_unet"        # effnet_unet (Lite0 encoder) | unet (pix2pix)
    generator: dict[str, Any] = field(default_factory=dict)  # the generator's keyword arguments
    pretrained: bool = True          # ImageNet encoder weights when the arch has an encoder
    ndf: int = 32                    # PatchGAN width
    # -- the schedule: L1 pretraining, then L1 x lambda + adversarial ----------------------------
    steps: int = 1700
    pretrain_steps: int = 1000      # L1-only steps first (= steps: no GAN phase)
    auto_steps: bool = False         # with --time-limit: scale steps (and pretrain_steps) to fit the time
    batch: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay: float = 0.3               # linear LR decay over this last fraction of each phase
    lambda_l1: float = 100.0
    lambda_feature: float = 0.0      # weight of the feature (perceptual) loss; 0: off
    feature_net: str = "lite2"       # its frozen ImageNet network (never lite0: fd_lite0 is measured on it)
    gan_mode: str = "vanilla"        # vanilla (BCE) | lsgan
    real_label: float = 0.9          # one-sided label smoothing of D's real targets
    # -- data ----------------------------------------------------------------------------------
    size: int = 160                  # training crop side (and validation's)
    size_schedule: list[list[float]] = field(default_factory=list)  # [[from fraction of steps, crop side], ...]
    crop_scale: float = 0.35         # smallest random-resized-crop area fraction
    degrade: float = 1.0             # strength of film-like degradations of the input L
    mix: dict[str, float] = field(default_factory=dict)  # GROUP = total sampling weight (default: its size)
    seed: int = 0
    # -- checkpoints and validation -------------------------------------------------------------
    ckpt_every: int = 200            # validate and keep a generator checkpoint every this many steps
    save_minutes: float = 1.0        # and save the resumable state at least this often (wall time)
    val_max: int = 128               # validation frames scored, spread over the split
    val_images: int = 8              # rows of the validation picture
    val_fd: bool = True              # fd_lite0 at validation (needs the training extra)
    # -- which checkpoint to ship (`export --pick best`, `evaluate RUN`) --------------------------
    select_psnr_margin: float = 0.0  # eligible: PSNR at least gray's minus this (dB)
    select_cf_floor: float = 0.8     # among them prefer colourfulness ratio >= this; then lowest fd_lite0
    # -- whether the pick may replace the shipped model (`evaluate RUN --against MODEL`) ----------------
    ship_fd_gain: float = 0.05       # fd_lite0 at least this fraction below the shipped model's
    ship_cf_range: list[float] = field(default_factory=lambda: [0.8, 1.2])  # colourfulness ratio within
    ship_psnr_margin: float = 0.2    # PSNR at most this far below the shipped model's (dB)
    ship_speed_ratio: float = 1.3    # model-only inference at most this much slower (benchmarks/throughput.py)
    # -- the machine, not the recipe (command-line options) ---------------------------------------
    data: str = ""
    out: str = ""
    device: str = "auto"
    threads: int | None = None       # torch intra-op threads; None: torch's default
    precision: str = "auto"          # auto | fp32 | bf16; auto measures on CPU, bf16 + channels_last on CUDA
    workers: int = 1                 # DataLoader workers for a folder pack
    in_memory: bool = False          # decode a folder pack into RAM once
    time_limit_min: float | None = None

    def pretrain_end(self) -> int:
        """The first GAN step: steps before it are L1 pretraining."""
        return min(self.pretrain_steps, self.steps)

    def crop_at(self, step: int) -> int:
        """The training crop side at `step` (progressive resizing): the last `size_schedule` entry whose
        fraction of `steps` has been reached, else `size`."""
        side = self.size
        for fraction, size in sorted(self.size_schedule):
            if step >= fraction * self.steps:
                side = int(size)
        return side

    def generator_config(self) -> dict[str, Any]:
        return dict(self.generator)


MACHINE_KEYS = ("data", "out", "device", "threads", "precision", "workers", "in_memory", "time_limit_min")
RESUME_FIXED = ("arch", "generator", "pretrained", "ndf", "batch", "size", "seed")  # shape the nets or data
CHOICES = {"arch": ("effnet_unet", "unet"), "gan_mode": ("vanilla", "lsgan"), "precision": ("auto", "fp32", "bf16"),
           "feature_net": ("lite2",)}
BOUNDS = {"steps": (1, None), "pretrain_steps": (0, None), "batch": (1, None), "lr": (0, None),
          "beta1": (0, 1), "beta2": (0, 1), "decay": (0, 1), "lambda_l1": (0, None), "lambda_feature": (0, None), "real_label": (0, 1),
          "size": (32, 1024), "crop_scale": (0.01, 1), "degrade": (0, 2), "ckpt_every": (1, None),
          "save_minutes": (0.01, None), "val_max": (1, None), "val_images": (0, None), "ndf": (8, None),
          "select_cf_floor": (0, 2), "threads": (1, None), "workers": (0, None), "ship_fd_gain": (0, 1),
          "ship_psnr_margin": (0, None), "ship_speed_ratio": (1, None)}
RECIPE_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in MACHINE_KEYS)


def default(name: str) -> Any:
    """The default of `TrainConfig.name`, for the CLI's help."""
    f = {f.name: f for f in fields(TrainConfig)}[name]
    return f.default_factory() if f.default_factory is not MISSING else f.default


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.toml"))


def recipe_path(name_or_file: str) -> Path:
    """A recipe by name (`train/recipes/NAME.toml`) or by path."""
    path = Path(name_or_file)
    if path.suffix == ".toml" or path.is_file():
        if not path.is_file():
            raise OptionError(f"recipe file not found: {path}")
        return path
    path = RECIPES_DIR / f"{name_or_file}.toml"
    if not path.is_file():
        raise OptionError(f"no recipe named {name_or_file!r} (recipes: {', '.join(recipe_names())})")
    return path


def _unknown(key: str, known: tuple[str, ...], where: str) -> OptionError:
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    if key in MACHINE_KEYS:
        return OptionError(f"{where}: {key!r} is set on the command line, not in a recipe")
    return OptionError(f"{where}: unknown key {key!r}{hint}")


def read_recipe(name_or_file: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """The recipe's keys, its `extends` chain resolved (the recipe's own keys win)."""
    path = recipe_path(name_or_file)
    if str(path) in _seen:
        raise OptionError(f"{path}: recipes extend each other in a loop")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{path}: not valid TOML ({exc})") from None
    base = raw.pop("extends", None)
    if base is not None and not isinstance(base, str):
        raise OptionError(f"{path}: extends: expected a recipe name or .toml file, got {base!r}")
    if base is not None and base.endswith(".toml") and not Path(base).is_absolute():
        base = str(path.parent / base)  # a file beside the recipe that extends it
    for key in raw:
        if key not in RECIPE_KEYS:
            raise _unknown(key, RECIPE_KEYS, str(path))
    if base is None:
        return raw
    merged = read_recipe(base, _seen + (str(path),))
    for key in ("mix", "generator"):
        if key in raw:
            raw[key] = {**merged.get(key, {}), **raw[key]}
    return {**merged, **raw}


def parse_sets(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """`key=value` strings (values as TOML: 3, 2e-4, true, "text", {}; bare words are text) as recipe keys.
    `mix.GROUP=W` and `generator.NAME=V` set one entry of those tables (kept as dotted keys until `_apply`);
    `mix={...}` replaces the whole table."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        table, dot, entry = key.partition(".")
        if dot:
            if table not in ("mix", "generator"):
                raise _unknown(table, ("mix", "generator"), f"--set {item}")
            out[key] = value
        elif key not in RECIPE_KEYS:
            raise _unknown(key, RECIPE_KEYS, "--set")
        else:
            out[key] = value
    return out


def _check(cfg: TrainConfig) -> TrainConfig:
    """Types, choices and bounds of every field, each refused in one line naming the key."""
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        want = default(f.name)
        if value is None:
            if want is not None:
                raise OptionError(f"{f.name}: a value is required")
            continue
        kind = type(want) if want is not None else (int if f.name == "threads" else float)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            setattr(cfg, f.name, value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise OptionError(f"{f.name}: expected {kind.__name__}, got {value!r}")
        if f.name in CHOICES and value not in CHOICES[f.name]:
            raise OptionError(f"{f.name}: {value!r} is not one of {', '.join(CHOICES[f.name])}")
        lo, hi = BOUNDS.get(f.name, (None, None))
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise OptionError(f"{f.name}: {value} is outside [{lo}, {'inf' if hi is None else hi}]")
    for entry in cfg.size_schedule:
        if not (isinstance(entry, list) and len(entry) == 2 and 0 <= entry[0] < 1 and isinstance(entry[1], int)
                and BOUNDS["size"][0] <= entry[1] <= BOUNDS["size"][1]):
            raise OptionError(f"size_schedule: expected [[fraction 0-1, crop side 32-1024], ...], got {entry!r}")
    lo_hi = cfg.ship_cf_range
    if not (len(lo_hi) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in lo_hi)
            and 0 <= lo_hi[0] <= lo_hi[1]):
        raise OptionError(f"ship_cf_range: expected [low, high] with 0 <= low <= high, got {lo_hi!r}")
    for name, value in cfg.generator.items():
        if not isinstance(value, (bool, int, float, str, list)):
            raise OptionError(f"generator.{name}: expected a number, text, true/false or a list, got {value!r}")
    for group, weight in cfg.mix.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            raise OptionError(f"mix.{group}: expected a weight >= 0, got {weight!r}")
    return cfg


def resolve(recipe: str, sets: dict[str, Any] | None = None, **machine: Any) -> TrainConfig:
    """TrainConfig from a recipe, `--set` overrides and the command line's machine options."""
    keys = _apply(read_recipe(recipe), sets or {})
    return _check(TrainConfig(**keys, **{k: v for k, v in machine.items() if v is not None}))


def _apply(keys: dict[str, Any], sets: dict[str, Any]) -> dict[str, Any]:
    """`parse_sets`' overrides on recipe keys: whole values replace, dotted entries go into their table."""
    out = {**keys, **{k: v for k, v in sets.items() if "." not in k}}
    for key, value in sets.items():
        if "." in key:
            table, _, entry = key.partition(".")
            out[table] = {**out.get(table, {}), entry: value}
    return out


def resume_config(stored: dict[str, Any], sets: dict[str, Any] | None = None, **machine: Any) -> TrainConfig:
    """A stored run's TrainConfig with the schedule changed by `sets` (the networks' and data's keys stay)
    and this machine's options."""
    sets = sets or {}
    fixed = sorted({k.partition(".")[0] for k in sets} & set(RESUME_FIXED))
    if fixed:
        raise OptionError(f"with --resume, these cannot change: {', '.join(fixed)}")
    merged = _apply({k: v for k, v in stored.items() if k in RECIPE_KEYS or k in ("data", "out")}, sets)
    if "steps" in sets:  # the steps asked for win over a time-fitted schedule
        merged["auto_steps"] = False
    merged.update({k: v for k, v in machine.items() if v is not None})  # this machine's, not the stored run's
    return _check(TrainConfig(**merged))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string, control characters escaped
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def to_toml(cfg: TrainConfig) -> str:
    """The resolved recipe as TOML (machine options left out): what a run folder keeps as `recipe.toml`."""
    d = asdict(cfg)
    lines = [f"{k} = {_toml_value(d[k])}" for k in RECIPE_KEYS if k not in ("mix", "generator") and d[k] is not None]
    for table in ("generator", "mix"):
        if d[table]:
            lines += ["", f"[{table}]"] + [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in d[table].items()]
    return "\n".join(lines) + "\n"
