"""What the paint page shows and does, without the web: one film, its shots, any frame gray or coloured as `run`
colours it, a frame re-coloured with painted hints, and the hints folder.

Frames are found by number (0 is the first) and reached by a seek (`preview.frame_at`), so any frame of a long
film is a fraction of a second away. Shots come from `run`'s own cut detector, in a background scan of the whole
film that the page polls. The model runs one request at a time (`lock`): on 2 cores two at once would only
make both slow.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..controls import PIX_FMT
from ..errors import InputError
from ..hintfolder import HintFolder
from ..hints import hint_from_image, hinted_frame
from ..keyframes import Carried, CarriedStack
from ..media import Frame, VideoInfo, VideoReader, probe
from ..preview import frame_at, frame_rgb
from ..references import When

if TYPE_CHECKING:
    from ..pipeline import Colorizer

CANVAS_LONG_SIDE = 960  # px: the long side of the frame on the page and of the hint images it saves
THUMB_WIDTH = 160  # px of a shot's thumbnail in the film strip
JPEG_QUALITY = 90
FRAME_CACHE = 8  # decoded frames kept, so gray, colour and preview of one frame decode it once


@dataclass(frozen=True)
class Shot:
    frame: int
    seconds: float
    thumb: bytes  # JPEG


def canvas_size(video: VideoInfo) -> tuple[int, int]:
    """(width, height) of the frame as shown (sample aspect ratio applied), long side at most `CANVAS_LONG_SIDE`."""
    sar = float(video.sample_aspect_ratio) if video.sample_aspect_ratio else 1.0
    width, height = video.width * sar, float(video.height)
    scale = min(1.0, CANVAS_LONG_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_jpeg(rgb: np.ndarray, size: tuple[int, int] | None = None) -> bytes:
    import cv2

    if size is not None and (rgb.shape[1], rgb.shape[0]) != size:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise InputError("a frame could not be encoded as JPEG")
    return data.tobytes()


class PaintSession:
    """One film, the `Colorizer` with the options `run` would get, and the folder the hints go to."""

    def __init__(self, film: Path, colorizer: Colorizer, folder: HintFolder, pix_fmt: str = PIX_FMT):
        self.film, self.colorizer, self.folder, self.pix_fmt = film, colorizer, folder, pix_fmt
        self.video = probe(film).video
        self.spec = self.video.color.yuv_spec
        first = frame_at(film, self.video, pix_fmt, None)
        if first is None:
            raise InputError(f"no video frame could be decoded from {film}")
        self.first_pts = first.pts
        self.fps: Fraction | None = self.video.fps
        self.frame_count = self.video.expected_frames or 1
        self.size = canvas_size(self.video)
        self.lock = threading.Lock()
        self.shots: list[Shot] = []
        self.scanning = False
        self.scan_error: str | None = None
        self._frames: OrderedDict[int, Frame] = OrderedDict()
        self._carried: dict | None = None

    # -- the film ------------------------------------------------------------------------------

    def start_scan(self) -> threading.Thread:
        """Find the shots in the background; `shots` grows as the scan goes, `scanning` says when it is over."""
        self.scanning = True
        thread = threading.Thread(target=self._scan, name="vidcolor-paint-scan", daemon=True)
        thread.start()
        return thread

    def _scan(self) -> None:
        import torch

        from ..color import luma_lightness
        from ..device import upload_luma
        from ..geometry import render_shape
        from ..temporal import CutDetector

        render_hw = render_shape(self.video.height, self.video.width, self.colorizer.render_size)
        detector, index = CutDetector(), 0
        reader = VideoReader(self.film, self.video, self.pix_fmt, batch_size=8)
        try:
            reader.start()
            with torch.inference_mode():
                for batch in reader:
                    y = upload_luma([f.planes[0] for f in batch], torch.device("cpu"), batch[0].bits)
                    cuts = detector.update(luma_lightness(y, render_hw, self.spec)).tolist()
                    for frame, cut in zip(batch, cuts):
                        if index == 0 or cut:
                            self.shots.append(Shot(index, self.seconds_of(index), self._thumb(frame)))
                        index += 1
            self.frame_count = max(index, 1)
        except Exception as exc:  # the page says so; frames stay reachable by the slider
            self.scan_error = f"{exc.__class__.__name__}: {exc}"
        finally:
            reader.close()
            self.scanning = False

    def _thumb(self, frame: Frame) -> bytes:
        width, height = self.size
        return encode_jpeg(frame_rgb(frame, self.spec, gray=True), (THUMB_WIDTH, max(1, round(THUMB_WIDTH * height / width))))

    def seconds_of(self, index: int) -> float:
        return When(str(index), frame=index).time(self.fps)

    def describe(self) -> dict[str, Any]:
        """What the page needs to lay itself out (no paths: the film by name only)."""
        return {"film": self.film.name, "frames": self.frame_count, "fps": float(self.fps) if self.fps else None,
                "width": self.size[0], "height": self.size[1], "scanning": self.scanning, "scan_error": self.scan_error,
                "shots": [{"frame": s.frame, "seconds": s.seconds} for s in self.shots],
                "hints": self.hints(), "command": self.command()}

    def command(self) -> str:
        import shlex

        return f"vidcolor run {shlex.quote(str(self.film))} --hints-dir {shlex.quote(str(self.folder.folder))}"

    def check_index(self, index: int) -> int:
        if not 0 <= index < self.frame_count:
            raise InputError(f"frame {index} is not in the film (0 to {self.frame_count - 1})")
        return index

    def frame(self, index: int) -> Frame:
        """The frame at `index` (a seek, then a decode forward); the last one if the count was an estimate."""
        self.check_index(index)
        if index in self._frames:
            self._frames.move_to_end(index)
            return self._frames[index]
        target = self.first_pts + round(self.seconds_of(index) / self.video.time_base)
        frame = frame_at(self.film, self.video, self.pix_fmt, target)
        if frame is None:
            raise InputError(f"frame {index} could not be decoded")
        self._frames[index] = frame
        while len(self._frames) > FRAME_CACHE:
            self._frames.popitem(last=False)
        return frame

    # -- pictures --------------------------------------------------------------------------------

    def gray_jpeg(self, index: int) -> bytes:
        with self.lock:
            return encode_jpeg(frame_rgb(self.frame(index), self.spec, gray=True), self.size)

    def colour_jpeg(self, index: int) -> bytes:
        """The frame as `run` colours it alone (its own keyframes and references; no smoothing)."""
        with self.lock:
            frame = self.frame(index)
            [coloured] = self.colorizer.colour_frames([frame], self.video, self.carried())
            return encode_jpeg(frame_rgb(coloured, self.spec), self.size)

    def preview_jpeg(self, index: int, png: bytes) -> bytes:
        """The frame coloured with the hints painted on it (an RGBA PNG of the frame), as `run --hints` would."""
        import torch

        from ..device import upload_luma
        from ..yuv import to_uint8

        hint = self.decode_hint(index, png)
        with self.lock:
            frame = self.frame(index)
            with torch.inference_mode():
                y = upload_luma([frame.planes[0]], torch.device("cpu"), frame.bits)
                colour, weight = hinted_frame(y, hint, self.video)
            carried = dict(self.carried())
            own = Carried(to_uint8(colour), weight.half())
            base = carried.get(frame.pts)
            if base is None or not (isinstance(base, Carried) and base.exact):
                carried[frame.pts] = CarriedStack(([base] if base is not None else []) + [own])
            [coloured] = self.colorizer.colour_frames([frame], self.video, carried)
            return encode_jpeg(frame_rgb(coloured, self.spec), self.size)

    def carried(self) -> dict:
        """`run`'s keyframes and hints given on the command line, carried through their shots (once)."""
        if self._carried is None:
            self._carried = self.colorizer.user_tracks(self.film, self.video, self.pix_fmt)
        return self._carried

    def shot_thumb(self, number: int) -> bytes:
        if not 0 <= number < len(self.shots):
            raise InputError(f"shot {number} is not in the film (0 to {len(self.shots) - 1})")
        return self.shots[number].thumb

    # -- hints -----------------------------------------------------------------------------------

    def decode_hint(self, index: int, png: bytes):
        """The page's RGBA PNG of frame `index` as a checked `Hint` (the checks of `--hints`)."""
        import cv2

        from ..keyframes import check_aspect

        self.check_index(index)
        img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED) if png else None
        hint = hint_from_image(img, When(str(index), frame=index), Path(f"(painted frame {index})"), "")
        check_aspect(hint.aspect, hint.mask.shape, self.video, f"hint {index}", "(painted)")
        return hint

    def save_hint(self, index: int, png: bytes) -> dict[str, Any]:
        self.decode_hint(index, png)  # what `run --hints-dir` would refuse is refused now
        entry = self.folder.save(index, self.seconds_of(index), png)
        return entry.__dict__

    def remove_hint(self, index: int) -> bool:
        return self.folder.remove(self.check_index(index))

    def hint_png(self, index: int) -> bytes:
        path = self.folder.image_path(self.check_index(index))
        if not any(e.frame == index for e in self.folder.entries()) or not path.is_file():
            raise InputError(f"frame {index} has no saved hints")
        return path.read_bytes()

    def hints(self) -> list[dict[str, Any]]:
        return [e.__dict__ for e in self.folder.entries()]
