"""`vidcolor preview` without torch: the int8 copy in ONNX Runtime, the colour maths in numpy and OpenCV.

Importing torch is ~2.4 s of a preview on 2 CPU cores. When a sheet needs only the model (no references,
keyframes, hints, people or guided upsampling) and the int8 copy runs here (`engine`'s "auto" would take it:
ONNX Runtime installed, a copy of these very weights, a CPU), its frames are coloured by `run`'s steps for a
lone frame, in numpy: L* of the luma at chroma and render size (`colorspec.lightness_curve` and
`geometry.resize_plane`, the pipeline's own definitions: the model's input equals torch's to float rounding), the
model, ab times the saturation, upsampled to chroma size, Cb/Cr from L*a*b* with the film's matrix (OpenCV's
L*a*b* -> RGB with `lab.lab_to_rgb`'s clamp: the same codes to 1), the luma kept. The int8 model's output moves by
a few ab units where its input moves by float rounding, so the frames agree with the torch path's to a fraction
of a code on average, not code for code (tests/test_preview.py). Otherwise `preview` colours through `Colorizer`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .colorspec import AB_SCALE, L_SCALE, YuvSpec, code_scale, gray_of_luma, lightness_curve, yuv_matrix
from .controls import DEFAULT_SATURATION, DEVICE, ENGINE, RENDER_SIZE
from .errors import ModelError
from .geometry import padding, render_shape, resize_plane
from .machine import cpu_batch_size, gpu_possible, model_threads
from .media import Frame, VideoInfo
from .modelfiles import INPUT, OUTPUTS, default_model_path, file_sha256, int8_path, open_session, size_multiple

NEEDS_TORCH = ("references", "keyframes", "hints", "people", "guided")  # `Colorizer` arguments only torch's path has


def gray_lightness(y: np.ndarray, spec: YuvSpec) -> np.ndarray:
    """L* of a Y' plane (code values / 255) as if its chroma were neutral (`color.luma_lightness`)."""
    offset, scale = gray_of_luma(spec)
    return lightness_curve(np.clip((y - offset) * scale, 0.0, 1.0).astype(np.float32), np.where)


def lightness(y: np.ndarray, render_hw: tuple[int, int], chroma_hw: tuple[int, int], spec: YuvSpec
              ) -> tuple[np.ndarray, np.ndarray]:
    """L* at render size (the model's input) and at chroma size, as `color.frame_lightness`."""
    y_chroma = resize_plane(y, chroma_hw)
    fits = render_hw[0] <= chroma_hw[0] and render_hw[1] <= chroma_hw[1]
    return gray_lightness(resize_plane(y_chroma if fits else y, render_hw), spec), gray_lightness(y_chroma, spec)


def pad(x: np.ndarray, multiple: int) -> np.ndarray:
    """`geometry.pad_to_multiple` of one plane."""
    ph, pw, reflect = padding(*x.shape, multiple)
    return np.pad(x, ((0, ph), (0, pw)), mode="reflect" if reflect else "edge") if ph or pw else x


def chroma_codes(L: np.ndarray, ab: np.ndarray, spec: YuvSpec, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Cb, Cr code planes of `bits` for L* (h,w) and ab (2,h',w') upsampled to it (`finish.chroma_from_lab`)."""
    a, b = (resize_plane(c, L.shape) for c in ab)
    b = np.minimum(b, 200.0 * (L + 16.0) / 116.0)  # `lab.lab_to_rgb` clamps f(Z) at 0; OpenCV does not
    rgb = np.clip(cv2.cvtColor(cv2.merge([L, a, b]).astype(np.float32), cv2.COLOR_Lab2RGB), 0.0, 1.0)
    matrix, offset = yuv_matrix(spec)
    cbcr = cv2.transform(rgb, np.hstack([matrix[1:], offset[1:, None]]))
    codes = np.clip(np.rint(cbcr * code_scale(bits)), 0, (1 << bits) - 1).astype(np.uint8 if bits == 8 else np.uint16)
    return codes[..., 0], codes[..., 1]


class QuickLook:
    """Frames coloured alone by the int8 copy, for a preview sheet (`preview.FrameColourer`)."""

    def __init__(self, session: Any, multiple: int, render_size: int, saturation: float):
        self.session, self.multiple = session, multiple
        self.render_size, self.saturation = render_size, saturation

    def __call__(self, source: Path, video: VideoInfo, frames: list[Frame], pix_fmt: str) -> list[Frame]:
        spec = video.color.yuv_spec
        render_hw = render_shape(video.height, video.width, self.render_size)
        batch = cpu_batch_size(video.width, video.height)
        done = []
        for start in range(0, len(frames), batch):
            chunk = frames[start:start + batch]
            L = [lightness(f.planes[0].astype(np.float32) / code_scale(f.bits), render_hw, f.planes[1].shape, spec)
                 for f in chunk]
            x = np.stack([pad(render / L_SCALE - 1.0, self.multiple) for render, _ in L])[:, None]
            ab = self.session.run([OUTPUTS[0]], {INPUT: x})[0][..., :render_hw[0], :render_hw[1]]
            ab = ab * (AB_SCALE * self.saturation)
            done += [replace(f, planes=(f.planes[0], *chroma_codes(Lc, c, spec, f.bits)))
                     for f, (_, Lc), c in zip(chunk, L, ab)]
        return done


def quick_look(colorizer_args: dict[str, Any]) -> QuickLook | None:
    """A QuickLook for these `Colorizer` arguments, or None where the preview must go through torch: options
    only it has, a device that is or may be a GPU, --engine torch, no usable int8 copy (`Colorizer` then says why
    or falls back, as `run` does)."""
    args = colorizer_args
    if any(args.get(name) for name in NEEDS_TORCH) or args.get("engine", ENGINE) == "torch":
        return None
    device = args.get("device", DEVICE)
    if not (device == "cpu" or (device == "auto" and not gpu_possible())):
        return None
    model = Path(args["model"]) if args.get("model") is not None else default_model_path()
    copy = int8_path(model)
    if not (model.is_file() and copy.is_file()):
        return None
    try:  # ImportError: no `fast` extra
        session = open_session(copy, file_sha256(model), args.get("cpu_threads") or model_threads())
    except (ImportError, ModelError):
        return None
    multiple = size_multiple(session)
    if multiple is None:
        return None
    return QuickLook(session, multiple, args.get("render_size", RENDER_SIZE),
                     args.get("saturation", DEFAULT_SATURATION))
