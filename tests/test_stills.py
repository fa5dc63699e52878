"""Still images: same format, size and bit depth out, EXIF orientation, alpha, and photos in a batch."""

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import cli
from vidcolor.media.still import read_still


@pytest.fixture(scope="module")
def model(tmp_path_factory, make_model):
    return make_model(tmp_path_factory.mktemp("model") / "tiny.pt")  # about ab = (44, 33) everywhere


def run(*args, model):
    return CliRunner(env={"COLUMNS": "300"}).invoke(
        cli, ["run", "--model", str(model), "--render-size", "64", "--preset", "ultrafast", *map(str, args)])


def gradient(h: int, w: int, dtype=np.uint16) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.round(np.linspace(0.2, 0.8, h * w).reshape(h, w) * top).astype(dtype)


def luma(bgr: np.ndarray) -> np.ndarray:
    """Rec. 601 Y' of float BGR (`rgb_frame_spec` for frames under 720 lines)."""
    b, g, r = (bgr[..., i].astype(np.float64) for i in range(3))
    return 0.299 * r + 0.587 * g + 0.114 * b


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_gray_photo_becomes_16bit_colour_with_its_own_luma(tmp_path, model, ext):
    gray = gradient(48, 70)
    source = tmp_path / f"scan{ext}"
    assert cv2.imwrite(str(source), gray)
    result = run(source, model=model)
    assert result.exit_code == 0, result.output
    out = cv2.imread(str(tmp_path / f"scan_color{ext}"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (48, 70, 3)
    assert np.abs(out[..., 2].astype(int) - out[..., 0]).mean() > 2000  # coloured (the model's red-yellow)
    # The photo's own luma, at 16-bit precision (not through 8 bits: that would be off by up to 128 codes),
    # where the colour is inside the RGB gamut (clipping a channel changes the luma).
    inside = ((out > 0) & (out < 65535)).all(axis=2)
    assert inside.mean() > 0.5 and np.abs(luma(out) - gray)[inside].max() < 40
    assert not list(tmp_path.glob(".*"))  # no temp file left


def exif_orientation_jpeg(path: Path, image: np.ndarray, orientation: int) -> Path:
    """A JPEG with an EXIF APP1 segment holding only the orientation tag (0x0112)."""
    ok, data = cv2.imencode(".jpg", image)
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) \
        + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    path.write_bytes(data.tobytes()[:2] + app1 + data.tobytes()[2:])
    return path


def test_exif_orientation_is_applied_and_alpha_kept(tmp_path, model):
    stored = np.zeros((20, 40), np.uint8)
    stored[:, :20] = 200  # bright on the stored left: after a 90 degree turn clockwise, on top
    photo = exif_orientation_jpeg(tmp_path / "turned.jpg", stored, orientation=6)
    assert read_still(photo).rgb.shape == (40, 20, 3)
    rgba = np.dstack([np.full((30, 30, 3), 128, np.uint8), np.arange(900, dtype=np.uint8).reshape(30, 30)])
    assert cv2.imwrite(str(tmp_path / "logo.png"), rgba)
    result = run(photo, tmp_path / "logo.png", model=model)
    assert result.exit_code == 0, result.output
    out = cv2.imread(str(tmp_path / "turned_color.jpg"))
    assert out.shape == (40, 20, 3)  # upright, as every viewer shows the input
    assert luma(out)[:20].mean() > luma(out)[20:].mean() + 100
    logo = cv2.imread(str(tmp_path / "logo_color.png"), cv2.IMREAD_UNCHANGED)
    assert logo.shape == (30, 30, 4) and np.array_equal(logo[..., 3], rgba[..., 3])


def test_folder_of_photos_and_videos_is_one_batch_and_a_bad_photo_fails_alone(tmp_path, model, make_video):
    folder = tmp_path / "archive"
    (folder / "reel").mkdir(parents=True)
    make_video(folder / "reel" / "film.mp4", width=64, height=48, frames=3)
    assert cv2.imwrite(str(folder / "portrait.jpg"), gradient(32, 24, np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result = run(folder, "--report", tmp_path / "report.json", model=model)
    assert result.exit_code == 1  # one input failed, the others were done
    assert (folder / "reel" / "film_color.mp4").is_file() and (folder / "portrait_color.jpg").is_file()
    assert not (folder / "broken_color.png").exists()
    assert "not an image OpenCV can read" in result.output and "broken.png" in result.output


def test_a_photo_is_never_written_as_a_video(tmp_path, model):
    assert cv2.imwrite(str(tmp_path / "p.png"), gradient(16, 16, np.uint8))
    result = run(tmp_path / "p.png", "-o", tmp_path / "p.mp4", model=model)
    assert result.exit_code == 1 and "its output must be an image" in result.output
    assert not (tmp_path / "p.mp4").exists()


def test_preview_sheet_has_one_row_per_frame_gray_beside_colour(tmp_path, model, make_video):
    from vidcolor.preview import GAP, LABEL_HEIGHT, PANEL_WIDTH

    film = make_video(tmp_path / "film.mp4", width=96, height=64, frames=24)
    result = CliRunner().invoke(cli, ["preview", str(film), "-n", "4", "--model", str(model), "--render-size", "64"])
    assert result.exit_code == 0, result.output
    sheet = cv2.imread(str(tmp_path / "film_preview.png"))
    height = round(PANEL_WIDTH * 64 / 96)
    row = LABEL_HEIGHT + height + GAP
    assert sheet.shape == (4 * row, 2 * PANEL_WIDTH + GAP, 3)
    for i in range(4):
        top = i * row + LABEL_HEIGHT
        gray = sheet[top:top + height, :PANEL_WIDTH].astype(int)
        colour = sheet[top:top + height, PANEL_WIDTH + GAP:].astype(int)
        assert np.abs(gray[..., 2] - gray[..., 0]).mean() < 2  # the source as it is
        assert (colour[..., 2] - colour[..., 0]).mean() > 20  # the model's red-yellow
    bad = CliRunner().invoke(cli, ["preview", str(film), "-o", str(tmp_path / "sheet.mp4"), "--model", str(model)])
    assert bad.exit_code == 1 and "a preview is a picture" in bad.output


def test_the_metadata_notice_only_for_photos_that_had_metadata(tmp_path, model):
    from vidcolor.media.still import metadata_kinds

    plain = tmp_path / "plain.png"
    assert cv2.imwrite(str(plain), np.full((16, 16), 90, np.uint8))
    exif = exif_orientation_jpeg(tmp_path / "exif.jpg", np.full((16, 16), 90, np.uint8), orientation=1)
    assert metadata_kinds(plain.read_bytes()) == () and metadata_kinds(exif.read_bytes()) == ("EXIF",)
    png = plain.read_bytes()
    icc = struct.pack(">I", 5) + b"iCCPx\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
    assert metadata_kinds(png[:33] + icc + png[33:]) == ("ICC profile",)  # after IHDR
    result = run(plain, model=model)
    assert result.exit_code == 0 and "not copied" not in result.output, result.output
    result = run(exif, model=model)
    assert result.exit_code == 0 and "not copied: the photo's EXIF" in result.output, result.output
