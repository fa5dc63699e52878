"""`vidcolor train prepare|fit|export|evaluate`: parsing only. Recipes and their merging live in config.py,
the work in pack.py, model.py, loop.py, export.py and evaluate.py."""

from __future__ import annotations

from pathlib import Path

import click

from vidcolor.controls import RENDER_SIZE, RENDER_SIZE_RANGE, SATURATION_RANGE
from vidcolor.errors import OptionError, VidcolorError

from .config import CHOICES, TENSOR_MIB, TENSOR_SIDE, default as D


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
@click.option("--val-every", default=50, show_default=True, type=click.IntRange(2),
              help="Every k-th kept frame is validation (off when --val-files or --val-sources is given).")
@click.option("--val-files", default=0, show_default=True, type=click.IntRange(0),
              help="Every k-th file of each source is validation, whole; 0: off.")
@click.option("--val-sources", default="", metavar="NAME,...",
              help="Hold these sources out of training, whole: a source group (a folder given as SOURCE), a "
                   "folder inside one, or a file name. Validation then predicts unseen footage.")
@click.option("--tensor", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Also write a one-file tensor pack for torch-only training (a GPU machine): square frames as "
                   f"uint8 YCbCr 4:2:0; {TENSOR_MIB:g} MiB holds about "
                   f"{int(TENSOR_MIB * 2 ** 20 * 0.995) // (TENSOR_SIDE ** 2 * 3 // 2)} frames at "
                   f"{TENSOR_SIDE} px, 15% of them validation.")
@click.option("--tensor-side", default=TENSOR_SIDE, show_default=True, type=click.IntRange(32, 1024),
              help="Side of the tensor pack's square frames (even).")
@click.option("--tensor-mib", default=TENSOR_MIB, show_default=True, type=click.FloatRange(1),
              help="Size limit of the tensor pack (with the repository and the encoder weights it must fit a "
                   "64 MiB device transfer).")
def prepare(sources, out, size, every, dedup, min_chroma, val_every, val_files, val_sources, tensor, tensor_side,
            tensor_mib) -> None:
    """Pack video frames and photos from SOURCES (files or folders) into a pack folder (and a tensor pack)."""
    from rich.console import Console

    from .pack import prepare_pack, write_tensor_pack
    console = Console(stderr=True)
    held = tuple(s.strip() for s in val_sources.split(",") if s.strip())
    with console.status("packing") as status:
        stats = prepare_pack(list(sources), out, size, every, dedup, min_chroma, val_every,
                             progress=lambda p: status.update(f"packing {p.name}"), val_files=val_files,
                             val_sources=held)
    console.print(f"{out}: {stats.kept} frames ({', '.join(f'{g} {n}' for g, n in stats.groups.items())}); "
                  f"dropped {stats.duplicates} near-duplicates, {stats.colourless} colourless, "
                  f"{stats.unreadable} unreadable files")
    if tensor:
        summary = write_tensor_pack(out, tensor, tensor_side, tensor_mib)
        console.print(f"{tensor}: {summary['frames']} frames ({summary['val']} validation) at {tensor_side} px, "
                      f"{summary['bytes'] / 2 ** 20:.1f} MiB")


@train.command()
@click.option("--recipe", default="default", show_default=True,
              help="A recipe name (train/recipes/NAME.toml) or a .toml file.")
