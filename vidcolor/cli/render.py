"""What the CLI shows: one-line messages on stderr, the progress bar, and the run, info and eval tables.

Only rich here: no parsing (commands) and no work (runner).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..batch import Outcome
from ..controls import PROGRESS_SECONDS
from ..media import FIELD_ORDER_NAMES, FRAME_SIDE_DATA, MediaInfo

STATUS_STYLES = {"done": "green", "skipped": "yellow", "failed": "red", "interrupted": "yellow"}
EVAL_COLUMNS = (("PSNR dB", "psnr", "{:.2f}"), ("SSIM", "ssim", "{:.4f}"), ("colorful", "colorfulness", "{:.1f}"),
                ("colorful ref", "colorfulness_ref", "{:.1f}"), ("CF ratio", "colorfulness_ratio", "{:.2f}"),
                ("ΔCF", "delta_cf", "{:+.1f}"), ("fd_lite0", "fd_lite0", "{:.2f}"), ("CDC", "cdc", "{:.5f}"),
                ("CDC ref", "cdc_ref", "{:.5f}"), ("warp err", "warp_error", "{:.5f}"),
                ("warp err ref", "warp_error_ref", "{:.5f}"), ("CDC chroma", "cdc_chroma", "{:.5f}"),
                ("warp err chroma", "warp_error_chroma", "{:.6f}"))


def stderr_console() -> Console:
    """Messages go to stderr and are never wrapped, so each stays one line."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    stderr_console().print(f"[bold red]error:[/] {escape(one_line(message))}")


def print_note(message: str) -> None:
    stderr_console().print(f"[yellow]note:[/] {escape(one_line(message))}")


def one_line(message: str) -> str:
    """`message` on one line: line breaks (in FFmpeg's text, or in a file's name) shown as \\n, runs of
    other white space as one space."""
    shown = message.replace("\r", "\\r").replace("\n", "\\n")
    return " ".join(shown.split()) or "failed"


class LineProgress:
    """`progress_bar`'s stand-in when stderr is not a terminal (a pipe, a log file, a batch job): one plain line
    per file every `every` seconds, and one when it ends, instead of a bar redrawn in place that a log
    never shows."""

    def __init__(self, console: Console, every: float):
        self.console, self.every = console, every
        self.tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_task(self, description: str, total: int | None = None) -> int:
        import time

        task = len(self.tasks)
        now = time.monotonic()
        self.tasks[task] = {"name": description, "start": now, "shown": now, "done": 0, "total": total}
        return task

    def update(self, task: int, completed: int, total: int | None = None) -> None:
        import time

        t = self.tasks[task]
        t["done"], t["total"] = completed, total
        now = time.monotonic()
        if now - t["shown"] >= self.every:
            t["shown"] = now
            self.console.print(escape(self.line(t, now)))

    @staticmethod
    def line(t: dict[str, Any], now: float) -> str:
        done, total, seconds = t["done"], t["total"], max(1e-9, now - t["start"])
        fps = done / seconds
        part = f"{done}/{total} frames ({100 * done / total:.0f} %)" if total else f"{done} frames"
        left = f", about {_clock((total - done) / fps)} left" if total and fps > 0 and done < total else ""
        return f"{t['name']}: {part}, {fps:.1f} fps{left}"

    def remove_task(self, task: int) -> None:
        """The file's last line (when it coloured anything), so a log shows how each file ended."""
        import time

        t = self.tasks.pop(task, None)
        if t is not None and t["done"] and self.every != math.inf:
            self.console.print(escape(self.line(t, time.monotonic())))

    def stop(self) -> None:
        pass


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


def progress_bar(console: Console, every: float | None = None, quiet: bool = False) -> Any:
    """The per-file progress bar of `vidcolor run` (rich.progress is imported only for a run); off a terminal,
    a line every `every` seconds (`LineProgress`); `quiet`: nothing."""
    if quiet:
        return LineProgress(console, math.inf)
    if not console.is_terminal:
        return LineProgress(console, PROGRESS_SECONDS if every is None else every)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class FpsColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:5.1f} fps" if task.speed else "  ... fps", style="progress.data.speed")

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), FpsColumn(),
                    TimeRemainingColumn(), console=console)


def result_message(result: Any) -> str:
    """A finished file's message: its output, frames lost to bad data, damage known, the run's warnings
    (among them every `not kept: ...` of the output plan)."""
    notes = [str(result.output)]
    if result.frames_lost or result.decode_errors:
        notes.append(f"{result.frames_lost} of {result.frames_expected} frames lost to corrupt or truncated "
                     f"data ({result.decode_errors} decode errors)")
    if result.frames_extra:
        notes.append(f"{result.frames_extra} frames more than the {result.frames_expected} the container announced")
    return one_line("; ".join(notes + result.losses + result.warnings))


