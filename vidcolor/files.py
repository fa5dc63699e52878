"""Atomic file writes: the one temp-file-and-rename helper for every small file vidcolor writes."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str, durable: bool = False) -> None:
    """Write `text` to a hidden temp file beside `path` (same filesystem), then rename it over `path`, so
    a reader sees the old file or the new one, never a part. `durable`: fsync before the rename, so a
    crash cannot leave an empty file in place (the resume manifest). The temp file goes on failure."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