@click.option("--data", type=click.Path(exists=True, path_type=Path), help="Pack folder or tensor pack (.pt).")
@click.option("--out", "run", type=click.Path(path_type=Path), help="Run folder to create.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe key (repeatable), e.g. --set steps=3000 --set mix.videos=3000.")
@click.option("--resume", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Continue RUN from its last state with its stored recipe (--set may change the schedule).")
@click.option("--time-limit", "time_limit_min", type=click.FloatRange(0, min_open=True),
              help="Stop (and checkpoint) once the run's training time reaches this many minutes (a resumed "
                   "run's earlier training counts).")
@click.option("--device", default=D("device"), show_default=True, help="auto, cpu, cuda, cuda:N.")
@click.option("--precision", type=click.Choice(CHOICES["precision"]),
              help="auto: bf16 + channels_last on CUDA; on a CPU the fastest sound choice, measured. [auto]")
@click.option("--threads", type=click.IntRange(1), help="torch intra-op threads (1 is fastest beside other jobs).")
@click.option("--workers", type=click.IntRange(0), help=f"JPEG-decoding workers for a pack folder [{D('workers')}].")
@click.option("--in-memory", is_flag=True, default=None, help="Decode a pack folder into RAM once (no workers).")
def fit(recipe, data, run, sets, resume, time_limit_min, device, precision, threads, workers, in_memory) -> None:
    """Train a generator and discriminator on a pack, as a recipe says. Several GPUs: launch with torchrun.

    Recipes: train/recipes/*.toml (`default` made the shipped model). The run folder keeps the resolved
    recipe, so `--resume RUN` needs nothing else.
    """
    from .config import parse_sets, resolve, resume_config
    from .dist import cleanup, init_distributed
    from .loop import load_state
    from .model import Trainer
    overrides = parse_sets(sets)
    machine = dict(device=device, precision=precision, threads=threads, workers=workers, in_memory=in_memory,
                   time_limit_min=time_limit_min, data=str(Path(data).resolve()) if data else None)  # resumable from anywhere
    if resume:
        if run and Path(run).resolve() != Path(resume).resolve():
            raise OptionError("--resume continues RUN in place; --out cannot name another folder")
        if click.get_current_context().get_parameter_source("recipe") == click.core.ParameterSource.COMMANDLINE:
            raise OptionError("--resume keeps the run's own recipe; change it with --set")
        state = load_state(resume)
        cfg = resume_config(state["config"], overrides, **machine)
        if not Path(cfg.data).exists():
            raise VidcolorError(f"the run's pack {cfg.data} is not found from here (runs started before packs were "
                                f"stored with their full path name it relative to where they started): add --data PATH")
        run = Path(resume)
    else:
        if not data or not run:
            raise click.UsageError("--data and --out are required unless --resume is given")
        if (Path(run) / "checkpoints").exists():
            raise VidcolorError(f"{run} already holds a run; use --resume {run} or another --out")
        cfg = resolve(recipe, overrides, out=str(run), **machine)
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
            progress.update(task, completed=step, total=trainer.cfg.steps, info=text)
            if not console.is_terminal and step % 50 == 0:  # a log file gets a line now and then
                console.print(f"step {step}/{trainer.cfg.steps} {text}")

        fit_loop(trainer, run, on_step=on_step, log=progress.console.print)


@train.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--full-precision", is_flag=True, help="Keep fp32 weights (default: fp16, half the size).")
@click.option("--pick", default="last", show_default=True,
              help="last; best (the recipe's rule, on `evaluate RUN`'s curve when there is one, else on the "
                   "validation during training); a checkpoint step; or steps S1,S2,... whose weights are averaged.")
@click.option("--int8/--no-int8", default=True, show_default=True,
              help="Also write the int8 copy beside it (`train quantize` on the run's own pack), which `run` takes "
                   "on a CPU: about 2x faster.")
def export(run, out, full_precision, pick, int8) -> None:
    """Write RUN's generator as a one-file inference model (and its int8 copy for CPUs)."""
    from .export import export_run, run_pack
    if pick not in ("last", "best") and not all(p.isdigit() for p in pick.split(",")):
        raise click.BadParameter(f"{pick!r}: expected last, best, a step number or steps S1,S2,... to average",
                                 param_hint="--pick")
    path, meta = export_run(run, out, half=not full_precision, pick=pick)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {meta['steps']} steps)")
    later = f"`vidcolor train quantize {path} --pack PACK` makes its int8 copy for CPUs (about 2x faster)"
    if not int8:
        return
    pack = run_pack(run)
    if pack is None:
        click.echo(f"no int8 copy: the run's pack is not found from here; {later}")
        return
    try:
        from .quantize import quantize_model

        copy, qmeta = quantize_model(path, pack)
    except ImportError as exc:  # a torch-only machine (the GPU script's): the model is written, the copy made later
        click.echo(f"no int8 copy: {exc.name or exc} is not installed here; {later}")
        return
    except VidcolorError as exc:  # the model is written: a missing extra only costs the CPU speed-up
        click.echo(f"no int8 copy: {exc}; {later}")
        return
    click.echo(f"wrote {copy} (its int8 copy, which `run` takes on a CPU; calibrated on "
               f"{qmeta['vidcolor_calibration']})")


@train.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pack", required=True, type=click.Path(exists=True, path_type=Path),
              help="Pack (folder or tensor pack) whose training frames calibrate the int8 ranges.")
@click.option("--frames", default=256, show_default=True, type=click.IntRange(1, 4096),
              help="Calibration frames, spread evenly over the training split.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write it [default: beside MODEL, NAME.int8.onnx, where `run` looks for it].")
@click.option("--render-size", default=RENDER_SIZE, show_default=True, type=click.IntRange(*RENDER_SIZE_RANGE))
def quantize(model, pack, frames, out, render_size) -> None:
    """Write MODEL's int8 copy for ONNX Runtime: `run` on a CPU then takes it (about 2x faster)."""
    from .quantize import quantize_model
    path, meta = quantize_model(model, pack, out, frames, render_size)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB; calibrated on {meta['vidcolor_calibration']})")


@train.command()
@click.argument("models", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--pack", type=click.Path(exists=True, path_type=Path),
              help="Score a pack's validation split (folder or tensor pack): for choices; keep the evaluation "
                   "folder for reporting.")
@click.option("--pack-max", type=click.IntRange(1), help="Score at most this many of the pack's validation frames, spread evenly.")
@click.option("--by-group", is_flag=True, help="With --pack: also score each source group of the validation split.")
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
@click.option("--against", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The shipped model a run's pick must beat: the recipe's ship rule is checked against it.")
def evaluate(models, pack, pack_max, by_group, photos, clips, every, render_size, json_out, with_fd,
             saturations, against) -> None:
    """PSNR, colourfulness (ratio and ΔCF to the truth's) and fd_lite0 of MODELS and the gray baseline, on
    the product's path. A run folder among MODELS is a learning curve: each of its checkpoints is scored,
    the table (per source group with --by-group) goes to RUN/curve.csv, and the recipe's rule picks one."""
    from .report import run_cli
    if not photos and not clips and not pack:
        raise click.UsageError("give --pack, --photos and/or --clip")
    if by_group and not pack:
        raise click.UsageError("--by-group needs --pack")
    run_cli(models, pack, pack_max, by_group, photos, clips, every, render_size, json_out, with_fd, saturations,
            against)
