"""Archive-faithful output (issue 14): every stream and tag kept where the container can hold it, honest
loss reports both ways, resolution changes, one lock before the target is touched, streams checked
before any work, and encoder/container rules. Every test writes its own files with PyAV."""

import json
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import cli
from vidcolor.errors import OutputError
from vidcolor.media import OutputOptions, probe
from vidcolor.media.writer import temp_target
from vidcolor.pipeline import Colorizer
from vidcolor.resume import WorkFolder

FAST = OutputOptions(preset="ultrafast")


@pytest.fixture(scope="module")
def model(tmp_path_factory, make_model):
    return make_model(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def colorizer(model):
    return Colorizer(model, device="cpu", render_size=64, smoothing="none")


def run_cli(*args, model):
    return CliRunner(env={"COLUMNS": "300"}).invoke(
        cli, ["run", "--model", str(model), "--render-size", "64", "--preset", "ultrafast", *map(str, args)])


def gray(i: int, width: int = 64, height: int = 48) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((height, width, 3), 10 + 9 * i, np.uint8), format="rgb24")


def write_clip(path: Path, frames: int = 12, fps: int = 24, video_start: int = 0, audio_seconds: float | None = None,
               audio_codec: str = "aac", size: tuple[int, int] = (64, 48), setup=None) -> Path:
    """A clip whose video starts `video_start` frames late and whose audio lasts `audio_seconds`;
    `setup(container, video_stream, audio_stream)` adds tags, chapters, attachments before the first packet."""
    width, height = size
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        v.time_base = v.codec_context.time_base = Fraction(1, fps)
        fmt = {"aac": "fltp", "pcm_s16le": "s16", "pcm_u8": "u8"}[audio_codec]
        a = c.add_stream(audio_codec, rate=8000, layout="mono") if audio_seconds else None
        if setup:
            setup(c, v, a)
        for i in range(frames):
            frame = gray(i, width, height).reformat(format="yuv420p")
            frame.pts, frame.time_base = i + video_start, Fraction(1, fps)
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        if a is not None:
            dtype = {"fltp": np.float32, "s16": np.int16, "u8": np.uint8}[fmt]
            samples = (np.arange(int(audio_seconds * 8000)) * 7 % 200).astype(dtype)
            for start in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format=fmt, layout="mono")
                chunk.sample_rate, chunk.pts = 8000, start
                c.mux(a.encode(chunk))
            c.mux(a.encode(None))
    return path


def audio_samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])


# -- 2. streams and tags ------------------------------------------------------------------------

def tag_everything(c, v, a):
    c.metadata.update(title="Reel 4", comment="nitrate, scanned 2019", creation_time="1952-05-01T00:00:00.000000Z")
    v.metadata["timecode"] = "01:00:00:00"  # the mov muxer makes a tmcd track from it
    a.metadata.update(language="fra", title="French commentary")
    c.set_chapters([{"id": 1, "start": 0, "end": 250, "time_base": Fraction(1, 1000), "metadata": {"title": "Opening"}},
                    {"id": 2, "start": 250, "end": 500, "time_base": Fraction(1, 1000), "metadata": {"title": "Two"}}])


def test_master_tags_chapters_and_timecode_are_kept(tmp_path, colorizer):
    source = write_clip(tmp_path / "master.mov", audio_seconds=0.5, audio_codec="pcm_s16le", setup=tag_everything)
    result = colorizer.run(source, tmp_path / "out.mov", FAST)
    with av.open(str(result.output)) as out, av.open(str(source)) as src:
        for key in ("title", "comment", "creation_time"):
            assert out.metadata[key] == src.metadata[key]
        assert out.streams.video[0].metadata["timecode"] == "01:00:00:00"
        tmcd = [s for s in out.streams if s.type == "data" and s.metadata.get("timecode") == "01:00:00:00"]
        assert tmcd, "no timecode track"
        audio = out.streams.audio[0]
        assert audio.codec_context.name == "pcm_s16le" and audio.metadata["language"] == "fra"
        assert [c["metadata"]["title"] for c in out.chapters()] == ["Opening", "Two"]
    assert any("start timecode 01:00:00:00" in k for k in result.plan.kept)
    assert any(k.startswith("container tags: comment, creation_time, title") for k in result.plan.kept)
    assert "2 chapters" in result.plan.kept and result.plan.not_kept == []

    # Into Matroska the timecode stays a tag, the chapters and the track title stay too.
    mkv = colorizer.run(source, tmp_path / "out.mkv", FAST)
    with av.open(str(mkv.output)) as out:
        assert out.streams.video[0].metadata.get("TIMECODE", out.streams.video[0].metadata.get("timecode")) \
            == "01:00:00:00"
        assert out.streams.audio[0].metadata["title"] == "French commentary"
        assert len(out.chapters()) == 2 and out.metadata["title"] == "Reel 4"


