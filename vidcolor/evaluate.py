"""`vidcolor eval`: score colorized videos against their colour references, and find scene cuts.

Two ways in:
- `evaluate_pair(pred, ref)`: a colorized file against its reference, frame by frame;
- `evaluate_colorize(ref, colorizer)`: gray the reference (its Y plane kept, chroma neutral,
  written losslessly to a temp file), colorize that file with `Colorizer.run` - exactly what
  `vidcolor run` does, smoothing and encoding included - and score the output against the
  reference.
Both decode with PyAV in batches and score with `scoring.score_video`, so memory stays flat
whatever the length. Frames are turned into 8-bit RGB with the reference's own matrix and
range (as `vidcolor info` reports them) for both videos. Given a `fd.Lite0Features`, they
also score fd_lite0 between the prediction's and the reference's frames (every `fd_every`-th).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import torch
from av.video.reformatter import ColorRange, VideoReformatter

from .errors import InputError
from .files import write_atomic
from .fd import FD_EVERY, FdPair, Lite0Features
from .media import (OutputOptions, RGB_EXACT, VideoReader, open_input, plane_arrays, probe, sws_colorspace,
                    tag_video_stream, to_planar)
from .controls import FLOW_MAX_SIDE
from .metrics import colorfulness_ratio, delta_cf
from .scoring import MismatchError, VideoScores, score_video
from .temporal import CutDetector
from .colorspec import YuvSpec

if TYPE_CHECKING:
    from .pipeline import Colorizer

BATCH = 8
METRIC_FIELDS = ("psnr", "ssim", "colorfulness", "colorfulness_ref", "cdc", "cdc_ref", "warp_error", "warp_error_ref",
                 "cdc_chroma", "cdc_chroma_ref", "warp_error_chroma", "warp_error_chroma_ref", "fd_lite0")


def _frames(path: Path) -> Iterator[av.VideoFrame]:
    with open_input(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from container.decode(stream)


def decode_rgb(path: str | Path, spec: YuvSpec | None = None, batch: int = BATCH) -> Iterator[torch.Tensor]:
    """Batches (T,3,H,W) uint8 RGB of a video, converted with `spec` (default: the file's own tags)."""
    path = Path(path)
    spec = spec or probe(path).video.color.yuv_spec
    reformatter = VideoReformatter()
    rng = ColorRange.JPEG if spec.full_range else ColorRange.MPEG
    chunk: list[np.ndarray] = []
    for frame in _frames(path):
        rgb = reformatter.reformat(frame, format="rgb24", src_colorspace=sws_colorspace(spec),
                                   src_color_range=rng, dst_color_range=ColorRange.JPEG, interpolation=RGB_EXACT)
        chunk.append(rgb.to_ndarray())
        if len(chunk) == batch:
            yield torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2)
            chunk = []
    if chunk:
        yield torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2)


def write_gray(source: str | Path, target: str | Path) -> Path:
    """The source with its chroma made neutral: Y code values kept, Cb = Cr = 128, colour tags,
    frame rate and timestamps kept, encoded losslessly (libx264 qp 0, yuv420p), no audio."""
    source, target = Path(source), Path(target)
    info = probe(source).video
    if info.width % 2 or info.height % 2:
        raise InputError(f"eval --colorize needs even frame sizes, {source} is {info.width}x{info.height}")
    reformatter = VideoReformatter()
    with open_input(source) as src, av.open(str(target), "w") as dst:
        in_stream = src.streams.video[0]
        in_stream.thread_type = "AUTO"
        out = dst.add_stream("libx264", rate=in_stream.average_rate or 25, options={"qp": "0", "preset": "ultrafast"})
        out.width, out.height, out.pix_fmt = info.width, info.height, "yuv420p"
        out.time_base = out.codec_context.time_base = in_stream.time_base
        tag_video_stream(out, info)
        last = None
        for frame in src.decode(in_stream):
            y = plane_arrays(to_planar(frame, "yuv420p", info.color.yuv_spec, reformatter))[0]  # Y code values kept
            chroma = np.full(info.height * info.width // 2, 128, np.uint8)
            gray = av.VideoFrame.from_ndarray(np.concatenate([y.reshape(-1), chroma]).reshape(-1, info.width),
                                              format="yuv420p")
            pts = frame.pts if frame.pts is not None and (last is None or frame.pts > last) else (
                0 if last is None else last + 1)
            gray.pts, gray.time_base, last = pts, in_stream.time_base, pts
            dst.mux(out.encode(gray))
        dst.mux(out.encode(None))
    return target


@dataclass
class EvalResult:
    name: str
    pred: str | None  # the scored file (None when colorized in a temp file)
    ref: str
    scores: VideoScores
    fps: float | None = None  # colorization speed (vidcolor run's frames / wall seconds), --colorize only
    options: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "pred": self.pred, "ref": self.ref, **asdict(self.scores), "fps": self.fps}


def packet_count(path: Path) -> int:
    """The video stream's frames counted from its packets, without decoding (for containers that do not say)."""
    with open_input(path) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def check_pair(pred: str | Path, ref: str | Path) -> None:
    """Before any scoring: a PRED that cannot match its REF frame for frame (size, frame rate, frame count, from
    the containers, or a packet count where they do not say) is one InputError at once."""
    pred, ref = Path(pred), Path(ref)
    a, b = probe(pred).video, probe(ref).video
    problems = []
    if (a.width, a.height) != (b.width, b.height):
        problems.append(f"size {a.width}x{a.height} against {b.width}x{b.height}")
    if a.fps and b.fps and abs(float(a.fps) / float(b.fps) - 1) > 1e-3:
        problems.append(f"frame rate {float(a.fps):.3f} against {float(b.fps):.3f}")
    frames = [v.frames or packet_count(p) for v, p in ((a, pred), (b, ref))]
    if frames[0] != frames[1]:
        problems.append(f"{frames[0]} frames against {frames[1]}")
    if problems:
        raise InputError(f"{pred} does not match its reference {ref}: {'; '.join(problems)}")


