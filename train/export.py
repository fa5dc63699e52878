"""Export a training run's generator as an inference checkpoint (fp16 weights + metadata)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from vidcolor.checkpoint import save_checkpoint
from vidcolor.nets import build_generator

from .loop import load_state


def export_run(run: Path, out: Path, half: bool = True) -> tuple[Path, dict[str, Any]]:
    state = load_state(run)
    cfg = state["config"]
    net = build_generator(cfg["arch"], cfg["gen_config"])
    net.load_state_dict(state["G"])
    meta: dict[str, Any] = {"steps": state["step"], "train_seconds": round(state["elapsed"], 1),
                            "data": cfg["data"], "size": cfg["size"], "phase": cfg["phase"],
                            "lambda_l1": cfg["lambda_l1"], "batch": cfg["batch"]}
    metrics = Path(run) / "metrics.csv"
    if metrics.exists():
        rows = list(csv.DictReader(metrics.open()))
        if rows:
            meta["validation"] = {k: float(v) for k, v in rows[-1].items() if v not in ("", None)}
    return save_checkpoint(out, net, cfg["arch"], cfg["gen_config"], meta, half=half), meta