def show_outcomes(outcomes: Sequence[Outcome], console: Console) -> None:
    """One line for a single file, else a table with the totals."""
    if len(outcomes) == 1:
        outcome = outcomes[0]
        if outcome.status == "failed":
            print_error(outcome.message)
        else:
            result = outcome.result
            stats = f" ({result.frames_out} frames, {result.fps:.1f} fps)" if result else ""
            console.print(f"[{STATUS_STYLES[outcome.status]}]{outcome.status}[/] "
                          f"{escape(one_line(str(outcome.job.input)))}{stats}: {escape(one_line(outcome.message))}")
        return
    table = Table(title="vidcolor run")
    for column in ("file", "status", "frames", "lost", "fps", "message"):  # paths wrap, never cut short
        table.add_column(column, justify="right" if column in ("frames", "lost", "fps") else "left",
                         overflow="fold" if column in ("file", "message") else "ellipsis")
    for o in outcomes:
        r = o.result
        table.add_row(escape(one_line(str(o.job.input))), f"[{STATUS_STYLES[o.status]}]{o.status}[/]",
                      str(r.frames_out) if r else "", str(r.frames_lost) if r else "",
                      f"{r.fps:.1f}" if r else "", escape(one_line(o.message)))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    table.caption = ", ".join(f"{n} {s}" for s, n in counts.items())
    console.print(table)


def show_info(info: MediaInfo) -> None:
    """`vidcolor info`: one row per fact, then one per stream."""
    video = info.video
    frames = (f"{video.frames}" if video.frames else
              f"~{video.expected_frames} (estimated)" if video.expected_frames else "unknown")
    sar = f" (pixel aspect {video.sample_aspect_ratio})" if video.sample_aspect_ratio not in (None, 1) else ""
    rows = [
        ("file", one_line(str(info.path))),
        ("container", info.format),
        ("size", f"{info.size / 1e6:.2f} MB" + (f", {info.bit_rate / 1e3:.0f} kb/s" if info.bit_rate else "")),
        ("duration", f"{info.duration:.3f} s" if info.duration else "unknown"),
        (f"video #{video.index}", f"{video.codec}, {video.width}x{video.height}{sar}, {video.pix_fmt}"),
        ("colour", video.color.describe()),
        ("frame rate", f"{float(video.fps):.3f} fps" if video.fps else "unknown"),
        ("frames", frames + (f" (an edit list hides {video.hidden_frames} more stored frames: a trim, not part of "
                             f"the film as players show it)" if video.hidden_frames else "")),
        ("video duration", f"{video.duration:.3f} s" if video.duration else "unknown"),
        ("rotation", f"{video.rotation} degrees" + (", mirrored" if video.mirrored else "")),
        ("field order", FIELD_ORDER_NAMES.get(video.field_order, "unknown")
         + (f" ({video.field_order_source})" if video.field_order_source else "")),
    ]
    if video.side_data:
        rows.append(("in the frames", "; ".join(dict.fromkeys(FRAME_SIDE_DATA[k] for k in video.side_data))
                     + " (not carried into the colour copy)"))
    if info.video_tags:
        rows.append(("video tags", _tags(info.video_tags)))
    for s in info.streams:
        rows.append((f"{s.type} #{s.index}", ", ".join(x for x in (s.codec, s.detail, s.language) if x and x != "und")))
        if s.tags:
            rows.append(("  tags", _tags(s.tags)))
    if not info.audio:
        rows.append(("audio", "none"))
    rows.append(("chapters", str(info.chapters)))
    if info.tags:
        rows.append(("container tags", _tags(info.tags)))
    if info.truncated:
        rows.append(("damage", info.truncated))
    show_rows(rows)


def show_rows(rows: Sequence[tuple[str, str]]) -> None:
    """A two-column table of facts, keys bold, values as they are (escaped)."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, escape(value))
    Console(highlight=False, soft_wrap=True).print(table)


def _tags(tags: dict[str, str]) -> str:
    return one_line(", ".join(f"{k}={v}" for k, v in tags.items()))


def show_eval(rows: Sequence[dict[str, Any]], title: str, with_fps: bool, caption: str | None) -> None:
    """`vidcolor eval`'s table: a row per video (and the mean), n/a where a metric has no value."""
    table = Table(title=title)
    table.add_column("video")
    table.add_column("frames", justify="right")
    for heading, _, _ in EVAL_COLUMNS:
        table.add_column(heading, justify="right")
    if with_fps:
        table.add_column("fps", justify="right")
    for row in rows:
        cells = [escape(row["name"]), str(row["frames"])] + [_eval_cell(row[key], fmt) for _, key, fmt in EVAL_COLUMNS]
        if with_fps:
            cells.append(f"{row['fps']:.1f}" if row["fps"] else "")
        table.add_row(*cells, style="bold" if row["name"] == "mean" else None)
    table.caption = escape(caption) if caption else caption  # "vidcolor[train]" is not markup
    Console(highlight=False, width=None if sys.stdout.isatty() else 220).print(table)


def _eval_cell(value: float, fmt: str) -> str:
    """A table cell; a metric with no value (fd_lite0 switched off, a one-frame CDC) shows as n/a."""
    return "n/a" if isinstance(value, float) and math.isnan(value) else fmt.format(value)


def show_formats(codecs: Sequence[tuple[str, str, Sequence[str]]], stills: Sequence[str]) -> None:
    """`vidcolor formats`: the encoders and the pixel formats each takes, and the photo formats."""
    table = Table(title="Video encoders (--codec) and the pixel formats each takes (--pix-fmt)")
    table.add_column("--codec")
    table.add_column("encoder")
    table.add_column("--pix-fmt")
    for name, description, formats in codecs:
        table.add_row(name, description, ", ".join(formats))
    console = Console()
    console.print(table)
    console.print("--pix-fmt auto (the default) keeps the source's bit depth and chroma subsampling where the "
                  "encoder takes them, else the nearest it takes, never fewer bits when more are on offer.")
    console.print(f"Photos in and out: {' '.join(stills)} (8-bit; .png and .tif also 16-bit, .tif float).")
