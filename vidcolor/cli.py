"""The `vidcolor` command line.

Click commands only parse and validate; the work happens in `execute_run` / `show_info`
and in `vidcolor.pipeline`. Every failure reaches the user as one red line (the group's
`invoke` is the single place that prints them); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from . import __version__
from .errors import VidcolorError
from .media import MediaInfo, OutputOptions, check_options, output_name, probe
from .media.writer import PIX_FMTS
from .temporal import SMOOTHERS

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts",
                              ".m2ts", ".mts", ".wmv", ".flv", ".ogv", ".3gp", ".dv", ".mxf"})
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


# -- vidcolor run ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Job:
    input: Path
    output: Path


def collect_jobs(inputs: tuple[Path, ...], output: Path | None, output_dir: Path | None) -> list[Job]:
    """Expand folders (recursively, by video extension) and name each output.

    In folders, hidden files (our temp files among them) and our own `*_color.*` outputs are
    skipped, so a second run over the same folder does not colorize its results.
    """
    jobs = []
    for item in inputs:
        if item.is_dir():
            for path in sorted(item.rglob("*")):
                if (path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")
                        and not path.stem.endswith("_color")):
                    folder = output_dir / path.parent.relative_to(item) if output_dir else path.parent
                    jobs.append(Job(path, folder / output_name(path)))
        elif output is not None:
            jobs.append(Job(item, output))
        else:
            jobs.append(Job(item, (output_dir or item.parent) / output_name(item)))
    return jobs


@cli.command("run")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Output file (one input only). Default: <name>_color.<ext> beside the input.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write outputs here (folder structure of folder inputs is kept).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (otherwise they are skipped).")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), help="Generator checkpoint (.pt).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--render-size", type=click.IntRange(32, 4096), default=256, show_default=True,
              help="Short side the model sees; colour is upsampled to full size.")
@click.option("--batch-size", type=click.IntRange(1, 256), default=None, help="Frames per batch [default: automatic].")
@click.option("--smoothing", type=click.Choice(sorted(SMOOTHERS)), default="ema", show_default=True,
              help="Temporal smoothing of the colour (reset at scene cuts).")
@click.option("--strength", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.5, show_default=True,
              help="How much colour each frame keeps from the previous ones.")
@click.option("--codec", default="libx264", show_default=True, help="FFmpeg video encoder.")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="Constant rate factor.")
@click.option("--preset", type=click.Choice(X264_PRESETS), default="medium", show_default=True,
              help="Encoder speed/size trade-off.")
@click.option("--pix-fmt", type=click.Choice(PIX_FMTS), default="yuv420p", show_default=True,
              help="Output chroma subsampling.")
@click.pass_context
def run_command(ctx: click.Context, inputs: tuple[Path, ...], output: Path | None, output_dir: Path | None,
                overwrite: bool, model: Path | None, device: str, render_size: int, batch_size: int | None,
                smoothing: str, strength: float, codec: str, crf: int, preset: str, pix_fmt: str) -> None:
    """Colorize video files and folders of videos."""
    if output is not None and (output_dir is not None or len(inputs) > 1 or inputs[0].is_dir()):
        raise click.UsageError("-o/--output takes a single input file (use --output-dir for several)")
    jobs = collect_jobs(inputs, output, output_dir)
    if not jobs:
        raise click.UsageError("no video files found in the given folders")
    options = OutputOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt, overwrite=overwrite)
    check_options(options)
    colorizer_args = dict(model=model, device=device, render_size=render_size, batch_size=batch_size,
                          smoothing=smoothing, strength=strength)
    ctx.exit(execute_run(jobs, colorizer_args, options, make_dirs=output_dir is not None,
                         debug=ctx.obj["debug"]))


class FpsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:5.1f} fps" if task.speed else "  ... fps", style="progress.data.speed")


def execute_run(jobs: list[Job], colorizer_args: dict[str, Any], options: OutputOptions,
                make_dirs: bool = False, debug: bool = False) -> int:
    """Colorize every job, never stopping at a failed one; returns the exit code (1 if any failed)."""
    from .pipeline import Colorizer  # torch is imported only for the commands that need it

    colorizer = Colorizer(**colorizer_args)
    console = stderr_console()
    rows = []
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), FpsColumn(),
                        TimeRemainingColumn(), console=console)
    with progress:
        for job in jobs:
            if job.output.exists() and not options.overwrite and job.output.resolve() != job.input.resolve():
                rows.append((job, "skipped", None, f"output exists (use --overwrite): {job.output}"))
                continue
            task = progress.add_task(job.input.name, total=None)

            def show(done: int, total: int | None, task: int = task) -> None:
                progress.update(task, completed=done, total=total)

            try:
                if make_dirs:
                    job.output.parent.mkdir(parents=True, exist_ok=True)
                result = colorizer.run(job.input, job.output, options, show)
            except Exception as exc:  # one bad file never stops the batch
                if debug:
                    console.print_exception()
                rows.append((job, "failed", None, str(exc) if isinstance(exc, VidcolorError)
                             else f"internal error: {exc.__class__.__name__}: {exc}"))
            else:
                rows.append((job, "done", result, _result_message(result)))
            progress.remove_task(task)
    _report(rows, console)
    return 1 if any(status == "failed" for _, status, _, _ in rows) else 0


def _result_message(result: Any) -> str:
    notes = [str(result.output)]
    if result.frames_lost or result.decode_errors:
        notes.append(f"{result.frames_lost} of {result.frames_expected} frames lost to corrupt or truncated "
                     f"data ({result.decode_errors} decode errors)")
    return "; ".join(notes + result.warnings)


def _report(rows: list[tuple[Job, str, Any, str]], console: Console) -> None:
    styles = {"done": "green", "skipped": "yellow", "failed": "red"}
    if len(rows) == 1:
        job, status, result, message = rows[0]
        if status == "failed":
            print_error(message)
        else:
            stats = f" ({result.frames_out} frames, {result.fps:.1f} fps)" if result else ""
            console.print(f"[{styles[status]}]{status}[/] {escape(str(job.input))}{stats}: {escape(message)}")
        return
    table = Table(title="vidcolor run")
    for column in ("file", "status", "frames", "fps", "message"):
        table.add_column(column, justify="right" if column in ("frames", "fps") else "left")
    for job, status, result, message in rows:
        table.add_row(escape(str(job.input)), f"[{styles[status]}]{status}[/]",
                      str(result.frames_out) if result else "", f"{result.fps:.1f}" if result else "",
                      escape(message))
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


def main() -> None:
    cli(prog_name="vidcolor")
