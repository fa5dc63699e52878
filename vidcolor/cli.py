"""The `vidcolor` command line.

Click commands only parse and validate; the work happens in `execute_run` / `show_info`
and in `vidcolor.pipeline`. Every failure reaches the user as one red line (the group's
`invoke` is the single place that prints them); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from . import __version__
from .batch import VIDEO_EXTENSIONS, Job, Outcome, collect_jobs, parse_shard, read_list, select_shard, write_report  # noqa: F401
from .controls import DEFAULT_SATURATION, SATURATION_RANGE, check_saturation
from .errors import VidcolorError
from .flow import FLOW_MAX_SIDE
from .media import MediaInfo, OutputOptions, check_options, output_name, probe
from .media.writer import PIX_FMTS
from .temporal import DEFAULT_SMOOTHING, SMOOTHERS, EmaSmoother, FlowSmoother, WindowSmoother

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow", "placebo")
LAZY_COMMANDS = {"train": "train.cli:train"}  # needs the training extras; the product works without them


def stderr_console() -> Console:
    """Messages go to stderr and are never wrapped, so each stays one line."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    stderr_console().print(f"[bold red]error:[/] {escape(message)}")


class LazyGroup(click.Group):
    """A group that imports some subcommands ('name': 'module:attribute') only when used.

    A subcommand that fails to import becomes a stub that reports why, so a missing
    optional dependency never breaks the rest of the CLI.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.lazy:
            return super().get_command(ctx, name)
        module_name, attribute = self.lazy[name].split(":")
        try:
            return getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            return _unavailable_command(name, f"{exc.__class__.__name__}: {exc}")


def _unavailable_command(name: str, reason: str) -> click.Command:
    def fail(args: tuple[str, ...]) -> None:
        raise VidcolorError(f"'vidcolor {name}' is unavailable ({reason}); install the training extras: "
                            f"pip install 'vidcolor[train]'")
    return click.Command(name, callback=fail, help=f"(unavailable: {reason})",
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
                         context_settings={"ignore_unknown_options": True, "help_option_names": []})


class VidcolorGroup(LazyGroup):
    """The root group: turns every error into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            print_error("interrupted")
            ctx.exit(130)
        except BrokenPipeError:  # `vidcolor run --cuts-only ... | head`: the reader left, nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
            ctx.exit(1)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            print_error(str(exc) if isinstance(exc, VidcolorError)
                        else f"internal error: {exc.__class__.__name__}: {exc} (run with --debug for details)")
            ctx.exit(1)


