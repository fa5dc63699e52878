"""Batch inputs (folders, globs, list files), output naming, shards and the JSON report."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vidcolor.batch import collect_jobs, parse_shard, read_list, select_shard
from vidcolor.cli import cli


@pytest.fixture(scope="module")
def model(tmp_path_factory, make_model):
    return make_model(tmp_path_factory.mktemp("model") / "tiny.pt")


def run(*args, model):
    return CliRunner(env={"COLUMNS": "300"}).invoke(
        cli, ["run", "--model", str(model), "--render-size", "64", "--preset", "ultrafast", *map(str, args)])


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_globs_folders_and_suffix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("arch/a.mp4", "arch/x/b.MOV", "arch/x/y/c.avi", "arch/x/.hidden.mp4", "arch/notes.txt",
                 "arch/a_bw.mp4", "arch/.a.mp4.vidcolor-work/segment_00000.mkv"):
        touch(tmp_path / name)
    jobs = collect_jobs([Path("arch/**/*.*")], output_dir=Path("out"), suffix="_bw")
    assert [(str(j.input), str(j.output)) for j in jobs] == [
        ("arch/a.mp4", "out/a_bw.mp4"),
        ("arch/notes.txt", "out/notes_txt_bw.mkv"),  # a glob is taken literally: the user asked for it
        ("arch/x/b.MOV", "out/x/b_bw.mov"),
        ("arch/x/y/c.avi", "out/x/y/c_avi_bw.mkv"),
    ]
    folder = collect_jobs([Path("arch")], output_dir=Path("out"), suffix="_bw")  # by extension, no outputs/hidden
    assert [str(j.output) for j in folder] == ["out/a_bw.mp4", "out/x/b_bw.mov", "out/x/y/c_avi_bw.mkv"]
    beside = collect_jobs([Path("arch"), Path("arch/a.mp4")])  # duplicates dropped; outputs beside inputs
    assert [str(j.output) for j in beside] == ["arch/a_color.mp4", "arch/a_bw_color.mp4", "arch/x/b_color.mov",
                                               "arch/x/y/c_avi_color.mkv"]
    missing = collect_jobs([Path("nothing/*.mp4")])  # an unmatched glob stays, to be reported as failed
    assert [str(j.input) for j in missing] == ["nothing/*.mp4"]


def test_read_list(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("# archive reel 1\n\n  films/a b.mp4  \nfilms/ü.mkv\n   # indented comment\n")
    assert read_list(listing) == [Path("films/a b.mp4"), Path("films/ü.mkv")]


def test_shards_partition_the_batch(tmp_path):
    jobs = collect_jobs([touch(tmp_path / f"v{i:03d}.mp4") for i in range(200)])
    shards = [select_shard(jobs, i, 4) for i in range(4)]
    names = [j.input.name for shard in shards for j in shard]
    assert sorted(names) == sorted(j.input.name for j in jobs) and len(names) == len(set(names))
    assert all(30 < len(s) < 70 for s in shards)  # roughly balanced
    # Deterministic and independent of the order (and of the other files) each process sees.
    assert select_shard(list(reversed(jobs)), 1, 4) == shards[1]
    assert set(select_shard(jobs[:100], 1, 4)) == {j for j in shards[1] if j in jobs[:100]}
    assert parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_batch_report_and_exit_code(tmp_path, make_video, model):
    films = tmp_path / "films"
    make_video(films / "a.mp4", frames=4)
    make_video(films / "reel 2" / "b ü.mkv", frames=3, audio=True)
    (films / "broken.mp4").write_text("not a video")
    make_video(films / "c.mp4", frames=3)
    make_video(tmp_path / "out" / "c_color.mp4", frames=2)  # already done: skipped
    listing = tmp_path / "list.txt"
    listing.write_text(f"# from a list\n{films / 'c.mp4'}\n\n{films / 'missing.mp4'}\n")
    report = tmp_path / "report.json"
    result = run(films / "*.mp4", films / "reel 2", "--from-list", listing, "--output-dir", tmp_path / "out",
                 "--report", report, model=model)
    assert result.exit_code == 1, result.output  # something failed
    data = json.loads(report.read_text())
    by_name = {Path(f["input"]).name: f for f in data["files"]}
    assert {n: f["status"] for n, f in by_name.items()} == {
        "a.mp4": "done", "broken.mp4": "failed", "c.mp4": "skipped", "b ü.mkv": "done", "missing.mp4": "failed"}
    assert by_name["a.mp4"]["frames"] == 4 and by_name["a.mp4"]["frames_lost"] == 0
    assert by_name["a.mp4"]["seconds"] > 0 and by_name["a.mp4"]["fps"] > 0
    assert by_name["a.mp4"]["output"] == str(tmp_path / "out" / "a_color.mp4")
    assert by_name["b ü.mkv"]["output"] == str(tmp_path / "out" / "b ü_color.mkv")  # from a folder: sub-path kept
    assert "not a media file" in by_name["broken.mp4"]["message"]
    assert "no such file" in by_name["missing.mp4"]["message"]
    assert data["totals"] == {**data["totals"], "files": 5, "done": 2, "skipped": 1, "failed": 2, "frames": 7}
    assert (tmp_path / "out" / "b ü_color.mkv").is_file()
    table = " ".join(result.stderr.split())
    assert "2 done, 1 skipped, 2 failed" in table

    # Everything done now: a second run skips all and exits 0 when nothing fails.
    again = run(films / "a.mp4", films / "reel 2", "--output-dir", tmp_path / "out", "--report", report, model=model)
    assert again.exit_code == 0
    assert {f["status"] for f in json.loads(report.read_text())["files"]} == {"skipped"}


def test_same_names_in_other_containers_get_their_own_outputs(tmp_path, make_video, read_video, model):
    """tape.avi, tape.ts and tape.MPG used to share tape_color.mkv: two were skipped, or with --overwrite all
    said done and only the last survived. Each now has its own output, and a real collision is refused."""
    films = tmp_path / "films"
    frames = {"tape.avi": 3, "tape.ts": 4, "tape.MPG": 5}
    make_video(films / "tape.avi", width=64, height=48, frames=3, codec="mjpeg", pix_fmt="yuvj420p")
    make_video(films / "tape.ts", width=64, height=48, frames=4)
    make_video(films / "tape.MPG", width=64, height=48, frames=5, codec="mpeg2video", fps=25)
    make_video(tmp_path / "a" / "x.mp4", width=64, height=48, frames=2)
    make_video(tmp_path / "b" / "x.mp4", width=64, height=48, frames=3)
    report = tmp_path / "report.json"
    result = run(films, "--overwrite", "--report", report, model=model)
    assert result.exit_code == 0, result.output
    rows = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert {n: r["status"] for n, r in rows.items()} == dict.fromkeys(frames, "done")
    outputs = {r["output"] for r in rows.values()}
    assert len(outputs) == 3
    for name, row in rows.items():  # each output holds its own input's frames: none was overwritten
        assert len(read_video(row["output"]).pts) == frames[name] == row["frames"]

    # Two inputs that still map to one output (flattened into --output-dir): refused before any work, by name.
    out = tmp_path / "out"
    clash = run(tmp_path / "a" / "x.mp4", tmp_path / "b" / "x.mp4", "--output-dir", out, "--overwrite",
                "--report", report, model=model)
    assert clash.exit_code == 1
    first, second = json.loads(report.read_text())["files"]
    assert first["status"] == "done" and second["status"] == "failed"
    assert str(tmp_path / "a" / "x.mp4") in second["message"] and str(tmp_path / "b" / "x.mp4") in second["message"]
    assert len(read_video(out / "x_color.mp4").pts) == 2  # the first input's, not overwritten by the second


def test_shard_option(tmp_path, make_video, model):
    for i in range(4):
        make_video(tmp_path / "in" / f"v{i}.mp4", frames=2)
    written = []
    for index in range(2):
        out = tmp_path / f"out{index}"
        result = run(tmp_path / "in", "--shard", f"{index}/2", "--output-dir", out, model=model)
        assert result.exit_code == 0, result.output
        written.append({p.name for p in out.glob("*.mp4")} if out.exists() else set())
    assert not written[0] & written[1]
    assert written[0] | written[1] == {f"v{i}_color.mp4" for i in range(4)}
    bad = run(tmp_path / "in", "--shard", "2/2", model=model)
    assert bad.exit_code == 2 and "--shard" in bad.output


def test_no_inputs(tmp_path, model):
    (tmp_path / "empty.txt").write_text("# nothing\n")
    result = run("--from-list", tmp_path / "empty.txt", model=model)
    assert result.exit_code == 2 and "no inputs" in result.output
