"""Training: packing, a falling loss, exact resume, export, and a two-process (gloo) run."""

from __future__ import annotations

import csv
import json
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

from vidcolor.train.data import FramePack, prepare_pack, spread
from vidcolor.train.export import export_run
from vidcolor.train.loop import TrainConfig, Trainer, fit, load_state
from vidcolor.checkpoint import load_generator
from vidcolor.errors import VidcolorError

TINY = {"num_downs": 5, "ngf": 8}
ROOT = Path(__file__).resolve().parents[1]


def _scene(i: int, h: int = 72, w: int = 96) -> np.ndarray:
    """A colourful frame whose content changes with i (no two alike)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (xx * 255 // w + 37 * i) % 256
    img[..., 1] = (yy * 255 // h + 11 * i) % 256
    img[..., 2] = 128
    x0 = (7 * i) % (w - 20)
    img[10:30, x0:x0 + 20] = (20, 200, 40)
    return img


def _write_jpeg(path: Path, rgb: np.ndarray) -> None:
    kornia_rs.io.write_image_jpeg(str(path), np.ascontiguousarray(rgb), "rgb", 95)


@pytest.fixture(scope="module")
def photo_pack(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("photos")
    for i in range(24):
        _write_jpeg(src / f"p{i:02d}.jpg", _scene(i))
    pack = tmp_path_factory.mktemp("pack")
    stats = prepare_pack([src], pack, size=48, val_every=6)
    assert stats.kept == 24
    return pack


def _cfg(pack: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=str(pack), out=str(out), arch="unet", gen_config=TINY, pretrained=False, size=32,
                batch=4, steps=10, phase="both", pretrain_steps=5, ndf=8, workers=0, ckpt_every=5,
                val_max=8, val_images=2, lr=1e-3, decay=0.0, precision="fp32")
    base.update(kw)
    return TrainConfig(**base)


def test_prepare_counts_video_frames(tmp_path):
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        stream.options = {"crf": "10"}
        for i in range(20):
            for pkt in stream.encode(av.VideoFrame.from_ndarray(_scene(i), format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    pack = tmp_path / "pack"
    stats = prepare_pack([path], pack, size=48, every=3)
    assert stats.kept == 7  # frames 0, 3, ..., 18
    meta = json.loads((pack / "index.json").read_text())
    assert len(meta["frames"]) == 7 and all(min(f["h"], f["w"]) == 48 for f in meta["frames"])
    # A static clip collapses to one frame: the rest are near-duplicates.
    static = tmp_path / "static.mp4"
    with av.open(str(static), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
        for _ in range(12):
            for pkt in stream.encode(av.VideoFrame.from_ndarray(_scene(0), format="rgb24")):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    stats = prepare_pack([static], tmp_path / "pack2", size=48, every=1)
    assert stats.kept == 1 and stats.duplicates == 11


def test_prepare_can_hold_out_whole_files(tmp_path):
    src = tmp_path / "videos"
    for k in range(4):
        with av.open(str(src.mkdir(exist_ok=True) or src / f"v{k}.mp4"), "w") as out:
            stream = out.add_stream("libx264", rate=10)
            stream.width, stream.height, stream.pix_fmt = 96, 72, "yuv420p"
            for i in range(6):
                out.mux(stream.encode(av.VideoFrame.from_ndarray(_scene(10 * k + i), format="rgb24")))
            out.mux(stream.encode(None))
    prepare_pack([src], tmp_path / "pack", size=48, every=1, val_files=2)
    frames = json.loads((tmp_path / "pack" / "index.json").read_text())["frames"]
    split = {f["source"].split("#")[0]: set() for f in frames}
    for f in frames:
        split[f["source"].split("#")[0]].add(f["split"])
    assert split == {"v0.mp4": {"train"}, "v1.mp4": {"val"}, "v2.mp4": {"train"}, "v3.mp4": {"val"}}


def test_validation_subset_spreads_over_the_split():
    # A held-out split is ordered by source: the subset must reach its last group too.
    assert spread(10, 3) == [0, 3, 6]
    assert spread(4, 10) == [0, 1, 2, 3]
    picked = spread(1500, 256)
    assert len(set(picked)) == 256 and picked[-1] >= 1490


def test_prepare_drops_gray_frames(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    gray = np.repeat(_scene(1).mean(2, keepdims=True).astype(np.uint8), 3, axis=2)
    _write_jpeg(src / "gray.jpg", gray)
    _write_jpeg(src / "colour.jpg", _scene(1))
    stats = prepare_pack([src], tmp_path / "pack", size=48)
    assert stats.kept == 1 and stats.colourless == 1


def test_dataset_is_deterministic(photo_pack):
    a, b = FramePack(photo_pack, crop=32, seed=3), FramePack(photo_pack, crop=32, seed=3)
    assert a[5].shape == (3, 32, 32)
    assert torch.equal(a[5], b[5])
    b.epoch = 1
    assert not torch.equal(a[5], b[5])  # a new epoch draws new crops


def test_loss_falls(photo_pack, tmp_path):
    torch.manual_seed(0)
    cfg = _cfg(photo_pack, tmp_path / "run", phase="pretrain", steps=25, degrade=0.0, lr=3e-3)
    trainer = Trainer(cfg, torch.device("cpu"))
    fixed = torch.stack([FramePack(photo_pack, crop=32, augment=False)[i] for i in range(8)])
    losses = []
    for _ in range(cfg.steps):
        trainer.set_input(fixed)
        losses.append(trainer.optimize_parameters()["L1"])
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def _interrupted_and_whole(pack: Path, tmp_path: Path, stop: int, **kw) -> tuple[dict, dict, dict]:
    """(whole run's state, interrupted-at-`stop`-then-resumed run's state, steps seen after resuming)."""
    full = Trainer(_cfg(pack, tmp_path / "a", **kw), torch.device("cpu"))
    fit(full, tmp_path / "a", log=lambda _m: None)
    part = Trainer(_cfg(pack, tmp_path / "b", **{**kw, "steps": stop}), torch.device("cpu"))
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
    return a, b, seen


def test_resume_is_exact(photo_pack, tmp_path):
    # Interrupted after 7 steps (mid-epoch, in the GAN phase), then resumed from disk.
    _, _, seen = _interrupted_and_whole(photo_pack, tmp_path, 7)
    assert set(seen) == {8, 9, 10}
    rows_a = list(csv.DictReader((tmp_path / "a" / "metrics.csv").open()))
    rows_b = list(csv.DictReader((tmp_path / "b" / "metrics.csv").open()))
    assert rows_a[-1]["L1"] == rows_b[-1]["L1"]


def test_export_then_load(photo_pack, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(_cfg(photo_pack, run, steps=5), torch.device("cpu"))
    fit(trainer, run, log=lambda _m: None)
    assert (run / "config.json").exists() and list(run.glob("val_*.png"))
    path, meta = export_run(run, tmp_path / "model.pt")
    assert meta["steps"] == 5 and "val_psnr" in meta["validation"]
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


def _torchrun_fit(pack: Path, run: Path, device: str, ckpt_every: int) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=2 -m vidcolor.train fit` of 4 tiny steps (2 of them L1-only)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", "-m", "vidcolor.train", "fit", "--data", str(pack), "--out", str(run),
           "--arch", "unet", "--gen-config", json.dumps(TINY), "--no-pretrained", "--size", "32", "--batch", "2",
           "--steps", "4", "--pretrain-steps", "2", "--ndf", "8", "--workers", "0", "--ckpt-every", str(ckpt_every),
           "--device", device]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)


def test_two_process_gloo_run(photo_pack, tmp_path):
    run = tmp_path / "ddp"
    proc = _torchrun_fit(photo_pack, run, "cpu", ckpt_every=4)
    assert proc.returncode == 0, proc.stderr[-2000:]
    state = load_state(run)
    assert state["step"] == 4 and json.loads((run / "config.json").read_text())["batch"] == 2
    # the two processes trained: the weights moved from their (seeded) start and stayed finite, and the
    # checkpoint row carries the all-reduced L1
    fresh = Trainer(_cfg(photo_pack, tmp_path / "fresh", batch=2, steps=4, pretrain_steps=2, ckpt_every=4),
                    torch.device("cpu")).G.state_dict()
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
    checkpoint(trainer, tmp_path, tmp_path / "metrics.csv", {"L1": 0.5}, log=lambda _m: None)
    assert devices == [torch.device("meta")]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs (NCCL)")
def test_two_process_nccl_run(photo_pack, tmp_path):
    """The torchrun path on GPUs, where NCCL rejects a CPU tensor in all_reduce."""
    run = tmp_path / "nccl"
    proc = _torchrun_fit(photo_pack, run, "cuda", ckpt_every=2)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert load_state(run)["step"] == 4


def test_exported_model_runs_a_video(photo_pack, tmp_path, make_video, read_video):
    """export -> `vidcolor run --model` -> a complete video with the source's frame count."""
    from click.testing import CliRunner

    from vidcolor.cli import cli
    run = tmp_path / "run"
    fit(Trainer(_cfg(photo_pack, run, steps=3, pretrain_steps=3), torch.device("cpu")), run, log=lambda _m: None)
    model, _ = export_run(run, tmp_path / "model.pt")
    src = make_video(tmp_path / "in.mp4", width=96, height=64, frames=6)
    out = tmp_path / "out.mp4"
    result = CliRunner().invoke(cli, ["run", str(src), "-o", str(out), "--model", str(model), "--render-size", "32",
                                       "--preset", "ultrafast"])
    assert result.exit_code == 0, result.output
    assert len(read_video(out).pts) == 6


