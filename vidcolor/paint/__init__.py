"""`vidcolor paint`: a local page to look through a film and paint colour hints (`session` does the work,
`server` the web, `static/` the page: plain HTML, CSS and JavaScript, no build step)."""

from __future__ import annotations

import os
import signal
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..hintfolder import HintFolder, default_folder


def serve(film: Path, colorizer_args: dict[str, Any], folder: Path | None = None, port: int = 0,
          open_browser: bool = True, announce: Callable[[str, Path, str], None] | None = None) -> None:
    """Serve the page for `film` until Ctrl-C (or the server is shut down); hints go to `folder`
    (default `<stem>_hints/` beside the film). `announce(url, folder, command)` is called once it listens."""
    from ..pipeline import Colorizer
    from .server import PaintServer
    from .session import PaintSession

    stop_on_signals()
    hints = HintFolder(folder or default_folder(film), film.name)
    session = PaintSession(film, Colorizer(**colorizer_args), hints)
    with PaintServer(session, port) as server:
        session.start_scan()
        if announce is not None:
            announce(server.url, hints.folder, session.command())
        if open_browser and has_display():
            webbrowser.open(server.url)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass


def has_display() -> bool:
    """Whether a graphical browser can open here (without one, `webbrowser` may start a text browser in the
    terminal the server prints to)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM stop the server cleanly, also when the shell that started it in the background set
    SIGINT to be ignored (Python then installs no KeyboardInterrupt of its own)."""
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
