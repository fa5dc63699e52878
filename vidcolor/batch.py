"""Batch jobs: expanding inputs, naming outputs, sharding, and the per-file report.

Inputs are files, folders (searched recursively for video and image extensions), glob patterns
(expanded here, for shells that do not: `'archive/**/*.mp4'`) and list files (one path per
line; blank lines and `#` comments ignored; relative paths are relative to the current
directory, like the command line's). Duplicates (same resolved file) are dropped.

Sharding: `--shard I/N` (0 <= I < N) keeps the jobs whose input's resolved path hashes to I
modulo N (SHA-256, so every process computes the same split with no coordination, and a file
stays in its shard even if other files come and go between the processes' starts).
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .controls import CODEC, SUFFIX
from .errors import InputError, VidcolorError
from .files import write_atomic
from .media import STILL_SUFFIXES, find as find_sequence, folder_pattern, output_name

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts",
                              ".m2ts", ".mts", ".wmv", ".flv", ".ogv", ".3gp", ".dv", ".mxf"})
IMAGE_EXTENSIONS = frozenset(STILL_SUFFIXES)  # photos join a folder's batch (`media.still`)
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path
    conflict: str | None = None  # why this job may not run (its output is another input's), found before any work
    make_folder: bool = False  # the output's folder is made for it (a sequence folder's `<folder>_color/`)


def output_key(path: Path) -> str:
    """Paths that name one file, also on case-insensitive file systems (macOS, Windows, SMB shares)."""
    return os.path.normcase(str(path.resolve())).casefold()


def mark_collisions(jobs: Sequence[Job]) -> list[Job]:
    """Jobs whose output is the output of an earlier job, or an input of the batch, get a `conflict` naming
    both inputs (they are refused, never run over each other's output)."""
    owners: dict[str, Job] = {}
    inputs = {output_key(j.input): j for j in jobs}
    marked = []
    for job in jobs:
        key = output_key(job.output)
        if (first := owners.get(key)) is not None:
            job = replace(job, conflict=f"{job.input} and {first.input} would both be written to {job.output}: "
                                        f"rename one, or colour them with -o or --suffix one by one")
        elif key in inputs and inputs[key] is not job:
            job = replace(job, conflict=f"the output of {job.input} would overwrite the input {inputs[key].input}")
        else:
            owners[key] = job
        marked.append(job)
    return marked


def read_list(path: Path) -> list[Path]:
    """The paths in a list file: one per line, blank lines and `#` comments ignored."""
    try:
        lines = path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError as exc:
        raise VidcolorError(f"cannot read list file {path}: {exc.strerror or exc}") from exc
    return [Path(line.strip()) for line in lines if line.strip() and not line.strip().startswith("#")]


def _is_glob(item: Path) -> bool:
    return not item.exists() and any(c in str(item) for c in GLOB_CHARS)


def _folder_videos(folder: Path, suffix: str) -> list[Path]:
    """Videos and photos under `folder`, skipping hidden files and folders (our temp and work folders) and our outputs."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if (path.suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS and not name.startswith(".")
                    and not (suffix and path.stem.endswith(suffix))):
                found.append(path)
    return found


def collect_jobs(inputs: Iterable[Path], output: Path | None = None, output_dir: Path | None = None,
                 suffix: str = SUFFIX, codec: str = CODEC, sequence: bool = False) -> list[Job]:
    """Expand inputs (see the module doc) and name each output.

    A folder's relative sub-folders are kept under `output_dir`; without `output_dir` each
    output goes beside its input. An unmatched glob or missing path stays a job, so it is
    reported as failed rather than silently ignored. Glob matches are taken whatever their
    extension, but, as in folders, hidden files and our own outputs (`*<suffix>.*`) are skipped.
    Outputs that collide are marked before any work (`mark_collisions`): every input its own output.
    """
    jobs: list[Job] = []
    seen: set[Path] = set()

    def add(path: Path, folder: Path | None) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        if output is not None:
            target = output
        elif output_dir is not None:
            target = (output_dir / path.parent.relative_to(folder) if folder else output_dir) / output_name(path, suffix, codec)
        else:
            target = path.with_name(output_name(path, suffix, codec))
        jobs.append(Job(path, target))

    for item in inputs:
        if item.is_dir() and sequence:  # the folder's numbered frames are one film
            try:
                pattern = folder_pattern(item)
            except InputError as exc:
                jobs.append(Job(item, item, conflict=str(exc)))
                continue
            name = output_dir / item.name if output_dir is not None else item.with_name(item.name + suffix)
            jobs.append(Job(pattern, output or name / pattern.name, make_folder=output is None))
            seen.add(pattern.resolve())
        elif item.is_dir():
            for path in _folder_videos(item, suffix):
                add(path, item)
        elif _is_glob(item):
            matches = sorted(glob.glob(str(item), recursive=True))
            if not matches:
                add(item, None)
            root = _glob_root(item)
            for match in map(Path, matches):
                if match.is_dir():
                    for path in _folder_videos(match, suffix):
                        add(path, match)
                elif match.is_file() and not match.name.startswith(".") and not (suffix and match.stem.endswith(suffix)):
                    add(match, root)
        else:
            add(item, None)
    return mark_collisions(jobs)


SEQUENCE_HINT_FRAMES = 24  # numbered frames in a folder that make it look like a film scan


def sequence_hint(folder: Path) -> str | None:
    """A note when a folder given without --sequence holds one numbered sequence of many frames: its
    PNG/TIFF frames would each be coloured as a photo, its DPX frames not at all."""
    try:
        found = find_sequence(folder_pattern(folder))
    except VidcolorError:
        return None
    if found.count < SEQUENCE_HINT_FRAMES:
        return None
    return (f"{folder} looks like an image sequence ({found.pattern.name}, {found.count} frames): add --sequence "
            f"to colour it as one film")


def _glob_root(pattern: Path) -> Path:
    """The fixed leading folders of a pattern (`a/b/**/*.mp4` -> `a/b`): sub-folders below it are kept."""
    parts = []
    for part in pattern.parts[:-1]:
        if any(c in part for c in GLOB_CHARS):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N) with 0 <= I < N."""
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"expected I/N (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"need 0 <= I < N, got {text!r}")
    return index, count


def shard_of(path: Path, count: int) -> int:
    digest = hashlib.sha256(os.fsencode(path.resolve())).digest()
    return int.from_bytes(digest[:8], "big") % count


def select_shard(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """The jobs of shard `index` of `count`, in sorted input order."""
    return sorted((j for j in jobs if shard_of(j.input, count) == index), key=lambda j: str(j.input.resolve()))


# -- the report ----------------------------------------------------------------------------

@dataclass
class Outcome:
    job: Job
    status: str  # done | skipped | failed | interrupted
    message: str
    result: Any = None  # pipeline.RunResult when done

    def as_dict(self) -> dict[str, Any]:
        """The report's row: with `kept` / `not_kept` (each stream, tag set, chapters, attachment, timecode,
        and why not) and `input_damage` (what is known to be missing from the input) when the file was done."""
        r = self.result
        plan = r.plan.as_dict() if r is not None and r.plan is not None else {"kept": None, "not_kept": None}
        return {
            "input": str(self.job.input), "output": str(self.job.output), "status": self.status,
            "message": self.message,
            "frames": r.frames_out if r else None, "frames_expected": r.frames_expected if r else None,
            "frames_lost": r.frames_lost if r else None, "frames_extra": r.frames_extra if r else None,
            "input_damage": list(r.losses) if r else None, **plan,
            "seconds": round(r.seconds, 3) if r else None, "fps": round(r.fps, 2) if r else None,
        }


def report_dict(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    files = [o.as_dict() for o in outcomes]
    seconds = sum(f["seconds"] or 0 for f in files)
    frames = sum(f["frames"] or 0 for f in files)
    totals = {status: sum(o.status == status for o in outcomes) for status in ("done", "skipped", "failed")}
    totals.update(files=len(files), frames=frames, frames_lost=sum(f["frames_lost"] or 0 for f in files),
                  damaged=sum(bool(f["frames_lost"] or f["input_damage"]) for f in files),
                  with_losses=sum(bool(f["not_kept"]) for f in files),
                  seconds=round(seconds, 3), fps=round(frames / seconds, 2) if seconds > 0 else 0.0)
    return {"files": files, "totals": totals}


def write_report(path: Path, outcomes: Sequence[Outcome]) -> None:
    """Write atomically, so a reader never sees half a report."""
    write_atomic(path, json.dumps(report_dict(outcomes), indent=2, allow_nan=False) + "\n")