def test_default_model_colours_a_frame():
    """The shipped model loads safely and predicts clearly non-gray colour for a natural-looking scene."""
    from vidcolor.checkpoint import default_model_path
    from vidcolor.color import rgb_luma, rgb_to_lab
    from vidcolor.pipeline import Colorizer
    from vidcolor.colorspec import rgb_frame_spec
    if not default_model_path().is_file():
        pytest.skip("no default model installed")
    yy = torch.linspace(0, 1, 128).view(1, 1, 128, 1).expand(1, 3, 128, 192)
    scene = torch.cat([0.85 - 0.3 * yy[:, :1, :64], 0.3 + 0.2 * yy[:, :1, 64:]], dim=2).expand(1, 3, 128, 192)
    out = Colorizer(smoothing="none", device="cpu").colorize(scene.contiguous())
    chroma = rgb_to_lab(out)[:, 1:].pow(2).sum(1).sqrt().mean()
    assert chroma > 3.0
    spec = rgb_frame_spec(128)  # the luma is kept, as `vidcolor run` keeps the Y plane
    torch.testing.assert_close(rgb_luma(out, spec), rgb_luma(scene, spec), atol=2e-3, rtol=0)


EFF_TINY = {"decoder_channels": [16, 16, 16, 8]}


def _eff_cfg(pack: Path, out: Path, **kw) -> TrainConfig:
    base = dict(arch="effnet_unet", gen_config=EFF_TINY, in_memory=True, freeze_encoder_bn=True,
                input_norm="tf", global_context=True, beta1=0.9)
    base.update(kw)
    return _cfg(pack, out, **base)