@click.group(cls=VidcolorGroup, lazy=LAZY_COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="vidcolor")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Colorize black-and-white video."""
    ctx.obj = {"debug": debug}


# -- options shared by `run` and `eval --colorize`: bounds and help declared once ---------------

def _options(*decorators: Callable[[Callable], Callable]) -> Callable[[Callable], Callable]:
    """Several click options as one decorator, listed in the order `--help` shows them."""
    def apply(f: Callable) -> Callable:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return apply


model_options = _options(
    click.option("--model", type=click.Path(dir_okay=False, path_type=Path), help="Generator checkpoint (.pt)."),
    click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
    click.option("--render-size", type=click.IntRange(32, 4096), default=256, show_default=True,
                 help="Short side the model sees; colour is upsampled to full size."),
    click.option("--batch-size", type=click.IntRange(1, 256), default=None, help="Frames per batch [default: automatic]."),
    click.option("--smoothing", type=click.Choice(sorted(SMOOTHERS)), default=DEFAULT_SMOOTHING, show_default=True,
                 help="Temporal smoothing of the colour, never across scene cuts: none; ema (running average); "
                      "window (centred average of --window frames); flow (motion-compensated running average)."),
    click.option("--strength", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
                 help=f"How much colour each frame keeps from the previous ones (ema, flow) "
                      f"[default: ema {EmaSmoother.DEFAULT_STRENGTH}, flow {FlowSmoother.DEFAULT_STRENGTH}]."),
    click.option("--window", type=click.IntRange(1, 99), default=None,
                 help=f"Frames averaged by --smoothing window, odd [default: {WindowSmoother.DEFAULT_WINDOW}]."),
    click.option("--guided/--bilinear", default=False, show_default=True,
                 help="Upsample the colour guided by the full-size luma (edges follow the picture's edges) or bilinearly."),
    click.option("--saturation", metavar="S", type=float, default=DEFAULT_SATURATION, show_default=True,
                 help=f"Scale the predicted colour (chroma, Lab a*b*) by S, from {SATURATION_RANGE[0]:g} to "
                      f"{SATURATION_RANGE[1]:g}: 0 gray, 1 as predicted, 2 twice as vivid (clipped to the RGB gamut)."),
)
encoder_options = _options(
    click.option("--codec", default="libx264", show_default=True, help="FFmpeg video encoder."),
    click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="Constant rate factor."),
    click.option("--preset", type=click.Choice(X264_PRESETS), default="medium", show_default=True,
                 help="Encoder speed/size trade-off."),
)


def colorizer_args(model: Path | None, device: str, render_size: int, batch_size: int | None, smoothing: str,
                   strength: float | None, window: int | None, guided: bool, saturation: float) -> dict[str, Any]:
    """`Colorizer` keyword arguments from `model_options`, checking what click's bounds cannot.

    Saturation is checked here by `Colorizer`'s own check (one error line, also for --cuts-only and
    eval), not by a click range, so the bounds and message live in `controls` alone.
    """
    if window is not None and window % 2 == 0:
        raise click.BadParameter(f"must be odd, got {window}", param_hint="--window")
    return dict(model=model, device=device, render_size=render_size, batch_size=batch_size,
                smoothing=smoothing, strength=strength, window=window, guided=guided,
                saturation=check_saturation(saturation))


# -- vidcolor run ----------------------------------------------------------------------------

# Inputs, naming, shards and the JSON report live in vidcolor.batch (Job, collect_jobs re-exported here).


@cli.command("run")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--from-list", "from_list", type=click.Path(dir_okay=False, path_type=Path),
              help="Also read inputs from this file: one path or glob per line; blank lines and # comments ignored.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (one input only). Default: <name>_color.<ext> beside the input.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write outputs here, creating it (folder structure of folder inputs is kept).")
@click.option("--suffix", default="_color", show_default=True, help="Added to each input's name for its output.")
@click.option("--shard", metavar="I/N", default=None,
              help="Do only shard I of N (0 <= I < N) of the batch: N processes given the same inputs "
                   "split them without coordination (e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write each file's outcome and the totals here as JSON.")
@click.option("--segment-seconds", type=click.FloatRange(1.0, 86400.0), default=30.0, show_default=True,
              help="Video is encoded in segments of this length; an interrupted run resumes from the last one.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (otherwise they are skipped).")
@model_options
@click.option("--cuts-only", is_flag=True,
              help="Only print the scene cuts found (frame index and time); colorize and write nothing.")
@encoder_options
@click.option("--pix-fmt", type=click.Choice(PIX_FMTS), default="yuv420p", show_default=True,
              help="Output chroma subsampling.")
@click.pass_context
def run_command(ctx: click.Context, inputs: tuple[Path, ...], from_list: Path | None, output: Path | None,
                output_dir: Path | None, suffix: str, shard: str | None, report_path: Path | None,
                segment_seconds: float, overwrite: bool, cuts_only: bool, codec: str, crf: int, preset: str,
                pix_fmt: str, **model: Any) -> None:
    """Colorize video files, folders of videos and glob patterns.

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
    if cuts_only:
        ctx.exit(print_cuts(collect_jobs(inputs, None, None), args["render_size"], ctx.obj["debug"]))
    if output is not None and (output_dir is not None or len(inputs) > 1 or inputs[0].is_dir()):
        raise click.UsageError("-o/--output takes a single input file (use --output-dir for several)")
    jobs = collect_jobs(inputs, output, output_dir, suffix)
    if not jobs:
        raise click.UsageError("no video files found in the given folders")
    if shard is not None:
        try:
            jobs = select_shard(jobs, *parse_shard(shard))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--shard") from None
    options = OutputOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, overwrite=overwrite)
    check_options(options)
    ctx.exit(execute_run(jobs, args, options, make_dirs=output_dir is not None,
                         debug=ctx.obj["debug"], report_path=report_path, segment_seconds=segment_seconds))


class FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:5.1f} fps" if task.speed else "  ... fps", style="progress.data.speed")


