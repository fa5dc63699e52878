"""`Colorizer`: the one object the CLI, evaluation and benchmarks call.

`run()` streams a file through three overlapping stages: the decode thread (media.reader),
the compute stage here on the main thread, and the encode thread (media.writer). Only the
chroma is computed: the source's Y plane goes to the encoder untouched, so brightness is
exactly the input's, and only 8-bit planes cross between host and device.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import default_model_path, load_generator
from .color import denormalize_ab, join_lab, lab_to_rgb, normalize_l, rgb_to_lab
from .errors import DeviceError, InputError, ModelError
from .media import (
    OutputFrame,
    OutputOptions,
    SourceFrame,
    VideoInfo,
    VideoReader,
    VideoWriter,
    check_options,
    check_paths,
    output_name,
    probe,
)
from .temporal import CutDetector, make_smoother
from .yuv import YuvSpec, rgb_to_yuv, to_uint8, yuv_to_rgb

CPU_BATCH_SIZE = 4  # batching beyond this buys nothing on CPU and only holds more frames
MAX_BATCH_SIZE = 64
CUDA_MEMORY_SHARE = 0.5  # of the free GPU memory, for the automatic batch size
IO_THREADS = 2  # cores left to the decode and encode threads by default

ProgressCallback = Callable[[int, int | None], None]  # (frames written, frames expected)


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
    """Antialiased bilinear resize of a (B,C,H,W) float batch; a no-op at the same size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad right and bottom up to a multiple of `multiple` (reflect where the image is big enough)."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not ph and not pw:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")


def yuv_luminance(planes: list[torch.Tensor], size: tuple[int, int], spec: YuvSpec) -> torch.Tensor:
    """L* at `size` from (B,1,*,*) Y, Cb, Cr planes (code values / 255).

    The planes are resized before the conversion (it is affine, so this equals resizing
    RGB), so the costly Lab maths never runs at full resolution.
    """
    yuv = torch.cat([resize(p, size) for p in planes], dim=1)
    return rgb_to_lab(yuv_to_rgb(yuv, spec))[:, :1]


def chroma_from_lab(L: torch.Tensor, ab: torch.Tensor, spec: YuvSpec) -> torch.Tensor:
    """Cb, Cr planes (code values / 255) for L (B,1,h,w) and ab at any size, with the source's matrix."""
    return rgb_to_yuv(lab_to_rgb(join_lab(L, resize(ab, tuple(L.shape[-2:])))), spec)[:, 1:]


