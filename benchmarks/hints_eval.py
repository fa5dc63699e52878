"""How much colour hints give: N random true-colour points on a clip's first frame, against automatic colours.

For each colour clip, its first shot (up to the first cut `run` finds, at most --max-frames) is written as a
lossless clip (the truth, and the input: `run` reads its luma only). `vidcolor run` colours it automatically
and with `--hints 0=POINTS.png` for each N of --points, where POINTS.png holds N pixels of frame 0 chosen at
random (among those with L* from 5 to 97) in their true colour, and with `--keyframe 0=TRUTH.png` (the whole
true frame 0, the most a user could give on that frame). Reported: PSNR against the truth of the hinted frame
and the shot's mean, automatic, hinted and keyframed, and the gains; then the mean over the clips. Clips given
with --report are scored the same way in a separate block, for the record only (never choose on them):

    python benchmarks/hints_eval.py --clips ../shared/data/videos-more/{sam2,video-llama,st-gcn}/*.mp4 \\
        --report ../shared/data/eval/*.mp4
"""

from __future__ import annotations

import argparse
import json
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from vidcolor.color import rgb_to_lab
from vidcolor.evaluate import find_cuts
from vidcolor.media import OutputOptions
from vidcolor.metrics import psnr_frames
from vidcolor.pipeline import Colorizer

LOSSLESS = OutputOptions(preset="ultrafast", pix_fmt="yuv444p", crf=0)


def read_rgb(path: Path, limit: int | None = None) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if limit and len(out) >= limit:
                break
    return out


def write_shot(frames: list[np.ndarray], path: Path, fps: Fraction) -> Path:
    h, w = (s - s % 2 for s in frames[0].shape[:2])
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv444p"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")))
        container.mux(stream.encode())
    return path


def point_hints(rgb: np.ndarray, n: int, rng: np.random.Generator, path: Path) -> Path:
    """An RGBA image with `n` random pixels of `rgb` in their own colour, where L* can carry chroma."""
    L = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)[0, 0].numpy()
    usable = np.flatnonzero(((L > 5.5) & (L < 96.5)).ravel())
    pick = rng.choice(usable, min(n, len(usable)), replace=False)
    rgba = np.zeros((*rgb.shape[:2], 4), np.uint8)
    rgba.reshape(-1, 4)[pick, :3] = rgb.reshape(-1, 3)[pick]
    rgba.reshape(-1, 4)[pick, 3] = 255
    cv2.imwrite(str(path), rgba[..., [2, 1, 0, 3]])
    return path


def psnr_of(pred: Path, truth: list[np.ndarray]) -> tuple[float, float]:
    """PSNR of frame 0 (the hinted one) and the mean over the shot."""
    got = read_rgb(pred)
    t = torch.from_numpy(np.stack(truth)).permute(0, 3, 1, 2).float() / 255
    p = torch.from_numpy(np.stack(got)).permute(0, 3, 1, 2).float() / 255
    per_frame = psnr_frames(p, t)
    return float(per_frame[0]), float(np.mean(per_frame))


def score_clip(clip: Path, colorizer_args: dict, points: list[int], max_frames: int, seed: int,
               work: Path) -> dict:
    cuts = [i for i, _ in find_cuts(clip) if i > 0]
    length = min([max_frames] + cuts[:1])
    with av.open(str(clip)) as container:
        fps = container.streams.video[0].average_rate or Fraction(25)
    shot = write_shot(read_rgb(clip, length), work / f"{clip.stem}_shot.mp4", fps)
    truth = read_rgb(shot)
    row: dict = {"clip": str(clip), "frames": len(truth)}

    def score(name: str, **guidance) -> None:
        out = work / f"{clip.stem}_{name.replace(' ', '_')}.mp4"
        Colorizer(**colorizer_args, **guidance).run(shot, out, LOSSLESS)
        row[f"{name} frame"], row[f"{name} shot"] = psnr_of(out, truth)

    score("automatic")
    rng = np.random.default_rng(seed)
    for n in points:
        score(f"{n} points", hints=[f"0={point_hints(truth[0], n, rng, work / f'{clip.stem}_{n}.png')}"])
    true0 = work / f"{clip.stem}_truth0.png"
    cv2.imwrite(str(true0), truth[0][..., ::-1])
    score("keyframe", keyframes=[f"0={true0}"])
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    return row


def table(name: str, rows: list[dict], points: list[int]) -> None:
    """Two markdown tables, the hinted frame's PSNR and the shot's, each cell with its gain over automatic."""
    ways = [f"{n} points" for n in points] + ["keyframe"]
    mean = {"clip": "**mean**", "frames": sum(r["frames"] for r in rows),
            **{k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k not in ("clip", "frames")}}
    for part in ("frame", "shot"):
        what = "frame 0 (the hinted frame)" if part == "frame" else "the shot (mean over its frames)"
        print(f"\n{name}: PSNR (dB) of {what}; N true-colour points on frame 0, or the true frame 0 as a keyframe")
        print("| clip | frames | automatic | " + " | ".join(f"{w} (gain)" for w in ways) + " |")
        print("|---|---|---|" + "---|" * len(ways))
        for r in rows + [mean]:
            auto = r[f"automatic {part}"]
            cells = " | ".join(f"{r[f'{w} {part}']:.2f} ({r[f'{w} {part}'] - auto:+.2f})" for w in ways)
            label = r["clip"] if r is mean else "/".join(Path(r["clip"]).parts[-2:])
            print(f"| {label} | {r['frames']} | {auto:.2f} | {cells} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", required=True, help="validation clips (choose on these)")
    ap.add_argument("--report", nargs="*", default=[], help="clips scored for the record only")
    ap.add_argument("--model", default=None)
    ap.add_argument("--points", type=int, nargs="+", default=[5, 20, 50])
    ap.add_argument("--max-frames", type=int, default=90)
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    kwargs = dict(model=args.model, device="cpu", render_size=args.render_size, cpu_threads=args.threads)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, clips in (("validation", args.clips), ("report only", args.report)):
            if clips:
                results[name] = [score_clip(Path(c), kwargs, args.points, args.max_frames, args.seed, Path(tmp))
                                 for c in clips]
    for name, rows in results.items():
        table(name, rows, args.points)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
