"""The `vidcolor` command line: `app` (the group, one-line errors), `options` (shared options, their
defaults from `vidcolor.controls`), `commands` (parse and check only), `runner` (the batch, Ctrl-C,
eval and cut jobs) and `render` (tables and messages).

Nothing here imports torch, OpenCV or the networks at import time: `vidcolor --help` and
`vidcolor info` start at once, and the commands that colour import the pipeline when they run.
"""

from __future__ import annotations

from . import commands  # noqa: F401  (registers the commands on `cli`)
from .app import LazyGroup, VidcolorGroup, cli, main
from .commands import eval_command, info_command, run_command

__all__ = ["LazyGroup", "VidcolorGroup", "cli", "eval_command", "info_command", "main", "run_command"]
