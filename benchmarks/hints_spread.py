"""Two ways of spreading colour hints within one frame, and their settings, compared on a pack's validation split.

For each validation frame, N random pixels get their true a*b* as hints. The model colours the frame (the
product's path, at render size); then either the correction (true minus predicted a*b*) is spread and added
(`correction`), or the hinted a*b* themselves are spread and blended in by the reach (`absolute`). Reported:
PSNR against the truth, mean over frames, for every edge / leak / full-reach setting, and the automatic
colours' PSNR. Choose on this (the pack's validation split), never on ../shared/data/eval:

    python benchmarks/hints_spread.py ~/vidcolor-runs/pack192v --frames 60 --points 20 50
"""

from __future__ import annotations

import argparse
import itertools
import json

import numpy as np
import torch

from vidcolor.color import join_lab, lab_to_rgb, rgb_to_lab
from vidcolor.geometry import render_shape, resize
from vidcolor.metrics import psnr_frames
from vidcolor.pipeline import Colorizer
from vidcolor.spread import spread
from vidcolor.train.evaluate import pack_frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pack")
    ap.add_argument("--model", default=None)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--points", type=int, nargs="+", default=[20, 50])
    ap.add_argument("--edges", type=float, nargs="+", default=[2.0, 4.0, 8.0])
    ap.add_argument("--leaks", type=float, nargs="+", default=[1e-5, 1e-4, 1e-3])
    ap.add_argument("--reaches", type=float, nargs="+", default=[0.02, 0.1, 0.5])
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    colorizer = Colorizer(args.model, device="cpu")
    rng = np.random.default_rng(0)
    scores: dict[str, list[float]] = {}
    torch.set_grad_enabled(False)
    for _, rgb in pack_frames(args.pack, limit=args.frames):
        lab = rgb_to_lab(rgb)
        L, true_ab = lab[:, :1], lab[:, 1:]
        h, w = L.shape[-2:]
        pred = resize(colorizer.predict_ab(resize(L, render_shape(h, w, colorizer.render_size))), (h, w))
        scores.setdefault("automatic", []).append(psnr_frames(lab_to_rgb(join_lab(L, pred)).clamp(0, 1), rgb)[0])
        for n in args.points:
            mask = np.zeros((h, w), bool)
            mask.flat[rng.choice(h * w, n, replace=False)] = True
            values = torch.cat([true_ab - pred, true_ab], dim=1)[0].numpy()
            for edge, leak in itertools.product(args.edges, args.leaks):
                out, reach1 = spread(L[0, 0].numpy(), mask, values, edge=edge, leak=leak, full_reach=1.0)
                for full in args.reaches:
                    reach = torch.from_numpy(np.clip(reach1 / full, 0, 1)).float()
                    out_t = torch.from_numpy(out).float()
                    ways = {"correction": pred + reach * out_t[:2], "absolute": pred + reach * (out_t[2:] - pred)}
                    for way, ab in ways.items():
                        psnr = psnr_frames(lab_to_rgb(join_lab(L, ab)).clamp(0, 1), rgb)[0]
                        scores.setdefault(f"{n} {way} edge={edge:g} leak={leak:g} reach={full:g}", []).append(psnr)
        print(f"{len(scores['automatic'])} frames", flush=True)
    table = {k: round(float(np.mean(v)), 3) for k, v in scores.items()}
    for n in args.points:
        best = sorted(((v, k) for k, v in table.items() if k.startswith(f"{n} ")), reverse=True)
        print(f"{n} points: automatic {table['automatic']:.2f} dB; best:")
        for v, k in best[:6]:
            print(f"  {v:.2f}  {k}")
        for way in ("correction", "absolute"):
            v, k = max((v, k) for k, v in table.items() if k.startswith(f"{n} {way}"))
            print(f"  best {way}: {v:.2f}  {k}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(table, fh, indent=1)


if __name__ == "__main__":
    main()
