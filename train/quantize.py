"""An int8 copy of a checkpoint for ONNX Runtime on the CPU (`vidcolor.engine`), calibrated on a pack's frames.

Static post-training quantization in ONNX Runtime's QDQ form: weights int8 per output channel, activations
uint8 from min/max over the calibration frames. The stem and the first three blocks (where L's fine steps
enter, at the highest resolutions) and the head (the ab it outputs) stay fp32: quantized, they made the
colours fainter (15 % on the shipped sample) for little time saved; 7-bit weights (`reduce_range`, against
overflow on CPUs without VNNI) moved them more than 8-bit ones (docs/benchmarks.md). Calibration uses the
pack's training split, so that the validation split stays free to check the copy.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from vidcolor.checkpoint import load_generator
from vidcolor.color import frame_lightness, normalize_l, rgb_luma
from vidcolor.colorspec import rgb_frame_spec
from vidcolor.controls import RENDER_SIZE
from vidcolor.modelfiles import INPUT, MULTIPLE_KEY, OUTPUTS, SOURCE_KEY, file_sha256, int8_path
from vidcolor.errors import VidcolorError
from vidcolor.files import TempTarget
from vidcolor.geometry import pad_to_multiple, render_shape
from vidcolor.nets import WithFeatures

from .evaluate import pack_frames

OPSET = 17
FP32_NODES = ("_conv_stem", "_blocks.0/", "_blocks.1/", "_blocks.2/", "/head/")  # convolutions kept in fp32


def model_input(rgb: torch.Tensor, render_size: int, multiple: int) -> torch.Tensor:
    """What `Colorizer` feeds the model for this RGB frame: its luma's L* at render size, normalized, padded."""
    spec = rgb_frame_spec(rgb.shape[-2])
    y = rgb_luma(rgb, spec)
    size = tuple(y.shape[-2:])
    L_render, _ = frame_lightness(y, render_shape(*size, render_size), size, spec)
    return pad_to_multiple(normalize_l(L_render), multiple)


@contextmanager
def working_folder(folder: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def export_onnx(net: torch.nn.Module, path: Path, sample: torch.Tensor) -> None:
    """The generator with its features output (`nets.WithFeatures`), any batch and size."""
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(WithFeatures(net).eval(), (sample,), str(path), input_names=[INPUT], output_names=list(OUTPUTS),
                      dynamic_axes={INPUT: axes, OUTPUTS[0]: axes, OUTPUTS[1]: {0: "batch", 2: "fh", 3: "fw"}},
                      opset_version=OPSET, dynamo=False)


def quantize_model(model: Path, pack: Path, out: Path | None = None, frames: int = 256,
                   render_size: int = RENDER_SIZE) -> tuple[Path, dict[str, Any]]:
    """Write `model`'s int8 copy (default: beside it, `modelfiles.int8_path`) calibrated on `frames` frames of
    `pack`'s training split; returns its path and what its metadata records."""
    try:
        import onnx
        from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                              quantize_static)
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise VidcolorError(f"quantizing needs ONNX and ONNX Runtime: pip install 'vidcolor[train]' ({exc.name} "
                            "is missing)") from exc
    out = Path(out) if out is not None else int8_path(Path(model))
    net, info = load_generator(model)
    picked = pack_frames(pack, split="train", limit=frames)
    if not picked:
        raise VidcolorError(f"{pack}: no training frames to calibrate on")
    with torch.no_grad():
        inputs = [model_input(rgb, render_size, net.size_multiple).numpy() for _, rgb in picked]

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.items: Iterator = iter(inputs)

        def get_next(self) -> dict | None:
            x = next(self.items, None)
            return None if x is None else {INPUT: x}

    meta = {SOURCE_KEY: file_sha256(model), MULTIPLE_KEY: str(net.size_multiple),
            "vidcolor_arch": str(info["arch"]),
            "vidcolor_calibration": f"{len(inputs)} frames of {Path(pack).name}'s training split at {render_size} px"}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, prepared, int8 = (Path(tmp) / n for n in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice: the new one needs onnxscript
            warnings.simplefilter("ignore")
            export_onnx(net, fp32, torch.from_numpy(inputs[0]))
        with working_folder(Path(tmp)):  # a failed symbolic shape inference leaves its files in the working folder
            try:
                quant_pre_process(str(fp32), str(prepared))
            except Exception:  # noqa: BLE001 - symbolic shape inference fails on some graphs; ONNX's own then
                quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared))
        keep = [n.name for n in graph.graph.node if n.op_type == "Conv" and any(p in n.name for p in FP32_NODES)]
        quantize_static(str(prepared), str(int8), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=False, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep)
        result = onnx.load(str(int8))
        onnx.helper.set_model_props(result, meta)
        with TempTarget(out) as part:  # `run` never sees half a copy
            onnx.save(result, str(part))
    return out, meta
