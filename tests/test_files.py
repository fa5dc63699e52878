"""The one temp-file-and-rename helper: the target holds the old file or the complete new one, never a part."""

from __future__ import annotations

import pytest

from vidcolor.files import TempTarget, write_atomic


def test_write_atomic_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "report.json"
    path.write_text("old")
    write_atomic(path, "new", durable=True)
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with TempTarget(path) as temp:
            temp.write_text("half")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_commit_and_discard_by_hand(tmp_path):
    """The writer's way: the temp file lives across calls; nothing is at the target until commit()."""
    target = TempTarget(tmp_path / "film_color.mp4", tmp_path / ".film_color.vidcolor-tmp.mp4")
    target.temp.write_bytes(b"frames")
    assert not target.target.exists()
    target.commit()
    assert target.target.read_bytes() == b"frames" and not target.temp.exists()
    other = TempTarget(tmp_path / "other.mp4")
    other.temp.write_bytes(b"partial")
    other.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["film_color.mp4"]
