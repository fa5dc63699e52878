"""The work behind the commands: the batch of `run` (never stopped by one bad file; Ctrl-C between
batches), `--cuts-only`, and `eval`'s scoring jobs. Heavy modules are imported here, when a job runs."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from ..batch import Job, Outcome, write_report
from ..errors import VidcolorError
from ..media import OutputOptions, is_pattern, is_still, output_exists, output_name
from .render import one_line, print_error, print_note, progress_bar, result_message, show_eval, show_outcomes, \
    stderr_console


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


def system_rows(model: Path | None, device: str, engine: str) -> list[tuple[str, str]]:
    """`info --system`: the machine, and what `run` with these options runs the model with and why."""
    import importlib.metadata as meta
    import os
    import platform

    import av
    import torch

    from ..machine import cpu_name
    from ..pipeline import Colorizer

    def version(name: str) -> str:
        try:
            return meta.version(name)
        except meta.PackageNotFoundError:
            return "not installed"

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    colorizer = Colorizer(model, device=device, engine=engine)
    threads = "" if colorizer.cuda else f", {colorizer.cpu_threads} thread{'s' if colorizer.cpu_threads != 1 else ''}"
    rows = [("vidcolor", version("vidcolor")), ("python", platform.python_version()),
            ("cpu", f"{cpu_name()}, {os.cpu_count()} cores"), ("gpu", ", ".join(gpus) or "none (CUDA not available)"),
            ("torch", torch.__version__ + (f" (CUDA {torch.version.cuda})" if torch.version.cuda else " (CPU build)")),
            ("onnxruntime", version("onnxruntime")), ("pyav", f"{av.__version__} (FFmpeg {av.ffmpeg_version_info})"),
            ("model", str(colorizer.model_path)), ("device", str(colorizer.device)),
            ("engine", colorizer.engine.name + threads)]
    if colorizer.engine_note:
        rows.append(("why not int8", colorizer.engine_note))
    return rows


def execute_run(jobs: list[Job], colorizer_args: dict[str, Any], options: OutputOptions,
                make_dirs: bool = False, debug: bool = False, report_path: Path | None = None,
                segment_seconds: float | None = None, fps: float | None = None, quiet: bool = False) -> int:
    """Colorize every job, never stopping at a failed one; returns the exit code (1 if any failed).

    Ctrl-C stops the batch: the report so far is written (the current file as "interrupted")
    and the finished segments are kept, so the same command resumes.
    """
    from ..pipeline import Colorizer  # torch is imported only for the commands that need it
    from ..resume import work_dir

    colorizer = Colorizer(**colorizer_args)
    console = stderr_console()
    outcomes: list[Outcome] = []
    progress = progress_bar(console, quiet=quiet)
    try:
        with progress, deferred_interrupt() as stop:
            for job in jobs:
                if stop.is_set():
                    raise KeyboardInterrupt
                if job.conflict is not None:
                    outcomes.append(Outcome(job, "failed", one_line(job.conflict)))
                    continue
                if output_exists(job.output) and not options.overwrite and job.output.resolve() != job.input.resolve():
                    outcomes.append(Outcome(job, "skipped", f"output exists (use --overwrite): {job.output}"))
                    continue
                task = progress.add_task(job.input.name, total=None)

                def show(done: int, total: int | None, task: int = task) -> None:
                    progress.update(task, completed=done, total=total)

                try:
                    if make_dirs or job.make_folder:
                        job.output.parent.mkdir(parents=True, exist_ok=True)
                    result = colorizer.run(job.input, job.output, options, show, segment_seconds=segment_seconds,
                                           stop=stop, fps=fps)
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
                    outcomes.append(Outcome(job, "failed", one_line(str(exc) if isinstance(exc, VidcolorError)
                                            else f"internal error: {exc.__class__.__name__}: {exc}")))
                else:
                    outcomes.append(Outcome(job, "done", result_message(result), result))
                progress.remove_task(task)
    finally:
        if report_path is not None:
            write_report(report_path, outcomes)
    show_outcomes(outcomes, console)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def execute_preview(source: Path, target: Path, count: int, overwrite: bool, pix_fmt: str,
                    colorizer_args: dict[str, Any]) -> None:
    """`vidcolor preview`: the sheet, then one line saying where it is."""
    from ..preview import check_target, colorizer_frames, write_preview, write_still_preview
    from ..quicklook import quick_look

    if not source.is_file() and not is_pattern(source):
        raise VidcolorError(f"no such file: {source}")
    check_target(source, target, overwrite)
    still = is_still(source)
    if still:
        from ..pipeline import Colorizer

        rows = write_still_preview(Colorizer(**colorizer_args), source, target)
    else:  # only the model to run: no torch at all (`quicklook`)
        colour = quick_look(colorizer_args)
        if colour is None:
            from ..pipeline import Colorizer

            colour = colorizer_frames(Colorizer(**colorizer_args))
        rows = write_preview(colour, source, target, count, pix_fmt)
    click.echo(f"{target}: {rows} frame{'s' if rows != 1 else ''}, gray | colour"
               + (f" (the video has only {rows})" if rows < count and not still else ""))
    if colorizer_args.get("smoothing", "none") != "none" and not still:
        print_note(f"each frame is coloured alone: run's --smoothing {colorizer_args['smoothing']} steadies the "
                   f"colour over time, which a single frame cannot show")


def each_on_its_own(jobs: Sequence[tuple[Path, Callable[[], Any]]], debug: bool) -> list[Any]:
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
            print_error(one_line(str(exc) if isinstance(exc, VidcolorError)
                                 else f"{path}: internal error: {exc.__class__.__name__}: {exc}"))
            results.append(None)
    return results


def print_cuts(jobs: list[Job], render_size: int, debug: bool) -> int:
    """`vidcolor run --cuts-only`: each input's cuts as `<file>: cut at frame N (T s)` lines on
    stdout, printed as each file is done; returns the exit status (1 if a file failed)."""
    from ..evaluate import find_cuts

    def report(path: Path) -> bool:
        cuts = find_cuts(path, render_size)
        click.echo(f"{path}: {len(cuts)} cut{'s' if len(cuts) != 1 else ''}")
        for index, seconds in cuts:
            click.echo(f"{path}: cut at frame {index} ({seconds:.3f} s)")
        return True

    done = each_on_its_own([(job.input, lambda path=job.input: report(path)) for job in jobs], debug)
    return 0 if all(done) else 1


def execute_eval(videos: Sequence[Path], colorizer_args: dict[str, Any] | None, output: OutputOptions | None,
                 json_path: Path | None, keep_dir: Path | None, flow_side: int, with_fd: bool, fd_every: int,
                 device: str, debug: bool) -> int:
    """Score PRED REF pairs, or (given `colorizer_args`) colorize each reference's gray version first;
    prints the table, writes `json_path`; returns the exit status (1 if a video failed)."""
    from .. import evaluate
    from ..fd import lite0_unavailable

    colorize = colorizer_args is not None
    options: dict[str, Any] = {"colorize": colorize, "flow_side": flow_side}
    flow_max_side = flow_side or None
    features = None
    if not with_fd:
        options["fd_lite0"] = "off (--no-fd)"
    elif (reason := lite0_unavailable()) is not None:
        options["fd_lite0"] = reason
        print_note(reason)
    else:
        from ..device import resolve_device
        from ..fd import FD_SIZE, Lite0Features

        features = Lite0Features(resolve_device(device))
        options["fd_lite0"] = (f"Fréchet distance on EfficientNet-Lite0 ImageNet features (1280-d, not FID), "
                               f"1 frame in {fd_every}, whole frame resized to {FD_SIZE}x{FD_SIZE}")
        options["fd_every"] = fd_every
    if colorize:
        from ..pipeline import Colorizer

        colorizer = Colorizer(**colorizer_args)
        options.update(colorizer_args, model=str(colorizer.model_path), codec=output.codec, crf=output.crf,
                       preset=output.preset)
        if keep_dir:
            keep_dir.mkdir(parents=True, exist_ok=True)
        jobs = [(ref, lambda ref=ref: evaluate.evaluate_colorize(
            ref, colorizer, output, flow_max_side, keep=keep_dir / output_name(ref) if keep_dir else None,
            fd=features, fd_every=fd_every)) for ref in videos]
    else:  # every pair checked from its containers before any is scored: a mismatch fails at once
        pairs = [(videos[i], videos[i + 1]) for i in range(0, len(videos), 2)]
        fits = each_on_its_own([(p, lambda p=p, r=r: evaluate.check_pair(p, r) or True) for p, r in pairs], debug)
        jobs = [(p, lambda p=p, r=r: evaluate.evaluate_pair(p, r, flow_max_side, fd=features, fd_every=fd_every))
                for (p, r), fit in zip(pairs, fits) if fit]
        if len(jobs) < len(pairs) and not jobs:
            return 1
    scored = each_on_its_own(jobs, debug)
    results = [r for r in scored if r is not None]
    if not results:
        return 1
    failed = len(scored) - len(results) + (0 if colorize else len(videos) // 2 - len(jobs))
    how = (f" (--smoothing {colorizer_args['smoothing']}{' --guided' if colorizer_args['guided'] else ''})"
           if colorize else "")
    rows = [r.row() for r in results] + ([evaluate.mean_row(results)] if len(results) > 1 else [])
    show_eval(rows, "vidcolor eval" + how, colorize, None if features is not None else f"fd_lite0: {options['fd_lite0']}")
    if json_path:
        evaluate.write_json(json_path, results, options)
    return 1 if failed else 0
