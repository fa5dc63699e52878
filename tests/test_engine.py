"""The engine that runs the model: the int8 copy in ONNX Runtime on a CPU when it can, torch otherwise."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from vidcolor.checkpoint import read_checkpoint, save_checkpoint
from vidcolor.engine import make_engine
from vidcolor.modelfiles import default_model_path, int8_path
from vidcolor.errors import ModelError
from vidcolor.pipeline import Colorizer

from conftest import write_model

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "bikes_bw.mp4"
needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                               reason="ONNX Runtime (the fast extra) is not installed")


def sample_frames(count: int = 4) -> torch.Tensor:
    """`count` real frames of the shipped sample as (B,3,H,W) RGB in [0,1]."""
    frames = []
    with av.open(str(SAMPLE)) as src:
        for i, frame in enumerate(src.decode(video=0)):
            if i % 40 == 0:
                frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).float() / 255)
            if len(frames) == count:
                break
    return torch.stack(frames)


def chroma(rgb: torch.Tensor) -> np.ndarray:
    """Lab a*b* of RGB frames, OpenCV's float Lab (a, b in about -128..127)."""
    out = [cv2.cvtColor(f.permute(1, 2, 0).numpy().astype(np.float32), cv2.COLOR_RGB2LAB)[..., 1:] for f in rgb]
    return np.stack(out)


@needs_ort
def test_auto_takes_the_packaged_int8_copy_and_keeps_the_colours() -> None:
    auto = Colorizer(device="cpu", smoothing="none")
    exact = Colorizer(device="cpu", smoothing="none", engine="torch")
    assert auto.engine.name == "onnxruntime int8" and auto.engine_note is None
    assert exact.engine.name == "torch"
    rgb = sample_frames()
    fast, slow = chroma(auto.colorize(rgb)), chroma(exact.colorize(rgb))
    diff = np.abs(fast - slow)
    # int8 moves a colour by a fraction of what the model gives (measured: mean 0.76, 99th percentile 5.2,
    # as colourful within 3 %); a broken copy (gray, shifted, fainter) is off by about the colour itself
    assert np.abs(slow).mean() > 3.0  # the sample does get colour, so the comparison means something
    assert diff.mean() < 1.2, diff.mean()
    assert np.percentile(diff, 99) < 8.0
    assert np.abs(fast).mean() == pytest.approx(np.abs(slow).mean(), rel=0.1)


@needs_ort
def test_a_copy_made_from_other_weights_is_not_used(tmp_path) -> None:
    model = tmp_path / "mine.pt"
    ckpt = read_checkpoint(default_model_path())
    from vidcolor.nets import build_generator

    net = build_generator(ckpt["arch"], ckpt["config"])
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    with torch.no_grad():
        net.head.bias.add_(0.01)  # retrained, say: the packaged copy no longer matches
    save_checkpoint(model, net, ckpt["arch"], ckpt["config"])
    shutil.copy(int8_path(default_model_path()), int8_path(model))
    colorizer = Colorizer(model, device="cpu")
    assert colorizer.engine.name == "torch"
    assert "other weights" in colorizer.engine_note and "quantize" in colorizer.engine_note
    with pytest.raises(ModelError, match="other weights"):
        Colorizer(model, device="cpu", engine="onnxruntime")


def test_without_onnxruntime_auto_falls_back_to_torch_and_says_how_to_get_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as when the extra is not installed
    colorizer = Colorizer(device="cpu")
    assert colorizer.engine.name == "torch"
    assert "vidcolor[fast]" in colorizer.engine_note
    with pytest.raises(ModelError) as info:
        Colorizer(device="cpu", engine="onnxruntime")
    assert "\n" not in str(info.value) and "not installed" in str(info.value)


def test_a_model_without_a_copy_runs_in_torch(tmp_path) -> None:
    model = write_model(tmp_path / "tiny.pt")
    colorizer = Colorizer(model, device="cpu")
    assert colorizer.engine.name == "torch"
    assert colorizer.engine_note is None or "tiny.int8.onnx" in colorizer.engine_note
    with pytest.raises(ModelError):
        make_engine("onnxruntime", torch.nn.Identity(), model, torch.device("cpu"), False, 1)


