"""`Colorizer`: the one object the CLI, evaluation and benchmarks call; it only orchestrates.

`run()` streams a file through four overlapping stages: decoding (media.reader), the model here on the
caller's thread, finishing (`finish.Finisher`: cuts, smoothing, Cb/Cr) and encoding (media.writer, in
`segments`). Only the chroma is computed: the source's Y plane goes to the encoder untouched. What a work
folder must match to be resumed: `RESUME_SETTINGS`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_generator
from .color import denormalize_ab, frame_lightness, normalize_l, rgb_luma
from .controls import (DEFAULT_SATURATION, DEFAULT_SMOOTHING, DEVICE, ENGINE, REFERENCE_STRENGTH, RENDER_SIZE,
                       SEGMENT_SECONDS, check_saturation)
from .device import auto_batch_size, download, resolve_device, torch_threads, upload_luma
from .machine import model_threads
from .engine import make_engine
from .modelfiles import default_model_path
from .errors import ModelError
from .finish import Finisher, Work, chroma_from_lab
from .geometry import pad_to_multiple, render_shape
from .guide import Guidance
from .keyframes import Carried, CarriedStack
from .join import join_frames, join_segments
from .media import (VIDEO_START_NUMBER, Frame, OutputOptions, VideoInfo, check_options, check_video_target,
                    find as find_sequence, is_pattern, is_still, not_carried, output_name, output_plan, probe)
from .regions import FaceFinder, recolor_batch
from .photos import colour_photo
from .result import RunResult
from .segments import ProgressCallback, chunks, encode_segments
from .resume import WorkFolder, job_identity, segment_frames, segment_suffix, source_identity
from .stage import StageThread
from .temporal import make_smoother
from .colorspec import YuvSpec, rgb_frame_spec
from .yuv import yuv_to_rgb

# The settings that change the output's pixels (the resume identity), named one by one so a new attribute
# never joins by accident; not threads or batch size (its own entry). `cuda` stays for older work folders.
RESUME_SETTINGS = ("saturation", "cuda", "render_size", "smoothing", "strength", "window", "guided", "user_colours",
                   "people", "engine_name")
RESUME_OUTPUT = ("codec", "crf", "preset", "pix_fmt")  # of OutputOptions; not `overwrite`


class Colorizer:
    """A loaded generator plus the options of one colorization job.

    `model` None: the packaged default. `batch_size` None: one per video (fixed on CPU, from free memory on
    CUDA). `smoothing`/`strength`/`window`: the temporal smoother (`temporal`). `guided`: luma-guided colour
    upsampling (`upsample`). `cpu_threads`: torch's threads during `run()` on CPU; None: `device.model_threads`
    (every core on a small machine, decoding and encoding at a lower priority). `saturation` S:
    ab becomes S x ab right after the model (`predict_ab`), so every path smooths and upsamples the same colour.
    `references`, `keyframes`, `hints`: the user's colours (`guide`); `people`: faces coloured again (`regions`).
    `engine`: what runs the model (`engine`: "auto" takes the int8 copy in ONNX Runtime on a CPU when it can).
    """

    segment_seconds: float = SEGMENT_SECONDS  # see run()

    def __init__(self, model: str | Path | None = None, device: str = DEVICE, render_size: int = RENDER_SIZE,
                 batch_size: int | None = None, smoothing: str = DEFAULT_SMOOTHING, strength: float | None = None,
                 cpu_threads: int | None = None, window: int | None = None, guided: bool = False,
                 saturation: float = DEFAULT_SATURATION, references: Sequence[str | Path] = (),
                 keyframes: Sequence[str] = (), reference_strength: float = REFERENCE_STRENGTH,
                 people: bool = False, hints: Sequence[str] = (), engine: str = ENGINE):
        self.people = people
        self.finder = FaceFinder() if people else None  # fails at once without the extra
        self.saturation = check_saturation(saturation)  # before loading the model: a bad option fails at once
        self.guidance = Guidance.load(references, keyframes, reference_strength, hints)  # every image read and checked
        self.matching = self.guidance is not None and self.guidance.matches  # frames matched to colour images
        self.device = resolve_device(device)
        path = Path(model) if model is not None else default_model_path()
        if model is None and not path.is_file():
            raise ModelError(f"no default model installed ({path}); pass one with --model")
        net, self.model_info = load_generator(path, self.device)
        self.cpu_threads = cpu_threads or model_threads()
        self.engine, self.engine_note = make_engine(engine, net, path, self.device, self.matching, self.cpu_threads)
        self.engine_name = self.engine.name  # int8 colours differ slightly from fp32: part of the resume identity
        self.model_path = path
        self.cuda = self.device.type == "cuda"
        self.render_size = render_size
        self.batch_size = batch_size
        self.smoothing = smoothing
        self.strength = strength  # None: the mode's default
        self.window = window  # frames averaged by the `window` mode; None: its default
        self.guided = guided  # upsample colour with the luma-guided filter instead of bilinearly
        make_smoother(smoothing, strength, window)  # fail on bad options now, not mid-run
        if self.matching:
            self.guidance.prepare(self._predict, render_size, self.device)

    @property
    def user_colours(self) -> dict[str, Any] | None:
        """What the references, keyframes and hints add to the resume identity (None: automatic colours)."""
        return None if self.guidance is None else self.guidance.identity()

    # -- the tensor API (evaluation, benchmarks) -------------------------------------------

    @torch.inference_mode()
    def colorize(self, rgb: torch.Tensor, spec: YuvSpec | None = None) -> torch.Tensor:
        """(B,3,H,W) RGB in [0,1] -> colorized RGB with the same luma Y', on the input's device.

        `run()`'s path on a 4:4:4 frame, so `vidcolor train evaluate` measures what `run` does: the
        Y' plane of the RGB (`spec`, default `yuv.rgb_frame_spec`), the L* of that luma, the model,
        Cb/Cr from L*a*b*, the Y' kept. Each frame is coloured alone (no smoothing) and in float (no
        rounding to 8-bit planes).
        """
        spec = spec or rgb_frame_spec(rgb.shape[-2])
        y = rgb_luma(rgb.to(self.device), spec)
        size = tuple(y.shape[-2:])
        L_render, L = frame_lightness(y, render_shape(*size, self.render_size), size, spec)
        ab = self.recolor_people(self.predict_ab(L_render), L, y)
        chroma = chroma_from_lab(L, ab, spec, L_render if self.guided else None)
        return yuv_to_rgb(torch.cat([y, chroma], dim=1), spec).to(rgb.device)

    def predict_ab(self, L: torch.Tensor) -> torch.Tensor:
        """(B,1,h,w) L in [0,100] -> (B,2,h,w) ab in Lab units, times `saturation`, then pulled towards the
        references' matched colours (`guide`). The one place ab is produced, so every colouring path gets
        the same S and references."""
        ab, features = self._predict(L)
        if self.saturation != 1.0:
            ab = ab * self.saturation
        return self.guidance.blend(ab, features) if self.matching else ab

    def recolor_people(self, ab: torch.Tensor, L: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """With `people`: each frame's people coloured again at their own scale (`regions.recolor_batch`)."""
        return ab if self.finder is None else recolor_batch(self.finder, ab, L, y, self.predict_ab, self.render_size)

    def _predict(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model on L*: ab in Lab units and, with references, the matching features of the frame's
        own area; pads to the model's multiple and crops back."""
        h, w = L.shape[-2:]
        x = pad_to_multiple(normalize_l(L.float()), self.engine.size_multiple)
        out = self.engine(x)
        if not self.matching:
            return denormalize_ab(out[..., :h, :w]), None
        out, features = out
        fh, fw = (math.ceil(n * f / p) for n, f, p in zip((h, w), features.shape[-2:], x.shape[-2:]))
        return denormalize_ab(out[..., :h, :w]), features[..., :fh, :fw].float()

    # -- the file API ---------------------------------------------------------------------

    def run(self, input: str | Path, output: str | Path | None = None, options: OutputOptions | None = None,
            progress: ProgressCallback | None = None, segment_seconds: float | None = None,
            stop: threading.Event | None = None, fps: float | None = None) -> RunResult:
        """Colorize one video, image sequence or photo into `output` (default `<name>_color.<ext>` beside it).

        `stop` (set from a signal handler or another thread) interrupts at the next batch with the same
        clean-up as KeyboardInterrupt, and unlike it cannot be lost inside a finalizer. Video is encoded in
        segments of `segment_seconds` in a work folder beside the output (`resume`, `segments`): the same
        call after a kill continues from the last finished one; the segments and the source's other streams
        are then joined without re-encoding. A printf pattern (`reel1_%06d.dpx`) is an image sequence, read
        at `fps` as input, written as numbered frames as output (`media.sequence`).
        """
        options = options or OutputOptions()
        source = Path(input)
        target = Path(output) if output is not None else source.with_name(output_name(source, codec=options.codec))
        if is_still(source):
            return colour_photo(self.colorize, self.threads(), source, target, options.overwrite, progress, stop)
        to_frames = check_video_target(target)
        if not to_frames:
            check_options(options)
        info = probe(source, fps)
        identity = source_identity(source)
        first_number = find_sequence(source).first if is_pattern(source) else VIDEO_START_NUMBER
        options, plan = output_plan(source, target, info, options, to_frames)
        start = time.perf_counter()
        carried = self.user_tracks(source, info.video, options.pix_fmt)
        batch_size = self.batch_size or self._auto_batch_size(info.video)
        seg_frames = segment_frames(info.video, segment_seconds or self.segment_seconds)
        timings = {"decode": 0.0, "compute": 0.0, "finish": 0.0, "encode": 0.0, "join": 0.0}
        with WorkFolder(target, self._identity(source, options, batch_size, seg_frames, info.video),
                        segment_suffix(options.codec)) as work:
            if any(s.get("pts_repaired") for s in work.segments) and not work.complete:
                work.reset()  # timestamps were made up while decoding: seeking to them would not find the frames
            resumed_from = work.frames_done
            try:
                if not work.complete:
                    encode_segments(self.stream, self.lookahead, self.threads(), self.cuda, source, info.video,
                                    options, batch_size, seg_frames, work, timings, progress, stop, plan.format,
                                    carried)
                joined = time.perf_counter()
                if to_frames:
                    join_frames(work, first_number)
                else:
                    join_segments(work, source, info.video, plan)
                timings["join"] = time.perf_counter() - joined
            except BaseException:
                if not work.segments:
                    work.remove()
                raise
            frames = work.frames_done
            decode_errors = sum(s.get("decode_errors", 0) for s in work.segments)
            segments = len(work.segments)
            resized = sum(s.get("resized", 0) for s in work.segments)
            plan.not_kept.extend(not_carried({kind for s in work.segments for kind in s.get("side_data", ())}))
        work.remove()
        warnings = [f"not kept: {item}" for item in plan.not_kept]
        if resized:
            warnings.append(f"{resized} frames at another size than the first {info.video.width}x{info.video.height} "
                            f"(a resolution change) were scaled to it")
        if resumed_from:
            warnings.append(f"resumed after {resumed_from} frames from an interrupted run")
        losses = [info.truncated] if info.truncated else []
        if source_identity(source) != identity:
            losses.append("the input changed while it was read (still being written?): run again when it is complete")
        return RunResult(
            input=source, output=target, frames_out=frames,
            frames_expected=info.video.expected_frames, frames_estimated=not info.video.frames,
            decode_errors=decode_errors, seconds=time.perf_counter() - start, warnings=warnings,
            timings=timings, segments=segments, frames_resumed=resumed_from, plan=plan, losses=losses,
        )

    def settings(self) -> dict[str, Any]:
        """The settings that change the output (`RESUME_SETTINGS`), as the resume identity records them."""
        return {name: getattr(self, name) for name in RESUME_SETTINGS}

    def _identity(self, source: Path, options: OutputOptions, batch_size: int, seg_frames: int,
                  video: VideoInfo | None = None) -> dict:
        """What must match for a work folder to be reused (`resume.job_identity`); an image sequence's
        frame rate (`--fps`) too, since it sets the segments' timestamps."""
        output = {name: getattr(options, name) for name in RESUME_OUTPUT}
        if is_pattern(source) and video is not None:
            output["sequence_fps"] = str(video.fps)
        return job_identity(source, self.model_path, self.device.type, self.settings(), output, batch_size,
                            seg_frames, self.lookahead)

    def user_tracks(self, source: Path, video: VideoInfo, pix_fmt: str) -> dict[int, Carried | CarriedStack]:
        """The keyframes' and hints' colours carried through their shots, by pts (`guide`); {} without them."""
        if self.guidance is None:
            return {}
        render_hw = render_shape(video.height, video.width, self.render_size)
        return self.guidance.tracks(source, video, pix_fmt, render_hw, self.device)

    def colour_frames(self, frames: Sequence[Frame], video: VideoInfo,
                      carried: dict[int, Carried | CarriedStack] | None = None) -> list[Frame]:
        """Frames coloured through `run`'s stages (model, finishing, carried colours), each alone, as the first of
        its stream (no smoothing: what smoothing does to a lone frame), batched through the model. For `preview`."""
        done: list[Frame] = []
        with self.threads():
            self.stream(chunks(iter(frames), self._auto_batch_size(video)), done.extend, video, None, carried, True)
        return done

    def threads(self) -> AbstractContextManager:
        """Torch's thread count for a job's compute: `cpu_threads` on CPU; nothing to set on CUDA."""
        return nullcontext() if self.cuda else torch_threads(self.cpu_threads)

    @property
    def lookahead(self) -> int:
        return make_smoother(self.smoothing, self.strength, self.window).lookahead

    @torch.inference_mode()
    def stream(self, batches: Iterable[list[Frame]], emit: Callable[[list[Frame]], None], video: VideoInfo,
                stop: threading.Event | None = None, carried: dict[int, Carried | CarriedStack] | None = None,
                alone: bool = False) -> tuple[float, float]:
        """The compute stages; returns the busy seconds of the model stage and of the finishing stage.

        This thread computes L* and runs the model; a second thread (`finish.Finisher`) detects cuts,
        smooths, builds Cb/Cr and hands frames to `emit`, so on CPU those run on another
        core beside the model instead of after it, and on CUDA this thread never waits for the
        device to finish.
        """
        spec = video.color.yuv_spec
        render_hw = render_shape(video.height, video.width, self.render_size)
        smoother = make_smoother(*(("none", None, None) if alone else (self.smoothing, self.strength, self.window)))
        finisher = Finisher(smoother, spec, self.guided, download, emit, carried)
        stage = StageThread(finisher.process, name="vidcolor-finish", setup=torch.inference_mode,
                            background=not self.cuda)
        busy = 0.0
        try:
            stage.start()
            for batch in batches:
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt
                start = time.perf_counter()
                work = Work(batch)
                if batch:
                    y = upload_luma([f.planes[0] for f in batch], self.device, batch[0].bits)
                    work.L_render, work.L_chroma = frame_lightness(y, render_hw, batch[0].planes[1].shape, spec)
                    work.ab = self.recolor_people(self.predict_ab(work.L_render), work.L_chroma, y)
                busy += time.perf_counter() - start
                stage.put(work)
            stage.put(None)  # end of stream: the smoother's held-back frames
            stage.finish()
        except BaseException:
            stage.abort()
            raise
        return busy, stage.busy_seconds

    def _auto_batch_size(self, video: VideoInfo) -> int:
        render_hw = render_shape(video.height, video.width, self.render_size)
        return auto_batch_size(self.device, video.width, video.height, render_hw, self.predict_ab)
