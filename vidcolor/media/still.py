"""Still images in and out: a photo is coloured into an image of the same format, size and bit depth.

OpenCV reads and writes them (it is a dependency already): PNG, JPEG, TIFF, BMP and WebP at 8 bits, PNG and
TIFF at 16, TIFF also as 32-bit float. The EXIF orientation is applied on reading, so the coloured copy
shows upright in every viewer (and carries no orientation tag: OpenCV writes no metadata, so EXIF, ICC
profiles and text chunks are not copied; `run` says so in its warnings). An alpha channel is kept as it was.
Images are decoded from and encoded to bytes, so paths with any characters work and the output goes
through a temp file that is renamed only when complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, OutputError
from .sequence import is_pattern
from .writer import STILL_SUFFIXES, temp_target

STILL_EXTENSIONS = frozenset(STILL_SUFFIXES)
DEEP_EXTENSIONS = frozenset({".png", ".tif", ".tiff"})  # hold 16-bit samples (TIFF also float)
JPEG_QUALITY = 95  # OpenCV's default is 95 too; stated so that a change of default cannot change our output
_PNG_CHUNKS = {b"eXIf": "EXIF", b"iCCP": "ICC profile", b"tEXt": "text", b"iTXt": "text", b"zTXt": "text"}
_WEBP_CHUNKS = {b"EXIF": "EXIF", b"ICCP": "ICC profile", b"XMP ": "XMP"}
_TIFF_TAGS = {34665: "EXIF", 34675: "ICC profile", 700: "XMP", 33723: "IPTC", 270: "text", 315: "text"}


def metadata_note(kinds: tuple[str, ...]) -> str | None:
    """The run's warning for a photo whose metadata the copy does not carry (None: it had none)."""
    return f"not copied: the photo's {', '.join(kinds)} (OpenCV writes no metadata)" if kinds else None


def metadata_kinds(data: bytes) -> tuple[str, ...]:
    """Which metadata an image file holds (EXIF, ICC profile, XMP, IPTC, text), from its own structure:
    JPEG segments, PNG chunks, WebP chunks, TIFF's first directory. Unknown layouts: none found."""
    found: list[str] = []
    if data[:2] == b"\xff\xd8":  # JPEG: segments up to the image data
        i = 2
        while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] not in (0xDA, 0xD9):
            marker, size = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
            body = data[i + 4:i + 2 + size]
            found += ["EXIF"] if marker == 0xE1 and body.startswith(b"Exif") else []
            found += ["XMP"] if marker == 0xE1 and body.startswith(b"http://ns.adobe.com/xap") else []
            found += ["ICC profile"] if marker == 0xE2 and body.startswith(b"ICC_PROFILE") else []
            found += ["IPTC"] if marker == 0xED else []
            i += 2 + size
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        i = 8
        while i + 8 <= len(data):
            size, kind = int.from_bytes(data[i:i + 4], "big"), data[i + 4:i + 8]
            found += [_PNG_CHUNKS[kind]] if kind in _PNG_CHUNKS else []
            i += 12 + size
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        i = 12
        while i + 8 <= len(data):
            kind, size = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
            found += [_WEBP_CHUNKS[kind]] if kind in _WEBP_CHUNKS else []
            i += 8 + size + (size & 1)
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        order = "little" if data[:2] == b"II" else "big"
        ifd = int.from_bytes(data[4:8], order)
        count = int.from_bytes(data[ifd:ifd + 2], order) if ifd + 2 <= len(data) else 0
        for k in range(count):
            tag = int.from_bytes(data[ifd + 2 + 12 * k:ifd + 4 + 12 * k], order)
            found += [_TIFF_TAGS[tag]] if tag in _TIFF_TAGS else []
    return tuple(dict.fromkeys(found))


def is_still(path: Path) -> bool:
    """A photo (by its suffix); a printf pattern of photos is an image sequence, not a photo."""
    return Path(path).suffix.lower() in STILL_EXTENSIONS and not is_pattern(path)


