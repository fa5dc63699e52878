"""`Colorizer`: the one object the CLI, evaluation and benchmarks call; it only orchestrates.

`run()` streams a file through four overlapping stages: the decode thread (media.reader), the
model stage here on the caller's thread (L* from Y, the generator), the finishing thread
(`finish.Finisher`: cuts, smoothing, Cb/Cr) and the encode thread (media.writer). Only the chroma
is computed: the source's Y plane goes to the encoder untouched, so brightness is exactly the
input's, and only 8-bit planes cross between host and device (`device`). Which frames each
segment computes is `resume.SegmentPlan`'s; what a work folder must match, `RESUME_SETTINGS`.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import default_model_path, load_generator
from .color import denormalize_ab, frame_lightness, normalize_l, rgb_luma
from .controls import (DEFAULT_SATURATION, DEFAULT_SMOOTHING, DEVICE, REFERENCE_STRENGTH, RENDER_SIZE,
                       PIX_FMT, SEGMENT_SECONDS, check_saturation)
from .device import auto_batch_size, download, resolve_device, torch_threads, upload_luma
from .errors import InputError, ModelError
from .finish import Finisher, Work, chroma_from_lab
from .geometry import pad_to_multiple, render_shape
from .guide import Guidance
from .keyframes import Carried, CarriedStack
from .join import join_frames, join_segments
from .media import (Frame, OutputOptions, VideoInfo, VideoReader, VideoWriter, check_frame_size, check_options,
                    check_paths, output_name, probe)
from .media.formats import resolve_pix_fmt
from .media.sequence import (VIDEO_START_NUMBER, check_target, check_video_target, find as find_sequence, is_pattern,
                             sequence_options, sequence_plan)
from .media.keep import OutputPlan, plan_for
from .media.probe import MediaInfo
from .media.still import check_still_target, metadata_note, is_still, output_dtype, read_still, write_still
from .nets import for_inference
from .regions import FaceFinder, recolor_people
from .result import RunResult
from .resume import (WARMUP_FRAMES, SegmentPlan, WorkFolder, job_identity, segment_frames, segment_suffix,
                     source_identity)
from .stage import StageThread
from .temporal import make_smoother
from .colorspec import YuvSpec, rgb_frame_spec
from .yuv import yuv_to_rgb

IO_THREADS = 2  # cores left to the decode and encode threads by default
# The Colorizer settings that change the output's pixels: the resume identity, named one by one so
# a new attribute never joins it by accident. (`cuda` repeats the identity's device; it stays so work
# folders of earlier versions are still reused.) Not threads or batch size: the batch size has its own entry.
RESUME_SETTINGS = ("saturation", "cuda", "render_size", "smoothing", "strength", "window", "guided", "user_colours",
                   "people")
RESUME_OUTPUT = ("codec", "crf", "preset", "pix_fmt")  # of OutputOptions; not `overwrite`

ProgressCallback = Callable[[int, int | None], None]  # (frames written, frames expected)


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


class Colorizer:
    """A loaded generator plus the options of one colorization job.

    `model` None means the packaged default model. `batch_size` None picks one per video
    (fixed on CPU, from free memory on CUDA). `smoothing`/`strength`/`window` select the temporal
    smoother (`temporal.SMOOTHERS`; None: the mode's default). `guided` upsamples the colour with
    the luma-guided filter (`upsample`) instead of bilinearly. `cpu_threads` is torch's intra-op thread count during
    `run()` on CPU; None leaves IO_THREADS cores to decoding and encoding, because OpenMP
    threads that wait for busy cores slow every tensor op down (on 2 cores: 2.4 fps with 2
    threads against 18 fps with 1, on chaplin.mp4 with a tiny model).

    `saturation` S scales the predicted chroma: ab becomes S x ab right after the model, in
    `predict_ab`, so `run()` smooths and both `run()` and `colorize()` upsample the same scaled colour
    (linear in ab, so the order only matters where RGB clips). S = 0 gives gray, S = 1 skips the
    multiplication (bit-identical to no option); bounds: `controls.SATURATION_RANGE`. Scaling ab
    is the contract for every model: a future bin-classification head could also tie its decoding
    temperature to S, but it must still give S x its decoded ab.
    """

    segment_seconds: float = SEGMENT_SECONDS  # see run()

    def __init__(self, model: str | Path | None = None, device: str = DEVICE, render_size: int = RENDER_SIZE,
                 batch_size: int | None = None, smoothing: str = DEFAULT_SMOOTHING, strength: float | None = None,
                 cpu_threads: int | None = None, window: int | None = None, guided: bool = False,
                 saturation: float = DEFAULT_SATURATION, references: Sequence[str | Path] = (),
                 keyframes: Sequence[str] = (), reference_strength: float = REFERENCE_STRENGTH,
                 people: bool = False, hints: Sequence[str] = ()):
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
        self.net = for_inference(net, features=self.matching)
        self.model_path = path
        self.cuda = self.device.type == "cuda"
        self.render_size = render_size
        self.batch_size = batch_size
        self.smoothing = smoothing
        self.strength = strength  # None: the mode's default
        self.window = window  # frames averaged by the `window` mode; None: its default
        self.guided = guided  # upsample colour with the luma-guided filter instead of bilinearly
        self.cpu_threads = cpu_threads or max(1, (os.cpu_count() or 1) - IO_THREADS)
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
        """With `people`: each frame's people, found by their faces in the (B,1,H,W) Y plane, coloured again
        at their own scale from L* at any size (`regions`); frames where none is found keep `ab`."""
        if self.finder is None:
            return ab
        luma = (y[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy() if y.is_floating_point() \
            else y[:, 0].cpu().numpy()
        out = [recolor_people(ab[i:i + 1], L[i:i + 1], self.finder.people(luma[i]), luma.shape[1:],
                              self.predict_ab, self.render_size) for i in range(ab.shape[0])]
        return torch.cat(out)

    def _predict(self, L: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The model on L*: ab in Lab units and, with references, the matching features of the frame's
        own area; pads to the model's multiple and crops back."""
        h, w = L.shape[-2:]
        x = pad_to_multiple(normalize_l(L.float()), self.net.size_multiple).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16) if self.cuda else nullcontext():
            out = self.net(x)
        if not self.matching:
            return denormalize_ab(out[..., :h, :w]), None
        out, features = out
        fh, fw = (math.ceil(n * f / p) for n, f, p in zip((h, w), features.shape[-2:], x.shape[-2:]))
        return denormalize_ab(out[..., :h, :w]), features[..., :fh, :fw].float()

    # -- the file API ---------------------------------------------------------------------

    def run(self, input: str | Path, output: str | Path | None = None, options: OutputOptions | None = None,
            progress: ProgressCallback | None = None, segment_seconds: float | None = None,
            stop: threading.Event | None = None, fps: float | None = None) -> RunResult:
        """Colorize one video file into `output` (default `<name>_color.<ext>` beside it).

        Setting `stop` (from a signal handler, another thread) interrupts the run at the next
        batch as KeyboardInterrupt would, with the same clean-up; unlike a KeyboardInterrupt
        raised by Python's own handler, it cannot be lost inside a finalizer or weakref callback
        (CPython prints and ignores exceptions raised there).

        The video is encoded in segments of `segment_seconds` (default `self.segment_seconds`)
        under a work folder beside the output (see `resume`); a run that was killed or
        interrupted continues from its last finished segment when called again with the same
        arguments. The segments and the source's audio/subtitles are then joined without
        re-encoding. On failure the work folder is kept only if it holds finished segments.

        A printf pattern (`reel1_%06d.dpx`) as `input` is an image sequence read at `fps` (default
        `controls.SEQUENCE_FPS`); as `output`, frames written as numbered DPX/TIFF/PNG files at the
        input's bit depth (`media.sequence`).
        """
        options = options or OutputOptions()
        source = Path(input)
        target = Path(output) if output is not None else source.with_name(output_name(source, codec=options.codec))
        if is_still(source):
            return self.run_still(source, target, options.overwrite, progress, stop)
        to_frames = check_video_target(target)
        if not to_frames:
            check_options(options)
        info = probe(source, fps)
        identity = source_identity(source)
        first_number = find_sequence(source).first if is_pattern(source) else VIDEO_START_NUMBER
        options, plan = self._output_plan(source, target, info, options, to_frames)
        start = time.perf_counter()
        render_hw = render_shape(info.video.height, info.video.width, self.render_size)
        carried = {} if self.guidance is None else self.guidance.tracks(source, info.video, options.pix_fmt,
                                                                        render_hw, self.device)
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
                    self._encode_segments(source, info.video, options, batch_size, seg_frames, work, timings,
                                          progress, stop, plan.format, carried)
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

    @staticmethod
    def _output_plan(source: Path, target: Path, info: MediaInfo, options: OutputOptions, to_frames: bool
                     ) -> tuple[OutputOptions, OutputPlan]:
        """The output's options with `--pix-fmt auto` resolved for this source, and what the output keeps:
        every stream checked in memory before any work (numbered frames keep the frames only)."""
        video = info.video
        options = replace(options, pix_fmt=resolve_pix_fmt(options.pix_fmt, options.codec, video.pix_fmt,
                                                            video.width, video.height))
        if to_frames:
            options = sequence_options(options, target, video)
            check_target(target, options.overwrite)
            return options, sequence_plan(info)
        check_paths(source, target, options.overwrite)
        check_frame_size(video, options)
        return options, plan_for(source, video, target, options)

    def run_still(self, source: Path, target: Path, overwrite: bool = False, progress: ProgressCallback | None = None,
                  stop: threading.Event | None = None) -> RunResult:
        """Colorize a photo into an image of the same size, at the input's bit depth where the target's
        format holds it (`media.still`). References apply as to a video's frames; a keyframe's image is a
        reference here (no shot to carry it through)."""
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        check_still_target(source, target)
        check_paths(source, target, overwrite)
        start = time.perf_counter()
        still = read_still(source)
        rgb = torch.from_numpy(still.rgb).permute(2, 0, 1)[None]
        with nullcontext() if self.cuda else torch_threads(self.cpu_threads):
            out = self.colorize(rgb).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
        dtype = output_dtype(still, target)
        write_still(target, out, dtype, still.alpha)
        warnings = [note] if (note := metadata_note(still.metadata)) else []
        if np.dtype(dtype).itemsize < np.dtype(still.dtype).itemsize:
            warnings.append(f"written {8 * np.dtype(dtype).itemsize}-bit: {target.suffix} holds no "
                            f"{still.bits}-bit samples (use .png or .tif)")
        if progress is not None:
            progress(1, 1)
        return RunResult(input=source, output=target, frames_out=1, frames_expected=1, decode_errors=0,
                         seconds=time.perf_counter() - start, warnings=warnings)

    def frames_at(self, source: str | Path, fractions: Sequence[float], pix_fmt: str = PIX_FMT
                  ) -> tuple[VideoInfo, list[tuple[float, Frame, Frame]]]:
        """The frames at these fractions of the video's duration, as `run` colours them: for each, (its time
        in seconds from the first frame, the source frame, the coloured frame), through the same stages as
        `run` (smoother warmed over the frames before it, as a resumed segment is; look-ahead read;
        keyframes carried). Each position is reached by seeking, so the cost does not grow with the film."""
        source = Path(source)
        info = probe(source)
        video = info.video
        render_hw = render_shape(video.height, video.width, self.render_size)
        carried = {} if self.guidance is None else self.guidance.tracks(source, video, pix_fmt, render_hw, self.device)
        warm, lookahead = max(WARMUP_FRAMES, self._lookahead()), self._lookahead()
        tb, step = video.time_base, 1 / float(video.fps or 25)
        first_pts = self._first_pts(source, video, pix_fmt)
        out = []
        with nullcontext() if self.cuda else torch_threads(self.cpu_threads):
            for fraction in fractions:
                seconds = max(0.0, fraction * (video.duration or 0.0))
                start = first_pts + round(max(0.0, seconds - warm * step) / tb)
                reader = VideoReader(source, video, pix_fmt, batch_size=8, start_pts=start)
                frames: list[Frame] = []
                try:
                    reader.start()
                    after = None
                    for f in (f for batch in reader for f in batch):
                        frames.append(f)
                        if after is None and (f.pts - first_pts) * tb >= seconds - step / 2:
                            after = len(frames) - 1
                        if after is not None and len(frames) > after + lookahead:
                            break
                finally:
                    reader.close()
                if not frames:
                    raise InputError(f"no video frame could be decoded from {source}")
                index = len(frames) - 1 if after is None else after
                pick, frames = frames[index], frames[max(0, index - warm):]
                done: list[Frame] = []
                self._stream(_chunks(iter(frames), self._auto_batch_size(video)), done.extend, video, None, carried)
                coloured = next(f for f in done if f.pts == pick.pts)
                out.append((float((pick.pts - first_pts) * tb), pick, coloured))
        return video, out

    @staticmethod
    def _first_pts(source: Path, video: VideoInfo, pix_fmt: str) -> int:
        reader = VideoReader(source, video, pix_fmt, batch_size=1)
        try:
            reader.start()
            for batch in reader:
                return batch[0].pts
        finally:
            reader.close()
        raise InputError(f"no video frame could be decoded from {source}")

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
                            seg_frames, self._lookahead())

    def _lookahead(self) -> int:
        return make_smoother(self.smoothing, self.strength, self.window).lookahead

    def _encode_segments(self, source: Path, video: VideoInfo, options: OutputOptions, batch_size: int,
                         seg_frames: int, work: WorkFolder, timings: dict[str, float],
                         progress: ProgressCallback | None, stop: threading.Event | None = None,
                         fmt: str | None = None, carried: dict[int, Carried | CarriedStack] | None = None) -> None:
        """Encode the segments that are not finished yet, each with a fresh encoder and smoother,
        from the frames `resume.SegmentPlan` gives it; only the frames it keeps are encoded."""
        warm_pts = work.segments[-1]["warmup_pts"] if work.segments else []
        reader = VideoReader(source, video, options.pix_fmt, batch_size, background=not self.cuda,
                             start_pts=warm_pts[0] if warm_pts else None)
        try:
            reader.start()
            plan = SegmentPlan((f for batch in reader for f in batch), seg_frames, self._lookahead(),
                               work.frames_done, warm_pts)
            errors_before = resized_before = 0
            with nullcontext() if self.cuda else torch_threads(self.cpu_threads):
                for segment in plan:
                    writer = VideoWriter(work.segment_path(len(work.segments)), video, options, name=work.target,
                                         background=not self.cuda, fmt=fmt)
                    try:
                        writer.start()
                        batches = _chunks(segment.frames, batch_size)
                        compute, finish = self._stream(batches, self._segment_output(writer, segment.start, video,
                                                                                     progress), video, stop,
                                                     carried)
                        timings["compute"] += compute
                        timings["finish"] += finish
                        writer.finish()
                    except BaseException:
                        writer.abort()
                        raise
                    timings["encode"] += writer.busy_seconds
                    work.add_segment({**segment.record(), "decode_errors": reader.decode_errors - errors_before,
                                      "pts_repaired": reader.pts_repaired, "resized": reader.resized - resized_before},
                                     writer.packet_times)
                    errors_before, resized_before = reader.decode_errors, reader.resized
            if not work.segments:
                raise InputError(f"no video frame could be decoded from {source}")
            work.mark_complete()
        finally:
            reader.close()
            timings["decode"] += reader.busy_seconds

    @staticmethod
    def _segment_output(writer: VideoWriter, done: int, video: VideoInfo, progress: ProgressCallback | None
                        ) -> Callable[[list[Frame]], None]:
        """Where a segment's finished frames go: the kept ones to its encoder; progress counts those
        after the `done` frames of the segments before it."""
        written = 0

        def emit(frames: list[Frame]) -> None:
            nonlocal written
            kept = [f for f in frames if f.keep]
            writer.write(kept)
            written += len(kept)
            if progress is not None:
                progress(done + written, video.expected_frames)

        return emit

    @torch.inference_mode()
    def _stream(self, batches: Iterable[list[Frame]], emit: Callable[[list[Frame]], None], video: VideoInfo,
                stop: threading.Event | None = None, carried: dict[int, Carried | CarriedStack] | None = None
                ) -> tuple[float, float]:
        """The compute stages; returns the busy seconds of the model stage and of the finishing stage.

        This thread computes L* and runs the model; a second thread (`finish.Finisher`) detects cuts,
        smooths, builds Cb/Cr and hands frames to `emit`, so on CPU those run on another
        core beside the model instead of after it, and on CUDA this thread never waits for the
        device to finish.
        """
        spec = video.color.yuv_spec
        render_hw = render_shape(video.height, video.width, self.render_size)
        smoother = make_smoother(self.smoothing, self.strength, self.window)
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