def with_attachment_subtitles_and_second_video(c, v, a):
    c.add_attachment("Deco.ttf", "application/x-truetype-font", b"FONTDATA" * 50)
    sub = c.add_mux_stream("subrip")
    sub.metadata.update(language="ger", title="Deutsch")
    sub.time_base = Fraction(1, 24)
    second = c.add_stream("mjpeg", rate=24)
    second.width, second.height, second.pix_fmt = 32, 24, "yuvj420p"
    second.time_base = second.codec_context.time_base = Fraction(1, 24)
    for i in range(3):
        frame = gray(i, 32, 24).reformat(format="yuvj420p")
        frame.pts = i
        c.mux(second.encode(frame))
    packet = av.Packet(b"Untertitel")
    packet.stream, packet.time_base, packet.pts, packet.dts, packet.duration = sub, Fraction(1, 24), 2, 2, 5
    c.mux(packet)


def test_attachments_subtitles_and_a_second_video_are_kept_or_reported(tmp_path, colorizer):
    source = write_clip(tmp_path / "film.mkv", setup=with_attachment_subtitles_and_second_video)
    result = colorizer.run(source, tmp_path / "out.mkv", FAST)
    with av.open(str(result.output)) as out, av.open(str(source)) as src:
        attached = [s for s in out.streams if s.type == "attachment"]
        assert [(s.name, bytes(s.data)) for s in attached] == [("Deco.ttf", b"FONTDATA" * 50)]
        sub = out.streams.subtitles[0]
        assert (sub.metadata["language"], sub.metadata["title"]) == ("ger", "Deutsch")
        second = [s for s in out.streams.video if s.codec_context.name == "mjpeg"]
        assert len(second) == 1
        packets = lambda c, s: [bytes(p) for p in c.demux(s) if p.size]  # noqa: E731
        assert packets(out, second[0]) == packets(src, [s for s in src.streams.video if s.index != 0][0])
    assert any("copied untouched (not coloured)" in k for k in result.plan.kept)

    # MP4 holds neither the font nor SubRip: said in the run's warnings and the report, the rest is kept.
    report = tmp_path / "report.json"
    cli_result = run_cli(source, "-o", tmp_path / "out.mp4", "--report", report, model=colorizer.model_path)
    assert cli_result.exit_code == 0, cli_result.output
    row = json.loads(report.read_text())["files"][0]
    assert any(n.startswith("attachment #") and "Deco.ttf" in n and "Matroska" in n for n in row["not_kept"])
    assert any(n.startswith("subtitle #") and "mp4 cannot hold it" in n for n in row["not_kept"])
    assert any(k.startswith("video #0") for k in row["kept"])
    assert "not kept: attachment" in row["message"]


def test_info_lists_every_stream_and_tag(tmp_path):
    source = write_clip(tmp_path / "master.mov", audio_seconds=0.5, audio_codec="pcm_s16le", setup=tag_everything)
    result = CliRunner(env={"COLUMNS": "300"}).invoke(cli, ["info", str(source)])
    assert result.exit_code == 0, result.output
    text = result.output
    for expected in ("title=Reel 4", "comment=nitrate, scanned 2019", "timecode=01:00:00:00", "language=fra",
                     "pcm_s16le", "tmcd", "chapters", "data #"):
        assert expected in text, expected
    assert next(line for line in text.splitlines() if line.split()[:1] == ["chapters"]).split()[1] == "2"


# -- 3. loss reports, both ways ----------------------------------------------------------------------