@pytest.mark.parametrize("head", ["regression", "bins"])
def test_tiny_run_of_each_head_lowers_its_loss(photo_pack, tmp_path, head):
    torch.manual_seed(0)
    cfg = _eff_cfg(photo_pack, tmp_path / "run", head=head, phase="pretrain", steps=30, degrade=0.0, lr=3e-3,
                   freeze_steps=10)
    trainer = Trainer(cfg, torch.device("cpu"))
    fixed = trainer.dataset.batch(list(range(8)))
    key = "CE" if head == "bins" else "L1"
    losses = []
    for _ in range(cfg.steps):
        trainer.set_input(fixed)
        losses.append(trainer.optimize_parameters()[key])
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5]), losses


def test_frozen_encoder_then_fine_tuned_at_lower_lr(photo_pack, tmp_path):
    cfg = _eff_cfg(photo_pack, tmp_path / "run", phase="pretrain", steps=6, freeze_steps=3, encoder_lr_mult=0.1)
    trainer = Trainer(cfg, torch.device("cpu"))
    enc0 = {k: v.clone() for k, v in trainer.G.encoder.state_dict().items()}
    dec0 = {k: v.clone() for k, v in trainer.G.decoder.state_dict().items()}
    for _ in range(3):
        trainer.set_input(trainer.next_batch())
        trainer.optimize_parameters()
    # Frozen: no weight and no BatchNorm statistic of the encoder moved; the decoder did.
    for k, v in trainer.G.encoder.state_dict().items():
        assert torch.equal(v, enc0[k]), k
    assert any(not torch.equal(v, dec0[k]) for k, v in trainer.G.decoder.state_dict().items())
    trainer.set_input(trainer.next_batch())
    trainer.optimize_parameters()
    moved = [k for k, v in trainer.G.encoder.state_dict().items() if not torch.equal(v, enc0[k])]
    assert any(k.endswith("weight") for k in moved)
    assert not any(k.endswith("running_mean") for k in moved)  # --freeze-encoder-bn keeps ImageNet's
    lrs = sorted(g["lr"] for g in trainer.opt_G.param_groups)
    assert lrs[0] == pytest.approx(0.1 * lrs[1])