@dataclass
class Still:
    """A decoded image: `rgb` (H,W,3) float32 in [0,1], upright; `dtype` its samples' type (uint8, uint16,
    float32); `alpha` (H,W) in that type or None; `metadata` what metadata the file held."""

    rgb: np.ndarray
    dtype: np.dtype
    alpha: np.ndarray | None
    metadata: tuple[str, ...] = ()  # what the file held that the copy will not (`metadata_kinds`)

    @property
    def bits(self) -> int:
        return 32 if self.dtype == np.float32 else 8 * np.dtype(self.dtype).itemsize


def _scale(dtype: np.dtype) -> float:
    return 1.0 if dtype == np.float32 else float(np.iinfo(dtype).max)


def read_still(path: Path) -> Still:
    """Decode `path` at its own depth and channel count, EXIF orientation applied."""
    import cv2

    try:
        data = np.fromfile(path, np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    # ANYDEPTH | ANYCOLOR: 16-bit and float samples and 1-4 channels as stored; unlike IMREAD_UNCHANGED,
    # OpenCV still applies the EXIF orientation with these flags.
    image = cv2.imdecode(data, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR) if data.size else None
    if image is None:
        raise InputError(f"not an image OpenCV can read (damaged or unsupported format): {path}")
    if image.ndim == 3 and image.shape[2] == 3:
        image = _with_alpha(image, cv2.imdecode(data, cv2.IMREAD_UNCHANGED))
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise InputError(f"unsupported sample type {image.dtype} (8 or 16-bit integers or 32-bit float): {path}")
    if image.ndim == 2 or image.shape[2] == 1:
        image = image.reshape(image.shape[:2])
        bgr, alpha = np.repeat(image[..., None], 3, axis=2), None
    elif image.shape[2] == 4:
        bgr, alpha = image[..., :3], image[..., 3].copy()
    else:
        bgr, alpha = image[..., :3], None
    rgb = np.ascontiguousarray(bgr[..., ::-1], dtype=np.float32) / _scale(image.dtype)
    return Still(np.clip(rgb, 0.0, 1.0), image.dtype, alpha, metadata_kinds(data.tobytes()))


def _with_alpha(oriented: np.ndarray, raw: np.ndarray | None) -> np.ndarray:
    """`oriented` (as decoded with the EXIF orientation, which drops alpha) with the alpha of `raw` (as
    stored) turned the same way: the one of the 8 turns and flips that maps raw's colour onto it."""
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4 or raw.dtype != oriented.dtype:
        return oriented
    for flipped in (raw, raw[:, ::-1]):
        for k in range(4):
            turned = np.rot90(flipped, k)
            if turned.shape[:2] == oriented.shape[:2] and np.array_equal(turned[..., :3], oriented):
                return np.ascontiguousarray(turned)
    return oriented


def output_dtype(still: Still, target: Path) -> np.dtype:
    """The input's sample type where the target's format holds it, else 8-bit."""
    ext = target.suffix.lower()
    if still.dtype == np.uint8 or ext not in DEEP_EXTENSIONS:
        return np.dtype(np.uint8)
    if still.dtype == np.float32 and ext == ".png":
        return np.dtype(np.uint16)
    return np.dtype(still.dtype)


def check_still_target(source: Path, target: Path) -> None:
    if not is_still(target):
        raise OutputError(f"{source} is a still image: its output must be an image too "
                          f"({', '.join(sorted(STILL_EXTENSIONS))}), not {target.name}")


def write_still(target: Path, rgb: np.ndarray, dtype: np.dtype, alpha: np.ndarray | None) -> None:
    """Encode (H,W,3) float RGB in [0,1] as `dtype` in the format of `target`'s extension, atomically."""
    import cv2

    scale = _scale(dtype)
    samples = np.clip(rgb, 0.0, 1.0) * scale
    planes = samples[..., ::-1] if dtype == np.float32 else np.round(samples[..., ::-1]).astype(dtype)
    if alpha is not None:
        a = alpha.astype(np.float64) / _scale(alpha.dtype) * scale
        planes = np.dstack([planes, a.astype(dtype) if dtype == np.float32 else np.round(a).astype(dtype)])
    ext = target.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(ext, np.ascontiguousarray(planes.astype(dtype, copy=False)), params)
    if not ok:
        raise OutputError(f"OpenCV could not encode {target.name} as {ext}")
    with temp_target(target) as tmp:
        try:
            data.tofile(tmp)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
