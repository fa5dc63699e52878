"""The first hour's speed targets, timed as whole commands or whole runs, repeated and interleaved (medians):

* `preview FILM`: `vidcolor preview FILM` (8 frames) against `vidcolor run FILM`, same options; target: the
  preview at most 0.15x the run.
* `long CLIP`: a 10-minute film made from CLIP by stream copy (no re-encoding), then `vidcolor preview` on it;
  target: under 10 s for 8 frames on 2 CPU cores.
* `resume CLIP`: a run interrupted (the CLI's Ctrl-C path, the stop event) at about 70 % of its frames, then the
  same run again, against an uninterrupted run; target: the rerun at most 0.45x the full run.

    python benchmarks/first_hour.py preview ../shared/data/bw/chaplin.mp4 --repeat 3
    python benchmarks/first_hour.py long ../shared/data/videos-more/sam2/bedroom.mp4
    python benchmarks/first_hour.py resume ../shared/data/bw/chaplin.mp4 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

VIDCOLOR = [sys.executable, "-m", "vidcolor"]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def preview(film: Path, repeat: int, tmp: Path) -> None:
    runs, previews = [], []
    for i in range(repeat):  # interleaved, so a drift in the machine's speed touches both alike
        previews.append(timed(VIDCOLOR + ["preview", str(film), "-o", str(tmp / f"p{i}.png"), "--overwrite"]))
        runs.append(timed(VIDCOLOR + ["run", str(film), "-o", str(tmp / f"r{i}.mp4"), "--overwrite", "--quiet"]))
    p, r = statistics.median(previews), statistics.median(runs)
    print(f"{film.name}: preview {p:.1f} s, run {r:.1f} s (medians of {repeat}); preview / run {p / r:.3f} "
          f"(target <= 0.15); each: {[round(x, 1) for x in previews]} / {[round(x, 1) for x in runs]}")


def make_long_film(clip: Path, minutes: float, target: Path) -> Path:
    """`clip` repeated by stream copy (timestamps shifted) until the film lasts `minutes`."""
    import av

    with av.open(str(clip)) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        duration = max(p.pts + (p.duration or 0) for p in packets) - min(p.pts for p in packets)
        with av.open(str(target), "w") as out:
            ostream = out.add_stream_from_template(stream)
            copies = int(minutes * 60 / float(duration * stream.time_base)) + 1
            for k in range(copies):
                for p in packets:
                    p.pts, p.dts = p.pts + (duration if k else 0), (p.dts + (duration if k else 0)
                                                                     if p.dts is not None else None)
                    p.stream = ostream
                    out.mux(p)
    return target


def long_preview(clip: Path, repeat: int, tmp: Path) -> None:
    film = make_long_film(clip, 10.0, tmp / "long.mp4")
    times = [timed(VIDCOLOR + ["preview", str(film), "-o", str(tmp / f"l{i}.png"), "--overwrite"])
             for i in range(repeat)]
    print(f"10-minute film from {clip.name}: preview of 8 frames {statistics.median(times):.1f} s "
          f"(median of {repeat}; target < 10 s); each: {[round(x, 1) for x in times]}")


def resume(clip: Path, repeat: int, tmp: Path) -> None:
    from vidcolor.media import OutputOptions
    from vidcolor.pipeline import Colorizer

    colorizer = Colorizer()
    options = OutputOptions(overwrite=True)
    fulls, reruns, kept = [], [], []
    for i in range(repeat):
        start = time.perf_counter()
        colorizer.run(clip, tmp / f"full{i}.mp4", options)
        fulls.append(time.perf_counter() - start)
        stop = threading.Event()

        def progress(done: int, total: int | None) -> None:
            if total and done >= 0.7 * total:
                stop.set()

        target = tmp / f"cut{i}.mp4"
        try:
            colorizer.run(clip, target, options, progress, stop=stop)
        except KeyboardInterrupt:
            pass
        start = time.perf_counter()
        result = colorizer.run(clip, target, options)
        reruns.append(time.perf_counter() - start)
        kept.append(result.frames_resumed / max(1, result.frames_out))
    f, r = statistics.median(fulls), statistics.median(reruns)
    print(f"{clip.name}: full run {f:.1f} s, rerun after an interrupt at 70 % {r:.1f} s (medians of {repeat}); "
          f"rerun / full {r / f:.3f} (target <= 0.45); frames reused {[round(k, 2) for k in kept]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["preview", "long", "resume"])
    ap.add_argument("file", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        {"preview": preview, "long": long_preview, "resume": resume}[args.what](args.file, args.repeat, Path(tmp))


if __name__ == "__main__":
    main()
