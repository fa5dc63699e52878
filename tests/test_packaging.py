"""The wheel: the training code installs as `vidcolor.train` (no top-level `train` in site-packages), every
package folder is listed in pyproject.toml, and the default model ships inside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_folder_is_listed():
    """The packages are listed by hand (because of the train/ mapping): a new one must not be left out."""
    cfg = _setuptools_config()
    assert cfg["package-dir"] == {"vidcolor.train": "train"}
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "vidcolor").rglob("__init__.py")}
    found |= {"vidcolor.train" + "".join("." + part for part in p.parent.relative_to(ROOT / "train").parts)
              for p in (ROOT / "train").rglob("__init__.py")}
    assert found - set(cfg["packages"]) == set()


def test_wheel_holds_no_top_level_train(tmp_path):
    # Built from a copy: setuptools' build/ folder in the work tree could hold stale modules, and the test
    # must not write into the checkout.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info",
                                                                 "__pycache__", ".pytest_cache"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode and "No matching distribution found for setuptools" in proc.stderr:
        pytest.skip("pip cannot fetch setuptools for the isolated build here")
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("vidcolor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"vidcolor", next(t for t in tops if t.endswith(".dist-info"))}
    for module in ("vidcolor/train/loop.py", "vidcolor/train/__main__.py", "vidcolor/train/config.py",
                   "vidcolor/cli/app.py", "vidcolor/media/reader.py", "vidcolor/nets/effnet_unet.py",
                   "vidcolor/weights/default.pt", "vidcolor/weights/default.int8.onnx", "vidcolor/weights/MODEL_CARD.md",
                   "vidcolor/train/recipes/default.toml", "vidcolor/train/recipes/gpu.toml"):
        assert module in names
