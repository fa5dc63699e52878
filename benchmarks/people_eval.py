"""People coloured at their own scale (`vidcolor.regions`), measured on held-out frames that contain faces.

For every frame of the given photo folders and clips (every Nth frame) in which the face finder finds a
face, the model colours the frame as `run` does, with and without `people`; the script reports PSNR and the
colourfulness ratio over the whole frame and inside the person boxes, fd_lite0 of each set of frames
against the truth, and the faces found. Use validation sources only (never ../shared/data/eval):

    python benchmarks/people_eval.py --model vidcolor/weights/default.pt --every 10 \\
        --photos ../shared/data/photos-people/group-photos ../shared/data/photos-nature/kodak24 \\
        --clips ../shared/data/videos-more/{sam2,video-llama,st-gcn}/*.mp4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vidcolor.color import rgb_luma
from vidcolor.colorspec import rgb_frame_spec
from vidcolor.fd import FeatureStats, Lite0Features, stats_distance
from vidcolor.metrics import colorfulness_frames, psnr_frames
from vidcolor.pipeline import Colorizer
from vidcolor.train.evaluate import iter_clip_frames, iter_photos


def box_mask(shape: tuple[int, int], boxes: list) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    for x0, y0, x1, y1 in boxes:
        mask[y0:y1, x0:x1] = True
    return mask


def masked_crop(rgb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The bounding rectangle of `mask` (the people's boxes), so PSNR and colourfulness are of people."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return rgb[..., int(ys.min()):int(ys.max()) + 1, int(xs.min()):int(xs.max()) + 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--photos", nargs="*", default=[])
    ap.add_argument("--clips", nargs="*", default=[])
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--render-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    plain = Colorizer(args.model, device="cpu", render_size=args.render_size)
    people = Colorizer(args.model, device="cpu", render_size=args.render_size, people=True)
    features = Lite0Features(torch.device("cpu"))
    frames = [(str(p), f) for p in map(Path, args.photos) for f in iter_photos(p)]
    frames += [(str(c), f) for c in map(Path, args.clips) for f in iter_clip_frames(Path(c), args.every)]
    rows, feats = [], {"truth": [], "plain": [], "people": []}
    seconds = {"detect": 0.0, "plain": 0.0, "people": 0.0}
    for source, rgb in frames:
        y = (rgb_luma(rgb, rgb_frame_spec(rgb.shape[-2]))[0, 0] * 255).round().clamp(0, 255).to(torch.uint8)
        t0 = time.perf_counter()
        boxes = people.finder.people(y.numpy())
        seconds["detect"] += time.perf_counter() - t0
        if not boxes:
            continue
        t0 = time.perf_counter()
        a = plain.colorize(rgb).clamp(0, 1)
        t1 = time.perf_counter()
        b = people.colorize(rgb).clamp(0, 1)
        seconds["plain"] += t1 - t0
        seconds["people"] += time.perf_counter() - t1
        mask = box_mask(tuple(rgb.shape[-2:]), boxes)
        crop = [masked_crop(x, mask) for x in (rgb, a, b)]
        cf = colorfulness_frames(torch.cat([crop[0], crop[1], crop[2]]))
        rows.append({"source": source, "people": len(boxes), "psnr_plain": psnr_frames(a, rgb)[0],
                     "psnr_people": psnr_frames(b, rgb)[0], "box_psnr_plain": psnr_frames(crop[1], crop[0])[0],
                     "box_psnr_people": psnr_frames(crop[2], crop[0])[0], "box_cf_truth": cf[0],
                     "box_cf_plain": cf[1], "box_cf_people": cf[2]})
        for name, x in (("truth", rgb), ("plain", a), ("people", b)):
            feats[name].append(features(x))
        print(f"{source}: {len(boxes)} people, box PSNR {rows[-1]['box_psnr_plain']:.2f} -> "
              f"{rows[-1]['box_psnr_people']:.2f}", flush=True)
    n = len(rows)
    if not n:
        raise SystemExit("no frame with a face found")
    def stats(name: str) -> FeatureStats:
        out = FeatureStats()
        out.add(torch.cat(feats[name]))
        return out

    truth = stats("truth")
    mean = {k: sum(r[k] for r in rows) / n for k in rows[0] if k not in ("source",)}
    summary = {"frames_scanned": len(frames), "frames_with_people": n, **{k: round(v, 3) for k, v in mean.items()},
               "box_cf_ratio_plain": round(mean["box_cf_plain"] / mean["box_cf_truth"], 3),
               "box_cf_ratio_people": round(mean["box_cf_people"] / mean["box_cf_truth"], 3),
               "fd_lite0_plain": round(stats_distance(stats("plain"), truth), 2),
               "fd_lite0_people": round(stats_distance(stats("people"), truth), 2),
               "ms_detect_per_frame": round(1000 * seconds["detect"] / len(frames), 1),
               "ms_colour_plain": round(1000 * seconds["plain"] / n, 1),
               "ms_colour_people": round(1000 * seconds["people"] / n, 1)}
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
