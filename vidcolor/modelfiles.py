"""The model's files, without torch: where the shipped model is, a checkpoint's int8 copy and its ONNX Runtime session.

`engine.OnnxEngine` runs it inside `run`; `quicklook` runs it for `vidcolor preview` without importing torch at
all (torch's import alone is ~2.4 s of a preview on 2 CPU cores). The copy lives beside the checkpoint
(`default.pt` -> `default.int8.onnx`) and its metadata records the SHA-256 of the checkpoint it was made from
and the size multiple the model's input is padded to (`vidcolor.train.quantize` writes both).
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ModelError

DEFAULT_MODEL_NAME = "default.pt"
INT8_SUFFIX = ".int8.onnx"
SOURCE_KEY = "vidcolor_source_sha256"  # which checkpoint file the copy was made from
MULTIPLE_KEY = "vidcolor_size_multiple"  # the network's input size multiple (its downsampling)
INPUT, OUTPUTS = "L", ("ab", "features")  # the graph's names (`vidcolor.train.quantize` exports them)
FAST_EXTRA = "pip install 'vidcolor[fast]'"


def default_model_path() -> Path:
    """The model shipped inside the package (vidcolor/weights/)."""
    return Path(str(resources.files("vidcolor") / "weights" / DEFAULT_MODEL_NAME))


def int8_path(model: Path) -> Path:
    """Where a checkpoint's int8 copy lives: beside it, `default.pt` -> `default.int8.onnx`."""
    return model.with_name(model.name.removesuffix(".pt") + INT8_SUFFIX)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def open_session(path: Path, source_sha256: str, threads: int) -> Any:
    """An ONNX Runtime session on the copy at `path`, checked to be made from the weights with `source_sha256`;
    `threads` intra-op threads that sleep rather than spin when idle, so that between batches the cores go to
    decoding and encoding (a 720p run 1.09x faster than spinning). Any failure is one ModelError line."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's own errors: any unreadable file is one line
        raise ModelError(f"{path.name} cannot be read by ONNX Runtime: {str(exc).splitlines()[0][:160]}") from exc
    if session.get_modelmeta().custom_metadata_map.get(SOURCE_KEY) != source_sha256:
        raise ModelError(f"{path.name} was made from other weights (run `vidcolor train quantize` again)")
    return session


def size_multiple(session: Any) -> int | None:
    """The input size multiple the copy records (None: made before it was recorded)."""
    value = session.get_modelmeta().custom_metadata_map.get(MULTIPLE_KEY)
    return int(value) if value and value.isdigit() else None
