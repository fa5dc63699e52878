"""A folder of colour hints, as `vidcolor paint` saves them and `run --hints-dir` reads them: one RGBA image per
hinted frame (`frame_000120.png`) and `hints.json`, which names the film and each hint's frame, time and image.

File names are built from frame numbers only, so nothing a page sends can name a path. Writes go to a
temporary name in the folder, renamed when complete.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, OutputError

INDEX_NAME = "hints.json"
HINTS_SUFFIX = "_hints"  # the default folder beside the film: <stem>_hints/


def default_folder(film: Path) -> Path:
    return film.with_name(f"{film.stem}{HINTS_SUFFIX}")


def image_name(frame: int) -> str:
    if frame < 0:
        raise ValueError(f"frame number must be 0 or more, got {frame}")
    return f"frame_{frame:06d}.png"


@dataclass(frozen=True)
class HintEntry:
    frame: int
    seconds: float
    image: str

    def spec(self, folder: Path) -> str:
        """As `--hints WHEN=IMAGE` takes it."""
        return f"{self.frame}={folder / self.image}"


class HintFolder:
    """The hints of one film in `folder`; the folder is made at the first save, never before."""

    def __init__(self, folder: Path, film: str):
        self.folder = folder
        self.film = film

    @property
    def index_path(self) -> Path:
        return self.folder / INDEX_NAME

    def entries(self) -> list[HintEntry]:
        return read_index(self.folder)[1] if self.index_path.is_file() else []

    def image_path(self, frame: int) -> Path:
        return self.folder / image_name(frame)

    def save(self, frame: int, seconds: float, png: bytes) -> HintEntry:
        """Write the frame's hint image (replacing one saved before) and list it in the index."""
        entry = HintEntry(frame, round(seconds, 6), image_name(frame))
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomic(self.folder / entry.image, png)
            kept = [e for e in self.entries() if e.frame != frame]
            self._write_index(sorted([*kept, entry], key=lambda e: e.frame))
        except OSError as exc:
            raise OutputError(f"cannot save hints in {self.folder}: {exc.strerror or exc}") from None
        return entry

    def remove(self, frame: int) -> bool:
        """Drop the frame's hints (image and index entry); False when it had none."""
        entries = self.entries()
        kept = [e for e in entries if e.frame != frame]
        if len(kept) == len(entries):
            return False
        self._write_index(kept)
        self.image_path(frame).unlink(missing_ok=True)
        return True

    def _write_index(self, entries: list[HintEntry]) -> None:
        data = {"film": self.film, "hints": [e.__dict__ for e in entries]}
        _write_atomic(self.index_path, (json.dumps(data, indent=1) + "\n").encode())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_index(folder: Path) -> tuple[str, list[HintEntry]]:
    """(the film's name, the hints) of a hints folder; one line for a missing or unreadable index."""
    index = folder / INDEX_NAME
    if not folder.is_dir():
        raise InputError(f"hints folder not found: {folder}")
    if not index.is_file():
        raise InputError(f"{folder} has no {INDEX_NAME} (make hints with `vidcolor paint FILM`)")
    try:
        data = json.loads(index.read_text())
        entries = [HintEntry(int(h["frame"]), float(h["seconds"]), str(h["image"])) for h in data["hints"]]
        film = str(data["film"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{index} cannot be read ({exc.__class__.__name__}: {exc})") from None
    for e in entries:
        if Path(e.image).name != e.image:  # the index is the user's file too: no path outside the folder
            raise InputError(f"{index}: hint image {e.image!r} is not a file name in the folder")
    return film, entries


def folder_specs(folder: Path) -> tuple[str, list[str]]:
    """(the film's name, `--hints` specs) of a hints folder, for `run --hints-dir`."""
    film, entries = read_index(folder)
    return film, [e.spec(folder) for e in entries]
