"""The generator on every CPU inference engine, side by side: model-only fps and the colours each gives.

    python benchmarks/throughput.py --engines --pack ~/vidcolor-runs/pack192v [--repeats 3] [--json e.json]
    python benchmarks/engines.py --pack ~/vidcolor-runs/pack192v            # the same

Engines (each skipped with its reason where its package is missing):
  torch-plain      fp32, unfused, contiguous: the network as trained
  torch            fp32, BatchNorm folded, channels_last (`vidcolor.engine.TorchEngine`, `run --engine torch`)
  torch-compile    the same through torch.compile (inductor); its compile time is reported apart
  torch-int8       int8 PT2E static quantization (torchao, X86InductorQuantizer), compiled
  ort-fp32         ONNX Runtime on the fp32 graph
  ort-int8         ONNX Runtime on the checkpoint's int8 copy (`vidcolor.engine.OnnxEngine`, what `run` picks)
  openvino-fp32    OpenVINO on the fp32 graph
  openvino-int8    OpenVINO on the same int8 (QDQ) copy

Speed: each engine in its own fresh subprocess (no shared thread pools or allocator), round-robin, the start
rotated each repeat; a batch as `run` makes it on CPU (4 frames of 16:9 at render size 256: 256x448), the
threads `run` gives the model; medians of the timed batches after warm-up, then medians over repeats.
Colours: every engine is put in `Colorizer`'s place and the pack's validation frames go through
`Colorizer.colorize` (the product's path); PSNR and fd_lite0 against the truth, as `vidcolor train evaluate`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

ENGINES = ("torch-plain", "torch", "torch-compile", "torch-int8", "ort-fp32", "ort-int8", "openvino-fp32",
           "openvino-int8")
BASELINE = "torch"
SHAPE = (4, 1, 256, 448)  # CPU_BATCH_SIZE frames of 16:9 at render size 256
HERE = Path(__file__).resolve()


def calibration(pack: Path, frames: int, multiple: int) -> list[torch.Tensor]:
    from vidcolor.train.evaluate import pack_frames
    from vidcolor.train.quantize import model_input

    with torch.no_grad():
        return [model_input(rgb, 256, multiple) for _, rgb in pack_frames(pack, split="train", limit=frames)]


def build(kind: str, model: Path, threads: int, work: Path, pack: Path | None) -> tuple[Callable, float]:
    """(x -> (ab, features), seconds spent building it). x: normalized padded L."""
    from vidcolor.checkpoint import load_generator
    from vidcolor.engine import OnnxEngine, TorchEngine
    from vidcolor.modelfiles import file_sha256, int8_path
    from vidcolor.nets import WithFeatures

    torch.set_num_threads(threads)
    net, _ = load_generator(model)
    start = time.perf_counter()
    if kind == "torch-plain":
        plain = WithFeatures(net).eval()
        return (lambda x: plain(x.contiguous())), time.perf_counter() - start
    if kind == "torch":
        engine = TorchEngine(net, True, torch.device("cpu"))
        return engine, time.perf_counter() - start
    if kind == "torch-compile":
        engine = TorchEngine(net, True, torch.device("cpu"))
        compiled = torch.compile(engine.net)
        with torch.inference_mode():
            compiled(torch.zeros(SHAPE).contiguous(memory_format=torch.channels_last))
        return (lambda x: compiled(x.contiguous(memory_format=torch.channels_last))), time.perf_counter() - start
    if kind == "torch-int8":
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        example = torch.zeros(SHAPE)
        auto = torch.export.Dim.AUTO
        exported = torch.export.export(WithFeatures(net).eval(), (example,),
                                       dynamic_shapes=({0: auto, 2: auto, 3: auto},)).module()
        quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
        prepared = prepare_pt2e(exported, quantizer)
        for x in calibration(pack, 32, net.size_multiple):
            prepared(x)
        compiled = torch.compile(convert_pt2e(prepared))
        with torch.inference_mode():
            compiled(example)
        return compiled, time.perf_counter() - start
    if kind.startswith("ort") or kind.startswith("openvino"):
        int8 = int8_path(model)
        path = int8
        if kind.endswith("fp32"):
            from vidcolor.train.quantize import export_onnx

            path = work / "fp32.onnx"
            if not path.exists():
                export_onnx(net, path, torch.zeros(SHAPE))
        if kind == "ort-int8":
            engine = OnnxEngine(int8, file_sha256(model), True, threads, net.size_multiple)
            return engine, time.perf_counter() - start
        if kind == "ort-fp32":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            return (lambda x: tuple(torch.from_numpy(a) for a in session.run(None, {"L": x.numpy()}))), \
                time.perf_counter() - start
        import openvino as ov

        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                               "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()

        def run(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            out = request.infer({0: x.numpy()})
            return tuple(torch.from_numpy(out[compiled.outputs[i]].copy()) for i in range(2))

        return run, time.perf_counter() - start
    raise ValueError(kind)


def worker_speed(a: argparse.Namespace) -> dict[str, Any]:
    from vidcolor.machine import model_threads

    threads = a.threads or model_threads()
    fn, built = build(a.worker, a.model, threads, a.workdir, a.pack)
    x = torch.rand(SHAPE) * 2 - 1
    times = []
    with torch.inference_mode():
        for i in range(a.batches + 2):
            t = time.perf_counter()
            fn(x)
            if i >= 2:
                times.append(time.perf_counter() - t)
    return {"fps": SHAPE[0] / statistics.median(times), "build_s": built, "threads": threads}


def colours(kind: str, a: argparse.Namespace) -> dict[str, Any]:
    """PSNR and fd_lite0 of the pack's validation frames through `Colorizer.colorize` with this engine."""
    from vidcolor.fd import Lite0Features
    from vidcolor.pipeline import Colorizer
    from vidcolor.train.evaluate import _stats, measure, pack_frames, summarise

    images = [rgb for _, rgb in pack_frames(a.pack, limit=a.val_frames)]
    features = Lite0Features()
    truth = _stats([features(image) for image in images])
    colorizer = Colorizer(a.model, device="cpu", smoothing="none", engine="torch")
    fn, _ = build(kind, a.model, colorizer.cpu_threads, a.workdir, a.pack)

    class Swapped:
        name, size_multiple = kind, colorizer.engine.size_multiple

        def __call__(self, x: torch.Tensor) -> Any:
            return fn(x)[0]

    colorizer.engine = Swapped()
    s = summarise(measure(colorizer, images, features), truth)
    return {"psnr": s.psnr, "fd_lite0": s.fd_lite0, "cf_ratio": s.colorfulness_ratio, "frames": s.count}


