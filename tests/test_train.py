"""Training: packing, a falling loss, exact resume (folder, in-memory and tensor packs), export, checkpoint
choice, and a two-process (gloo) run."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import av
import kornia_rs
import numpy as np
import pytest
import torch

from vidcolor.checkpoint import load_generator
from vidcolor.errors import VidcolorError
from vidcolor.train.config import TrainConfig
from vidcolor.train.datasets import FramePack, MemoryFrames
from vidcolor.train.export import export_run
from vidcolor.train.loop import fit, load_state
from vidcolor.train.model import Trainer
from vidcolor.train.pack import prepare_pack, spread, write_tensor_pack

TINY = {"num_downs": 5, "ngf": 8}
ROOT = Path(__file__).resolve().parents[1]
TINY_RECIPE = """# a tiny pix2pix U-Net for tests
arch = "unet"
pretrained = false
ndf = 8
size = 32
batch = 4
steps = 4
pretrain_steps = 2
ckpt_every = 2
val_max = 4
val_images = 2
val_fd = false
decay = 0.0
lr = 1e-3

[generator]
num_downs = 5
ngf = 8
"""


def scene(i: int, h: int = 72, w: int = 96) -> np.ndarray:
    """A colourful frame whose content changes with i (no two alike)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (xx * 255 // w + 37 * i) % 256
    img[..., 1] = (yy * 255 // h + 11 * i) % 256
    img[..., 2] = 128
    x0 = (7 * i) % (w - 20)
    img[10:30, x0:x0 + 20] = (20, 200, 40)
    return img


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    kornia_rs.io.write_image_jpeg(str(path), np.ascontiguousarray(rgb), "rgb", 95)


def write_clip(path: Path, first: int, count: int, every_frame_new: bool = True) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        stream.options = {"crf": "10"}
        for i in range(count):
            frame = scene(first + i if every_frame_new else first)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def photo_pack(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("photos")
    for i in range(24):
        write_jpeg(src / f"p{i:02d}.jpg", scene(i))
    pack = tmp_path_factory.mktemp("pack")
    stats = prepare_pack([src], pack, size=48, val_every=6)
    assert stats.kept == 24
    return pack


@pytest.fixture(scope="module")
def tensor_pack(photo_pack, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tensor") / "pack.pt"
    write_tensor_pack(photo_pack, path, side=40, mib=1)
    return path


def cfg_for(pack: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=str(pack), out=str(out), arch="unet", generator=TINY, pretrained=False, size=32,
                batch=4, steps=10, pretrain_steps=5, ndf=8, workers=0, ckpt_every=5,
                val_max=8, val_images=2, lr=1e-3, decay=0.0, precision="fp32")
    base.update(kw)
    return TrainConfig(**base)


def test_prepare_counts_video_frames(tmp_path):
    pack = tmp_path / "pack"
    stats = prepare_pack([write_clip(tmp_path / "clip.mp4", 0, 20)], pack, size=48, every=3)
    assert stats.kept == 7  # frames 0, 3, ..., 18
    frames = FramePack(pack, "train").items + FramePack(pack, "val").items
    assert len(frames) == 7 and all(min(f["h"], f["w"]) == 48 for f in frames)
    # A static clip collapses to one frame: the rest are near-duplicates.
    stats = prepare_pack([write_clip(tmp_path / "static.mp4", 0, 12, False)], tmp_path / "pack2", size=48, every=1)
    assert stats.kept == 1 and stats.duplicates == 11


def _splits(pack: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for split in ("train", "val"):
        for f in FramePack(pack, split).items:
            out.setdefault(f["source"].split("#")[0], set()).add(split)
    return out


def test_prepare_can_hold_out_whole_files(tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    for k in range(4):
        write_clip(src / f"v{k}.mp4", 10 * k, 6)
    prepare_pack([src], tmp_path / "pack", size=48, every=1, val_files=2)
    assert _splits(tmp_path / "pack") == {"v0.mp4": {"train"}, "v1.mp4": {"val"}, "v2.mp4": {"train"},
                                          "v3.mp4": {"val"}}


def test_val_sources_hold_out_whole_groups_folders_and_files(tmp_path):
    """--val-sources takes a source group, a folder inside one, or a file, and holds each out whole."""
    clips, photos, faces = tmp_path / "clips", tmp_path / "photos", tmp_path / "faces"
    (clips / "street").mkdir(parents=True)
    write_clip(clips / "street" / "a.mp4", 0, 4)
    write_clip(clips / "street" / "b.mp4", 10, 4)
    write_clip(clips / "c.mp4", 20, 4)
    write_clip(clips / "d.mp4", 30, 4)
    photos.mkdir()
    faces.mkdir()
    for i in range(3):
        write_jpeg(photos / f"p{i}.jpg", scene(40 + i))
        write_jpeg(faces / f"f{i}.jpg", scene(50 + i))
    pack = tmp_path / "pack"
    stats = prepare_pack([clips, photos, faces], pack, size=48, every=1, val_sources=("street", "d.mp4", "faces"))
    splits = _splits(pack)
    assert splits["a.mp4"] == splits["b.mp4"] == splits["d.mp4"] == {"val"} and splits["c.mp4"] == {"train"}
    assert all(splits[f"f{i}.jpg"] == {"val"} and splits[f"p{i}.jpg"] == {"train"} for i in range(3))
    assert stats.held_out == {"street", "d.mp4", "faces"}
    with pytest.raises(VidcolorError, match="--val-sources names stret"):
        prepare_pack([clips], tmp_path / "pack2", size=48, val_sources=("stret",))


def test_validation_subset_spreads_over_the_split():
    # A held-out split is ordered by source: the subset must reach its last group too.
    assert spread(10, 3) == [0, 3, 6]
    assert spread(4, 10) == [0, 1, 2, 3]
    picked = spread(1500, 256)
    assert len(set(picked)) == 256 and picked[-1] >= 1490


def test_prepare_drops_gray_frames(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_jpeg(src / "gray.jpg", np.repeat(scene(1).mean(2, keepdims=True).astype(np.uint8), 3, axis=2))
    write_jpeg(src / "colour.jpg", scene(1))
    stats = prepare_pack([src], tmp_path / "pack", size=48)
    assert stats.kept == 1 and stats.colourless == 1


def test_datasets_are_deterministic(photo_pack, tensor_pack):
    from vidcolor.train.datasets import TensorFrames
    a, b = FramePack(photo_pack, crop=32, seed=3), FramePack(photo_pack, crop=32, seed=3)
    assert a[5].shape == (3, 32, 32) and torch.equal(a[5], b[5])
    b.epoch = 1
    assert not torch.equal(a[5], b[5])  # a new epoch draws new crops
    for kind in (lambda: MemoryFrames(photo_pack, crop=32, seed=3), lambda: TensorFrames(tensor_pack, crop=32, seed=3)):
        a, b = kind(), kind()
        x = a.batch([1, 2, 3])
        assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
        assert torch.equal(x, b.batch([1, 2, 3]))
        b.epoch = 1
        assert not torch.equal(x, b.batch([1, 2, 3]))


def test_loss_falls(photo_pack, tmp_path):
    torch.manual_seed(0)
    cfg = cfg_for(photo_pack, tmp_path / "run", steps=25, pretrain_steps=25, degrade=0.0, lr=3e-3)
    trainer = Trainer(cfg, torch.device("cpu"))
    fixed = torch.stack([FramePack(photo_pack, crop=32, augment=False)[i] for i in range(8)])
    losses = []
    for _ in range(cfg.steps):
        trainer.set_input(fixed)
        losses.append(trainer.optimize_parameters()["L1"])
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def test_tiny_effnet_run_lowers_its_loss(photo_pack, tmp_path):
    torch.manual_seed(0)
    cfg = cfg_for(photo_pack, tmp_path / "run", arch="effnet_unet", generator={"decoder_channels": [16, 16, 16, 8]},
                  in_memory=True, steps=30, pretrain_steps=30, degrade=0.0, lr=3e-3, beta1=0.9)
    losses = losses_on_one_batch(Trainer(cfg, torch.device("cpu")), 8, "L1")
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def losses_on_one_batch(trainer: Trainer, size: int, key: str) -> list[float]:
    """`key`'s loss at every step of the trainer's schedule, always on the same batch of `size` frames."""
    fixed, losses = trainer.data.first(size), []
    for _ in range(trainer.cfg.steps):
        trainer.set_input(fixed)
        losses.append(trainer.optimize_parameters()[key])
    return losses


def _interrupted_and_whole(pack: Path, tmp_path: Path, stop: int, **kw) -> dict:
    """Steps seen after resuming a run interrupted at `stop`; its final weights equal the whole run's."""
    full = Trainer(cfg_for(pack, tmp_path / "a", **kw), torch.device("cpu"))
    fit(full, tmp_path / "a", log=lambda _m: None)
    part = Trainer(cfg_for(pack, tmp_path / "b", **{**kw, "steps": stop}), torch.device("cpu"))
    fit(part, tmp_path / "b", log=lambda _m: None)
    state = load_state(tmp_path / "b")
    cfg = TrainConfig(**state["config"])
    cfg.steps = full.cfg.steps
    resumed = Trainer(cfg, torch.device("cpu"))
    resumed.load_state_dict(state)
    seen: dict = {}
    fit(resumed, tmp_path / "b", on_step=lambda s, l, _v: seen.setdefault(s, l), log=lambda _m: None)
    a, b = load_state(tmp_path / "a"), load_state(tmp_path / "b")
    for net in ("G", "D"):
        for key in a[net]:
            torch.testing.assert_close(a[net][key], b[net][key], rtol=0, atol=1e-6)
    rows_a = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    rows_b = list(csv.DictReader((tmp_path / "b" / "metrics.csv").open()))
    assert rows_a[-1]["L1"] == rows_b[-1]["L1"]
    return seen


@pytest.mark.parametrize("source", ["folder", "in-memory", "tensor"])
def test_resume_is_exact(photo_pack, tensor_pack, tmp_path, source):
    # Interrupted after 7 steps (mid-epoch, in the GAN phase), then resumed from disk.
    kw = {"folder": {}, "in-memory": {"in_memory": True}, "tensor": {"data": str(tensor_pack)}}[source]
    assert set(_interrupted_and_whole(photo_pack, tmp_path, 7, val_fd=False, **kw)) == {8, 9, 10}


def test_export_then_load(photo_pack, tmp_path):
    run = tmp_path / "run"
    fit(Trainer(cfg_for(photo_pack, run, steps=5), torch.device("cpu")), run, log=lambda _m: None)
    assert (run / "recipe.toml").exists() and list(run.glob("val_*.png"))
    assert (run / "val_0000005.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    path, meta = export_run(run, tmp_path / "model.pt")
    assert meta["steps"] == 5 and "val_psnr" in meta["validation"] and meta["recipe"]["size"] == 32
    raw = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    net, info = load_generator(path)
    with torch.inference_mode():
        out = net(torch.zeros(1, 1, 32, 32))
    assert out.shape == (1, 2, 32, 32) and info["meta"]["steps"] == 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_fit(pack: Path, run: Path, recipe: Path, device: str, ckpt_every: int) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=2 -m vidcolor.train fit` of 4 tiny steps (2 of them L1-only)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "vidcolor.train", "fit", "--recipe", str(recipe), "--data",
           str(pack), "--out", str(run), "--set", "batch=2", "--set", f"ckpt_every={ckpt_every}", "--workers", "0",
           "--device", device]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def test_two_process_gloo_run(photo_pack, tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    run = tmp_path / "ddp"
    proc = _torchrun_fit(photo_pack, run, recipe, "cpu", ckpt_every=4)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = load_state(run)
    assert state["step"] == 4 and state["config"]["batch"] == 2 and "batch = 2" in (run / "recipe.toml").read_text()
    # the two processes trained: the weights moved from their (seeded) start and stayed finite, and the
    # checkpoint row carries the all-reduced L1
    fresh = Trainer(cfg_for(photo_pack, tmp_path / "fresh", batch=2, ndf=8, seed=0), torch.device("cpu")).G.state_dict()
    moved = [k for k, v in state["G"].items() if v.is_floating_point() and not torch.equal(v, fresh[k])]
    assert len(moved) > len(fresh) // 2, moved
    assert all(torch.isfinite(v).all() for v in state["G"].values() if v.is_floating_point())
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["step"] for r in rows] == ["4"] and 0 < float(rows[0]["L1"]) < 10


def test_checkpoint_all_reduces_on_the_run_device(monkeypatch, tmp_path):
    """NCCL reduces only CUDA tensors: the checkpoint's loss must be all-reduced on the trainer's device
    (a CPU tensor there fails every multi-GPU run). Checked on the `meta` device, so it runs anywhere."""
    from types import SimpleNamespace

    import vidcolor.train.dist
    from vidcolor.train.dist import DistInfo
    from vidcolor.train.loop import checkpoint

    devices = []
    monkeypatch.setattr(vidcolor.train.dist.dist, "all_reduce", lambda tensor: devices.append(tensor.device))
    trainer = SimpleNamespace(device=torch.device("meta"), info=DistInfo(rank=1, world=2, local_rank=1))
    checkpoint(trainer, tmp_path, {"L1": 0.5}, None, log=lambda _m: None)
    assert devices == [torch.device("meta")]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs (NCCL)")
def test_two_process_nccl_run(photo_pack, tmp_path):
    """The torchrun path on GPUs, where NCCL rejects a CPU tensor in all_reduce."""
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    proc = _torchrun_fit(photo_pack, tmp_path / "nccl", recipe, "cuda", ckpt_every=2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert load_state(tmp_path / "nccl")["step"] == 4


def test_exported_model_runs_a_video(photo_pack, tmp_path, make_video, read_video):
    """export -> `vidcolor run --model` -> a complete video with the source's frame count."""
    from click.testing import CliRunner

    from vidcolor.cli import cli
    run = tmp_path / "run"
    fit(Trainer(cfg_for(photo_pack, run, steps=3, pretrain_steps=3), torch.device("cpu")), run, log=lambda _m: None)
    model, _ = export_run(run, tmp_path / "model.pt")
    src = make_video(tmp_path / "in.mp4", width=96, height=64, frames=6)
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(cli, ["run", str(src), "-o", str(out), "--model", str(model), "--render-size", "32",
                                       "--preset", "ultrafast"])
    assert result.exit_code == 0, result.output
    assert len(read_video(out).pts) == 6


def test_export_writes_the_int8_copy_run_takes_unless_told_not_to(photo_pack, tmp_path):
    """`train export` quantizes on the run's own pack, so a user's model is as fast on a CPU as the shipped one."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import hashlib
    import shutil

    from click.testing import CliRunner

    from vidcolor.modelfiles import SOURCE_KEY, int8_path
    from vidcolor.pipeline import Colorizer
    from vidcolor.train.cli import train as train_cli

    pack = tmp_path / "pack"
    shutil.copytree(photo_pack, pack)
    run = tmp_path / "run"
    fit(Trainer(cfg_for(pack, run, steps=2, pretrain_steps=2), torch.device("cpu")), run, log=lambda _m: None)
    result = CliRunner().invoke(train_cli, ["export", str(run), "-o", str(tmp_path / "mine.pt")])
    assert result.exit_code == 0, result.output
    copy = int8_path(tmp_path / "mine.pt")
    assert copy.is_file() and f"wrote {copy}" in result.output
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(copy)).metadata_props}
    assert meta[SOURCE_KEY] == hashlib.sha256((tmp_path / "mine.pt").read_bytes()).hexdigest()
    assert Colorizer(tmp_path / "mine.pt", device="cpu").engine.name == "onnxruntime int8"
    result = CliRunner().invoke(train_cli, ["export", str(run), "-o", str(tmp_path / "plain.pt"), "--no-int8"])
    assert result.exit_code == 0 and not int8_path(tmp_path / "plain.pt").exists()
    with pytest.MonkeyPatch.context() as mp:  # a torch-only machine (the GPU script's): no ONNX, no PyAV
        mp.setitem(sys.modules, "vidcolor.train.quantize", None)
        result = CliRunner().invoke(train_cli, ["export", str(run), "-o", str(tmp_path / "bare.pt")])
    assert result.exit_code == 0 and (tmp_path / "bare.pt").is_file() and not int8_path(tmp_path / "bare.pt").exists()
    assert "no int8 copy:" in result.output and "train quantize" in result.output
    shutil.rmtree(pack)  # the pack moved away: the model is still written, with a note on how to quantize later
    result = CliRunner().invoke(train_cli, ["export", str(run), "-o", str(tmp_path / "later.pt")])
    assert result.exit_code == 0 and (tmp_path / "later.pt").is_file() and not int8_path(tmp_path / "later.pt").exists()
    assert "no int8 copy: the run's pack is not found" in result.output and "train quantize" in result.output


def test_default_model_colours_a_frame():
    """The shipped model loads safely and predicts clearly non-gray colour for a natural-looking scene."""
    from vidcolor.modelfiles import default_model_path
    from vidcolor.color import rgb_luma, rgb_to_lab
    from vidcolor.colorspec import rgb_frame_spec
    from vidcolor.pipeline import Colorizer
    if not default_model_path().is_file():
        pytest.skip("no default model installed")
    yy = torch.linspace(0, 1, 128).view(1, 1, 128, 1).expand(1, 3, 128, 192)
    scene_ = torch.cat([0.85 - 0.3 * yy[:, :1, :64], 0.3 + 0.2 * yy[:, :1, 64:]], dim=2).expand(1, 3, 128, 192)
    out = Colorizer(smoothing="none", device="cpu").colorize(scene_.contiguous())
    chroma = rgb_to_lab(out)[:, 1:].pow(2).sum(1).sqrt().mean()
    assert chroma > 3.0
    spec = rgb_frame_spec(128)  # the luma is kept, as `vidcolor run` keeps the Y plane
    torch.testing.assert_close(rgb_luma(out, spec), rgb_luma(scene_, spec), atol=2e-3, rtol=0)


def test_precision_measurement_leaves_the_network_alone(photo_pack, tmp_path, monkeypatch):
    from vidcolor.train import precision
    from vidcolor.train.augment import to_lab_batch
    trainer = Trainer(cfg_for(photo_pack, tmp_path / "run"), torch.device("cpu"))
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    L, ab = to_lab_batch(trainer.data.first(4))
    result = precision.measure(trainer.G, L, lambda fake: (fake - ab).abs().mean(), repeats=1)
    assert set(result.timings) >= {"fp32", "fp32+channels_last"} and result.sound["fp32"]
    assert all(torch.equal(before[k], v) for k, v in trainer.G.state_dict().items())
    assert all(p.grad is None for p in trainer.G.parameters())
    # bf16 only where the CPU has it natively; a candidate far slower than the fastest warm-up is not timed.
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert all(dtype is None for dtype, _ in precision._candidates(torch.device("cpu")))
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr(precision, "GIVE_UP_RATIO", 0.0)
    result = precision.measure(trainer.G, L, lambda fake: (fake - ab).abs().mean(), repeats=1)
    assert set(result.timings) == {"fp32", "fp32+channels_last", "bf16", "bf16+channels_last"}
    assert set(result.sound) == {"fp32"} and result.amp_dtype is None and not result.channels_last
    assert precision.choose("auto", torch.device("cpu"), lambda: result) is result
    assert precision.choose("bf16", torch.device("cpu"), lambda: result).amp_dtype == torch.bfloat16


def test_pick_best_checkpoint_by_the_rule():
    from vidcolor.train.select import from_metrics, pick_best
    rows = [
        {"step": 100, "psnr": 22.0, "psnr_gray": 22.5, "fd": 10.0},   # worse than gray
        {"step": 200, "psnr": 23.0, "psnr_gray": 22.5, "fd": 30.0},
        {"step": 300, "psnr": 22.8, "psnr_gray": 22.5, "fd": 20.0},   # chosen
        {"step": 400, "psnr": 23.5, "psnr_gray": 22.5, "fd": 25.0},
    ]
    assert pick_best(rows, 0.0, 0.8)["step"] == 300
    assert pick_best(rows, 0.6, 0.8)["step"] == 100  # within the margin of gray: eligible, lowest fd
    assert pick_best(rows[:1], 0.0, 0.8)["step"] == 100  # nothing qualifies: the best PSNR
    no_fd = [{k: v for k, v in r.items() if k != "fd"} | {"cf_ratio": 0.4 * i} for i, r in enumerate(rows)]
    assert pick_best(no_fd, 0.0, 0.8)["step"] == 400  # the most colourful (ratio capped at 1), then PSNR
    assert pick_best([], 0.0, 0.8) is None
    coloured = [r | {"cf_ratio": cf} for r, cf in zip(rows, (1.0, 0.5, 0.75, 0.83))]
    assert pick_best(coloured, 0.0, 0.8)["step"] == 400  # vivid enough beats a lower fd
    assert pick_best(coloured, 0.0, 0.9)["step"] == 300
    metrics = [{"step": 2.0, "val_psnr": 23.0, "val_psnr_gray": 22.0, "val_colorfulness": 20.0,
                "val_colorfulness_truth": 40.0, "val_fd_lite0": 5.0}]
    assert from_metrics(metrics) == [{"step": 2.0, "psnr": 23.0, "psnr_gray": 22.0, "cf_ratio": 0.5, "fd": 5.0}]


def test_ship_rule_by_hand():
    from vidcolor.train.select import ship_check
    shipped = {"fd": 40.0, "psnr": 25.0}
    good = {"fd": 37.9, "cf_ratio": 0.95, "psnr": 24.85}
    assert [ok for _, ok in ship_check(good, shipped, 0.05, [0.8, 1.2], 0.2)] == [True, True, True]
    bad = {"fd": 38.5, "cf_ratio": 1.25, "psnr": 24.7}  # 3.75 % lower fd, too colourful, 0.3 dB lower
    checks = ship_check(bad, shipped, 0.05, [0.8, 1.2], 0.2)
    assert [ok for _, ok in checks] == [False, False, False] and "38.0" in checks[0][0]


def _fit_cli(*args: str):
    from click.testing import CliRunner

    from vidcolor.train.cli import train as train_cli
    return CliRunner().invoke(train_cli, ["fit", *args])


def test_a_run_started_with_a_relative_pack_resumes_from_another_folder(photo_pack, tmp_path, monkeypatch):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    monkeypatch.chdir(photo_pack.parent)
    res = _fit_cli("--recipe", str(recipe), "--data", photo_pack.name, "--out", str(tmp_path / "run"), "--workers", "0",
                   "--precision", "fp32", "--set", "pretrain_steps=2", "--set", "steps=2")
    assert res.exit_code == 0, res.output
    monkeypatch.chdir(tmp_path)
    res = _fit_cli("--resume", str(tmp_path / "run"), "--set", "steps=4")
    assert res.exit_code == 0, res.output
    assert load_state(tmp_path / "run")["step"] == 4


def test_export_best_and_resume_with_sets(photo_pack, tmp_path):
    from click.testing import CliRunner

    from vidcolor.train.cli import train as train_cli
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    run = tmp_path / "run"
    res = _fit_cli("--recipe", str(recipe), "--data", str(photo_pack), "--out", str(run), "--workers", "0",
                   "--precision", "fp32", "--set", "pretrain_steps=4")
    assert res.exit_code == 0, res.output
    group = FramePack(photo_pack).items[0]["group"]
    res = _fit_cli("--resume", str(run), "--set", "steps=6", "--set", "real_label=0.8", "--set", f"mix.{group}=5")
    assert res.exit_code == 0, res.output
    state = load_state(run)
    assert state["step"] == 6 and state["config"]["real_label"] == 0.8 and state["config"]["mix"] == {group: 5}
    assert "steps = 6" in (run / "recipe.toml").read_text()
    for bad, message in ((["--set", "size=64"], "cannot change: size"), (["--set", "mix.vidoes=5"], "vidoes"),
                         (["--recipe", "default"], "keeps the run's own recipe"),
                         (["--out", str(tmp_path / "other")], "continues RUN in place")):
        res = _fit_cli("--resume", str(run), *bad)
        assert res.exit_code != 0 and message in str(res.exception), (bad, res.exception)
    assert load_state(run)["step"] == 6 and not (tmp_path / "other").exists()
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    path, meta = export_run(run, tmp_path / "best.pt", pick="best")
    assert meta["picked"] == "best" and meta["steps"] in (2, 4, 6) and meta["chosen_on"] == "metrics.csv"
    path, meta = export_run(run, tmp_path / "s4.pt", pick="4")
    assert meta["steps"] == 4
    net, _ = load_generator(path)
    ref, _ = load_generator(run / "checkpoints" / "G_0000004.pt")
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(net.state_dict()[k], v, atol=2e-3, rtol=1e-3)  # fp16 export
    # Averaged checkpoints: each weight is the mean of the picked steps' weights.
    path, meta = export_run(run, tmp_path / "avg.pt", pick="6,2")
    assert meta["steps"] == 6 and meta["averaged_steps"] == [2, 6] and "validation" not in meta
    avg, _ = load_generator(path)
    s2, s6 = (load_generator(run / "checkpoints" / f"G_000000{s}.pt")[0].state_dict() for s in (2, 6))
    moved = 0
    for k, v in avg.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, (s2[k] + s6[k]) / 2, atol=2e-3, rtol=1e-3)
            moved += int(not torch.allclose(s2[k], s6[k]))
    assert moved > 0  # the two steps differ, so the average is neither of them
    with pytest.raises(VidcolorError, match="G_0000003.pt is missing"):
        export_run(run, tmp_path / "bad.pt", pick="2,3")
    res = CliRunner().invoke(train_cli, ["export", str(run), "-o", str(tmp_path / "x.pt"), "--pick", "2,x"])
    assert res.exit_code != 0 and "steps S1,S2" in res.output
    res = _fit_cli("--recipe", str(recipe), "--data", str(photo_pack), "--out", str(run))
    assert res.exit_code != 0 and "already holds a run" in str(res.exception)


def test_average_state_dicts_means_floats_and_keeps_counters():
    from vidcolor.train.export import average_state_dicts
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    out = average_state_dicts([a, b])
    assert out["w"].tolist() == [2.0, 4.0] and out["n"].item() == 9 and out["n"].dtype == torch.int64


def test_crop_scale_bounds_limit_what_a_crop_covers():
    """The crop of a frame whose value is its column covers at most sqrt(max area x 4/3) of the width."""
    from vidcolor.train.augment import random_resized_crop
    img = torch.arange(400, dtype=torch.float32).repeat(3, 300, 1) / 400
    for seed in range(20):
        small = random_resized_crop(img, 64, torch.Generator().manual_seed(seed), scale=(0.05, 0.1))
        span = float(small.amax() - small.amin()) * 400
        assert span <= (0.1 * 400 * 300 * 4 / 3) ** 0.5 + 2, seed
        big = random_resized_crop(img, 64, torch.Generator().manual_seed(seed), scale=(0.8, 1.0))
        assert float(big.amax() - big.amin()) * 400 > 250