def evaluate_pair(pred: str | Path, ref: str | Path, flow_max_side: int | None = FLOW_MAX_SIDE,
                  fd: Lite0Features | None = None, fd_every: int = FD_EVERY) -> EvalResult:
    """Score a colorized video against its colour reference (same frame count and size).

    `fd`: also fd_lite0 between the two videos' frames, every `fd_every`-th (otherwise NaN).
    """
    pred, ref = Path(pred), Path(ref)
    check_pair(pred, ref)
    spec = probe(ref).video.color.yuv_spec
    pair = FdPair(fd, fd_every) if fd is not None else None
    try:
        scores = score_video(decode_rgb(pred, spec), decode_rgb(ref, spec), flow_max_side, pair)
    except MismatchError as e:
        raise InputError(f"{pred} does not match its reference {ref}: {e}") from e
    if scores.frames == 0:
        raise InputError(f"no frames decoded from {pred} / {ref}")
    return EvalResult(ref.name, str(pred), str(ref), scores)


def evaluate_colorize(ref: str | Path, colorizer: Colorizer, options: OutputOptions | None = None,
                      flow_max_side: int | None = FLOW_MAX_SIDE, keep: str | Path | None = None,
                      fd: Lite0Features | None = None, fd_every: int = FD_EVERY) -> EvalResult:
    """Gray `ref`, colorize it with `colorizer.run` (the `vidcolor run` path) and score the result.

    `keep`: also save the colorized video there (otherwise it lives in a temp folder).
    `fd`, `fd_every`: as `evaluate_pair`.
    """
    ref = Path(ref)
    options = options or OutputOptions()
    with tempfile.TemporaryDirectory(prefix="vidcolor-eval-") as tmp:
        gray = write_gray(ref, Path(tmp) / f"gray{ref.suffix if ref.suffix in ('.mp4', '.mkv', '.mov') else '.mkv'}")
        out = Path(keep) if keep else Path(tmp) / f"color{gray.suffix}"
        run = colorizer.run(gray, out, OutputOptions(codec=options.codec, crf=options.crf, preset=options.preset,
                                                     pix_fmt=options.pix_fmt, overwrite=True))
        result = evaluate_pair(out, ref, flow_max_side, fd, fd_every)
    result.pred = str(keep) if keep else None
    result.fps = run.fps
    return result


def mean_row(results: list[EvalResult]) -> dict[str, Any]:
    """Plain mean over videos of every metric (each video counts once, whatever its length);
    the colourfulness ratio and delta-CF are those of the mean colourfulness (so one near-gray
    reference cannot blow the ratio up). fd_lite0 is the mean of the per-video distances, not the
    distance of the pooled frames: no video's 1280x1280 feature sums are kept after it is scored."""
    row: dict[str, Any] = {"name": "mean", "frames": sum(r.scores.frames for r in results)}
    for key in METRIC_FIELDS:
        values = [getattr(r.scores, key) for r in results if not math.isnan(getattr(r.scores, key))]
        row[key] = sum(values) / len(values) if values else math.nan
    row["colorfulness_ratio"] = colorfulness_ratio(row["colorfulness"], row["colorfulness_ref"])
    row["delta_cf"] = delta_cf(row["colorfulness"], row["colorfulness_ref"])
    fps = [r.fps for r in results if r.fps]
    row["fps"] = sum(fps) / len(fps) if fps else None
    return row


def write_json(path: str | Path, results: list[EvalResult], options: dict[str, Any]) -> None:
    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    doc = {"options": options, "videos": [{k: clean(v) for k, v in r.row().items()} for r in results],
           "mean": {k: clean(v) for k, v in mean_row(results).items()}}
    write_atomic(Path(path), json.dumps(doc, indent=2) + "\n")


# -- scene cuts (vidcolor run --cuts-only) -----------------------------------------------------

def find_cuts(path: str | Path, render_size: int = 256, batch: int = BATCH) -> list[tuple[int, float]]:
    """(frame index, seconds from the first frame) of every cut `vidcolor run` would find:
    the same CutDetector on the same L at render size as the pipeline."""
    from .color import frame_lightness
    from .device import upload_luma
    from .geometry import render_shape

    path = Path(path)
    video = probe(path).video
    spec = video.color.yuv_spec
    size = render_shape(video.height, video.width, render_size)
    detector = CutDetector()
    cuts: list[tuple[int, float]] = []
    start: int | None = None
    index = 0
    reader = VideoReader(path, video, "yuv420p", batch)  # run's reader and default pix_fmt: the same L* path
    try:
        reader.start()
        for frames in reader:
            start = frames[0].pts if start is None else start
            y = upload_luma([f.planes[0] for f in frames], torch.device("cpu"), frames[0].bits)
            flags = detector.update(frame_lightness(y, size, frames[0].planes[1].shape, spec)[0]).tolist()
            cuts.extend((index + i, float((frames[i].pts - start) * video.time_base))
                        for i, flag in enumerate(flags) if flag)
            index += len(flags)
    finally:
        reader.close()
    return cuts
