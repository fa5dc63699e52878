"""`Colorizer`: the one object the CLI, evaluation and benchmarks call.

`run()` streams a file through four overlapping stages: the decode thread (media.reader), the
model stage here on the caller's thread (L* from Y, the generator), the finishing thread
(`_Finisher`: cuts, smoothing, Cb/Cr) and the encode thread (media.writer). Only the chroma is
computed: the source's Y plane goes to the encoder untouched, so brightness is exactly the
input's, and only 8-bit planes cross between host and device.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import default_model_path, load_generator
from .color import denormalize_ab, gray_lightness, join_lab, lab_to_rgb, normalize_l, rgb_to_lab
from .controls import DEFAULT_SATURATION, check_saturation
from .errors import DeviceError, InputError, ModelError
from .media import (
    Batch,
    OutputFrame,
    OutputOptions,
    SourceFrame,
    VideoInfo,
    VideoReader,
    VideoWriter,
    check_container,
    check_frame_size,
    check_options,
    check_paths,
    output_name,
    probe,
)
from .nets import for_inference
from .resume import (
    DEFAULT_SEGMENT_SECONDS,
    WARMUP_FRAMES,
    WorkFolder,
    file_sha256,
    join_segments,
    segment_frames,
    source_identity,
)
from .stage import StageThread
from .upsample import guided_upsample
from .temporal import DEFAULT_SMOOTHING, CutDetector, make_smoother
from .yuv import YuvSpec, luma_to_gray, rgb_to_yuv, to_uint8

CPU_BATCH_SIZE = 4  # batching beyond this buys nothing on CPU and only holds more frames
CPU_BATCH_PIXELS = 4 * 1920 * 1080  # at most this many pixels a batch on CPU (4K and 8K: one frame)
MAX_BATCH_SIZE = 64
CUDA_MEMORY_SHARE = 0.5  # of the free GPU memory, for the automatic batch size
IO_THREADS = 2  # cores left to the decode and encode threads by default

ProgressCallback = Callable[[int, int | None], None]  # (frames written, frames expected)


class _SegmentFront:
    """A writer front that keeps a segment's own frames: drops the `skip` warm-up frames before
    them and the look-ahead frames after them. `own[0]` counts the segment's own frames as they
    are read; it is final before the first look-ahead frame is even computed."""

    def __init__(self, writer: VideoWriter, skip: int, own: list[int]):
        self.writer, self.skip, self.own, self.seen = writer, skip, own, 0

    def write(self, frames: list[OutputFrame], packets: Sequence = ()) -> None:
        lo = max(0, self.skip - self.seen)
        hi = max(lo, min(len(frames), self.skip + self.own[0] - self.seen))
        self.seen += len(frames)
        self.writer.write(frames[lo:hi], packets)


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


@dataclass
class _Work:
    """One batch between the model stage and the finishing stage."""

    frames: list[SourceFrame]
    packets: Sequence
    L_render: torch.Tensor | None = None  # (B,1,h,w) L* the model saw
    L_chroma: torch.Tensor | None = None  # (B,1,H',W') L* at the output's chroma size
    ab: torch.Tensor | None = None  # (B,2,h,w) predicted ab, not yet smoothed


class _Finisher:
    """The finishing stage of one segment: cut detection, smoothing, L*a*b* -> Cb/Cr, to the encoder.

    Runs in its own thread (`StageThread`), in order. The smoother may hold frames back
    (look-ahead), so their source frames wait in `pending` until their ab is ready.
    """

    def __init__(self, colorizer: Colorizer, writer: VideoWriter | _SegmentFront, spec: YuvSpec,
                 expected: int | None, progress: ProgressCallback | None):
        self.colorizer, self.writer, self.spec = colorizer, writer, spec
        self.expected, self.progress = expected, progress
        self.detector = CutDetector()
        self.smoother = make_smoother(colorizer.smoothing, colorizer.strength, colorizer.window)
        self.pending: deque[tuple[SourceFrame, torch.Tensor, torch.Tensor]] = deque()  # frame, L chroma, L render
        self.written = 0

    def process(self, work: _Work | None) -> None:
        """Finish one batch (None: the end of the stream, flush what the smoother holds)."""
        if work is None:
            ready = self._output_frames(self.smoother.flush())
            packets: Sequence = ()
        else:
            ready, packets = [], work.packets
            if work.frames:
                self.pending.extend(zip(work.frames, work.L_chroma, work.L_render))
                cuts = self.detector.update(work.L_render)
                ready = self._output_frames(self.smoother.push(work.ab, work.L_render, cuts))
        self.writer.write(ready, packets)
        self.written += len(ready)
        if self.progress and (ready or work is not None):
            self.progress(self.written, self.expected)

    def _output_frames(self, ab: torch.Tensor) -> list[OutputFrame]:
        """Join the `len(ab)` oldest pending frames with their smoothed ab: source Y, new Cb/Cr."""
        if not len(ab):
            return []
        frames, L, L_render = zip(*(self.pending.popleft() for _ in range(len(ab))))
        guide = torch.stack(L_render) if self.colorizer.guided else None
        chroma = self.colorizer._download(to_uint8(chroma_from_lab(torch.stack(L), ab, self.spec, guide)))
        return [OutputFrame(f.pts, f.duration, (f.planes[0], c[0], c[1])) for f, c in zip(frames, chroma)]


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run with `count` intra-op threads, then restore the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class RunResult:
    input: Path
    output: Path
    frames_in: int  # decoded
    frames_out: int  # encoded
    frames_expected: int | None  # the container's frame count, else duration x frame rate
    decode_errors: int  # packets the decoder rejected
    seconds: float  # wall clock, start to renamed output
    timings: dict[str, float] = field(default_factory=dict)  # busy seconds per stage
    warnings: list[str] = field(default_factory=list)
    frames_estimated: bool = False  # frames_expected came from the duration
    segments: int = 1  # segments the video was encoded in
    frames_resumed: int = 0  # frames taken from the finished segments of an interrupted run

    @property
    def frames_lost(self) -> int:
        """Frames the container promised that did not decode (corrupt or truncated input).

        A count estimated from the duration may be one frame high (start offsets, rounding),
        so a shortfall of one frame is not reported then.
        """
        shortfall = max(0, self.frames_expected - self.frames_in) if self.frames_expected else 0
        return 0 if self.frames_estimated and shortfall <= 1 else shortfall

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0


def resolve_device(name: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> a usable device, or DeviceError saying why not."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no GPU found"
            raise DeviceError(f"device {name!r} is not available: {why}")
        if (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} is not available: {torch.cuda.device_count()} GPU(s) found")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {name!r} (use auto, cpu, cuda or cuda:N)")
    return device


def render_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """The size the model sees: short side `short_side`, aspect ratio kept."""
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a (B,C,H,W) float batch; a no-op at the same size.

    Exact integer reductions (4:2:0 luma to chroma size) are box averages, several times
    cheaper than torch's antialiased filter on CPU.
    """
    (H, W), (h, w) = x.shape[-2:], size
    if (H, W) == (h, w):
        return x
    if h < H and H % h == 0 and W % w == 0 and H // h == W // w:
        return F.avg_pool2d(x, H // h)
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad right and bottom up to a multiple of `multiple` (reflect where the image is big enough)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not ph and not pw:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")


def luma_lightness(y: torch.Tensor, size: tuple[int, int], spec: YuvSpec) -> torch.Tensor:
    """L* at `size` from a (B,1,H,W) Y plane (code values / 255), as if its chroma were neutral.

    For B&W sources this is their exact L*. For colour sources it is the L* of their gray
    version, which is what the model is trained to see; the output keeps the source's Y either
    way. The plane is resized first, so the L* curve runs only at the small sizes, and the
    chroma planes are never read (the pipeline's costliest step before: RGB and Lab twice).
    """
    return gray_lightness(luma_to_gray(resize(y, size), spec))


def frame_lightness(y: torch.Tensor, render_hw: tuple[int, int], chroma_hw: tuple[int, int], spec: YuvSpec
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """L* at render size (the model's input) and at chroma size (to rebuild Cb/Cr), from Y planes.

    Y is reduced to chroma size once; the render size is resized from that when it is no
    larger (same pixels, a third of the work at 720p), else from the full plane.
    """
    y_chroma = resize(y, chroma_hw)
    fits = render_hw[0] <= chroma_hw[0] and render_hw[1] <= chroma_hw[1]
    return luma_lightness(y_chroma if fits else y, render_hw, spec), luma_lightness(y_chroma, chroma_hw, spec)


def chroma_from_lab(L: torch.Tensor, ab: torch.Tensor, spec: YuvSpec, L_ab: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """Cb, Cr planes (code values / 255) for L (B,1,h,w) and ab at any size, with the source's matrix.

    ab is upsampled to L's size bilinearly, or, given `L_ab` (the L* at ab's size), by the
    luma-guided filter (`upsample.guided_upsample`).
    """
    size = tuple(L.shape[-2:])
    ab = resize(ab, size) if L_ab is None else guided_upsample(ab, L_ab, L)
    return rgb_to_yuv(lab_to_rgb(join_lab(L, ab)), spec)[:, 1:]


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
    `predict_ab`, so `run()` and `colorize()` smooth and upsample the same scaled colour (both are
    linear in ab, so the order only matters where RGB clips). S = 0 gives gray, S = 1 skips the
    multiplication (bit-identical to no option); bounds: `controls.SATURATION_RANGE`. Scaling ab
    is the contract for every model: a future bin-classification head could also tie its decoding
    temperature to S, but it must still give S x its decoded ab.
    """

    segment_seconds: float = DEFAULT_SEGMENT_SECONDS  # see run()

    def __init__(self, model: str | Path | None = None, device: str = "auto", render_size: int = 256,
                 batch_size: int | None = None, smoothing: str = DEFAULT_SMOOTHING, strength: float | None = None,
                 cpu_threads: int | None = None, window: int | None = None, guided: bool = False,
                 saturation: float = DEFAULT_SATURATION):
        self.saturation = check_saturation(saturation)  # before loading the model: a bad option fails at once
        self.device = resolve_device(device)
        path = Path(model) if model is not None else default_model_path()
        if model is None and not path.is_file():
            raise ModelError(f"no default model installed ({path}); pass one with --model")
        net, self.model_info = load_generator(path, self.device)
        self.net = for_inference(net)
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

    # -- the tensor API (evaluation, benchmarks) -------------------------------------------

    @torch.inference_mode()
    def colorize(self, rgb: torch.Tensor, temporal: bool = False) -> torch.Tensor:
        """(B,3,H,W) RGB in [0,1] -> colorized RGB with the same L*, on the input's device.

        With `temporal`, the batch is one clip in order and is smoothed as `run()` would.
        """
        L = rgb_to_lab(rgb.to(self.device))[:, :1]
        L_render = resize(L, render_shape(*L.shape[-2:], self.render_size))
        ab = self.predict_ab(L_render)
        if temporal:
            smoother = make_smoother(self.smoothing, self.strength, self.window)
            parts = [smoother.push(ab, L_render, CutDetector().update(L_render)), smoother.flush()]
            ab = torch.cat([p.to(ab) for p in parts if len(p)])
        size = tuple(L.shape[-2:])
        ab = guided_upsample(ab, L_render, L) if self.guided else resize(ab, size)
        return lab_to_rgb(join_lab(L, ab)).to(rgb.device)

    def predict_ab(self, L: torch.Tensor) -> torch.Tensor:
        """(B,1,h,w) L in [0,100] -> (B,2,h,w) ab in Lab units, times `saturation`; pads to the model's
        multiple and crops back. The one place ab is produced, so every colouring path gets the same S."""
        h, w = L.shape[-2:]
        x = pad_to_multiple(normalize_l(L.float()), self.net.size_multiple).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16) if self.cuda else nullcontext():
            out = self.net(x)
        ab = denormalize_ab(out[..., :h, :w])
        return ab if self.saturation == 1.0 else ab * self.saturation

    # -- the file API ---------------------------------------------------------------------

    def run(self, input: str | Path, output: str | Path | None = None, options: OutputOptions | None = None,
            progress: ProgressCallback | None = None, segment_seconds: float | None = None,
            stop: threading.Event | None = None) -> RunResult:
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
        """
        options = options or OutputOptions()
        source = Path(input)
        target = Path(output) if output is not None else source.with_name(output_name(source))
        check_options(options)
        info = probe(source)
        check_paths(source, target, options.overwrite)
        check_frame_size(info.video, options)
        check_container(target, options)
        start = time.perf_counter()
        batch_size = self.batch_size or self._auto_batch_size(info.video)
        seg_frames = segment_frames(info.video, segment_seconds or self.segment_seconds)
        timings = {"decode": 0.0, "compute": 0.0, "finish": 0.0, "encode": 0.0, "join": 0.0}
        with WorkFolder(target, self._identity(source, options, batch_size, seg_frames)) as work:
            if any(s.get("pts_repaired") for s in work.segments) and not work.complete:
                work.reset()  # timestamps were made up while decoding: seeking to them would not find the frames
            resumed_from = work.frames_done
            try:
                if not work.complete:
                    self._encode_segments(source, info.video, options, batch_size, seg_frames, work, timings,
                                          progress, stop)
                joined = time.perf_counter()
                warnings = join_segments(work, source, info.video)
                timings["join"] = time.perf_counter() - joined
            except BaseException:
                if not work.segments:
                    work.remove()
                raise
            frames = work.frames_done
            decode_errors = sum(s.get("decode_errors", 0) for s in work.segments)
            segments = len(work.segments)
        work.remove()
        if resumed_from:
            warnings.append(f"resumed after {resumed_from} frames from an interrupted run")
        return RunResult(
            input=source, output=target, frames_in=frames, frames_out=frames,
            frames_expected=info.video.expected_frames, frames_estimated=not info.video.frames,
            decode_errors=decode_errors, seconds=time.perf_counter() - start, warnings=warnings,
            timings=timings, segments=segments, frames_resumed=resumed_from,
        )

    def _identity(self, source: Path, options: OutputOptions, batch_size: int, seg_frames: int) -> dict:
        """What must match for a work folder to be reused: source, model, every option that changes the output
        (`settings`: every scalar attribute, so render size, smoothing, guided and saturation, not threads or batch)."""
        settings = {k: v for k, v in vars(self).items()
                    if k not in ("cpu_threads", "batch_size") and isinstance(v, (str, int, float, bool, type(None)))}
        output_options = {k: v for k, v in asdict(options).items() if k != "overwrite"}
        return {"source": source_identity(source), "model_sha256": file_sha256(self.model_path),
                "device": self.device.type, "settings": settings, "output": output_options,
                "batch_size": batch_size, "segment_frames": seg_frames,
                "warmup_lookahead": list(self._segment_context())}  # a list: what JSON gives back

    def _segment_context(self) -> tuple[int, int]:
        """(warm-up, look-ahead): frames computed before and after each segment, output discarded,
        covering the smoother's reach both ways so segment boundaries do not show."""
        lookahead = make_smoother(self.smoothing, self.strength, self.window).lookahead
        return max(WARMUP_FRAMES, lookahead), lookahead

    def _encode_segments(self, source: Path, video: VideoInfo, options: OutputOptions, batch_size: int,
                         seg_frames: int, work: WorkFolder, timings: dict[str, float],
                         progress: ProgressCallback | None, stop: threading.Event | None = None) -> None:
        """Encode the segments that are not finished yet, each with a fresh encoder and smoother.

        Every segment is computed from its warm-up frames (the ones before it) to its look-ahead
        frames (the ones after it; `_segment_context`), whose outputs are discarded, so a segment's
        pixels do not depend on whether the run was resumed, and a look-ahead smoother's last
        frames of a segment see the same future as in one uninterrupted stream.
        """
        warmup, lookahead = self._segment_context()
        warm_pts = work.segments[-1]["warmup_pts"] if work.segments else []
        reader = VideoReader(source, video, options.pix_fmt, batch_size, copy_streams=False, background=not self.cuda,
                             start_pts=warm_pts[0] if warm_pts else None)
        try:
            reader.start()
            source_frames = (f for batch in reader for f in batch.frames)
            ahead: deque[SourceFrame] = deque()  # read past the last segment's end: the next one's first frames

            def next_frame() -> SourceFrame | None:
                return ahead.popleft() if ahead else next(source_frames, None)

            warm: deque[SourceFrame] = deque(maxlen=warmup)
            while (frame := next_frame()) is not None:  # the warm-up frames of the first segment to do
                if not warm_pts or frame.pts > warm_pts[-1]:
                    ahead.append(frame)
                    break
                warm.append(frame)
            errors_before = 0
            with nullcontext() if self.cuda else torch_threads(self.cpu_threads):
                while (first := next_frame()) is not None:
                    done = work.frames_done
                    writer = VideoWriter(work.segment_path(len(work.segments)), video, options, name=work.target,
                                         background=not self.cuda)
                    try:
                        writer.start()
                        own, skip = [0], len(warm)
                        frames = self._segment_frames(first, next_frame, ahead, warm, own, seg_frames, lookahead)
                        batches = (Batch(frames=chunk) for chunk in _chunks(frames, batch_size))
                        report = None if progress is None else (
                            lambda n, total, done=done, skip=skip: progress(done + min(own[0], max(0, n - skip)), total))
                        compute, finish = self._stream(batches, _SegmentFront(writer, skip, own), video, report, stop)
                        timings["compute"] += compute
                        timings["finish"] += finish
                        writer.finish()
                    except BaseException:
                        writer.abort()
                        raise
                    timings["encode"] += writer.busy_seconds
                    work.add_segment({"start": done, "frames": own[0], "first_pts": first.pts,
                                      "warmup_pts": [f.pts for f in warm],
                                      "decode_errors": reader.decode_errors - errors_before,
                                      "pts_repaired": reader.pts_repaired},
                                     writer.packet_times)
                    errors_before = reader.decode_errors
            if not work.segments:
                raise InputError(f"no video frame could be decoded from {source}")
            work.mark_complete()
        finally:
            reader.close()
            timings["decode"] += reader.busy_seconds

    @staticmethod
    def _segment_frames(first: SourceFrame, next_frame: Callable[[], SourceFrame | None], ahead: deque,
                        warm: deque, own: list[int], seg_frames: int, lookahead: int) -> Iterator[SourceFrame]:
        """The frames one segment computes: its warm-up (`warm`), its own frames from `first` on
        (at most `seg_frames`, counted in `own[0]`; `warm` ends as the last of them), then up to
        `lookahead` frames after them, which go back to `ahead` to start the next segment."""
        yield from list(warm)
        frame: SourceFrame | None = first
        while frame is not None:
            own[0] += 1
            warm.append(frame)
            yield frame
            frame = next_frame() if own[0] < seg_frames else None
        tail: list[SourceFrame] = []
        while len(tail) < lookahead and (frame := next_frame()) is not None:
            tail.append(frame)
        ahead.extendleft(reversed(tail))
        yield from tail

    @torch.inference_mode()
    def _stream(self, reader: Iterable[Batch], writer: VideoWriter | _SegmentFront, video: VideoInfo,
                progress: ProgressCallback | None, stop: threading.Event | None = None) -> tuple[float, float]:
        """The compute stages; returns the busy seconds of the model stage and of the finishing stage.

        This thread computes L* and runs the model; a second thread (`_Finisher`) detects cuts,
        smooths, builds Cb/Cr and hands frames to the encoder, so on CPU those run on another
        core beside the model instead of after it, and on CUDA this thread never waits for the
        device to finish.
        """
        spec = video.color.yuv_spec
        render_hw = render_shape(video.height, video.width, self.render_size)
        finisher = _Finisher(self, writer, spec, video.expected_frames, progress)
        stage = StageThread(finisher.process, name="vidcolor-finish", setup=torch.inference_mode,
                            background=not self.cuda)
        busy = 0.0
        try:
            stage.start()
            for batch in reader:
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt
                start = time.perf_counter()
                work = _Work(batch.frames, batch.packets)
                if batch.frames:
                    y = self._upload_luma(batch.frames)
                    work.L_render, work.L_chroma = frame_lightness(y, render_hw, batch.frames[0].planes[1].shape, spec)
                    work.ab = self.predict_ab(work.L_render)
                busy += time.perf_counter() - start
                stage.put(work)
            stage.put(None)  # end of stream: the smoother's held-back frames
            stage.finish()
        except BaseException:
            stage.abort()
            raise
        return busy, stage.busy_seconds

    def _upload_luma(self, frames: list[SourceFrame]) -> torch.Tensor:
        """The batch's Y planes as one (B,1,H,W) float tensor on the device (code values / 255).

        Only Y is uploaded: the source's chroma is never used. On CUDA the planes are stacked
        into pinned memory and copied without blocking.
        """
        host = torch.empty((len(frames), 1, *frames[0].planes[0].shape), dtype=torch.uint8, pin_memory=self.cuda)
        np.stack([f.planes[0] for f in frames], out=host.numpy()[:, 0])
        return host.to(self.device, non_blocking=True).float().div_(255.0)

    def _download(self, x: torch.Tensor) -> np.ndarray:
        if not self.cuda:
            return x.numpy()
        host = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        host.copy_(x, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host.numpy()

    def _auto_batch_size(self, video: VideoInfo) -> int:
        """On CUDA, as many frames as half the free memory holds, measured with one frame; on CPU, at most
        CPU_BATCH_SIZE frames and CPU_BATCH_PIXELS pixels (8K: 4.7 GiB peak with 4 frames, 2.4 GiB with 1)."""
        if not self.cuda:  # full-size chroma maths take ~30 float bytes a pixel: fewer frames when they are huge
            return max(1, min(CPU_BATCH_SIZE, CPU_BATCH_PIXELS // (video.width * video.height)))
        h, w = render_shape(video.height, video.width, self.render_size)
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        with torch.inference_mode():
            self.predict_ab(torch.zeros(1, 1, h, w, device=self.device))
        per_frame = torch.cuda.max_memory_allocated(self.device) - before
        per_frame += 4 * 4 * video.width * video.height  # the frame's float planes and chroma maths
        free, _ = torch.cuda.mem_get_info(self.device)
        return int(max(1, min(MAX_BATCH_SIZE, CUDA_MEMORY_SHARE * free // per_frame)))