@contextmanager
def deferred_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C sets the yielded event, which `Colorizer.run` checks between batches; a second Ctrl-C
    interrupts at once. Python's own handler raises KeyboardInterrupt wherever the main thread is,
    and one raised inside a finalizer or weakref callback is printed and lost (the run went on).
    Leaves SIGINT alone where it is ignored (background jobs) or off the main thread."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield event
        return

    def handler(signum: int, frame: Any) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def execute_run(jobs: list[Job], colorizer_args: dict[str, Any], options: OutputOptions,
                make_dirs: bool = False, debug: bool = False, report_path: Path | None = None,
                segment_seconds: float | None = None) -> int:
    """Colorize every job, never stopping at a failed one; returns the exit code (1 if any failed).

    Ctrl-C stops the batch: the report so far is written (the current file as "interrupted")
    and the finished segments are kept, so the same command resumes.
    """
    from .pipeline import Colorizer  # torch is imported only for the commands that need it
    from .resume import work_dir

    colorizer = Colorizer(**colorizer_args)
    console = stderr_console()
    outcomes: list[Outcome] = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), FpsColumn(),
                        TimeRemainingColumn(), console=console)
    try:
        with progress, deferred_interrupt() as stop:
            for job in jobs:
                if stop.is_set():
                    raise KeyboardInterrupt
                if job.output.exists() and not options.overwrite and job.output.resolve() != job.input.resolve():
                    outcomes.append(Outcome(job, "skipped", f"output exists (use --overwrite): {job.output}"))
                    continue
                task = progress.add_task(job.input.name, total=None)

                def show(done: int, total: int | None, task: int = task) -> None:
                    progress.update(task, completed=done, total=total)

                try:
                    if make_dirs:
                        job.output.parent.mkdir(parents=True, exist_ok=True)
                    result = colorizer.run(job.input, job.output, options, show, segment_seconds=segment_seconds,
                                           stop=stop)
                except KeyboardInterrupt:
                    outcomes.append(Outcome(job, "interrupted", "interrupted"))
                    kept = work_dir(job.output)
                    progress.stop()
                    console.print(f"[yellow]interrupted[/]: {escape(str(job.input))}"
                                  + (f"; finished segments kept in {escape(str(kept))}" if kept.is_dir() else "")
                                  + "; run the same command again to resume")
                    raise
                except Exception as exc:  # one bad file never stops the batch
                    if debug:
                        console.print_exception()
                    outcomes.append(Outcome(job, "failed", _one_line(str(exc) if isinstance(exc, VidcolorError)
                                            else f"internal error: {exc.__class__.__name__}: {exc}")))
                else:
                    outcomes.append(Outcome(job, "done", _result_message(result), result))
                progress.remove_task(task)
    finally:
        if report_path is not None:
            write_report(report_path, outcomes)
    _report(outcomes, console)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _one_line(message: str) -> str:
    return " ".join(message.split()) or "failed"


def _result_message(result: Any) -> str:
    notes = [str(result.output)]
    if result.frames_lost or result.decode_errors:
        notes.append(f"{result.frames_lost} of {result.frames_expected} frames lost to corrupt or truncated "
                     f"data ({result.decode_errors} decode errors)")
    return "; ".join(notes + result.warnings)


def _report(outcomes: list[Outcome], console: Console) -> None:
    styles = {"done": "green", "skipped": "yellow", "failed": "red", "interrupted": "yellow"}
    if len(outcomes) == 1:
        outcome = outcomes[0]
        if outcome.status == "failed":
            print_error(outcome.message)
        else:
            result = outcome.result
            stats = f" ({result.frames_out} frames, {result.fps:.1f} fps)" if result else ""
            console.print(f"[{styles[outcome.status]}]{outcome.status}[/] {escape(str(outcome.job.input))}{stats}: "
                          f"{escape(outcome.message)}")
        return
    table = Table(title="vidcolor run")
    for column in ("file", "status", "frames", "lost", "fps", "message"):
        table.add_column(column, justify="right" if column in ("frames", "lost", "fps") else "left")
    for o in outcomes:
        r = o.result
        table.add_row(escape(str(o.job.input)), f"[{styles[o.status]}]{o.status}[/]",
                      str(r.frames_out) if r else "", str(r.frames_lost) if r else "",
                      f"{r.fps:.1f}" if r else "", escape(o.message))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    table.caption = ", ".join(f"{n} {s}" for s, n in counts.items())
    console.print(table)


