"""Training throughput (images/s) of recipes, measured side by side in one process.

Each entry is a recipe (`train/recipes/NAME.toml`) with `--set`-style overrides. The trainers are built once,
then timed in interleaved rounds (A, B, C, A, B, C, ...) so that machine noise hits them alike; the median of
the rounds is reported. A step includes fetching its batch (JPEG decoding and workers for a pack folder,
tensor crops for the in-memory and tensor packs).

    python benchmarks/train_speed.py --data ~/vidcolor-runs/pack192 --rounds 3 --steps 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vidcolor.train.config import parse_sets, resolve  # noqa: E402
from vidcolor.machine import cpu_name  # noqa: E402
from vidcolor.train.model import Trainer  # noqa: E402

RECIPES: dict[str, tuple[str, list[str], dict]] = {
    # name: (recipe, --set overrides, machine options)
    "default (160px, b16, JPEG pack, 1 worker)": ("default", ["mix={}"], {"workers": 1, "precision": "fp32"}),
    "default, in memory, auto precision": ("default", ["mix={}"], {"in_memory": True}),
    "gpu recipe (128px, b64) on CPU": ("gpu", [], {"in_memory": True}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round")
    ap.add_argument("--only", nargs="*", help="substrings of recipe names to run")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    recipes = {k: v for k, v in RECIPES.items() if not args.only or any(o in k for o in args.only)}
    trainers = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (recipe, sets, machine) in recipes.items():
            t0 = time.perf_counter()
            cfg = resolve(recipe, {**parse_sets(sets), "steps": 10**9, "pretrain_steps": 10**9},
                          data=str(args.data), out=tmp, **machine)
            trainers[name] = Trainer(cfg, torch.device("cpu"))
            tr = trainers[name]
            print(f"built {name!r} in {time.perf_counter() - t0:.1f} s; settings {tr.settings.name} "
                  f"{tr.settings.timings}", flush=True)
            for _ in range(2):  # warm-up: workers start, oneDNN builds kernels
                tr.set_input(tr.data.next())
                tr.optimize_parameters()
        speeds: dict[str, list[float]] = {n: [] for n in trainers}
        for r in range(args.rounds):
            for name, tr in trainers.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    tr.set_input(tr.data.next())
                    tr.optimize_parameters()
                speeds[name].append(args.steps * tr.cfg.batch / (time.perf_counter() - t0))
                print(f"round {r + 1} {name}: {speeds[name][-1]:.1f} img/s", flush=True)
    base = statistics.median(next(iter(speeds.values())))
    print(f"\nCPU: {cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    rows = []
    for name, values in speeds.items():
        med = statistics.median(values)
        rows.append({"recipe": name, "img_per_s": round(med, 2), "ratio": round(med / base, 2),
                     "rounds": [round(v, 2) for v in values]})
        print(f"{name:60s} {med:7.1f} img/s  x{med / base:.2f}  ({', '.join(f'{v:.1f}' for v in values)})")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_name(), "threads": torch.get_num_threads(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