def test_truncated_transport_stream_is_reported(tmp_path, make_video, colorizer):
    source = make_video(tmp_path / "capture.ts", width=64, height=48, frames=48)
    data = source.read_bytes()
    source.write_bytes(data[:len(data) // 2 // 188 * 188 + 100])  # cut inside a packet, as a copy cut off
    result = colorizer.run(source, tmp_path / "out.mkv", FAST)
    assert 0 < result.frames_out < 48
    assert result.losses and "truncated" in result.losses[0]
    report = tmp_path / "report.json"  # the report says so too, and counts the file as damaged
    assert run_cli(source, "--report", report, model=colorizer.model_path).exit_code == 0
    data = json.loads(report.read_text())
    assert "truncated" in data["files"][0]["input_damage"][0] and "truncated" in data["files"][0]["message"]
    assert data["totals"]["damaged"] == 1


def test_input_still_growing_is_reported(tmp_path, make_video, colorizer):
    source = make_video(tmp_path / "recording.mkv", width=64, height=48, frames=12)

    def grow(done, total):
        with open(source, "ab") as f:
            f.write(b"\0" * 10)

    result = colorizer.run(source, tmp_path / "out.mkv", FAST, progress=grow)
    assert any("changed while it was read" in loss for loss in result.losses)


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_late_video_and_longer_audio_are_not_losses(tmp_path, colorizer, suffix):
    """The video stream's own duration decides, not the container's (which includes the longer audio)."""
    source = write_clip(tmp_path / f"healthy{suffix}", frames=24, video_start=12, audio_seconds=3.0)
    assert probe(source).video.expected_frames == 24
    result = colorizer.run(source, tmp_path / f"out{suffix}", FAST)
    assert (result.frames_out, result.frames_lost, result.frames_extra, result.losses) == (24, 0, 0, [])


def test_raw_dv_gets_a_plausible_rate(tmp_path, colorizer):
    source = tmp_path / "tape.dv"
    with av.open(str(source), "w") as c:
        v = c.add_stream("dvvideo", rate=25)
        v.width, v.height, v.pix_fmt = 720, 576, "yuv420p"
        for i in range(6):
            frame = gray(i, 720, 576).reformat(format="yuv420p")
            frame.pts = i
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
    video = probe(source).video
    assert video.fps == 25 and video.expected_frames == 6
    result = colorizer.run(source, tmp_path / "out.mkv", FAST)
    assert (result.frames_out, result.frames_lost) == (6, 0)
    with av.open(str(result.output)) as out:
        assert out.streams.video[0].average_rate == 25


# -- 4. resolution change ----------------------------------------------------------------------------

def test_resolution_change_mid_stream_is_scaled_with_a_warning(tmp_path, make_video, colorizer, read_video):
    first = make_video(tmp_path / "a.ts", width=64, height=48, frames=5)
    second = make_video(tmp_path / "b.ts", width=96, height=64, frames=4)
    joined = tmp_path / "concatenated.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    result = colorizer.run(joined, tmp_path / "out.mkv", FAST)
    assert result.frames_out == 9
    assert any("4 frames at another size than the first 64x48" in w for w in result.warnings)
    out = read_video(result.output)
    assert (out.width, out.height, len(out.pts)) == (64, 48, 9)


# -- 5. one lock before the target is touched -----------------------------------------------------------

def test_second_run_never_touches_the_first_runs_files(tmp_path, make_video, colorizer):
    source = make_video(tmp_path / "clip.mp4", width=64, height=48, frames=4)
    target = tmp_path / "clip_color.mp4"
    first_temp = temp_target(target).temp
    with WorkFolder(target, {"first": "run"}):  # the first run, busy joining into its temp file
        first_temp.write_bytes(b"the first run's output, half written")
        with pytest.raises(OutputError, match="another vidcolor process"):
            colorizer.run(source, target, FAST)
        assert first_temp.read_bytes() == b"the first run's output, half written"
    assert not target.exists()


# -- 6. every stream checked before any work -------------------------------------------------------------

def test_audio_the_container_cannot_hold_is_transcoded_losslessly(tmp_path, colorizer):
    source = write_clip(tmp_path / "tape.mov", audio_seconds=0.5, audio_codec="pcm_u8")
    result = colorizer.run(source, tmp_path / "out.mp4", FAST)
    with av.open(str(result.output)) as out:
        assert out.streams.audio[0].codec_context.name == "flac"
    original = audio_samples(source).astype(np.int32)
    assert np.array_equal((original - 128) * 256, audio_samples(result.output).astype(np.int32))  # u8 -> s16, exact
    assert any("transcoded losslessly to flac (mp4 cannot hold pcm_u8)" in k for k in result.plan.kept)


def test_a_video_the_container_cannot_hold_fails_before_any_work(tmp_path, make_video, model):
    source = make_video(tmp_path / "clip.mp4", width=64, height=48, frames=4)
    result = run_cli(source, "-o", tmp_path / "out.webm", model=model)
    assert result.exit_code == 1
    assert "use --codec libvpx-vp9" in result.stderr and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # no work folder, no temp file


# -- 7. containers and codecs --------------------------------------------------------------------------

def test_h264_into_mpeg_ts(tmp_path, make_video, colorizer, read_video):
    source = make_video(tmp_path / "clip.mp4", width=64, height=48, frames=6)
    result = colorizer.run(source, tmp_path / "out.ts", FAST)
    assert len(read_video(result.output).pts) == 6


def test_mpeg2_gets_its_own_quality_setting(tmp_path, make_video, colorizer, read_video):
    source = make_video(tmp_path / "clip.mp4", width=64, height=48, frames=6, gray=False)
    sizes = []
    for crf in (0, 51):
        out = colorizer.run(source, tmp_path / f"crf{crf}.mkv", OutputOptions(codec="mpeg2video", crf=crf))
        facts = read_video(out.output)
        assert len(facts.pts) == 6
        assert all(abs(a - b) < Fraction(1, 1000) for a, b in zip(facts.times, read_video(source).times))
        sizes.append(out.output.stat().st_size)
    assert sizes[0] > sizes[1]  # --crf reached the encoder as its quantiser


def test_interlaced_source_keeps_its_field_order(tmp_path, colorizer):
    from test_bad_inputs import write_interlaced

    source = write_interlaced(tmp_path / "interlaced.mp4")
    result = colorizer.run(source, tmp_path / "out.mkv", FAST)
    with av.open(str(result.output)) as out, av.open(str(source)) as src:
        assert out.streams.video[0].codec_context.field_order == src.streams.video[0].codec_context.field_order > 1
        assert next(out.decode(video=0)).interlaced_frame


def mpeg2_top_field_first(path: Path) -> list[int]:
    """Each MPEG-2 picture's own top_field_first bit (its picture coding extension): what players deinterlace by."""
    bits = []
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            data = bytes(packet)
            at = data.find(b"\x00\x00\x01\xb5")
            while at >= 0 and data[at + 4] >> 4 != 8:  # extension id 8: picture coding extension
                at = data.find(b"\x00\x00\x01\xb5", at + 4)
            if at >= 0:
                bits.append(data[at + 7] >> 7)
    return bits


def test_mpeg2_pictures_keep_a_top_field_first_source_order(tmp_path, colorizer):
    from test_bad_inputs import write_interlaced

    source = write_interlaced(tmp_path / "interlaced.mp4")  # x264's interlaced default: top field first
    result = colorizer.run(source, tmp_path / "out.mkv", OutputOptions(codec="mpeg2video"))
    bits = mpeg2_top_field_first(result.output)
    assert len(bits) == 6 and set(bits) == {1}, bits
    with av.open(str(result.output)) as out:
        assert out.streams.video[0].codec_context.field_order == 2  # the container says the same


def test_avi_output_starts_video_with_the_audio(tmp_path, make_video, colorizer):
    """AVI stores one frame per tick and no reordering: the video's frames are stored at 0, 1, 2 ... frame
    times, with the audio (AAC priming and all) from 0. (FFmpeg's AVI reader still reports H.264 frames one
    tick after their stored time, for any AVI it did not write either: not ours to fix.)"""
    source = make_video(tmp_path / "clip.mp4", width=64, height=48, frames=12, audio=True)
    result = colorizer.run(source, tmp_path / "out.avi", OutputOptions())  # medium preset: B-frames by default
    with av.open(str(result.output)) as out:
        video, audio = out.streams.video[0], out.streams.audio[0]
        assert video.time_base == Fraction(1, 24)
        stored = {"video": [], "audio": []}
        for packet in out.demux(video, audio):
            if packet.size:
                stored[packet.stream.type].append(packet.dts * packet.time_base)
        assert stored["video"] == [Fraction(i, 24) for i in range(12)]
        assert stored["audio"][0] == 0


def test_a_newline_in_a_file_name_stays_on_one_line(tmp_path, model):
    bad = tmp_path / "reel\nnine.mp4"
    bad.write_text("not a video")
    result = run_cli(bad, model=model)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "reel\\nnine.mp4" in lines[0], result.stderr


def test_help_says_which_container_an_output_gets():
    text = " ".join(CliRunner().invoke(cli, ["run", "--help"]).output.split())
    assert "<name>_<ext>_color.mkv" in text and "libvpx-vp9" in text


def write_trimmed_mp4(path, frames: int = 48, hidden: int = 10):
    """An MP4 whose edit list hides its first `hidden` frames (what a lossless cut or a QuickTime trim writes):
    the packets are muxed with timestamps starting at -hidden frames."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 128, 72, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0"}
        stream.time_base = Fraction(1, 24)
        packets = []
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((72, 128, 3), 4 * i, np.uint8), format="rgb24")
            frame.pts = i
            packets += stream.encode(frame)
        packets += stream.encode()
        for packet in packets:
            packet.pts -= hidden
            packet.dts -= hidden
            out.mux(packet)
    return path


def test_a_trimmed_mp4_is_not_reported_as_damaged(tmp_path, model):
    from click.testing import CliRunner

    from vidcolor.cli import cli

    source = write_trimmed_mp4(tmp_path / "trim.mp4")
    report = tmp_path / "report.json"
    result = CliRunner().invoke(cli, ["run", str(source), "--model", str(model), "--render-size", "64",
                                      "--preset", "ultrafast", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "lost" not in result.output, result.output
    entry = json.loads(report.read_text())["files"][0]
    assert entry["frames"] == 38 and entry["frames_lost"] == 0 and entry["frames_expected"] == 38
    info = CliRunner().invoke(cli, ["info", str(source)])
    assert "an edit list hides 10 more stored frames" in " ".join(info.output.split())


def test_a_matroska_cover_image_stays_an_attachment(tmp_path, model):
    import cv2

    ok, jpeg = cv2.imencode(".jpg", np.full((32, 32, 3), 200, np.uint8))
    source = tmp_path / "film.mkv"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 128, 72, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        out.add_attachment("cover.jpg", "image/jpeg", jpeg.tobytes())
        out.add_attachment("font.ttf", "font/ttf", b"\x00\x01font")
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((72, 128, 3), 10 * i, np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    report = tmp_path / "report.json"
    result = CliRunner().invoke(cli, ["run", str(source), "--model", str(model), "--render-size", "64",
                                      "--preset", "ultrafast", "--report", str(report)])
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "film_color.mkv")) as out:
        videos = [s for s in out.streams.video]
        cover = [s for s in videos if s.metadata.get("filename") == "cover.jpg"]
        assert len(videos) == 2 and len(cover) == 1  # the film, and the cover as FFmpeg shows an image attachment
        assert cover[0].disposition & av.stream.Disposition.attached_pic
        assert next(bytes(p) for p in out.demux(cover[0]) if p.size) == jpeg.tobytes()
    with av.open(str(tmp_path / "film_color.mkv")) as out:
        fonts = [s for s in out.streams if s.type == "attachment"]
        assert [s.name for s in fonts] == ["font.ttf"] and bytes(fonts[0].data) == b"\x00\x01font"
    kept = json.loads(report.read_text())["files"][0]["kept"]
    assert any("attachment" in k and "cover.jpg" in k for k in kept), kept
    assert not any("copied untouched" in k for k in kept), kept


def flat_frame(width: int, height: int, value: int, pix_fmt: str, pts: int) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), value, np.uint8), format="rgb24")
    frame = frame.reformat(format=pix_fmt)
    frame.pts = pts
    return frame


def test_ntsc_dv_in_avi_is_bottom_field_first_by_its_codec(tmp_path, model):
    """AVI stores no field order; DV defines it (bottom first): the output is tagged so, and info says why."""
    source = tmp_path / "tape.avi"
    with av.open(str(source), "w") as out:
        stream = out.add_stream("dvvideo", rate=Fraction(30000, 1001))
        stream.width, stream.height, stream.pix_fmt = 720, 480, "yuv411p"
        for i in range(6):
            for packet in stream.encode(flat_frame(720, 480, 30 * i, "yuv411p", i)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    video = probe(source).video
    assert video.field_order == 3 and "DV is bottom field first" in video.field_order_source
    info = CliRunner().invoke(cli, ["info", str(source)])
    assert "bottom field first" in " ".join(info.output.split())
    result = CliRunner().invoke(cli, ["run", str(source), "--model", str(model), "--render-size", "64",
                                      "--preset", "ultrafast"])
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "tape_avi_color.mkv")) as out:
        assert out.streams.video[0].codec_context.field_order in (3, 5)  # bottom first, as the fields are


def test_pcm_audio_into_mp4_is_transcoded_losslessly_not_failed_at_the_end(tmp_path, model):
    """An MJPEG AVI with 16-bit PCM (a capture card's file) to MP4: the mp4 muxer accepts PCM in its header
    and refuses it at the trailer, so the plan tries a packet too; FLAC goes in, sample for sample."""
    source = tmp_path / "capture.avi"
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal((2, 25 * 1920)) * 3000).astype(np.int16)
    with av.open(str(source), "w") as out:
        video = out.add_stream("mjpeg", rate=25)
        video.width, video.height, video.pix_fmt = 160, 120, "yuvj420p"
        audio = out.add_stream("pcm_s16le", rate=48000, layout="stereo")
        for i in range(25):
            for packet in video.encode(flat_frame(160, 120, 8 * i, "yuvj420p", i)):
                out.mux(packet)
            chunk = np.ascontiguousarray(samples[:, i * 1920:(i + 1) * 1920].T).reshape(1, -1)
            sound = av.AudioFrame.from_ndarray(chunk, format="s16", layout="stereo")
            sound.sample_rate, sound.pts = 48000, i * 1920
            for packet in audio.encode(sound):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                out.mux(packet)
    target = tmp_path / "capture_color.mp4"
    result = CliRunner().invoke(cli, ["run", str(source), "-o", str(target), "--model", str(model),
                                      "--render-size", "64", "--preset", "ultrafast"])
    assert result.exit_code == 0, result.output
    assert not list(tmp_path.glob(".*vidcolor-work"))
    with av.open(str(target)) as out:
        assert out.streams.audio[0].codec_context.name in ("flac", "alac")
        decoded = np.concatenate([f.to_ndarray().reshape(-1, 2).T for f in out.decode(audio=0)], axis=1)
    assert decoded.shape[1] >= samples.shape[1] - 1920
    n = min(decoded.shape[1], samples.shape[1])
    assert np.array_equal(decoded[:, :n].astype(np.int16), samples[:, :n])  # lossless


def a53_sei(cc: tuple[tuple[int, int], ...] = ((0x94, 0x2C), (0xC1, 0xC2))) -> bytes:
    """An H.264 SEI NAL unit with ATSC A/53 caption data (ITU-T T.35, 'GA94'), as broadcast encoders write."""
    payload = bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes([0x03, 0x40 | len(cc), 0xFF])
    payload += b"".join(bytes([0xFC, a, b]) for a, b in cc) + b"\xff"
    return b"\x00\x00\x00\x01\x06\x04" + bytes([len(payload)]) + payload + b"\x80"


def write_captioned(path: Path, frames: int = 12, size: tuple[int, int] = (64, 48)) -> Path:
    """H.264 in Matroska with EIA-608 captions in every frame: x264's Annex B access units with an A/53 SEI put
    before each slice."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = *size, "yuv420p"
    codec.time_base, codec.framerate = Fraction(1, 24), Fraction(24)
    codec.options = {"preset": "ultrafast", "threads": "1", "bframes": "0"}
    packets = []
    for i in range(frames):
        frame = gray(i, *size).reformat(format="yuv420p")
        frame.pts = i
        packets += codec.encode(frame)
    packets += codec.encode(None)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("h264", rate=24)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.time_base = Fraction(1, 24)
        for i, packet in enumerate(packets):
            data = bytes(packet)
            slice_at = next(m.start() for m in re.finditer(rb"\x00\x00\x01", data) if data[m.end()] & 0x1F in (1, 5))
            slice_at -= data[slice_at - 1:slice_at] == b"\x00"  # a 4-byte start code
            out_packet = av.Packet(data[:slice_at] + a53_sei() + data[slice_at:])
            out_packet.pts = out_packet.dts = i
            out_packet.time_base, out_packet.stream, out_packet.is_keyframe = Fraction(1, 24), stream, packet.is_keyframe
            out.mux(out_packet)
    return path


def frame_side_data(path: Path) -> set[str]:
    from vidcolor.media.sidedata import side_data_names

    with av.open(str(path)) as container:
        return {name for frame in container.decode(video=0) for name in side_data_names(frame)}


def test_closed_captions_in_the_frames_are_reported_not_dropped_silently(tmp_path, model):
    source = write_captioned(tmp_path / "news.mkv")
    assert "A53_CC" in frame_side_data(source)  # the input really holds them
    report = tmp_path / "report.json"
    result = run_cli(source, "--report", report, model=model)
    assert result.exit_code == 0, result.output
    assert "not kept: closed captions" in " ".join(result.output.split())
    entry = json.loads(report.read_text())["files"][0]
    assert [line for line in entry["not_kept"] if "closed captions" in line] != []
    assert "A53_CC" not in frame_side_data(tmp_path / "news_color.mkv")  # what the report says: not carried
    info = CliRunner(env={"COLUMNS": "300"}).invoke(cli, ["info", str(source)])
    assert "in the frames" in info.output and "closed captions" in info.output
    plain = write_clip(tmp_path / "plain.mkv")
    assert "closed captions" not in run_cli(plain, "--report", tmp_path / "r2.json", model=model).output


# -- the invariant over the archival matrix: everything is in the output or in not_kept, and nothing else -----------

PER_ENCODING_TAGS = {"encoder", "software", "major_brand", "minor_version", "compatible_brands", "duration",
                     "creation_time"}


def holdings(path: Path) -> tuple[dict[int, str], dict[str, str], set[str]]:
    """(stream index -> type, container tags, kinds of listed per-frame side data in any frame)."""
    from vidcolor.media import FRAME_SIDE_DATA
    from vidcolor.media.sidedata import side_data_names

    with av.open(str(path)) as c:
        streams = {s.index: s.type for s in c.streams}
        kinds = {name for f in c.decode(video=0) for name in side_data_names(f)} & FRAME_SIDE_DATA.keys()
        return streams, {k.lower(): v for k, v in c.metadata.items()}, kinds


ARCHIVAL_MATRIX = {
    "mov master into mov": (lambda d: write_clip(d / "m.mov", audio_seconds=0.5, audio_codec="pcm_s16le",
                                                 setup=tag_everything), "out.mov"),
    "mov master into mkv": (lambda d: write_clip(d / "m.mov", audio_seconds=0.5, audio_codec="pcm_s16le",
                                                 setup=tag_everything), "out.mkv"),
    "mkv with font, subtitles, 2nd video into mkv": (
        lambda d: write_clip(d / "f.mkv", setup=with_attachment_subtitles_and_second_video), "out.mkv"),
    "mkv with font, subtitles, 2nd video into mp4": (
        lambda d: write_clip(d / "f.mkv", setup=with_attachment_subtitles_and_second_video), "out.mp4"),
    "avi capture with pcm into mp4": (lambda d: write_clip(d / "c.avi", audio_seconds=0.5, audio_codec="pcm_s16le"),
                                      "out.mp4"),
    "captions": (lambda d: write_captioned(d / "news.mkv"), "out.mkv"),
    "trimmed mp4": (lambda d: write_trimmed_mp4(d / "trim.mp4"), "out.mp4"),
    "interlaced into mpeg-ts": (lambda d: __import__("test_bad_inputs").write_interlaced(d / "i.mp4"), "out.ts"),
}


@pytest.mark.parametrize("case", list(ARCHIVAL_MATRIX))
def test_every_input_holding_is_in_the_output_or_in_not_kept(tmp_path, colorizer, case):
    make, target = ARCHIVAL_MATRIX[case]
    source = make(tmp_path)
    result = colorizer.run(source, tmp_path / target, FAST)
    kept, not_kept = result.plan.kept, result.plan.not_kept
    src_streams, src_tags, src_kinds = holdings(source)
    out_streams, out_tags, out_kinds = holdings(result.output)
    for index, kind in src_streams.items():
        said = [line for line in kept + not_kept if line.startswith(f"{kind} #{index} ")]
        assert len(said) == 1, (case, kind, index, kept, not_kept)  # each stream: kept or reported, once
    for kind in set(src_streams.values()):
        reported = sum(line.startswith(f"{kind} #") for line in not_kept)
        count = lambda streams: sum(t == kind for t in streams.values())  # noqa: E731
        assert count(out_streams) <= count(src_streams) - reported, (case, kind)  # nothing else, nothing invented
    for kind in src_kinds:
        assert kind in out_kinds or any("in the video frames" in line for line in not_kept), (case, kind)
    for key in set(src_tags) - PER_ENCODING_TAGS:
        assert key in out_tags or any("tags" in line for line in not_kept), (case, key)