# -- vidcolor info ---------------------------------------------------------------------------

@cli.command("info")
@click.argument("file", type=click.Path(path_type=Path))
def info_command(file: Path) -> None:
    """Show a video's streams, size, colour space, frame rate, frame count, rotation and audio."""
    show_info(probe(file))


def show_info(info: MediaInfo) -> None:
    video = info.video
    frames = (f"{video.frames}" if video.frames else
              f"~{video.expected_frames} (estimated)" if video.expected_frames else "unknown")
    sar = f" (pixel aspect {video.sample_aspect_ratio})" if video.sample_aspect_ratio not in (None, 1) else ""
    rows = [
        ("file", str(info.path)),
        ("container", info.format),
        ("size", f"{info.size / 1e6:.2f} MB" + (f", {info.bit_rate / 1e3:.0f} kb/s" if info.bit_rate else "")),
        ("duration", f"{info.duration:.3f} s" if info.duration else "unknown"),
        (f"video #{video.index}", f"{video.codec}, {video.width}x{video.height}{sar}, {video.pix_fmt}"),
        ("colour", video.color.describe()),
        ("frame rate", f"{float(video.fps):.3f} fps" if video.fps else "unknown"),
        ("frames", frames),
        ("video duration", f"{video.duration:.3f} s" if video.duration else "unknown"),
        ("rotation", f"{video.rotation} degrees" + (", mirrored" if video.mirrored else "")),
    ]
    rows += [(f"{s.type} #{s.index}", ", ".join(x for x in (s.codec, s.detail, s.language) if x and x != "und"))
             for s in info.streams]
    if not info.audio:
        rows.append(("audio", "none"))
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, escape(value))
    Console(highlight=False, soft_wrap=True).print(table)



# -- vidcolor eval (and run --cuts-only) -----------------------------------------------------

def each_on_its_own(jobs: list[tuple[Path, Callable[[], Any]]], debug: bool) -> list[Any]:
    """Call each job's function; one that fails prints one error line and gives None, and the
    others go on (the batch rule of `run`, for eval and --cuts-only)."""
    results = []
    for path, call in jobs:
        try:
            results.append(call())
        except BrokenPipeError:  # our own stdout, not the job: stop quietly
            raise
        except Exception as exc:
            if debug:
                raise
            print_error(_one_line(str(exc) if isinstance(exc, VidcolorError)
                                  else f"{path}: internal error: {exc.__class__.__name__}: {exc}"))
            results.append(None)
    return results


def print_cuts(jobs: list[Job], render_size: int, debug: bool) -> int:
    """`vidcolor run --cuts-only`: each input's cuts as `<file>: cut at frame N (T s)` lines on
    stdout, printed as each file is done; returns the exit status (1 if a file failed)."""
    from .evaluate import find_cuts

    def report(path: Path) -> bool:
        cuts = find_cuts(path, render_size)
        click.echo(f"{path}: {len(cuts)} cut{'s' if len(cuts) != 1 else ''}")
        for index, seconds in cuts:
            click.echo(f"{path}: cut at frame {index} ({seconds:.3f} s)")
        return True

    done = each_on_its_own([(job.input, lambda path=job.input: report(path)) for job in jobs], debug)
    return 0 if all(done) else 1


EVAL_COLUMNS = (("PSNR dB", "psnr", "{:.2f}"), ("SSIM", "ssim", "{:.4f}"), ("colorful", "colorfulness", "{:.1f}"),
                ("colorful ref", "colorfulness_ref", "{:.1f}"), ("CF ratio", "colorfulness_ratio", "{:.2f}"),
                ("ΔCF", "delta_cf", "{:+.1f}"), ("fd_lite0", "fd_lite0", "{:.2f}"), ("CDC", "cdc", "{:.5f}"),
                ("CDC ref", "cdc_ref", "{:.5f}"), ("warp err", "warp_error", "{:.5f}"),
                ("warp err ref", "warp_error_ref", "{:.5f}"), ("CDC chroma", "cdc_chroma", "{:.5f}"),
                ("warp err chroma", "warp_error_chroma", "{:.6f}"))


@cli.command("eval")
@click.argument("videos", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--colorize", is_flag=True,
              help="VIDEOS are colour references: gray each, colorize it as `vidcolor run` would, and score.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the scores here.")
