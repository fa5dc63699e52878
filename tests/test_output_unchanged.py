"""The "output unchanged" guard: a fixed clip coloured by a fixed tiny model must decode to the same planes.

The checksums were recorded before the issue-13 restructuring (CPU torch 2.13.0, x86-64), so any
refactoring that changes a single output code value fails here. A different torch build or CPU may
round a float differently and legitimately move a pixel: re-record the constants only then, from the
code before the change under test, never to make a change pass.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vidcolor.checkpoint import save_checkpoint
from vidcolor.media import OutputOptions
from vidcolor.nets import build_generator, init_weights
from vidcolor.pipeline import Colorizer

TINY = {"num_downs": 5, "ngf": 8}
LOSSLESS = OutputOptions(crf=0, preset="ultrafast")  # the encoder adds no loss of its own to hide a change behind
# By torch's CPU kernel level: oneDNN's AVX2 and AVX512 kernels round differently. AVX512: recorded before
# issue 13 (Intel Xeon and AMD EPYC with AVX512 agreed); AVX2: recorded 2026-12-05 on an AMD EPYC without AVX512
# from the code of f8d31c6 (before that session's changes), which every AVX2 machine has failed on since.
EXPECTED_BY_CPU = {
    "AVX512": {"defaults": "e06363ce0f281d8a99d1e55ab440d1ead81ebabebd0d33395145590732392670",
               "window_guided_segments": "04ba33326fa7da29f24b8fbeccd284f1718b35e004e459e2d2e55da587a34e45"},
    "AVX2": {"defaults": "c1cb1885748d558c44430981d559e532f2b426cdca45de016c166d0c3410fb6b",
             "window_guided_segments": "d2e0da8b8cf58fbf03d9de45d9a874bcdd0ee704068509c348384b1e5b1e3409"},
}
CASES = ("defaults", "window_guided_segments")


def fixed_model(path: Path) -> Path:
    """A tiny U-Net from a fixed seed whose colour depends on the picture (gain 0.3)."""
    torch.manual_seed(1234)
    net = init_weights(build_generator("unet", TINY), gain=0.3)
    return save_checkpoint(path, net, "unet", TINY, meta={"purpose": "output-unchanged guard"})


def planes_sha256(path: Path) -> tuple[str, float]:
    """SHA-256 over every decoded frame's pts and Y, Cb, Cr planes (visible pixels only, in order), and the
    mean distance of Cb/Cr from neutral (128), so a gray output cannot pass for a coloured one."""
    digest, chroma = hashlib.sha256(), []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            digest.update(np.int64(frame.pts).tobytes())
            for k, plane in enumerate(frame.planes):
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :plane.width]
                digest.update(np.ascontiguousarray(rows).tobytes())
                if k:
                    chroma.append(np.abs(rows.astype(int) - 128).mean())
    return digest.hexdigest(), float(np.mean(chroma))


@pytest.fixture(scope="module")
def clip_and_model(tmp_path_factory, make_video) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("guard")
    clip = make_video(folder / "clip.mp4", width=160, height=96, frames=30, cuts=(12,), gray=False)
    return clip, fixed_model(folder / "model.pt")


@pytest.mark.parametrize("case", CASES)
def test_output_checksum_unchanged(tmp_path, clip_and_model, case):
    level = torch.backends.cpu.get_cpu_capability()
    if level not in EXPECTED_BY_CPU:
        pytest.skip(f"no checksum recorded for torch's {level} CPU kernels")
    clip, model = clip_and_model
    if case == "defaults":  # every Colorizer default (render size 256, flow smoothing), lossless encode
        colorizer, seconds = Colorizer(model, device="cpu", cpu_threads=1, engine="torch"), None
    else:  # the look-ahead smoother, guided upsampling, saturation and 10-frame segments with warm-up
        colorizer = Colorizer(model, device="cpu", cpu_threads=1, engine="torch", render_size=64, smoothing="window",
                              guided=True, saturation=1.5, batch_size=3)
        seconds = 10 / 24
    result = colorizer.run(clip, tmp_path / "out.mkv", LOSSLESS, segment_seconds=seconds)
    assert result.frames_out == 30
    checksum, chroma = planes_sha256(result.output)
    assert chroma > 3, chroma  # really coloured
    assert checksum == EXPECTED_BY_CPU[level][case]
