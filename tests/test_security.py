"""Model files never run code; no shell command is ever built from a path."""

import ast
import os
import re
from pathlib import Path

import pytest
import torch

from vidcolor.checkpoint import read_checkpoint
from vidcolor.errors import ModelError
from vidcolor.pipeline import Colorizer

PACKAGE = Path(__file__).resolve().parents[1] / "vidcolor"
TRAIN = Path(__file__).resolve().parents[1] / "train"


class RunsCode:
    """Unpickling this calls os.system: what a malicious "model" would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


@pytest.mark.parametrize("wrap", [
    lambda evil: evil,  # the whole file is the payload
    lambda evil: {"format": "vidcolor-generator-v1", "arch": "unet", "config": {}, "state_dict": {"w": evil}},
])
def test_pickle_with_code_is_refused_and_not_run(tmp_path, wrap):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(wrap(RunsCode(marker)), path)
    with pytest.raises(ModelError, match="refusing to load .*only weights_only checkpoints are accepted"):
        read_checkpoint(path)
    with pytest.raises(ModelError, match="refusing to load"):
        Colorizer(path, device="cpu")
    assert not marker.exists()
    # The payload is real: a plain torch.load would have run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_no_shell_commands_anywhere():
    """No subprocess / os.system / os.popen / shell=True in the product (vidcolor/ and train/)."""
    pattern = re.compile(r"\bsubprocess\b|os\.system|os\.popen|os\.exec|os\.spawn|shell\s*=\s*True|\bpty\b")
    offenders = [f"{path}:{n}: {line.strip()}"
                 for folder in (PACKAGE, TRAIN) if folder.is_dir()
                 for path in sorted(folder.rglob("*.py"))
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, "\n".join(offenders)


def test_every_torch_load_is_weights_only():
    calls = []
    for folder in (PACKAGE, TRAIN):
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else ():
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                    safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                               for k in node.keywords)
                    calls.append((f"{path.name}:{node.lineno}", safe))
    assert calls, "expected the checkpoint loader to be found"
    assert all(safe for _, safe in calls), calls