@click.option("--keep-dir", type=click.Path(file_okay=False, path_type=Path),
              help="With --colorize: keep the colorized videos here.")
@click.option("--flow-side", default=FLOW_MAX_SIDE, show_default=True, type=click.IntRange(0),
              help="Long side (px) the warp error's optical flow is computed at; 0: full resolution (slower).")
@click.option("--fd/--no-fd", "with_fd", default=True, show_default=True,
              help="Score fd_lite0 (Fréchet distance on EfficientNet-Lite0 ImageNet features, not FID; "
                   "needs the training extra).")
@click.option("--fd-every", default=2, show_default=True, type=click.IntRange(1),
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
    from . import evaluate
    from .fd import lite0_unavailable

    options: dict[str, Any] = {"colorize": colorize, "flow_side": flow_side}
    flow_max_side = flow_side or None
    features = None
    if not with_fd:
        options["fd_lite0"] = "off (--no-fd)"
    elif (reason := lite0_unavailable()) is not None:
        options["fd_lite0"] = reason
        stderr_console().print(f"[yellow]note:[/] {escape(reason)}")
    else:
        from .fd import FD_SIZE, Lite0Features
        from .device import resolve_device

        features = Lite0Features(resolve_device(model["device"]))
        options["fd_lite0"] = (f"Fréchet distance on EfficientNet-Lite0 ImageNet features (1280-d, not FID), "
                               f"1 frame in {fd_every}, whole frame resized to {FD_SIZE}x{FD_SIZE}")
        options["fd_every"] = fd_every
    if colorize:
        from .pipeline import Colorizer

        args = colorizer_args(**model)
        colorizer = Colorizer(**args)
        out = OutputOptions(codec=codec, crf=crf, preset=preset, overwrite=True)
        check_options(out)
        options.update(args, model=str(colorizer.model_path), codec=codec, crf=crf, preset=preset)
        if keep_dir:
            keep_dir.mkdir(parents=True, exist_ok=True)
        jobs = [(ref, lambda ref=ref: evaluate.evaluate_colorize(
            ref, colorizer, out, flow_max_side, keep=keep_dir / output_name(ref) if keep_dir else None,
            fd=features, fd_every=fd_every)) for ref in videos]
    else:
        if len(videos) % 2:
            raise click.UsageError("give PRED REF pairs (or --colorize REF...)")
        jobs = [(videos[i], lambda i=i: evaluate.evaluate_pair(videos[i], videos[i + 1], flow_max_side,
                                                                fd=features, fd_every=fd_every))
                for i in range(0, len(videos), 2)]
    scored = each_on_its_own(jobs, ctx.obj["debug"])
    results = [r for r in scored if r is not None]
    failed = len(scored) - len(results)
    if not results:
        ctx.exit(1)
    how = f" (--smoothing {model['smoothing']}{' --guided' if model['guided'] else ''})" if colorize else ""
    table = Table(title="vidcolor eval" + how)
    table.add_column("video")
    table.add_column("frames", justify="right")
    for title, _, _ in EVAL_COLUMNS:
        table.add_column(title, justify="right")
    if colorize:
        table.add_column("fps", justify="right")
    rows = [r.row() for r in results] + ([evaluate.mean_row(results)] if len(results) > 1 else [])
    for row in rows:
        cells = [escape(row["name"]), str(row["frames"])] + [_eval_cell(row[key], fmt) for _, key, fmt in EVAL_COLUMNS]
        if colorize:
            cells.append(f"{row['fps']:.1f}" if row["fps"] else "")
        table.add_row(*cells, style="bold" if row["name"] == "mean" else None)
    if features is None:
        table.caption = f"fd_lite0: {options['fd_lite0']}"
    Console(highlight=False, width=None if sys.stdout.isatty() else 220).print(table)
    if json_path:
        evaluate.write_json(json_path, results, options)
    if failed:
        ctx.exit(1)


def _eval_cell(value: float, fmt: str) -> str:
    """A table cell; a metric with no value (fd_lite0 switched off, a one-frame CDC) shows as n/a."""
    return "n/a" if isinstance(value, float) and math.isnan(value) else fmt.format(value)


def main() -> None:
    cli(prog_name="vidcolor")
