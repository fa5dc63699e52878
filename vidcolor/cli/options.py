"""Options shared by `run` and `eval --colorize`: defaults and bounds from `vidcolor.controls`, help here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import controls as c


def _options(*decorators: Callable[[Callable], Callable]) -> Callable[[Callable], Callable]:
    """Several click options as one decorator, listed in the order `--help` shows them."""
    def apply(f: Callable) -> Callable:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f
    return apply


model_options = _options(
    click.option("--model", type=click.Path(dir_okay=False, path_type=Path), help="Generator checkpoint (.pt)."),
    click.option("--device", default=c.DEVICE, show_default=True, help="auto, cpu, cuda or cuda:N."),
    click.option("--render-size", type=click.IntRange(*c.RENDER_SIZE_RANGE), default=c.RENDER_SIZE, show_default=True,
                 help="Short side the model sees; colour is upsampled to full size."),
    click.option("--batch-size", type=click.IntRange(*c.BATCH_SIZE_RANGE), default=None,
                 help="Frames per batch [default: automatic]."),
    click.option("--engine", type=click.Choice(c.ENGINES), default=c.ENGINE, show_default=True,
                 help="What runs the model: auto takes the int8 copy in ONNX Runtime on a CPU when the fast extra "
                      "is installed (about 2x faster), else torch; torch keeps the exact fp32 model."),
    click.option("--threads", "cpu_threads", type=click.IntRange(1, 1024), default=None,
                 help="CPU threads for the model [default: automatic]; fewer leave cores to other jobs."),
    click.option("--smoothing", type=click.Choice(sorted(c.SMOOTHING_MODES)), default=c.DEFAULT_SMOOTHING,
                 show_default=True,
                 help="Temporal smoothing of the colour, never across scene cuts: none; ema (running average); "
                      "window (centred average of --window frames); flow (motion-compensated running average)."),
    click.option("--strength", type=click.FloatRange(0.0, 1.0, max_open=True), default=None,
                 help=f"How much colour each frame keeps from the previous ones (ema, flow) "
                      f"[default: ema {c.EMA_STRENGTH}, flow {c.FLOW_STRENGTH}]."),
    click.option("--window", type=click.IntRange(*c.WINDOW_RANGE), default=None,
                 help=f"Frames averaged by --smoothing window, odd [default: {c.WINDOW}]."),
    click.option("--guided/--bilinear", default=False, show_default=True,
                 help="Upsample the colour guided by the full-size luma (edges follow the picture's edges) or bilinearly."),
    click.option("--saturation", metavar="S", type=float, default=c.DEFAULT_SATURATION, show_default=True,
                 help=f"Scale the predicted colour (chroma, Lab a*b*) by S, from {c.SATURATION_RANGE[0]:g} to "
                      f"{c.SATURATION_RANGE[1]:g}: 0 gray, 1 as predicted, 2 twice as vivid (clipped to the RGB gamut)."),
    click.option("--reference", "references", metavar="IMAGE", multiple=True, default=(), type=click.Path(path_type=Path),
                 help="A colour image (any size) whose colours are used wherever the video shows matching content "
                      "(repeatable; in a batch, for every input)."),
    click.option("--keyframe", "keyframes", metavar="WHEN=IMAGE", multiple=True, default=(),
                 help="The frame at WHEN (frame number from 0, or time from the first frame: 00:01:23.480) "
                      "coloured by hand: exact there, carried forward and backward through its shot (never across "
                      "a cut), and a reference for the rest (repeatable; in a batch, for every input)."),
    click.option("--people", is_flag=True, default=False,
                 help="Colour each person found by their face again at a scale where they fill the model's view "
                      "(truer skin and clothing in wide shots; slower; needs pip install 'vidcolor[people]')."),
    click.option("--hints", "hints", metavar="WHEN=IMAGE", multiple=True, default=(),
                 help="Colour hints for the frame at WHEN: an RGBA image of the frame (any size of its aspect) whose "
                      "opaque pixels give the colour wanted there (hue and saturation; the film keeps its "
                      "brightness). They spread over the regions they touch and are carried through the shot "
                      "(repeatable; in a batch, for every input)."),
    click.option("--hints-dir", "hints_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path),
                 default=None,
                 help="All the hints in a folder saved by `vidcolor paint` (its hints.json names each frame)."),
    click.option("--reference-strength", type=click.FloatRange(*c.REFERENCE_STRENGTH_RANGE),
                 default=c.REFERENCE_STRENGTH, show_default=True,
                 help="How strongly matched reference colours override the model's (0: not at all)."),
)
encoder_options = _options(
    click.option("--codec", default=c.CODEC, show_default=True, help="FFmpeg video encoder."),
    click.option("--crf", type=click.IntRange(*c.CRF_RANGE), default=c.CRF, show_default=True,
                 help="Constant rate factor."),
    click.option("--preset", type=click.Choice(c.X264_PRESETS), default=c.PRESET, show_default=True,
                 help="Encoder speed/size trade-off."),
)


def colorizer_args(model: Path | None, device: str, render_size: int, batch_size: int | None, smoothing: str,
                   strength: float | None, window: int | None, guided: bool, saturation: float,
                   references: tuple[Path, ...] = (), keyframes: tuple[str, ...] = (),
                   reference_strength: float = c.REFERENCE_STRENGTH, people: bool = False,
                   hints: tuple[str, ...] = (), hints_dir: Path | None = None,
                   cpu_threads: int | None = None, engine: str = c.ENGINE) -> dict[str, Any]:
    """`Colorizer` keyword arguments from `model_options`, checking what click's bounds cannot.

    Saturation is checked here by `Colorizer`'s own check (one error line, also for --cuts-only and
    eval), not by a click range, so the bounds and message live in `controls` alone.
    """
    if window is not None and window % 2 == 0:
        raise click.BadParameter(f"must be odd, got {window}", param_hint="--window")
    if hints_dir is not None:
        from ..hintfolder import folder_specs

        hints = (*hints, *folder_specs(hints_dir)[1])
    return dict(model=model, device=device, render_size=render_size, batch_size=batch_size,
                smoothing=smoothing, strength=strength, window=window, guided=guided,
                saturation=c.check_saturation(saturation), references=[str(p) for p in references],
                keyframes=list(keyframes), reference_strength=reference_strength, people=people,
                hints=list(hints), cpu_threads=cpu_threads, engine=engine)
