"""Atomic file writes: the one temp-file-and-rename helper for every file vidcolor writes, from a resume
manifest to the output video, so that a reader (or the user) sees the old file or the complete new one,
never a part."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType


class TempTarget:
    """A hidden temp file beside `target` (same filesystem, so the rename is atomic) that becomes `target`
    only by `commit()`; `discard()` removes it. As a context manager it yields the temp path, commits on
    success and discards on any error. `temp`: a name of the caller's (the muxer needs the suffix)."""

    def __init__(self, target: Path, temp: Path | None = None):
        self.target = Path(target)
        self.temp = temp or self.target.with_name(f".{self.target.name}.tmp")

    def commit(self) -> None:
        try:
            os.replace(self.temp, self.target)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.temp

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_atomic(path: Path, text: str, durable: bool = False) -> None:
    """Write `text` to `path` through a `TempTarget`. `durable`: fsync before the rename, so a crash cannot
    leave an empty file in place (the resume manifest)."""
    with TempTarget(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