class Colorizer:
    """A loaded generator plus the options of one colorization job.

    `model` None means the packaged default model. `batch_size` None picks one per video
    (fixed on CPU, from free memory on CUDA). `smoothing`/`strength` select the temporal
    smoother (`temporal.SMOOTHERS`). `cpu_threads` is torch's intra-op thread count during
    `run()` on CPU; None leaves IO_THREADS cores to decoding and encoding, because OpenMP
    threads that wait for busy cores slow every tensor op down (on 2 cores: 2.4 fps with 2
    threads against 18 fps with 1, on chaplin.mp4 with a tiny model).
    """

    def __init__(self, model: str | Path | None = None, device: str = "auto", render_size: int = 256,
                 batch_size: int | None = None, smoothing: str = "ema", strength: float = 0.5,
                 cpu_threads: int | None = None):
        self.device = resolve_device(device)
        path = Path(model) if model is not None else default_model_path()
        if model is None and not path.is_file():
            raise ModelError(f"no default model installed ({path}); pass one with --model")
        self.net, self.model_info = load_generator(path, self.device)
        self.model_path = path
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            self.net.to(memory_format=torch.channels_last)
        self.render_size = render_size
        self.batch_size = batch_size
        self.smoothing = smoothing
        self.strength = strength
        self.cpu_threads = cpu_threads or max(1, (os.cpu_count() or 1) - IO_THREADS)
        make_smoother(smoothing, strength)  # fail on bad options now, not mid-run

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
            smoother = make_smoother(self.smoothing, self.strength)
            parts = [smoother.push(ab, L_render, CutDetector().update(L_render)), smoother.flush()]
            ab = torch.cat([p.to(ab) for p in parts if len(p)])
        return lab_to_rgb(join_lab(L, resize(ab, tuple(L.shape[-2:])))).to(rgb.device)

    def predict_ab(self, L: torch.Tensor) -> torch.Tensor:
        """(B,1,h,w) L in [0,100] -> (B,2,h,w) ab in Lab units; pads to the model's multiple and crops back."""
        h, w = L.shape[-2:]
        x = pad_to_multiple(normalize_l(L.float()), self.net.size_multiple)
        if self.cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.float16) if self.cuda else nullcontext():
            out = self.net(x)
        return denormalize_ab(out[..., :h, :w])

    # -- the file API ---------------------------------------------------------------------

    def run(self, input: str | Path, output: str | Path | None = None, options: OutputOptions | None = None,
            progress: ProgressCallback | None = None) -> RunResult:
        """Colorize one video file into `output` (default `<name>_color.<ext>` beside it)."""
        options = options or OutputOptions()
        source = Path(input)
        target = Path(output) if output is not None else source.with_name(output_name(source))
        check_options(options)
        info = probe(source)
        check_paths(source, target, options.overwrite)
        start = time.perf_counter()
        batch_size = self.batch_size or self._auto_batch_size(info.video)
        reader = VideoReader(source, info.video, options.pix_fmt, batch_size)
        try:
            writer = VideoWriter(target, info.video, options, reader.copied_streams)
            try:
                reader.start()
                writer.start()
                with nullcontext() if self.cuda else torch_threads(self.cpu_threads):
                    compute = self._stream(reader, writer, info.video, progress)
                if reader.frames_decoded == 0:
                    raise InputError(f"no video frame could be decoded from {source}")
                writer.finish()
            except BaseException:
                writer.abort()
                raise
        finally:
            reader.close()
        return RunResult(
            input=source, output=target, frames_in=reader.frames_decoded, frames_out=writer.frames_written,
            frames_expected=info.video.expected_frames, frames_estimated=not info.video.frames,
            decode_errors=reader.decode_errors,
            seconds=time.perf_counter() - start, warnings=writer.warnings,
            timings={"decode": reader.busy_seconds, "compute": compute, "encode": writer.busy_seconds},
        )

    @torch.inference_mode()
    def _stream(self, reader: VideoReader, writer: VideoWriter, video: VideoInfo,
                progress: ProgressCallback | None) -> float:
        """The compute stage; returns its busy seconds."""
        spec = video.color.yuv_spec
        render_hw = render_shape(video.height, video.width, self.render_size)
        detector, smoother = CutDetector(), make_smoother(self.smoothing, self.strength)
        pending: deque[tuple[SourceFrame, torch.Tensor]] = deque()  # frames the smoother still holds
        busy, written = 0.0, 0
        for batch in reader:
            start = time.perf_counter()
            ready: list[OutputFrame] = []
            if batch.frames:
                planes = self._upload(batch.frames)
                L_render = yuv_luminance(planes, render_hw, spec)
                L_chroma = yuv_luminance(planes, tuple(planes[1].shape[-2:]), spec)
                pending.extend(zip(batch.frames, L_chroma))
                ab = smoother.push(self.predict_ab(L_render), L_render, detector.update(L_render))
                ready = self._output_frames(ab, pending, spec)
            busy += time.perf_counter() - start
            writer.write(ready, batch.packets)
            written += len(ready)
            if progress:
                progress(written, video.expected_frames)
        start = time.perf_counter()
        ready = self._output_frames(smoother.flush(), pending, spec)
        writer.write(ready)
        if progress and ready:
            progress(written + len(ready), video.expected_frames)
        return busy + time.perf_counter() - start

    def _output_frames(self, ab: torch.Tensor, pending: deque, spec: YuvSpec) -> list[OutputFrame]:
        """Join the `len(ab)` oldest pending frames with their smoothed ab: source Y, new Cb/Cr."""
        if not len(ab):
            return []
        frames, L = zip(*(pending.popleft() for _ in range(len(ab))))
        chroma = self._download(to_uint8(chroma_from_lab(torch.stack(L), ab, spec)))
        return [OutputFrame(f.pts, f.duration, (f.planes[0], c[0], c[1])) for f, c in zip(frames, chroma)]

    def _upload(self, frames: list[SourceFrame]) -> list[torch.Tensor]:
        """Stack the batch's planes (into pinned memory on CUDA) and copy them to the device."""
        planes = []
        for i in range(3):
            host = torch.empty((len(frames), 1, *frames[0].planes[i].shape), dtype=torch.uint8, pin_memory=self.cuda)
            np.stack([f.planes[i] for f in frames], out=host.numpy()[:, 0])
            planes.append(host.to(self.device, non_blocking=True).float().div_(255.0))
        return planes

    def _download(self, x: torch.Tensor) -> np.ndarray:
        if not self.cuda:
            return x.numpy()
        host = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        host.copy_(x, non_blocking=True)
        torch.cuda.current_stream(self.device).synchronize()
        return host.numpy()

    def _auto_batch_size(self, video: VideoInfo) -> int:
        """On CUDA, as many frames as half the free memory holds, measured with one frame."""
        if not self.cuda:
            return CPU_BATCH_SIZE
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
