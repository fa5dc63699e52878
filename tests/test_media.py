import itertools
import os
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from conftest import write_audio_only
from vidcolor.errors import InputError, OutputError
from vidcolor.media import Frame, OutputOptions, VideoReader, VideoWriter, check_options, check_paths, probe
from vidcolor.media.probe import ColorTags, resolve_color
from vidcolor.media.writer import output_name, temp_target


@pytest.fixture(scope="module")
def clip(tmp_path_factory, make_video):
    """24 frames, 322x182, AAC audio, rotated 90 degrees, tagged BT.709."""
    return make_video(tmp_path_factory.mktemp("media") / "clip.mp4", audio=True, rotation=90, colorspace="bt709")


def read_all(reader: VideoReader) -> list:
    reader.start()
    try:
        return list(reader)
    finally:
        reader.close()


# -- probe -------------------------------------------------------------------------------------

def test_probe(clip):
    info = probe(clip)
    video = info.video
    assert (video.width, video.height, video.pix_fmt, video.codec) == (322, 182, "yuv420p", "h264")
    assert video.fps == 24 and video.frames == 24 and video.expected_frames == 24
    assert video.duration == pytest.approx(1.0, abs=1e-3)
    assert video.rotation == 90 and not video.mirrored
    assert video.color == ColorTags(colorspace=1, color_range=1, primaries=1, trc=1)
    assert [(s.type, s.codec, s.detail) for s in info.streams] == [("audio", "aac", "48000 Hz, mono")]


def test_probe_estimates_frames_without_index(tmp_path, make_video):
    video = probe(make_video(tmp_path / "clip.mkv", frames=30, fps=25)).video
    assert video.frames == 0  # Matroska keeps no frame count
    assert video.expected_frames == 30


def test_probe_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    with pytest.raises(InputError, match="not a file"):
        probe(tmp_path)
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(InputError, match="not a media file"):
        probe(tmp_path / "notes.mp4")
    write_audio_only(tmp_path / "sound.m4a")
    with pytest.raises(InputError, match="no video stream"):
        probe(tmp_path / "sound.m4a")


@pytest.mark.parametrize("tags,height,pix_fmt,expected", [
    ((2, 0, 2, 2), 720, "yuv420p", ColorTags(1, 1, 1, 1)),  # untagged HD: BT.709
    ((2, 0, 2, 2), 576, "yuv420p", ColorTags(6, 1, 6, 6)),  # untagged SD: BT.601 (SMPTE 170M)
    ((1, 1, 1, 1), 360, "yuv420p", ColorTags(1, 1, 1, 1)),  # tags win over the size rule
    ((5, 0, 5, 2), 1080, "yuv420p", ColorTags(5, 1, 5, 6)),  # BT470BG keeps its tags
    ((2, 0, 2, 2), 360, "yuvj420p", ColorTags(6, 2, 6, 6)),  # JPEG formats are full range
    ((2, 0, 2, 2), 360, "gray", ColorTags(6, 2, 6, 6)),
])
def test_resolve_color(tags, height, pix_fmt, expected):
    assert resolve_color(*tags, height=height, pix_fmt=pix_fmt) == expected


def test_untagged_is_marked_assumed():
    assert resolve_color(2, 0, 2, 2, height=360, pix_fmt="yuv420p").assumed
    assert "untagged" in resolve_color(2, 0, 2, 2, height=360, pix_fmt="yuv420p").describe()
    assert not resolve_color(1, 1, 1, 1, height=360, pix_fmt="yuv420p").assumed


def test_yuv_spec_of_tags():
    assert ColorTags(1, 1, 1, 1).yuv_spec.matrix == "bt709"
    assert ColorTags(5, 2, 5, 6).yuv_spec.matrix == "bt601"
    assert ColorTags(5, 2, 5, 6).yuv_spec.full_range
    assert ColorTags(9, 1, 9, 14).yuv_spec.matrix == "bt2020"


# -- reader ------------------------------------------------------------------------------------

def test_reader_batches_and_timestamps(clip, read_video):
    batches = read_all(VideoReader(clip, probe(clip).video, "yuv420p", batch_size=5))
    frames = [f for b in batches for f in b]
    assert [len(b) for b in batches] == [5, 5, 5, 5, 4]
    source = read_video(clip, planes=True)
    assert [f.pts for f in frames] == source.pts
    assert all(f.duration > 0 for f in frames)
    assert [p.shape for p in frames[0].planes] == [(182, 322), (91, 161), (91, 161)]
    for ours, theirs in zip(frames, source.planes):
        assert all(np.array_equal(a, b) for a, b in zip(ours.planes, theirs))


@pytest.mark.parametrize("codec,pix_fmt", [("ffv1", "gray"), ("libx264", "yuvj420p"), ("libx264", "yuv444p"),
                                           ("libx264", "yuv420p10le")])
def test_reader_keeps_source_luma(tmp_path, make_video, codec, pix_fmt):
    """Whatever the source format, the reader delivers 8-bit planes with the source's Y codes."""
    path = make_video(tmp_path / f"{pix_fmt}.mkv", frames=3, codec=codec, pix_fmt=pix_fmt)
    with av.open(str(path)) as container:
        first = next(container.decode(video=0))
        assert first.format.name == pix_fmt
        depth = np.uint16 if first.format.components[0].bits > 8 else np.uint8
        plane = first.planes[0]
        y = np.frombuffer(plane, depth).reshape(plane.height, -1)[:, :plane.width].astype(int)
    video = probe(path).video
    frame = read_all(VideoReader(path, video, "yuv420p", batch_size=4))[0][0]
    expected = y >> 2 if depth == np.uint16 else y
    assert np.abs(frame.planes[0].astype(int) - expected).max() <= 1
    assert [p.shape for p in frame.planes] == [(182, 322), (91, 161), (91, 161)]
    if pix_fmt == "gray":
        assert (frame.planes[1] == 128).all() and (frame.planes[2] == 128).all()
    assert video.color.color_range == (2 if pix_fmt in ("gray", "yuvj420p") else 1)


