"""The commands `run`, `preview`, `info`, `formats` and `eval`: they parse and check their options, then hand over to `runner`
(the work) or `render` (what is shown). Defaults come from `vidcolor.controls`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import controls as c
from ..batch import collect_jobs, parse_shard, read_list, select_shard, sequence_hint
from ..media import OutputOptions, check_options, probe
from .app import cli
from .options import colorizer_args, encoder_options, model_options
from .render import print_note, show_formats, show_info, show_rows
from .runner import execute_eval, execute_preview, execute_run, print_cuts


@cli.command("run")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--from-list", "from_list", type=click.Path(dir_okay=False, path_type=Path),
              help="Also read inputs from this file: one path or glob per line; blank lines and # comments ignored.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (one input only); its extension picks the container. Default, beside the input: "
                   "<name>_color.<ext> for .mp4/.m4v/.mov/.mkv (and .webm with --codec libvpx-vp9); "
                   "<name>_<ext>_color.mkv for every other container (Matroska holds all their streams); "
                   "photos (.jpg .png .tif ...) keep their format: <name>_color.<ext>.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write outputs here, creating it (folder structure of folder inputs is kept).")
@click.option("--suffix", default=c.SUFFIX, show_default=True, help="Added to each input's name for its output.")
@click.option("--shard", metavar="I/N", default=None,
              help="Do only shard I of N (0 <= I < N) of the batch: N processes given the same inputs "
                   "split them without coordination (e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write each file's outcome and the totals here as JSON.")
@click.option("--segment-seconds", type=click.FloatRange(*c.SEGMENT_SECONDS_RANGE), default=c.SEGMENT_SECONDS,
              show_default=True,
              help="Video is encoded in segments of this length; an interrupted run resumes from the last one.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (otherwise they are skipped).")
@click.option("-q", "--quiet", is_flag=True,
              help="No progress (a bar on a terminal; elsewhere a line per file every ~10 s); the summary stays.")
@model_options
@click.option("--cuts-only", is_flag=True,
              help="Only print the scene cuts found (frame index and time); colorize and write nothing.")
@encoder_options
@click.option("--pix-fmt", type=click.Choice(c.PIX_FMT_CHOICES), default=c.PIX_FMT, show_default=True,
              help="Output chroma subsampling and bit depth; auto: the source's, where the codec holds them "
                   "(`vidcolor formats` lists what each codec takes).")
@click.option("--sequence", is_flag=True,
              help="Folder inputs are image sequences: each folder's numbered DPX/TIFF/PNG frames are one film "
                   "(written to <folder>_color/ unless -o names a pattern or a video).")
@click.option("--fps", type=click.FloatRange(*c.FPS_RANGE), default=c.SEQUENCE_FPS, show_default=True,
              help="Frame rate of image-sequence inputs (patterns such as 'scans/reel1_%06d.dpx', or --sequence).")
@click.pass_context
def run_command(ctx: click.Context, inputs: tuple[Path, ...], from_list: Path | None, output: Path | None,
                output_dir: Path | None, suffix: str, shard: str | None, report_path: Path | None,
                segment_seconds: float, overwrite: bool, quiet: bool, cuts_only: bool, codec: str, crf: int,
                preset: str, pix_fmt: str, sequence: bool, fps: float, **model: Any) -> None:
    """Colorize videos, photos and image sequences: files, folders (searched recursively), glob patterns and
    lists (--from-list).

    A run killed or interrupted part-way resumes from its last finished segment when the same
    command is run again.
    """
    if from_list is not None:
        inputs = (*inputs, *read_list(from_list))
    if not inputs:
        raise click.UsageError("no inputs given (pass files, folders, globs or --from-list)")
    if suffix != Path(suffix).name or not suffix.strip():
        raise click.BadParameter("must be a non-empty file name part", param_hint="--suffix")
    args = colorizer_args(**model)
    if model.get("hints_dir") is not None:
        check_hints_film(model["hints_dir"], inputs)
    if cuts_only:
        ctx.exit(print_cuts(collect_jobs(inputs, None, None), args["render_size"], ctx.obj["debug"]))
    if output is not None and (output_dir is not None or len(inputs) > 1 or (inputs[0].is_dir() and not sequence)):
        raise click.UsageError("-o/--output takes a single input file (use --output-dir for several)")
    jobs = collect_jobs(inputs, output, output_dir, suffix, codec, sequence)
    hints = [] if sequence else [h for item in inputs if item.is_dir() and (h := sequence_hint(item))]
    for hint in hints:
        print_note(hint)
    if not jobs:
        raise click.UsageError("no video or image files found in the given folders"
                               + (" (for image sequences add --sequence)" if hints else ""))
    if shard is not None:
        try:
            jobs = select_shard(jobs, *parse_shard(shard))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--shard") from None
    options = OutputOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, overwrite=overwrite)
    check_options(options)
    ctx.exit(execute_run(jobs, args, options, make_dirs=output_dir is not None or output is not None,
                         debug=ctx.obj["debug"], report_path=report_path, segment_seconds=segment_seconds, fps=fps,
                         quiet=quiet))


def check_hints_film(folder: Path, inputs: tuple[Path, ...]) -> None:
    """Hints are painted on one film: --hints-dir takes one input, and a note when the folder names another."""
    from ..hintfolder import read_index

    if len(inputs) != 1 or inputs[0].is_dir():
        raise click.UsageError("--hints-dir takes a single input file: hints belong to the film they were painted on")
    film = read_index(folder)[0]
    if film != inputs[0].name:
        print_note(f"{folder} was painted on {film}, not {inputs[0].name}; its hints are used as they are")


@cli.command("preview")
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-n", "--frames", "count", type=click.IntRange(*c.PREVIEW_FRAMES_RANGE), default=c.PREVIEW_FRAMES,
              show_default=True, help="Frames on the sheet, spread evenly over the video.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help=f"The picture (.png, .jpg, ...). Default, beside the input: <name>{c.PREVIEW_SUFFIX}.png.")
@click.option("--overwrite", is_flag=True, help="Replace an existing picture.")
@model_options
@click.option("--pix-fmt", type=click.Choice(c.PIX_FMT_CHOICES), default=c.PIX_FMT, show_default=True,
              help="Output chroma subsampling and bit depth, as for run.")
@click.pass_context
def preview_command(ctx: click.Context, input: Path, count: int, output: Path | None, overwrite: bool,
                    pix_fmt: str, **model: Any) -> None:
    """Write one picture of N frames spread over INPUT, gray beside colour, with their times: what `run`
    would give with the same options, in seconds, before the long run."""
    stem = (input.name.split("%")[0].rstrip("_-. ") or "sequence") if "%" in input.name else input.stem
    target = output or input.with_name(f"{stem}{c.PREVIEW_SUFFIX}.png")
    execute_preview(input, target, count, overwrite, pix_fmt, colorizer_args(**model))


@cli.command("paint")
@click.argument("film", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: a free one).")
@click.option("--no-browser", is_flag=True, help="Only print the page's address; open no browser.")
@model_options
@click.option("--pix-fmt", type=click.Choice(c.PIX_FMT_CHOICES), default=c.PIX_FMT, show_default=True,
              help="Output chroma subsampling and bit depth, as for run.")
def paint_command(film: Path, port: int, no_browser: bool, pix_fmt: str, **model: Any) -> None:
    """Open a local page to look through FILM and paint colour hints on its frames, seeing each frame
    re-coloured with them; they are saved to --hints-dir (default: <name>_hints/ beside FILM) for
    `vidcolor run FILM --hints-dir DIR`. The page is served on 127.0.0.1 only, with a one-time token
    in its address; Ctrl-C stops it."""
    from ..paint import serve

    if not film.is_file():
        raise click.UsageError(f"no such file: {film}")
    if model.get("hints"):
        raise click.UsageError("paint makes the hints: give --hints to run (or --hints-dir to paint into a folder)")
    folder = model.pop("hints_dir")
    serve(film, colorizer_args(**model), folder, port, not no_browser, announce_paint)


def announce_paint(url: str, folder: Path, command: str) -> None:
    click.echo(f"vidcolor paint: open {url}")
    click.echo(f"hints are saved in {folder}/; then colour the film with:\n  {command}")
    click.echo("Ctrl-C stops the page.", err=True)


@cli.command("info")
@click.argument("file", type=click.Path(path_type=Path), required=False)
@click.option("--system", is_flag=True, help="Show this machine instead: CPU, GPU, the device and the engine that "
                                             "`run` would use with these options, and the library versions.")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), help="With --system: this checkpoint.")
@click.option("--device", default=c.DEVICE, show_default=True, help="With --system: auto, cpu, cuda or cuda:N.")
@click.option("--engine", type=click.Choice(c.ENGINES), default=c.ENGINE, show_default=True,
              help="With --system: the engine asked for.")
def info_command(file: Path | None, system: bool, model: Path | None, device: str, engine: str) -> None:
    """Show a video's streams, size, colour space, frame rate, frame count, rotation and audio (or, with
    --system, what this machine runs the model with)."""
    if system:
        from .runner import system_rows
        show_rows(system_rows(model, device, engine))
    elif file is None:
        raise click.UsageError("give a FILE, or --system")
    else:
        show_info(probe(file))


@cli.command("formats")
def formats_command() -> None:
    """List the video encoders this build has, the pixel formats (bit depths, chroma) each takes, and the
    photo formats."""
    from ..media import STILL_SUFFIXES, codec_table
    show_formats(codec_table(), STILL_SUFFIXES)


@cli.command("eval")
@click.argument("videos", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--colorize", is_flag=True,
              help="VIDEOS are colour references: gray each, colorize it as `vidcolor run` would, and score.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the scores here.")
@click.option("--keep-dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --colorize: keep the colorized videos here.")
@click.option("--flow-side", default=c.FLOW_MAX_SIDE, show_default=True, type=click.IntRange(0),
              help="Long side (px) the warp error's optical flow is computed at; 0: full resolution (slower).")
@click.option("--fd/--no-fd", "with_fd", default=True, show_default=True,
              help="Score fd_lite0 (Fréchet distance on EfficientNet-Lite0 ImageNet features, not FID; "
                   "needs the training extra).")
@click.option("--fd-every", default=c.FD_EVERY, show_default=True, type=click.IntRange(1),
              help="fd_lite0 uses every N-th frame of each video.")
@model_options
@encoder_options
@click.pass_context
def eval_command(ctx: click.Context, videos: tuple[Path, ...], colorize: bool, json_path: Path | None,
                 keep_dir: Path | None, flow_side: int, with_fd: bool, fd_every: int, codec: str, crf: int,
                 preset: str, **model: Any) -> None:
    """Score colorized video against colour references: `eval PRED REF [PRED REF ...]`, or
    `eval --colorize REF...` to colorize each gray version first (model and run options as `run`).

    Metrics per video and their mean: PSNR and SSIM on 8-bit RGB, colourfulness of prediction
    and reference, their ratio and difference (ΔCF), fd_lite0 between the prediction's and the
    reference's frames (lower is better), CDC and warp error on RGB (lower is better; the
    reference's own values are the floor) and on the chroma channels only (the colour flicker;
    --json has every value).
    """
    args, output = None, None
    if colorize:
        args = colorizer_args(**model)
        output = OutputOptions(codec=codec, crf=crf, preset=preset, overwrite=True)
        check_options(output)
    elif len(videos) % 2:
        raise click.UsageError("give PRED REF pairs (or --colorize REF...)")
    ctx.exit(execute_eval(videos, args, output, json_path, keep_dir, flow_side, with_fd, fd_every, model["device"],
                          ctx.obj["debug"]))
