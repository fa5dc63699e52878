"""benchmarks/gpu_check.sh, the prepared GPU run, dry-run on the CPU as it will run on a lent GPU machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def check(tmp_path: Path, device: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEVICE": device, "QUICK": "1", "OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cpu_mode_runs_every_part_and_writes_the_tables(tmp_path) -> None:
    done = check(tmp_path, "cpu")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    compare = result["compare"]
    assert compare["frames"] == 6 and compare["pass"] and compare["within_1"] == 1.0  # CPU against CPU: equal
    assert [m["batch"] for m in result["model"]] == [1, 2] and all(m["fps"] > 0 for m in result["model"])
    e2e = result["end_to_end"]
    assert e2e["frames"] == 8 and e2e["size"] == "320x180" and e2e["run_fps"] > 0 and e2e["transcode_fps"] > 0
    table = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "(CPU)" in table and "| 2 |" in table and "run / transcode" in table
    assert not (tmp_path / "out" / "work").exists()  # its clips are gone: only the tables travel back


def test_a_missing_device_is_one_line(tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = check(tmp_path, "cuda")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: device 'cuda' is not available")