def test_nogan_discriminator_pretraining_leaves_the_generator(photo_pack, tmp_path):
    cfg = _cfg(photo_pack, tmp_path / "run", steps=8, pretrain_steps=2, d_pretrain_steps=3, gan_lr=1e-5,
               d_lr_mult=5.0, in_memory=True)
    trainer = Trainer(cfg, torch.device("cpu"))
    for _ in range(2):
        trainer.set_input(trainer.next_batch())
        trainer.optimize_parameters()
    g0 = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    d0 = {k: v.clone() for k, v in trainer.D.state_dict().items()}
    for _ in range(3):
        trainer.set_input(trainer.next_batch())
        losses = trainer.optimize_parameters()
        assert "D" in losses and "G_gan" not in losses
    assert all(torch.equal(v, g0[k]) for k, v in trainer.G.state_dict().items())
    assert any(not torch.equal(v, d0[k]) for k, v in trainer.D.state_dict().items())
    assert trainer.opt_D.param_groups[0]["lr"] == pytest.approx(5e-5)
    trainer.set_input(trainer.next_batch())
    losses = trainer.optimize_parameters()  # the short GAN phase: G moves at the low LR
    assert "G_gan" in losses and trainer.opt_G.param_groups[0]["lr"] == pytest.approx(1e-5)
    assert any(not torch.equal(v, g0[k]) for k, v in trainer.G.state_dict().items())


def test_resume_is_exact_in_memory_with_nogan(photo_pack, tmp_path):
    # Interrupted inside the discriminator-only steps (4 and 5), resumed on the tensors in memory.
    _interrupted_and_whole(photo_pack, tmp_path, 5, in_memory=True, d_pretrain_steps=2, gan_lr=5e-4,
                           d_lr_mult=2.0, pretrain_steps=4)


def test_in_memory_batches_are_deterministic(photo_pack):
    from vidcolor.train.data import MemoryFrames
    a, b = MemoryFrames(photo_pack, crop=32, seed=3), MemoryFrames(photo_pack, crop=32, seed=3)
    assert a.images[0].dtype == torch.uint8
    x = a.batch([1, 2, 3])
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert torch.equal(x, b.batch([1, 2, 3]))
    b.epoch = 1
    assert not torch.equal(x, b.batch([1, 2, 3]))


def test_settings_measurement_leaves_the_networks_alone(photo_pack, tmp_path):
    from vidcolor.train.tune import choose_settings
    trainer = Trainer(_eff_cfg(photo_pack, tmp_path / "run", precision="fp32", head="bins"), torch.device("cpu"))
    before = {k: v.clone() for k, v in trainer.G.state_dict().items()}
    result = choose_settings(trainer, repeats=1)
    assert set(result["timings"]) >= {"fp32", "fp32+channels_last"}
    assert result["sound"]["fp32"] and result["amp_dtype"] in (None, torch.bfloat16)
    after = trainer.G.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in trainer.G.parameters())


