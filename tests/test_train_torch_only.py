"""The GPU path on CPU: tensor packs, the torch-only training command and the device script with PyAV, kornia
and OpenCV made unimportable, a run killed mid-save, and the learning curve of `train evaluate RUN`."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vidcolor.checkpoint import load_generator
from vidcolor.train.datasets import FramePack, TensorFrames
from vidcolor.train.loop import load_state
from vidcolor.train.pack import prepare_pack, read_tensor_pack, tensor_capacity, write_tensor_pack

from test_train import TINY_RECIPE, scene, write_clip, write_jpeg

ROOT = Path(__file__).resolve().parents[1]
BLOCKER = """import sys
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("av", "kornia", "kornia_rs", "cv2"):
            raise ImportError(f"{name} is not installed on this machine (blocked by the test)")
        return None
sys.meta_path.insert(0, _Blocked())
import os
if os.environ.get("STRIP_EDITABLE"):  # as on a machine where vidcolor is not installed
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "") + repr(f)]
    sys.path[:] = [p for p in sys.path if "__editable__" not in p]
"""


@pytest.fixture(scope="module")
def packs(tmp_path_factory) -> tuple[Path, Path]:
    """A folder pack of two photo groups and a held-out clip, and its tensor pack."""
    root = tmp_path_factory.mktemp("src")
    for group, offset in (("warm", 0), ("cool", 100)):
        (root / group).mkdir()
        for i in range(14):
            write_jpeg(root / group / f"{group}{i}.jpg", scene(offset + i))
    (root / "clips").mkdir()
    write_clip(root / "clips" / "held.mp4", 200, 6)
    pack = tmp_path_factory.mktemp("pack")
    prepare_pack([root / "warm", root / "cool", root / "clips"], pack, size=48, every=1, val_sources=("held.mp4",))
    tensor = pack.parent / "pack.pt"
    write_tensor_pack(pack, tensor, side=40, mib=1)
    return pack, tensor


@pytest.fixture()
def blocked_env(tmp_path) -> dict[str, str]:
    """An environment whose Python cannot import av, kornia or cv2 (a sitecustomize on PYTHONPATH)."""
    site = tmp_path / "blocker"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "2"}
    probe = subprocess.run([sys.executable, "-c", "import av"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked by the test" in probe.stderr
    return env


def test_tensor_pack_keeps_splits_groups_and_colours(packs):
    pack, tensor = packs
    doc = read_tensor_pack(tensor)
    folder = {s: FramePack(pack, s) for s in ("train", "val")}
    assert int(doc["split"].sum()) == len(folder["val"]) and len(doc["split"]) == len(folder["train"]) + len(folder["val"])
    assert set(doc["groups"]) == {"warm", "cool", "clips"} and doc["y"].shape[1:] == (40, 40)
    val = TensorFrames(tensor, "val")
    assert {val.group_of(i) for i in range(len(val))} == {"clips"}  # the held-out clip, whole
    # frames come back close to the folder pack's centre crops (YCbCr 4:2:0 in 8 bits)
    from vidcolor.train.augment import center_crop
    train = TensorFrames(tensor, "train")
    i = next(k for k in range(len(train)) if train.items[k]["source"] == folder["train"].items[3]["source"])
    truth = center_crop(folder["train"].raw(3).float() / 255.0, 40)
    assert (train.whole([i])[0] - truth).abs().mean() < 0.02


def test_tensor_pack_respects_its_size_limit(packs, tmp_path):
    pack, _ = packs
    small = tmp_path / "small.pt"
    summary = write_tensor_pack(pack, small, side=40, mib=0.05)
    assert summary["frames"] == tensor_capacity(40, 0.05) < 34 and small.stat().st_size <= 0.05 * 2 ** 20 + 4096
    doc = read_tensor_pack(small)
    assert {doc["groups"][int(g)] for g, s in zip(doc["group"], doc["split"]) if not s} == {"warm", "cool"}
    assert tensor_capacity(144, 48) >= 1600  # what `prepare --help` promises for 48 MiB at 144 px


@pytest.mark.slow
def test_gpu_script_trains_with_torch_alone_and_its_model_colours_a_clip(packs, blocked_env, tmp_path,
                                                                           make_video, read_video):
    """benchmarks/gpu_train.sh, as on the GPU machine but on CPU with av, kornia and cv2 unimportable: a few
    steps, the chosen checkpoint exported and scored; then `vidcolor run --model` colours a clip with it."""
    _, tensor = packs
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "out"
    probe = subprocess.run([sys.executable, "-c", "import vidcolor.train"], env={**blocked_env, "STRIP_EDITABLE": "1"},
                           capture_output=True, text=True, cwd=tmp_path)
    assert probe.returncode != 0  # vidcolor.train comes only from the script's own path
    env = {**blocked_env, "STRIP_EDITABLE": "1", "PYTHON": sys.executable, "PACK": str(tensor), "RECIPE": str(recipe), "MINUTES": "2",
           "DEVICE": "cpu", "OUT": str(out), "RUN": str(tmp_path / "run"), "EXTRA": "--set steps=4 --threads 2"}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_train.sh")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {"model.pt", "last.pt", "metrics.csv", "recipe.toml", "val.json", "train.log"} <= {p.name for p in out.iterdir()}
    assert len(list(out.iterdir())) <= 8  # what the device tool brings back
    assert [r["step"] for r in csv.DictReader((out / "metrics.csv").open())] == ["2", "4"]
    assert "val_psnr" in (out / "val.json").read_text() and "psnr:clips" in (out / "val.json").read_text()
    _, info = load_generator(out / "model.pt")
    assert info["meta"]["picked"] == "best" and info["meta"]["steps"] in (2, 4)

    from click.testing import CliRunner

    from vidcolor.cli import cli
    src = make_video(tmp_path / "in.mp4", width=96, height=64, frames=5)
    result = CliRunner().invoke(cli, ["run", str(src), "-o", str(tmp_path / "coloured.mp4"), "--model",
                                      str(out / "model.pt"), "--render-size", "32", "--preset", "ultrafast"])
    assert result.exit_code == 0, result.output
    assert len(read_video(tmp_path / "coloured.mp4").pts) == 5


def test_a_killed_run_leaves_whole_checkpoints(packs, blocked_env, tmp_path):
    """SIGKILL in the middle of a run that saves its state at every step: every file under the run's names
    loads, and --resume continues from the last state."""
    _, tensor = packs
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "vidcolor.train", "fit", "--recipe", str(recipe), "--data", str(tensor), "--out",
           str(run), "--set", "steps=100000", "--set", "save_minutes=0.01", "--set", "ckpt_every=3", "--threads", "1"]
    proc = subprocess.Popen(cmd, env=blocked_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while len(list((run / "checkpoints").glob("G_*.pt"))) < 3 and time.time() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        time.sleep(0.37)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state = load_state(run)
    assert state["step"] >= 3
    for path in (run / "checkpoints").glob("G_*.pt"):
        load_generator(path)
    assert all(p.name.startswith(".") for p in run.rglob("*.tmp"))  # a cut-off write stays a hidden temp file
    res = subprocess.run([sys.executable, "-m", "vidcolor.train", "fit", "--resume", str(run), "--set",
                          f"steps={state['step'] + 2}", "--threads", "1"], env=blocked_env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert load_state(run)["step"] == state["step"] + 2


def test_torch_only_command_refuses_bad_recipes_in_one_line(packs, blocked_env, tmp_path):
    _, tensor = packs
    proc = subprocess.run([sys.executable, "-m", "vidcolor.train", "fit", "--data", str(tensor), "--out",
                           str(tmp_path / "run"), "--set", "lamda_l1=3"], env=blocked_env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: --set: unknown key 'lamda_l1' (did you mean 'lambda_l1'?)"


def test_evaluate_run_prints_and_writes_the_learning_curve_by_group(packs, tmp_path):
    from click.testing import CliRunner

    from vidcolor.cli import cli
    pack, tensor = packs
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    run = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(cli, ["train", "fit", "--recipe", str(recipe), "--data", str(pack), "--out", str(run),
                              "--workers", "0", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    from vidcolor.train.export import export_run
    shipped, _ = export_run(run, tmp_path / "shipped.pt", pick="2")
    res = runner.invoke(cli, ["train", "evaluate", str(run), "--pack", str(tensor), "--by-group", "--no-fd",
                              "--render-size", "32", "--against", str(shipped)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((run / "curve.csv").open()))
    assert {(r["step"], r["set"]) for r in rows} == {(s, g) for s in ("2", "4") for g in ("val", "val:clips")}
    assert {r["images"] for r in rows} == {"8", "16"}
    gray = {r["psnr_gray"] for r in rows if r["set"] == "val"}
    assert len(gray) == 1 and float(gray.pop()) > 5  # one gray baseline, beside every checkpoint
    text = " ".join(res.output.split())
    assert "learning curve" in text and "picks step" in text
    assert "ship rule against shipped.pt" in text and "CF ratio" in text and "benchmarks/throughput.py" in text
    _, meta = export_run(run, tmp_path / "best.pt", pick="best")
    assert meta["chosen_on"] == "curve.csv"
