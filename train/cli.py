"""`vidcolor train prepare|fit|export`: parsing only; the work is in data.py and loop.py."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vidcolor.errors import VidcolorError


def _parse_mix(values: tuple[str, ...]) -> dict[str, float]:
    mix = {}
    for v in values:
        name, sep, weight = v.partition("=")
        if not sep:
            raise click.BadParameter(f"{v!r}: expected GROUP=WEIGHT")
        mix[name] = float(weight)
    return mix


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
def prepare(sources, out, size, every, dedup, min_chroma, val_every) -> None:
    """Pack video frames and photos from SOURCES (files or folders) into PACK."""
    from rich.console import Console

    from .data import prepare_pack
    console = Console(stderr=True)
    with console.status("packing") as status:
        stats = prepare_pack(list(sources), out, size, every, dedup, min_chroma, val_every,
                             progress=lambda p: status.update(f"packing {p.name}"))
    console.print(f"{out}: {stats.kept} frames ({', '.join(f'{g} {n}' for g, n in stats.groups.items())}); "
                  f"dropped {stats.duplicates} near-duplicates, {stats.colourless} colourless, "
                  f"{stats.unreadable} unreadable files")


@train.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Pack from `prepare`.")
@click.option("--out", "run", type=click.Path(path_type=Path), help="Run folder (config, checkpoints, samples).")
@click.option("--resume", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Continue RUN exactly.")
@click.option("--arch", default="effnet_unet", show_default=True, type=click.Choice(["effnet_unet", "unet"]))
@click.option("--gen-config", default="{}", help="Generator keyword arguments as JSON, e.g. '{\"ngf\": 32}'.")
@click.option("--no-pretrained", is_flag=True, help="Do not load ImageNet encoder weights.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(32, 1024))
@click.option("--batch", default=16, show_default=True, type=click.IntRange(1))
@click.option("--steps", type=click.IntRange(1), help="Total steps, both phases [default: 10000; with --resume: the run's].")
@click.option("--phase", default="both", show_default=True, type=click.Choice(["pretrain", "gan", "both"]))
@click.option("--pretrain-steps", type=click.IntRange(0), help="With --phase both: L1-only steps (default half).")
@click.option("--lr", default=2e-4, show_default=True, type=click.FloatRange(0, min_open=True))
@click.option("--lambda-l1", default=100.0, show_default=True, type=click.FloatRange(0))
@click.option("--gan-mode", default="vanilla", show_default=True, type=click.Choice(["vanilla", "lsgan"]))
@click.option("--ndf", default=64, show_default=True, type=click.IntRange(8))
@click.option("--degrade", default=1.0, show_default=True, type=click.FloatRange(0, 2), help="Strength of film-like L degradations.")
@click.option("--mix", multiple=True, help="GROUP=WEIGHT sampling weight of a source group (repeatable).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(0))
@click.option("--ckpt-every", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--device", default="auto", show_default=True)
@click.option("--time-limit", "time_limit_min", type=click.FloatRange(0, min_open=True), help="Stop (and checkpoint) after this many minutes.")
def fit(data, run, resume, arch, gen_config, no_pretrained, size, batch, steps, phase, pretrain_steps, lr,
        lambda_l1, gan_mode, ndf, degrade, mix, seed, workers, ckpt_every, device, time_limit_min) -> None:
    """Train a generator (and discriminator) on a frame pack. Multi-GPU/-node: launch with torchrun."""
    from .dist import cleanup, init_distributed
    from .loop import TrainConfig, Trainer, load_state
    if resume:
        state = load_state(resume)
        cfg = TrainConfig(**state["config"])
        run = resume
        cfg.steps = steps or cfg.steps
        cfg.pretrain_steps = cfg.pretrain_steps if pretrain_steps is None else pretrain_steps
        cfg.time_limit_min = time_limit_min or cfg.time_limit_min
    else:
        if not data or not run:
            raise click.UsageError("--data and --out are required unless --resume is given")
        if (Path(run) / "checkpoints").exists():
            raise VidcolorError(f"{run} already holds a run; use --resume {run} or another --out")
        cfg = TrainConfig(data=str(data), out=str(run), arch=arch, gen_config=json.loads(gen_config),
                          pretrained=not no_pretrained, size=size, batch=batch, steps=steps or 10000, phase=phase,
                          pretrain_steps=pretrain_steps, lr=lr, lambda_l1=lambda_l1, gan_mode=gan_mode, ndf=ndf,
                          degrade=degrade, mix=_parse_mix(mix), seed=seed, workers=workers,
                          ckpt_every=ckpt_every, device=device, time_limit_min=time_limit_min)
    info, dev = init_distributed(cfg.device)
    try:
        trainer = Trainer(cfg, dev, info)
        if resume:
            trainer.load_state_dict(state)
        _run_with_progress(trainer, Path(run))
    finally:
        cleanup()


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
def export(run, out, full_precision) -> None:
    """Write RUN's generator as a one-file inference model."""
    from .export import export_run
    path, meta = export_run(run, out, half=not full_precision)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {meta['steps']} steps)")


@train.command()
@click.argument("models", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--photos", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder of colour photos.")
@click.option("--clip", "clips", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Colour clip whose frames are scored (repeatable).")
@click.option("--every", default=5, show_default=True, type=click.IntRange(1), help="Score every k-th clip frame.")
@click.option("--render-size", default=256, show_default=True, type=click.IntRange(32, 2048))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table as JSON.")
def evaluate(models, photos, clips, every, render_size, json_out) -> None:
    """PSNR and colourfulness of MODELS (and the gray baseline) on colour photos and clip frames."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from .evaluate import evaluate as run_eval
    if not photos and not clips:
        raise click.UsageError("give --photos and/or --clip")
    named = {"gray baseline (ab = 0)": None, **{m.name: m for m in models}}
    results = run_eval(named, photos, list(clips), every, render_size)
    table = Table("model", "set", "images", "PSNR (dB)", "colourfulness", "colourfulness (truth)")
    for name, sets in results.items():
        for set_name, s in sets.items():
            table.add_row(name, set_name, str(s.count), f"{s.psnr:.2f}", f"{s.colorfulness:.1f}",
                          f"{s.colorfulness_ref:.1f}")
    Console().print(table)
    if json_out:
        json_out.write_text(json.dumps({n: {k: asdict(v) for k, v in s.items()} for n, s in results.items()}, indent=2))