@needs_ort
def test_engine_joins_the_resume_identity() -> None:
    auto = Colorizer(device="cpu").settings()
    exact = Colorizer(device="cpu", engine="torch").settings()
    assert auto["engine_name"] != exact["engine_name"]


@needs_ort
def test_quantize_writes_a_copy_that_run_then_takes(tmp_path) -> None:
    """`vidcolor train quantize` on a small model and pack: the copy lands beside the model, records which
    weights it came from, and gives the same colours as torch within int8's error."""
    pytest.importorskip("onnx")
    from vidcolor.train.pack import prepare_pack
    from vidcolor.train.quantize import quantize_model

    src = tmp_path / "src"
    src.mkdir()
    yy, xx = np.mgrid[0:64, 0:96]
    for i in range(6):
        rgb = np.stack([128 + 80 * np.sin(xx / (4 + i)), 128 + 60 * np.cos(yy / (3 + i)), 90 + 0 * xx], -1)
        cv2.imwrite(str(src / f"p{i}.png"), rgb.clip(0, 255).astype(np.uint8))
    pack = tmp_path / "pack"
    prepare_pack([src], pack, size=48, val_every=3)
    model = write_model(tmp_path / "tiny.pt", gain=0.1)
    before = set(Path.cwd().iterdir())
    path, meta = quantize_model(model, pack, frames=4, render_size=64)
    assert set(Path.cwd().iterdir()) == before  # ONNX Runtime's tools leave nothing in the working folder
    assert path == tmp_path / "tiny.int8.onnx" and path.is_file()
    assert meta["vidcolor_source_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    fast = Colorizer(model, device="cpu", render_size=64, smoothing="none")
    exact = Colorizer(model, device="cpu", render_size=64, smoothing="none", engine="torch")
    assert fast.engine.name == "onnxruntime int8"
    from vidcolor.train.evaluate import pack_frames

    rgb = torch.cat([frame for _, frame in pack_frames(pack)])  # held-out frames of the calibration's kind
    a, b = chroma(fast.colorize(rgb)), chroma(exact.colorize(rgb))
    assert np.abs(b).mean() > 1.0
    assert np.abs(a - b).mean() < 0.25 * np.abs(b).mean()


def test_info_system_names_the_engine_and_why_not_int8(tmp_path) -> None:
    from click.testing import CliRunner

    from vidcolor.cli import cli

    model = write_model(tmp_path / "tiny.pt")
    result = CliRunner(env={"COLUMNS": "300"}).invoke(cli, ["info", "--system", "--model", str(model)])
    assert result.exit_code == 0, result.output
    rows = dict(line.split(None, 1) for line in result.output.splitlines() if line.strip() and "  " in line.strip())
    assert rows["engine"].startswith("torch") and "thread" in rows["engine"]
    assert rows["device"].strip() == "cpu"
    why = next(line for line in result.output.splitlines() if line.strip().startswith("why not int8"))
    assert "tiny.int8.onnx" in why or "not installed" in why
    bare = CliRunner().invoke(cli, ["info"])
    assert bare.exit_code == 2 and "give a FILE, or --system" in bare.output


@needs_ort
def test_info_system_says_int8_for_the_packaged_model() -> None:
    from click.testing import CliRunner

    from vidcolor.cli import cli

    result = CliRunner(env={"COLUMNS": "300"}).invoke(cli, ["info", "--system"])
    assert result.exit_code == 0, result.output
    assert "onnxruntime int8" in result.output and "why not" not in result.output


def test_run_engine_onnxruntime_without_a_copy_is_one_error_line(tmp_path, make_video) -> None:
    from click.testing import CliRunner

    from vidcolor.cli import cli

    model = write_model(tmp_path / "tiny.pt")
    clip = make_video(tmp_path / "in.mp4", frames=4)
    result = CliRunner().invoke(cli, ["run", str(clip), "--model", str(model), "--engine", "onnxruntime"])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--engine onnxruntime" in lines[0], result.output
    assert not (tmp_path / "in_color.mp4").exists()