def test_reader_converts_rgb_with_the_output_matrix(tmp_path, make_video):
    path = make_video(tmp_path / "rgb.mkv", frames=2, codec="ffv1", pix_fmt="bgr0")
    with av.open(str(path)) as container:
        gray = next(container.decode(video=0)).to_ndarray(format="rgb24")[..., 1].astype(float)
    video = probe(path).video
    assert video.color.yuv_spec.full_range is False
    frame = read_all(VideoReader(path, video, "yuv420p", batch_size=2))[0][0]
    assert np.abs(frame.planes[0] - (16 + 219 * gray / 255)).max() <= 1
    assert np.abs(frame.planes[1].astype(int) - 128).max() <= 1


def test_reader_to_444(clip):
    frame = read_all(VideoReader(clip, probe(clip).video, "yuv444p", batch_size=8))[0][0]
    assert [p.shape for p in frame.planes] == [(182, 322)] * 3


def test_reader_counts_corrupt_packets(tmp_path, make_video):
    path = make_video(tmp_path / "clip.mp4", frames=40, gray=False)
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 3, len(data) * 2 // 3, len(data) // 12):
        data[offset:offset + 600] = np.random.default_rng(offset).integers(0, 256, 600, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    reader = VideoReader(path, probe(path).video, "yuv420p", batch_size=8)
    frames = [f for b in read_all(reader) for f in b]
    assert reader.decode_errors > 0
    assert len(frames) == reader.frames_decoded < 40
    assert all(a.pts < b.pts for a, b in itertools.pairwise(frames))


# -- writer ------------------------------------------------------------------------------------

def test_output_names(tmp_path):
    assert output_name(tmp_path / "film.mp4") == "film_color.mp4"
    assert output_name(tmp_path / "film.MOV") == "film_color.mov"
    # Other containers become Matroska, keeping the source's extension in the name (no two inputs share one)
    assert output_name(tmp_path / "film.avi") == "film_avi_color.mkv"
    assert output_name(tmp_path / "film.MPG") == "film_MPG_color.mkv"
    assert output_name(tmp_path / "film.webm") == "film_webm_color.mkv"
    assert output_name(tmp_path / "film.webm", codec="libvpx-vp9") == "film_color.webm"
    temp = temp_target(tmp_path / "film_color.mp4").temp
    assert temp.parent == tmp_path and temp.name.startswith(".") and temp.suffix == ".mp4"


def test_check_paths(tmp_path, clip):
    target = tmp_path / "out.mp4"
    check_paths(clip, target, overwrite=False)
    with pytest.raises(OutputError, match="is the input"):
        check_paths(clip, clip, overwrite=True)
    (tmp_path / "link.mp4").symlink_to(clip)
    with pytest.raises(OutputError, match="is the input"):
        check_paths(clip, tmp_path / "link.mp4", overwrite=True)
    os.link(clip, tmp_path / "hard.mp4")
    with pytest.raises(OutputError, match="is the input"):
        check_paths(tmp_path / "hard.mp4", clip, overwrite=True)
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match="exists"):
        check_paths(clip, target, overwrite=False)
    check_paths(clip, target, overwrite=True)
    with pytest.raises(OutputError, match="folder does not exist"):
        check_paths(clip, tmp_path / "missing" / "out.mp4", overwrite=False)


@pytest.mark.parametrize("options,message", [
    (OutputOptions(codec="nosuchcodec"), "unknown encoder"),
    (OutputOptions(codec="aac"), "not a video encoder"),
    (OutputOptions(pix_fmt="rgb24"), "unsupported pixel format"),
    (OutputOptions(codec="mpeg4", pix_fmt="yuv444p"), "cannot encode yuv444p"),
])
def test_check_options(options, message):
    with pytest.raises(OutputError, match=message):
        check_options(options)


def test_writer_timestamps_and_abort(tmp_path, clip, read_video):
    """Frames keep the pts and durations they are given; abort leaves neither file nor temp."""
    video = probe(clip).video
    pts, durations = [0, 3, 4, 9, 10, 12], [3, 1, 5, 1, 2, 2]
    planes = (np.full((182, 322), 100, np.uint8), np.full((91, 161), 90, np.uint8), np.full((91, 161), 160, np.uint8))
    frames = [Frame(p, d, planes) for p, d in zip(pts, durations)]
    video = type(video)(**{**video.__dict__, "time_base": Fraction(1, 24), "rotation": 0})
    target = tmp_path / "out.mp4"
    writer = VideoWriter(target, video, OutputOptions(preset="ultrafast"))
    writer.start()
    writer.write(frames[:4])
    writer.write(frames[4:])
    writer.finish()
    facts = read_video(target, planes=True)
    assert facts.times == [Fraction(p, 24) for p in pts]
    assert facts.duration == Fraction(14, 24)
    assert abs(int(facts.planes[0][2].mean()) - 160) <= 1

    aborted = VideoWriter(tmp_path / "aborted.mp4", video, OutputOptions(preset="ultrafast"))
    aborted.start()
    aborted.write(frames)
    for _ in range(1000):  # wait until the encode thread has written (ultrafast has no lookahead)
        if aborted.frames_written == len(frames):
            break
        time.sleep(0.01)
    assert aborted.temp.exists()
    aborted.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
