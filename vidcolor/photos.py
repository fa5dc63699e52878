"""A photo coloured into an image of the same format, size and bit depth (`media.still`): the still branch of
`Colorizer.run`, through the same `Colorizer.colorize` path as a video's frames."""

from __future__ import annotations

import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .media import check_paths, check_still_target, metadata_note, output_dtype, read_still, write_still
from .result import RunResult


def colour_photo(colorize: Callable[[torch.Tensor], torch.Tensor], threads: AbstractContextManager,
                 source: Path, target: Path, overwrite: bool = False,
                 progress: Callable[[int, int | None], None] | None = None,
                 stop: threading.Event | None = None) -> RunResult:
    """Colorize a photo by `colorize` (`Colorizer.colorize`, inside `threads`) at the input's bit depth where
    the target's format holds it. References apply as to a video's frames; a keyframe's image is a reference
    here (no shot to carry it through)."""
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt
    check_still_target(source, target)
    check_paths(source, target, overwrite)
    start = time.perf_counter()
    still = read_still(source)
    rgb = torch.from_numpy(still.rgb).permute(2, 0, 1)[None]
    with threads:
        out = colorize(rgb).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
    dtype = output_dtype(still, target)
    write_still(target, out, dtype, still.alpha)
    warnings = [note] if (note := metadata_note(still.metadata)) else []
    if np.dtype(dtype).itemsize < np.dtype(still.dtype).itemsize:
        warnings.append(f"written {8 * np.dtype(dtype).itemsize}-bit: {target.suffix} holds no "
                        f"{still.bits}-bit samples (use .png or .tif)")
    if progress is not None:
        progress(1, 1)
    return RunResult(input=source, output=target, frames_out=1, frames_expected=1, decode_errors=0,
                     seconds=time.perf_counter() - start, warnings=warnings)