def test_settings_skip_bf16_where_the_cpu_would_emulate_it(monkeypatch, photo_pack, tmp_path):
    from vidcolor.train import tune
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert all(dtype is None for dtype, _ in tune._candidates(torch.device("cpu")))
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert torch.bfloat16 in {dtype for dtype, _ in tune._candidates(torch.device("cpu"))}
    # A candidate far slower than the fastest warm-up so far is not timed further and cannot be chosen.
    monkeypatch.setattr(tune, "GIVE_UP_RATIO", 0.0)
    trainer = Trainer(_eff_cfg(photo_pack, tmp_path / "run", precision="fp32"), torch.device("cpu"))
    result = tune.choose_settings(trainer, repeats=1)
    assert set(result["timings"]) == {"fp32", "fp32+channels_last", "bf16", "bf16+channels_last"}
    assert set(result["sound"]) == {"fp32"} and result["amp_dtype"] is None and not result["channels_last"]


def test_pick_best_checkpoint_by_validation():
    from vidcolor.train.select import pick_best
    rows = [
        {"step": 100, "val_psnr": 22.0, "val_psnr_gray": 22.5, "val_fd_lite0": 10.0},   # worse than gray
        {"step": 200, "val_psnr": 23.0, "val_psnr_gray": 22.5, "val_fd_lite0": 30.0},
        {"step": 300, "val_psnr": 22.8, "val_psnr_gray": 22.5, "val_fd_lite0": 20.0},   # chosen
        {"step": 400, "val_psnr": 23.5, "val_psnr_gray": 22.5, "val_fd_lite0": 25.0},
    ]
    assert pick_best(rows)["step"] == 300
    assert pick_best(rows[:1])["step"] == 100  # nothing qualifies: the best PSNR
    no_fd = [{k: v for k, v in r.items() if k != "val_fd_lite0"} | {"val_colorfulness": 10.0 * i,
                                                                    "val_colorfulness_truth": 25.0}
             for i, r in enumerate(rows)]
    assert pick_best(no_fd)["step"] == 400  # the most colourful (ratio capped at 1), then PSNR
    assert pick_best([]) is None
    # fd_lite0 switched on part-way: only the checkpoints that have it compete.
    mixed = [no_fd[3]] + rows[1:3]
    assert pick_best(mixed)["step"] == 300
    # Checkpoints with CF_FLOOR of the truth's colourfulness win over more muted ones with a lower fd_lite0.
    coloured = [r | {"val_colorfulness": cf, "val_colorfulness_truth": 40.0} for r, cf in zip(rows, (40, 20, 30, 33))]
    assert pick_best(coloured)["step"] == 400
    assert pick_best([r | {"val_colorfulness": 10.0, "val_colorfulness_truth": 40.0} for r in rows])["step"] == 300


def test_export_best_and_resume_overrides(photo_pack, tmp_path):
    from click.testing import CliRunner

    from vidcolor.train.cli import train as train_cli
    run = tmp_path / "run"
    common = ["--data", str(photo_pack), "--arch", "unet", "--gen-config", json.dumps(TINY), "--no-pretrained",
              "--size", "32", "--batch", "4", "--ndf", "8", "--workers", "0", "--precision", "fp32", "--no-val-fd"]
    res = CliRunner().invoke(train_cli, ["fit", "--out", str(run), "--steps", "4", "--pretrain-steps", "4",
                                         "--ckpt-every", "2", "--val-max", "4", *common])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(train_cli, ["fit", "--resume", str(run), "--steps", "6", "--d-pretrain-steps", "1",
                                         "--gan-lr", "1e-5"])
    assert res.exit_code == 0, res.output
    state = load_state(run)
    assert state["step"] == 6 and state["config"]["d_pretrain_steps"] == 1 and state["config"]["gan_lr"] == 1e-5
    res = CliRunner().invoke(train_cli, ["fit", "--resume", str(run), "--head", "bins"])
    assert res.exit_code != 0 and "cannot change" in res.output
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    path, meta = export_run(run, tmp_path / "best.pt", pick="best")
    assert meta["picked"] == "best" and meta["steps"] in (2, 4, 6)
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


