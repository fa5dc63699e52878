"""The CUDA path in one go: colours against the CPU's, model-only fps by batch size, `run` against transcode.

    python benchmarks/gpu_check.py --out OUT [--device cuda] [--quick]      (benchmarks/gpu_check.sh calls it)

1. A short clip coloured by `Colorizer.run` on the device (torch, fp16 autocast on CUDA) and on the CPU in
   fp32 (torch), both encoded losslessly: the share of Cb/Cr samples within one code
   value of each other (target: 99.9 %).
2. The model alone (`Colorizer.predict_ab`, render size 256, 16:9: 256x448) for batch sizes 8-128, synchronised.
3. End to end on a 1080p clip: `Colorizer.run` with the automatic batch size, against decoding + encoding the
   same clip with run's reader, writer and encoder settings (the floor no colouring can go below).
Writes OUT/gpu_check.md (the tables, the device named) and OUT/gpu_check.json. `--quick`: small sizes for a
dry run on a CPU (the tests run it so).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

HERE = Path(__file__).resolve()
SAMPLE = HERE.parents[1] / "samples" / "bikes_bw.mp4"
sys.path.insert(0, str(HERE.parent))

from throughput import make_clip  # noqa: E402  (benchmarks/ is not a package)

from vidcolor.machine import cpu_name  # noqa: E402
from vidcolor.errors import VidcolorError  # noqa: E402
from vidcolor.media import OutputOptions, VideoReader, VideoWriter, probe  # noqa: E402
from vidcolor.pipeline import Colorizer  # noqa: E402

LOSSLESS = OutputOptions(crf=0, preset="ultrafast", overwrite=True)
WITHIN = 0.999  # of chroma samples within one code value, CUDA against CPU


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name() + " (CPU)"


def chroma_planes(path: Path) -> np.ndarray:
    """Every frame's Cb and Cr samples (the output keeps the source's Y, so they are all that can differ)."""
    with av.open(str(path)) as src:
        return np.stack([f.reformat(format="yuv420p").to_ndarray()[f.height:].ravel() for f in src.decode(video=0)])


def compare(device: str, work: Path, frames: int) -> dict[str, Any]:
    """Colour the same clip on `device` and on the CPU; how many chroma samples agree within one code value."""
    clip = make_clip(SAMPLE, work / "short.mp4", frames)
    outs = {}
    for name, colorizer in (("device", Colorizer(device=device, smoothing="none", engine="torch")),
                            ("cpu", Colorizer(device="cpu", smoothing="none", engine="torch"))):
        outs[name] = colorizer.run(clip, work / f"short_{name}.mkv", LOSSLESS).output
        outs[name + "_engine"] = colorizer.engine.name
    a, b = (chroma_planes(outs[k]).astype(np.int16) for k in ("device", "cpu"))
    diff = np.abs(a - b)
    share = float((diff <= 1).mean())
    return {"frames": int(a.shape[0]), "within_1": share, "max_diff": int(diff.max()), "mean_diff": float(diff.mean()),
            "pass": share >= WITHIN, "device_engine": outs["device_engine"], "cpu_engine": outs["cpu_engine"]}


def model_fps(device: str, batches: list[int], repeats: int) -> list[dict[str, Any]]:
    """predict_ab on random L at 256x448, `repeats` timed calls per batch size after two warm-up calls."""
    colorizer = Colorizer(device=device, smoothing="none")
    dev = colorizer.device
    rows = []
    for batch in batches:
        L = torch.rand(batch, 1, 256, 448, device=dev) * 100
        times = []
        try:
            with torch.inference_mode():
                for i in range(repeats + 2):
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    start = time.perf_counter()
                    colorizer.predict_ab(L)
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    if i >= 2:
                        times.append(time.perf_counter() - start)
        except torch.OutOfMemoryError:
            rows.append({"batch": batch, "error": "out of memory"})
            break
        rows.append({"batch": batch, "fps": batch / statistics.median(times), "engine": colorizer.engine.name})
    return rows


def end_to_end(device: str, work: Path, frames: int, size: tuple[int, int]) -> dict[str, Any]:
    """`Colorizer.run` on a clip of `size` (automatic batch size) against run's own decode + encode of it."""
    clip = make_clip(SAMPLE, work / "long.mp4", frames, size)
    video = probe(clip).video
    options = OutputOptions(overwrite=True)
    start = time.perf_counter()
    reader = VideoReader(clip, video, options.pix_fmt, 8)
    writer = VideoWriter(work / "transcode.mp4", video, options)
    reader.start()
    writer.start()
    for batch in reader:
        writer.write(batch)
    writer.finish()
    reader.close()
    transcode = time.perf_counter() - start
    colorizer = Colorizer(device=device)
    colorizer.run(clip, work / "warm.mp4", options)  # CUDA context, cuDNN's choices: once per process
    start = time.perf_counter()
    result = colorizer.run(clip, work / "run.mp4", options)
    seconds = time.perf_counter() - start
    return {"size": f"{size[0]}x{size[1]}", "frames": frames, "transcode_fps": frames / transcode,
            "run_fps": result.frames_out / seconds, "run_over_transcode": seconds / transcode,
            "engine": colorizer.engine.name}


def table(r: dict[str, Any]) -> str:
    c, e = r["compare"], r["end_to_end"]
    lines = [f"# GPU check: {r['device_name']}", "",
             f"torch {r['torch']}, {r['when']}", "",
             "## Colours: device against CPU fp32 (lossless)", "",
             f"{c['frames']} frames; chroma within 1 code value: {100 * c['within_1']:.3f} % "
             f"(target {100 * WITHIN:.1f} %: {'met' if c['pass'] else 'NOT met'}); max diff {c['max_diff']}, "
             f"mean {c['mean_diff']:.4f}; engines {c['device_engine']} / {c['cpu_engine']}", "",
             "## Model only, render size 256 (256x448)", "", "| batch | fps |", "|---|---|"]
    lines += [f"| {m['batch']} | {m['fps']:.1f} |" if "fps" in m else f"| {m['batch']} | {m['error']} |"
              for m in r["model"]]
    lines += ["", f"## End to end, {e['size']}, {e['frames']} frames, automatic batch size", "",
              "| transcode fps | run fps | run / transcode time |", "|---|---|---|",
              f"| {e['transcode_fps']:.1f} | {e['run_fps']:.1f} | {e['run_over_transcode']:.2f} |"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--quick", action="store_true", help="small sizes: a dry run on a CPU")
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    work = a.out / "work"
    work.mkdir(exist_ok=True)
    try:
        device = Colorizer(device=a.device).device  # fails at once, in one line, without the device
    except VidcolorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    batches = [1, 2] if a.quick else [8, 16, 32, 64, 128]
    result: dict[str, Any] = {"device_name": device_name(device), "torch": torch.__version__,
                              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": a.quick}
    result["compare"] = compare(a.device, work, 6 if a.quick else 48)
    print(f"compare: {result['compare']}", flush=True)
    result["model"] = model_fps(a.device, batches, 2 if a.quick else 5)
    print(f"model: {result['model']}", flush=True)
    result["end_to_end"] = end_to_end(a.device, work, 8 if a.quick else 240, (320, 180) if a.quick else (1920, 1080))
    print(f"end to end: {result['end_to_end']}", flush=True)
    (a.out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    (a.out / "gpu_check.md").write_text(table(result))
    for f in work.iterdir():
        f.unlink()
    work.rmdir()
    print(table(result))
    return 0 if result["compare"]["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