def child(a: argparse.Namespace, kind: str, task: str) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE), "--worker", kind, "--task", task, "--model", str(a.model),
           "--workdir", str(a.workdir), "--batches", str(a.batches), "--val-frames", str(a.val_frames)]
    if a.pack:
        cmd += ["--pack", str(a.pack)]
    if a.threads:
        cmd += ["--threads", str(a.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["failed"])[-1][:160]}
    return json.loads(lines[-1])


def compare(a: argparse.Namespace) -> dict[str, Any]:
    kinds = [k for k in a.engines.split(",")]
    speed: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for r in range(a.repeats):
        order = kinds[r % len(kinds):] + kinds[: r % len(kinds)]
        for kind in order:
            speed[kind].append(child(a, kind, "speed"))
            print(f"repeat {r + 1} {kind}: {speed[kind][-1]}", file=sys.stderr, flush=True)
    colour = {k: child(a, k, "colours") for k in kinds} if a.pack and a.val_frames else {}
    rows = {}
    base = statistics.median(s["fps"] for s in speed[BASELINE] if "fps" in s) if BASELINE in speed else None
    for kind in kinds:
        ok = [s for s in speed[kind] if "fps" in s]
        row: dict[str, Any] = {"error": speed[kind][0].get("error")} if not ok else {
            "fps": statistics.median(s["fps"] for s in ok), "build_s": statistics.median(s["build_s"] for s in ok)}
        if ok and base:
            row["x_torch"] = row["fps"] / base
        row.update({f"val_{k}": v for k, v in colour.get(kind, {}).items()})
        rows[kind] = row
    from vidcolor.machine import cpu_name

    return {"machine": cpu_name(), "cores": __import__("os").cpu_count(), "torch": torch.__version__,
            "shape": SHAPE, "repeats": a.repeats, "rows": rows}


def table(result: dict[str, Any]) -> str:
    base = result["rows"].get(BASELINE, {})
    lines = [f"{result['machine']}, {result['cores']} cores, torch {result['torch']}, batch {result['shape'][0]} "
             f"at {result['shape'][2]}x{result['shape'][3]}, {result['repeats']} repeats (medians)",
             "| engine | model fps | × torch | build s | val PSNR | ΔPSNR | val fd_lite0 | Δfd |", "|---" * 8 + "|"]
    for kind, r in result["rows"].items():
        if "fps" not in r:
            lines.append(f"| {kind} | not run: {r.get('error')} |||||||")
            continue
        dp = r.get("val_psnr", float("nan")) - base.get("val_psnr", float("nan"))
        dfd = r.get("val_fd_lite0", float("nan")) / base.get("val_fd_lite0", float("nan")) - 1
        lines.append(f"| {kind} | {r['fps']:.2f} | {r.get('x_torch', float('nan')):.2f} | {r['build_s']:.1f} | "
                     f"{r.get('val_psnr', float('nan')):.3f} | {dp:+.3f} | {r.get('val_fd_lite0', float('nan')):.2f} | "
                     f"{100 * dfd:+.1f} % |")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    from vidcolor.modelfiles import default_model_path

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=default_model_path(), help="checkpoint (with its int8 copy beside it)")
    p.add_argument("--pack", type=Path, help="pack whose validation frames check the colours (training frames "
                                             "calibrate torch-int8)")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batches", type=int, default=8, help="timed batches per measurement")
    p.add_argument("--val-frames", type=int, default=120, help="validation frames for the colour check (0: none)")
    p.add_argument("--threads", type=int, help="model threads [as `vidcolor run`]")
    p.add_argument("--json", type=Path)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--task", help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    if a.worker:
        out = worker_speed(a) if a.task == "speed" else colours(a.worker, a)
        print(json.dumps(out))
        return
    with tempfile.TemporaryDirectory() as tmp:
        a.workdir = Path(tmp)
        result = compare(a)
    text = table(result)
    print(text)
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
