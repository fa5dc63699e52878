"""Recipes as data: the default recipe is the shipped model's, every recipe resolves, keys are checked with a
near match, `--set` overrides, and the training wing stays small and free of run-by-run history."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidcolor.errors import OptionError
from vidcolor.train.config import (RECIPE_KEYS, TrainConfig, parse_sets, read_recipe, recipe_names, resolve,
                                   resume_config, to_toml)

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "vidcolor" / "weights" / "MODEL_CARD.md"


def _card_table(header: str) -> list[list[str]]:
    """The rows of the model card's markdown table whose header row starts with `header`."""
    lines = CARD.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_default_recipe_is_the_one_the_model_card_states():
    cfg = resolve("default")
    stated = {key: value for key, value, _ in _card_table("| key | value |") if key != "mix"}
    assert len(stated) >= 15
    for key, value in stated.items():
        got = getattr(cfg, key)
        want = {"true": True, "false": False}.get(value, value)
        if isinstance(got, (int, float)) and not isinstance(got, bool):
            want = type(got)(float(value))
        assert got == want, key
    mix = {row[0].split(" ")[0]: float(row[2]) for row in _card_table("| group | frames | weight |")}
    assert cfg.mix == mix


def test_every_recipe_resolves_and_says_what_it_is_for():
    assert {"default", "gpu"} <= set(recipe_names())
    for name in recipe_names():
        text = (ROOT / "train" / "recipes" / f"{name}.toml").read_text()
        assert text.startswith("# ") and len(text.splitlines()[0]) > 20, name
        cfg = resolve(name)
        assert resolve(str(ROOT / "train" / "recipes" / f"{name}.toml")) == cfg


def test_extends_merges_tables_and_the_recipe_wins(tmp_path):
    child = tmp_path / "child.toml"
    child.write_text('# test\nextends = "default"\nsteps = 42\n[mix]\nvideos = 7\n')
    cfg, base = resolve(str(child)), resolve("default")
    assert cfg.steps == 42 and cfg.mix == {**base.mix, "videos": 7} and cfg.lr == base.lr


def test_unknown_keys_are_refused_with_the_nearest_known_one(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("lamda_l1 = 3\n")
    with pytest.raises(OptionError, match=r"unknown key 'lamda_l1' \(did you mean 'lambda_l1'\?\)"):
        read_recipe(str(bad))
    with pytest.raises(OptionError, match=r"'crop_scal' \(did you mean 'crop_scale'\?\)"):
        parse_sets(["crop_scal=0.5"])
    with pytest.raises(OptionError, match="'threads' is set on the command line"):
        parse_sets(["threads=2"])
    with pytest.raises(OptionError, match=r"'mixx' \(did you mean 'mix'\?\)"):
        parse_sets(["mixx.videos=2"])
    with pytest.raises(OptionError, match="expected KEY=VALUE"):
        parse_sets(["steps"])
    with pytest.raises(OptionError, match="no recipe named 'defualt'"):
        resolve("defualt")


def test_set_values_are_typed_and_checked():
    sets = parse_sets(["steps=300", "lr=1e-3", "pretrained=false", "gan_mode=lsgan", "mix.videos=3000",
                       "generator.ngf=16"])
    cfg = resolve("default", sets)
    assert (cfg.steps, cfg.lr, cfg.pretrained, cfg.gan_mode, cfg.generator) == (300, 1e-3, False, "lsgan", {"ngf": 16})
    assert cfg.mix["videos"] == 3000 and cfg.mix["sr-hr"] == 400  # one entry set, the others kept
    assert resolve("default", parse_sets(["mix={}"])).mix == {}  # a whole table replaces
    assert resolve("default", parse_sets(["lr=1"])).lr == 1.0  # an int where a float is wanted
    for item, message in (("steps=0", "steps: 0 is outside"), ("steps=2.5", "steps: expected int"),
                          ("gan_mode=wgan", "not one of vanilla, lsgan"), ("size=big", "size: expected int"),
                          ("mix.videos=-1", "mix.videos: expected a weight")):
        with pytest.raises(OptionError, match=message):
            resolve("default", parse_sets([item]))


def test_the_stored_recipe_round_trips_and_resume_keeps_what_shapes_the_nets(tmp_path):
    cfg = resolve("gpu", parse_sets(["mix.videos=3"]), data="pack.pt", out="run", threads=2)
    stored = tmp_path / "recipe.toml"
    stored.write_text(to_toml(cfg))
    again = resolve(str(stored), data="pack.pt", out="run", threads=2)
    assert again == cfg
    assert "threads" not in stored.read_text() and "data" not in stored.read_text()
    from dataclasses import asdict
    cfg.time_limit_min, cfg.precision = 5.0, "bf16"  # the machine's options are the new command's, not the run's
    resumed = resume_config(asdict(cfg), parse_sets(["steps=99"]), threads=1)
    assert resumed.steps == 99 and resumed.threads == 1 and resumed.size == cfg.size
    assert resumed.time_limit_min is None and resumed.precision == "auto" and resumed.data == "pack.pt"
    assert cfg.auto_steps and not resumed.auto_steps  # steps asked for win over a time-fitted schedule
    with pytest.raises(OptionError, match="cannot change: batch, size"):
        resume_config(asdict(cfg), parse_sets(["size=64", "batch=2"]))


def test_fit_help_lists_at_most_15_options():
    from vidcolor.train.cli import train
    result = CliRunner().invoke(train, ["fit", "--help"])
    options = [line for line in result.output.splitlines() if re.match(r"\s+(-\w, )?--[\w-]+", line)]
    assert result.exit_code == 0 and 8 <= len(options) <= 15, options


def test_defaults_live_in_train_config_only():
    """Every recipe key is a TrainConfig field, and `fit` has no option of its own for any of them (a
    recipe key changes through the recipe or --set, so its default is declared once)."""
    from vidcolor.train.cli import train
    assert set(RECIPE_KEYS) <= {f.name for f in fields(TrainConfig)}
    params = {p.name for p in train.commands["fit"].params}
    assert not params & set(RECIPE_KEYS), params & set(RECIPE_KEYS)


def test_training_wing_stays_small_and_names_no_run():
    for path in (ROOT / "train").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 300, path.name
    history = re.compile(r"\b(session|round)s? \d+|\brun s\d+|\bs\d{1,2}(v|a|b|c|ctx|ctl|base)\b", re.IGNORECASE)
    for folder in ("train", "vidcolor"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                assert not history.search(line), f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
