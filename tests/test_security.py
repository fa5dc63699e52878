"""Model files never run code; no shell command is ever built from a path."""

import ast
import os
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


SHELL_MODULES = {"subprocess", "pty"}


def _runs_a_program(name: str) -> bool:
    """os functions that start a program: system, popen, exec*, spawn*, posix_spawn*."""
    return name in ("system", "popen") or name.startswith(("exec", "spawn", "posix_spawn"))


def _imported_names(tree: ast.AST) -> tuple[set[str], set[str], set[str]]:
    """Names bound in `tree` to the os module, to the torch module, and to torch's `load` function."""
    os_names, torch_names, load_names = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("os", "torch"):
                    (os_names if alias.name == "os" else torch_names).add(alias.asname or alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module in ("torch", "torch.serialization"):
            load_names |= {alias.asname or alias.name for alias in node.names if alias.name == "load"}
            if node.module == "torch":
                torch_names |= {alias.asname or alias.name for alias in node.names if alias.name == "serialization"}
    return os_names, torch_names, load_names


def shell_uses(source: str) -> list[int]:
    """Lines of `source` that could run a shell command or another program: importing subprocess or pty
    (also `from ... import`), os.system / popen / exec* / spawn* (also imported by name or through an
    alias of os), `shell=True`, and `__import__` / `import_module` of those modules."""
    tree = ast.parse(source)
    os_names, _, _ = _imported_names(tree)
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad = any(a.name.split(".")[0] in SHELL_MODULES for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            bad = module in SHELL_MODULES or (module == "os" and any(_runs_a_program(a.name) for a in node.names))
        elif isinstance(node, ast.Attribute):
            bad = isinstance(node.value, ast.Name) and node.value.id in os_names and _runs_a_program(node.attr)
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            dynamic = name in ("__import__", "import_module") and node.args and isinstance(node.args[0], ast.Constant)
            bad = any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                      for k in node.keywords) or bool(
                dynamic and str(node.args[0].value).split(".")[0] in SHELL_MODULES)
        else:
            bad = False
        if bad:
            lines.append(node.lineno)
    return sorted(set(lines))


def unsafe_torch_loads(source: str) -> tuple[int, list[int]]:
    """(how many torch.load calls `source` makes, the lines of those without a literal weights_only=True),
    whether called as torch.load, through an alias of torch or torch.serialization, or imported by name."""
    tree = ast.parse(source)
    _, torch_names, load_names = _imported_names(tree)
    calls, unsafe = 0, []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_load = (isinstance(func, ast.Name) and func.id in load_names) or (
            isinstance(func, ast.Attribute) and func.attr == "load" and (
                (isinstance(func.value, ast.Name) and func.value.id in torch_names)
                or (isinstance(func.value, ast.Attribute) and func.value.attr == "serialization"
                    and isinstance(func.value.value, ast.Name) and func.value.value.id in torch_names)))
        if is_load:
            calls += 1
            if not any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in node.keywords):
                unsafe.append(node.lineno)
    return calls, unsafe


def product_files() -> list[Path]:
    return [path for folder in (PACKAGE, TRAIN) if folder.is_dir() for path in sorted(folder.rglob("*.py"))]


@pytest.mark.parametrize("snippet", [
    "import subprocess", "import subprocess as sp", "from subprocess import run", "import pty",
    "from os import system", "from os import popen as p", "import os\nos.system('x')", "import os as o\no.execv(a, b)",
    "import os\nos.posix_spawn(a, b, c)", "run(cmd, shell=True)", "run(cmd, shell=flag)",
    "__import__('subprocess')", "importlib.import_module('subprocess.run')",
])
def test_the_shell_lint_finds_every_form(snippet):
    assert shell_uses(snippet), snippet


def test_the_shell_lint_passes_safe_code():
    assert not shell_uses("import os\nos.replace(a, b)\nos.environ.get('X')\nrun(x, shell=False)\n"
                          "from os import path\nimport importlib\nimportlib.import_module('vidcolor.train.cli')")


@pytest.mark.parametrize("snippet", [
    "import torch\ntorch.load(p)", "import torch as t\nt.load(p, weights_only=False)",
    "from torch import load\nload(p)", "from torch import load as l\nl(p, weights_only=flag)",
    "import torch\ntorch.serialization.load(p)", "from torch.serialization import load\nload(p)",
])
def test_the_torch_load_lint_finds_every_form(snippet):
    calls, unsafe = unsafe_torch_loads(snippet)
    assert calls == 1 and unsafe, snippet


def test_no_shell_commands_anywhere():
    """No subprocess, pty, os.system / popen / exec / spawn or shell=True in the product (vidcolor/ and train/)."""
    offenders = [f"{path}:{line}" for path in product_files() for line in shell_uses(path.read_text())]
    assert not offenders, "\n".join(offenders)


def test_every_torch_load_is_weights_only():
    found = [(path, unsafe_torch_loads(path.read_text())) for path in product_files()]
    assert sum(calls for _, (calls, _) in found) >= 1, "expected the checkpoint loader to be found"
    unsafe = [f"{path}:{line}" for path, (_, lines) in found for line in lines]
    assert not unsafe, unsafe
