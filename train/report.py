"""`vidcolor train evaluate`'s tables: models side by side, and a run's learning curve (every checkpoint on
the product's path, per source group, with the gray baseline), written to RUN/curve.csv and judged by the
recipe's rule."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vidcolor.errors import OptionError

from .evaluate import Score, evaluate

GRAY = "gray baseline (ab = 0)"
CURVE_FIELDS = ("step", "images", "set", "count", "psnr", "psnr_gray", "cf_ratio", "delta_cf", "fd", "fd_gray")


def run_checkpoints(run: Path) -> list[tuple[int, Path]]:
    """(step, generator file) of every checkpoint a run kept, in step order."""
    return sorted((int(p.stem.split("_")[1]), p) for p in (Path(run) / "checkpoints").glob("G_*.pt"))


def _f(v: float, fmt: str = ".2f") -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def curve_rows(run: Path, results: dict[str, dict[str, Score]], batch: int) -> list[dict[str, Any]]:
    """One row per checkpoint and scored set ("val", "val:GROUP", "photos", "clips"), gray beside it."""
    rows = []
    for step, _ in run_checkpoints(run):
        for set_name, s in results.get(f"{run.name}@{step}", {}).items():
            g = results[GRAY][set_name]
            rows.append({"step": step, "images": step * batch, "set": set_name, "count": s.count, "psnr": s.psnr,
                         "psnr_gray": g.psnr, "cf_ratio": s.colorfulness_ratio, "delta_cf": s.delta_cf,
                         "fd": s.fd_lite0, "fd_gray": g.fd_lite0})
    return rows


def write_curve(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows])
    tmp.replace(path)


def run_cli(models, pack, pack_max, by_group, photos, clips, every, render_size, json_out, with_fd,
            saturations, against: Path | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    from vidcolor.device import resolve_device
    from vidcolor.fd import Lite0Features, lite0_unavailable

    from .config import TrainConfig
    from .export import CURVE_NAME
    from .loop import load_state
    from .select import pick_best, ship_check
    console = Console()
    reason = "off (--no-fd)" if not with_fd else lite0_unavailable()
    features = Lite0Features(resolve_device("auto")) if reason is None else None
    named: dict[str, Path | None] = {GRAY: None}
    runs = [Path(m) for m in models if Path(m).is_dir()]
    for m in models:
        if Path(m).is_dir():
            if not run_checkpoints(Path(m)):
                raise OptionError(f"{m}: a folder, but no run with checkpoints/G_*.pt")
            named.update({f"{Path(m).name}@{step}": p for step, p in run_checkpoints(Path(m))})
        else:
            named[Path(m).name] = Path(m)
    if against is not None:
        named[against.name] = against
    results = evaluate(named, photos, list(clips), every, render_size, features=features, pack=pack,
                       pack_max=pack_max, by_group=by_group, saturations=tuple(dict.fromkeys((1.0, *saturations))))
    table = Table("model", "set", "images", "PSNR (dB)", "colourfulness", "colourfulness (truth)", "CF ratio", "ΔCF",
                  "fd_lite0")
    for name, sets in results.items():
        if any(name.startswith(f"{r.name}@") for r in runs):
            continue
        for set_name, s in sets.items():
            table.add_row(name, set_name, str(s.count), f"{s.psnr:.2f}", f"{s.colorfulness:.1f}",
                          f"{s.colorfulness_ref:.1f}", _f(s.colorfulness_ratio), f"{s.delta_cf:+.1f}", _f(s.fd_lite0))
    if reason is not None:
        table.caption = f"fd_lite0: {reason}"
    console.print(table)
    for run in runs:
        cfg = TrainConfig(**load_state(run)["config"])
        rows = curve_rows(run, results, cfg.batch)
        write_curve(run / CURVE_NAME, rows)
        curve = Table("step", "images", "set", "PSNR", "gray PSNR", "CF ratio", "fd_lite0", "gray fd_lite0",
                      title=f"{run}: learning curve ({run / CURVE_NAME})")
        for r in rows:
            curve.add_row(str(r["step"]), str(r["images"]), r["set"], _f(r["psnr"]), _f(r["psnr_gray"]),
                          _f(r["cf_ratio"]), _f(r["fd"]), _f(r["fd_gray"]))
        console.print(curve)
        chosen = pick_best([r for r in rows if r["set"] == "val"], cfg.select_psnr_margin, cfg.select_cf_floor)
        if chosen:
            console.print(f"{run}: the recipe's rule (PSNR >= gray - {cfg.select_psnr_margin:g} dB, CF ratio >= "
                          f"{cfg.select_cf_floor:g} preferred, lowest fd_lite0) picks step {int(chosen['step'])}; "
                          f"`vidcolor train export {run} --pick best` exports it")
        if chosen and against is not None and "val" in results.get(against.name, {}):
            ref = results[against.name]["val"]
            checks = ship_check(chosen, {"fd": ref.fd_lite0, "psnr": ref.psnr}, cfg.ship_fd_gain,
                                cfg.ship_cf_range, cfg.ship_psnr_margin)
            verdict = "passes" if all(ok for _, ok in checks) else "does not pass"
            console.print(f"ship rule against {against.name} on the whole validation split: step "
                          f"{int(chosen['step'])} {verdict}: " + "; ".join(f"{'yes' if ok else 'NO'}: {text}"
                                                                     for text, ok in checks)
                          + f"; and inference at most {cfg.ship_speed_ratio:g}x slower (measure with "
                            f"benchmarks/throughput.py)")
    if json_out:
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        json_out.write_text(json.dumps({n: {k: {f: clean(x) for f, x in asdict(v).items()} for k, v in s.items()}
                                        for n, s in results.items()}, indent=2))