def test_average_state_dicts_means_floats_and_keeps_counters():
    from vidcolor.train.export import average_state_dicts
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(4)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(9)}
    out = average_state_dicts([a, b])
    assert out["w"].tolist() == [2.0, 4.0] and out["n"].item() == 9 and out["n"].dtype == torch.int64


def test_resume_into_a_fork_with_a_new_mix(photo_pack, tmp_path):
    """--resume RUN --out NEW continues RUN's state and history in NEW with the new mix, and leaves RUN as
    it was; a --mix group the pack lacks is refused in one line."""
    from click.testing import CliRunner

    from vidcolor.train.cli import train as train_cli
    run, fork = tmp_path / "run", tmp_path / "fork"
    group = FramePack(photo_pack).items[0]["group"]
    res = CliRunner().invoke(train_cli, [
        "fit", "--out", str(run), "--data", str(photo_pack), "--arch", "unet", "--gen-config", json.dumps(TINY),
        "--no-pretrained", "--size", "32", "--batch", "4", "--ndf", "8", "--workers", "0", "--precision", "fp32",
        "--no-val-fd", "--steps", "4", "--pretrain-steps", "4", "--ckpt-every", "2", "--val-max", "4"])
    assert res.exit_code == 0, res.output
    before = (run / "checkpoints" / "last.pt").read_bytes()
    res = CliRunner().invoke(train_cli, ["fit", "--resume", str(run), "--out", str(fork), "--steps", "6",
                                         "--mix", f"{group}=5"])
    assert res.exit_code == 0, res.output
    assert (run / "checkpoints" / "last.pt").read_bytes() == before
    state = load_state(fork)
    assert state["step"] == 6 and state["config"]["mix"] == {group: 5.0} and state["config"]["out"] == str(fork)
    assert [int(r["step"]) for r in csv.DictReader((fork / "metrics.csv").open())] == [2, 4, 6]
    assert [int(r["step"]) for r in csv.DictReader((run / "metrics.csv").open())] == [2, 4]
    res = CliRunner().invoke(train_cli, ["fit", "--resume", str(run), "--out", str(fork)])
    assert res.exit_code != 0 and "already holds a run" in str(res.exception)
    res = CliRunner().invoke(train_cli, ["fit", "--resume", str(run), "--steps", "6", "--mix", "vidoes=5"])
    assert res.exit_code != 0 and "vidoes, not a group of this pack" in str(res.exception)
    res = CliRunner().invoke(train_cli, ["fit", "--resume", str(run), "--out", str(tmp_path / "f2"), "--mix", "vidoes=5"])
    assert res.exit_code != 0 and not (tmp_path / "f2").exists()  # refused before anything is written
    assert load_state(run)["step"] == 4


def test_crop_scale_bounds_limit_what_a_crop_covers(photo_pack):
    """--crop-max-scale keeps crops small (objects near the render size's scale): the crop of a frame whose
    value is its column covers at most sqrt(max area x 4/3) of the width."""
    from vidcolor.train.data import MemoryFrames, random_resized_crop
    img = torch.arange(400, dtype=torch.float32).repeat(3, 300, 1) / 400
    for seed in range(20):
        small = random_resized_crop(img, 64, torch.Generator().manual_seed(seed), scale=(0.05, 0.1))
        span = float(small.amax() - small.amin()) * 400
        assert span <= (0.1 * 400 * 300 * 4 / 3) ** 0.5 + 2, seed
        big = random_resized_crop(img, 64, torch.Generator().manual_seed(seed), scale=(0.8, 1.0))
        assert float(big.amax() - big.amin()) * 400 > 250
    with pytest.raises(ValueError, match="crop scales"):
        MemoryFrames(photo_pack, "train", 64, min_scale=0.5, max_scale=0.2)
