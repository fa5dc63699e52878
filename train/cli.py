"""`vidcolor train prepare|fit|export`: parsing only; the work is in data.py and loop.py."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vidcolor.controls import RENDER_SIZE, RENDER_SIZE_RANGE, SATURATION_RANGE
from vidcolor.errors import VidcolorError

from .config import SIZE_RANGE, TEMPERATURE_RANGE, TrainConfig
from .config import default as D


def _parse_mix(values: tuple[str, ...]) -> dict[str, float]:
    mix = {}
    for v in values:
        name, sep, weight = v.partition("=")
        if not sep:
            raise click.BadParameter(f"{v!r}: expected GROUP=WEIGHT")
        mix[name] = float(weight)
    return mix


# Options that shape the networks or the data: a resumed run keeps its own.
RESUME_FIXED = {"data", "arch", "gen_config", "head", "global_context", "input_norm", "no_pretrained",
                "ndf", "seed", "in_memory", "batch", "size"}


@click.group()
def train() -> None:
    """Train the colorization cGAN and export inference models."""


@train.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Pack folder to write.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(32, 2048), help="Short side of stored frames.")
@click.option("--every", default=5, show_default=True, type=click.IntRange(1), help="Keep every k-th video frame.")
@click.option("--dedup", default=2.0, show_default=True, type=click.FloatRange(0), help="Near-duplicate threshold (mean abs diff, 0-255).")
@click.option("--min-chroma", default=3.0, show_default=True, type=click.FloatRange(0), help="Drop frames with less mean Lab chroma.")
@click.option("--val-every", default=50, show_default=True, type=click.IntRange(2), help="Every k-th kept frame is validation.")
@click.option("--val-files", default=0, show_default=True, type=click.IntRange(0),
              help="Instead, every k-th file of each source is validation, whole (no near-copies of its video "
                   "frames in training); 0: off.")
def prepare(sources, out, size, every, dedup, min_chroma, val_every, val_files) -> None:
    """Pack video frames and photos from SOURCES (files or folders) into PACK."""
    from rich.console import Console

    from .data import prepare_pack
    console = Console(stderr=True)
    with console.status("packing") as status:
        stats = prepare_pack(list(sources), out, size, every, dedup, min_chroma, val_every,
                             progress=lambda p: status.update(f"packing {p.name}"), val_files=val_files)
    console.print(f"{out}: {stats.kept} frames ({', '.join(f'{g} {n}' for g, n in stats.groups.items())}); "
                  f"dropped {stats.duplicates} near-duplicates, {stats.colourless} colourless, "
                  f"{stats.unreadable} unreadable files")


@train.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Pack from `prepare`.")
@click.option("--out", "run", type=click.Path(path_type=Path), help="Run folder (config, checkpoints, samples).")
@click.option("--resume", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Continue RUN exactly. With --out NEW: continue it in NEW and leave RUN as it is (a fork).")
@click.option("--arch", default=D("arch"), show_default=True, type=click.Choice(["effnet_unet", "unet"]))
@click.option("--gen-config", default="{}", help="Generator keyword arguments as JSON, e.g. '{\"ngf\": 32}'.")
@click.option("--head", default=D("head"), show_default=True, type=click.Choice(["regression", "bins"]),
              help="effnet_unet: L1 regression of ab, or rebalanced classification over ab bins.")
@click.option("--global-context", is_flag=True, help="effnet_unet: fuse pooled scene features into the decoder.")
@click.option("--input-norm", default=D("input_norm"), show_default=True, type=click.Choice(["imagenet", "tf"]),
              help="Encoder input normalisation; tf = (x-127)/128, what the Lite0 weights were trained with.")
@click.option("--temperature", default=D("temperature"), show_default=True, type=click.FloatRange(*TEMPERATURE_RANGE),
              help="bins head: annealed-mean decoding temperature stored in the model.")
@click.option("--no-pretrained", is_flag=True, help="Do not load ImageNet encoder weights.")
@click.option("--size", default=D("size"), show_default=True, type=click.IntRange(*SIZE_RANGE), help="Training crop side.")
@click.option("--batch", default=D("batch"), show_default=True, type=click.IntRange(1))
@click.option("--steps", type=click.IntRange(1), help=f"Total steps, both phases [default: {D('steps')}; with --resume: the run's].")
@click.option("--phase", default=D("phase"), show_default=True, type=click.Choice(["pretrain", "gan", "both"]))
@click.option("--pretrain-steps", type=click.IntRange(0), help="With --phase both: generator-only steps (default half).")
@click.option("--lr", default=D("lr"), show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--beta1", default=D("beta1"), show_default=True, type=click.FloatRange(0, 1, max_open=True), help="Adam beta1.")
@click.option("--decay", default=D("decay"), show_default=True, type=click.FloatRange(0, 1), help="Linear LR decay over this last fraction of each phase.")
@click.option("--lambda-l1", default=D("lambda_l1"), show_default=True, type=click.FloatRange(0))
@click.option("--lambda-ce", default=D("lambda_ce"), show_default=True, type=click.FloatRange(0), help="bins head: weight of the cross-entropy.")
@click.option("--gan-mode", default=D("gan_mode"), show_default=True, type=click.Choice(["vanilla", "lsgan"]))
@click.option("--ndf", default=D("ndf"), show_default=True, type=click.IntRange(8))
@click.option("--degrade", default=D("degrade"), show_default=True, type=click.FloatRange(0, 2), help="Strength of film-like L degradations.")
@click.option("--mix", multiple=True, help="GROUP=WEIGHT sampling weight of a source group (repeatable).")
@click.option("--seed", default=D("seed"), show_default=True, type=int)
@click.option("--workers", default=D("workers"), show_default=True, type=click.IntRange(0))
@click.option("--in-memory", is_flag=True, help="Decode the pack into RAM once (no JPEG decoding per step, no workers).")
@click.option("--crop-scale", default=D("crop_scale"), show_default=True, type=click.FloatRange(0.01, 1), help="Smallest random crop, as a fraction of the frame's area.")
@click.option("--crop-max-scale", default=D("crop_max_scale"), show_default=True, type=click.FloatRange(0.01, 1),
              help="Largest random crop, as a fraction of the frame's area. Objects then appear at the scale the "
                   "product renders them (short side 256) rather than smaller.")
@click.option("--freeze-steps", default=D("freeze_steps"), show_default=True, type=click.IntRange(0), help="First steps with the pretrained encoder frozen.")
@click.option("--encoder-lr-mult", default=D("encoder_lr_mult"), show_default=True, type=click.FloatRange(0), help="Encoder LR = LR x this once unfrozen.")
@click.option("--freeze-encoder-bn", is_flag=True, help="Keep the encoder's ImageNet BatchNorm statistics throughout.")
@click.option("--precision", default=D("precision"), show_default=True, type=click.Choice(["auto", "fp32", "bf16"]),
              help="auto: measure fp32/bf16 and channels_last at start, keep the fastest sound one.")
@click.option("--threads", type=click.IntRange(1), help="torch intra-op threads (1 is fastest beside other jobs).")
@click.option("--d-pretrain-steps", default=D("d_pretrain_steps"), show_default=True, type=click.IntRange(0), help="NoGAN: first GAN-phase steps train only D.")
@click.option("--gan-lr", type=click.FloatRange(0, min_open=True), help="Generator LR in the GAN phase (default: --lr).")
@click.option("--d-lr-mult", default=D("d_lr_mult"), show_default=True, type=click.FloatRange(0, min_open=True), help="D's LR = GAN-phase LR x this.")
@click.option("--ckpt-every", default=D("ckpt_every"), show_default=True, type=click.IntRange(1))
@click.option("--val-size", type=click.IntRange(*SIZE_RANGE), help="Validation centre-crop side (default: --size).")
@click.option("--val-fd/--no-val-fd", default=D("val_fd"), show_default=True, help="fd_lite0 at validation (needs the training extra).")
@click.option("--val-max", default=D("val_max"), show_default=True, type=click.IntRange(1), help="Validation frames scored.")
@click.option("--device", default=D("device"), show_default=True)
@click.option("--time-limit", "time_limit_min", type=click.FloatRange(0, min_open=True), help="Stop (and checkpoint) after this many minutes of the run's training time.")
@click.pass_context
def fit(ctx, data, run, resume, gen_config, no_pretrained, steps, pretrain_steps, mix, time_limit_min, **opts) -> None:
    """Train a generator (and discriminator) on a frame pack. Multi-GPU/-node: launch with torchrun.

    With --resume, the run continues exactly; schedule options given on the command line
    (--steps, --pretrain-steps, --freeze-steps, --d-pretrain-steps, --gan-lr, ...) and --mix
    (merged into the run's, from that step on) replace the run's, while the networks' options
    must stay as they were. --resume RUN --out NEW forks: RUN's state and history continue in NEW.
    """
    from .dist import cleanup, init_distributed
    from .loop import Trainer, load_state
    fork_from = None
    if resume:
        state = load_state(resume)
        cfg = TrainConfig(**state["config"])
        given = {name for name in ctx.params
                 if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
        fixed = given & RESUME_FIXED
        if fixed:
            raise click.UsageError(f"with --resume, these cannot change: {', '.join(sorted(fixed))}")
        fork_from = resume if run and Path(run).resolve() != Path(resume).resolve() else None
        if fork_from and (Path(run) / "checkpoints").exists():
            raise VidcolorError(f"{run} already holds a run; fork into another --out")
        if fork_from:
            cfg.out = str(run)
        run = run or resume
        cfg.mix = {**cfg.mix, **_parse_mix(mix)}
        cfg.steps = steps or cfg.steps
        cfg.pretrain_steps = cfg.pretrain_steps if pretrain_steps is None else pretrain_steps
        cfg.time_limit_min = time_limit_min or cfg.time_limit_min
        for name in given & set(opts):
            setattr(cfg, name, opts[name])
    else:
        if not data or not run:
            raise click.UsageError("--data and --out are required unless --resume is given")
        if (Path(run) / "checkpoints").exists():
            raise VidcolorError(f"{run} already holds a run; use --resume {run} or another --out")
        cfg = TrainConfig(data=str(data), out=str(run), gen_config=json.loads(gen_config),
                          pretrained=not no_pretrained, steps=steps or D("steps"), pretrain_steps=pretrain_steps,
                          mix=_parse_mix(mix), time_limit_min=time_limit_min, **opts)
    info, dev = init_distributed(cfg.device)
    try:
        trainer = Trainer(cfg, dev, info)  # checks the options (a --mix group the pack lacks) first
        if resume:
            trainer.load_state_dict(state)
        if fork_from and info.is_main:
            _fork_history(Path(fork_from), Path(run))
        _run_with_progress(trainer, Path(run))
    finally:
        cleanup()


def _fork_history(src: Path, dst: Path) -> None:
    """Start run folder `dst` with `src`'s history, so its metrics read as one run."""
    import shutil
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.csv", "tuning.jsonl"):
        if (src / name).exists():
            shutil.copyfile(src / name, dst / name)


def _run_with_progress(trainer, run: Path) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .loop import fit as fit_loop
    console = Console(stderr=True)
    if not trainer.info.is_main:
        fit_loop(trainer, run, log=lambda _m: None)
        return
    columns = [TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[info]}")]
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("train", total=trainer.cfg.steps, completed=trainer.step, info="")

        def on_step(step: int, losses: dict[str, float], speed: float) -> None:
            text = " ".join(f"{k} {v:.4f}" for k, v in losses.items()) + f" | {speed:.1f} img/s"
            progress.update(task, completed=step, info=text)
            if not console.is_terminal and step % 50 == 0:  # a log file gets a line now and then
                console.print(f"step {step} {text}")

        fit_loop(trainer, run, on_step=on_step, log=progress.console.print)


@train.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--full-precision", is_flag=True, help="Keep fp32 weights (default: fp16, half the size).")
@click.option("--pick", default="last", show_default=True,
              help="last, best (by validation: lowest fd_lite0 with PSNR not below gray's), a checkpoint step, "
                   "or steps S1,S2,... whose weights are averaged (late checkpoints of one run).")
@click.option("--temperature", type=click.FloatRange(*TEMPERATURE_RANGE),
              help="bins head: decoding temperature stored in the model (lower: more saturated) [the run's].")
def export(run, out, full_precision, pick, temperature) -> None:
    """Write RUN's generator as a one-file inference model."""
    from .export import export_run
    if pick not in ("last", "best") and not all(p.isdigit() for p in pick.split(",")):
        raise click.BadParameter(f"{pick!r}: expected last, best, a step number or steps S1,S2,... to average",
                                 param_hint="--pick")
    path, meta = export_run(run, out, half=not full_precision, pick=pick, temperature=temperature)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {meta['steps']} steps)")


@train.command()
@click.argument("models", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pack", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also score a pack's validation split (for choices; keep the evaluation folder for reporting).")
@click.option("--pack-max", type=click.IntRange(1), help="Score at most this many of the pack's validation frames, spread evenly.")
@click.option("--by-group", is_flag=True,
              help="With --pack: also score each source group of the validation split on its own.")
@click.option("--photos", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder of colour photos.")
@click.option("--clip", "clips", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Colour clip whose frames are scored (repeatable).")
@click.option("--every", default=5, show_default=True, type=click.IntRange(1), help="Score every k-th clip frame.")
@click.option("--render-size", default=RENDER_SIZE, show_default=True, type=click.IntRange(*RENDER_SIZE_RANGE))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table as JSON.")
@click.option("--fd/--no-fd", "with_fd", default=True, show_default=True,
              help="Score fd_lite0 (Fréchet distance on EfficientNet-Lite0 ImageNet features, not FID).")
@click.option("--saturation", "saturations", multiple=True, type=click.FloatRange(*SATURATION_RANGE),
              help="Also score each model at this `run --saturation` (repeatable) [1].")
def evaluate(models, pack, pack_max, by_group, photos, clips, every, render_size, json_out, with_fd,
             saturations) -> None:
    """PSNR, colourfulness (ratio and ΔCF to the truth's) and fd_lite0 of MODELS (and the gray
    baseline) on colour photos and clip frames."""
    import math
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from vidcolor.fd import Lite0Features, lite0_unavailable
    from vidcolor.device import resolve_device

    from .evaluate import evaluate as run_eval
    if not photos and not clips and not pack:
        raise click.UsageError("give --pack, --photos and/or --clip")
    if by_group and not pack:
        raise click.UsageError("--by-group needs --pack")
    console = Console()
    reason = "off (--no-fd)" if not with_fd else lite0_unavailable()
    features = Lite0Features(resolve_device("auto")) if reason is None else None
    named = {"gray baseline (ab = 0)": None, **{m.name: m for m in models}}
    results = run_eval(named, photos, list(clips), every, render_size, features=features, pack=pack,
                       pack_max=pack_max, by_group=by_group,
                       saturations=tuple(dict.fromkeys((1.0, *saturations))))
    table = Table("model", "set", "images", "PSNR (dB)", "colourfulness", "colourfulness (truth)", "CF ratio", "ΔCF",
                  "fd_lite0")
    for name, sets in results.items():
        for set_name, s in sets.items():
            table.add_row(name, set_name, str(s.count), f"{s.psnr:.2f}", f"{s.colorfulness:.1f}",
                          f"{s.colorfulness_ref:.1f}", f"{s.colorfulness_ratio:.2f}", f"{s.delta_cf:+.1f}",
                          "n/a" if math.isnan(s.fd_lite0) else f"{s.fd_lite0:.2f}")
    if reason is not None:
        table.caption = f"fd_lite0: {reason}"
    console.print(table)
    if json_out:
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        json_out.write_text(json.dumps({n: {k: {f: clean(x) for f, x in asdict(v).items()} for k, v in s.items()}
                                        for n, s in results.items()}, indent=2))
