"""Output pixel formats: bit depth and chroma layout, what each encoder takes, and `auto`'s choice.

`--pix-fmt auto` keeps the source's bit depth and chroma subsampling where the encoder can hold
them (a 10-bit 4:2:2 ProRes master stays 10-bit 4:2:2), else the nearest it takes, never fewer bits
when more are on offer. The frames between the stages are planes of that format: uint8 at 8 bits,
uint16 above, so L* is computed from the full-depth luma and the Y plane reaches the encoder as it was.
"""

from __future__ import annotations

from functools import cache

import av

from ..controls import PIX_FMT_AUTO, PIX_FMTS
from ..errors import OutputError

LAYOUTS = ("420", "422", "444")  # chroma subsampling, from least to most chroma
DEPTHS = (8, 10, 12, 16)
# Encoders `vidcolor formats` describes when the FFmpeg build has them.
LISTED_CODECS = ("libx264", "libx265", "ffv1", "prores_ks", "dnxhd", "libsvtav1", "libvpx-vp9", "mpeg2video", "mjpeg")


def bits_of(pix_fmt: str) -> int:
    """Bits per sample of a pixel format's first component (`yuv422p10le` -> 10)."""
    return av.VideoFormat(pix_fmt).components[0].bits


def layout_of(pix_fmt: str) -> str:
    """'420', '422' or '444' for a planar YUV format; RGB, gray and others count as '444'/'420' by their chroma."""
    fmt = av.VideoFormat(pix_fmt)
    if fmt.is_rgb or len(fmt.components) < 3:
        return "444" if fmt.is_rgb else "420"
    w, h = fmt.chroma_width(1024), fmt.chroma_height(1024)
    return "420" if (w, h) == (512, 512) else "422" if (w, h) == (512, 1024) else "444"


def chroma_stride(pix_fmt: str) -> tuple[int, int]:
    """(rows, columns) of luma samples per chroma sample in the format's layout: (2, 2) for 4:2:0."""
    return {"420": (2, 2), "422": (1, 2), "444": (1, 1)}[layout_of(pix_fmt)]


@cache
def codec_pix_fmts(codec: str) -> tuple[str, ...]:
    """The formats of PIX_FMTS that `codec` can encode (all of them when it does not say)."""
    formats = av.Codec(codec, "w").video_formats
    if not formats:
        return PIX_FMTS
    names = {f.name for f in formats}
    return tuple(p for p in PIX_FMTS if p in names)


def fits(pix_fmt: str, width: int, height: int) -> bool:
    """Subsampled chroma needs even sides: 4:2:0 both, 4:2:2 the width."""
    layout = layout_of(pix_fmt)
    return not ((layout == "420" and (width % 2 or height % 2)) or (layout == "422" and width % 2))


def choose_pix_fmt(codec: str, source_pix_fmt: str, width: int = 2, height: int = 2) -> str:
    """`auto`: the source's depth (rounded up to 8/10/12/16) and layout if `codec` takes them, else the
    nearest: fewest bits lost first, then the closest layout (more chroma on a tie), then fewest bits added.
    Layouts a `width` x `height` frame cannot have (odd sides) are passed over when another is offered."""
    offered = codec_pix_fmts(codec)
    offered = tuple(p for p in offered if fits(p, width, height)) or offered
    if not offered:
        raise OutputError(f"{codec} encodes none of vidcolor's pixel formats ({', '.join(PIX_FMTS)})")
    bits = min((d for d in DEPTHS if d >= bits_of(source_pix_fmt)), default=DEPTHS[-1])
    layout = LAYOUTS.index(layout_of(source_pix_fmt))

    def cost(p: str) -> tuple[int, int, int, int]:
        d, lay = bits_of(p), LAYOUTS.index(layout_of(p))
        return max(0, bits - d), abs(lay - layout), -lay, max(0, d - bits)

    return min(offered, key=cost)


def resolve_pix_fmt(pix_fmt: str, codec: str, source_pix_fmt: str, width: int = 2, height: int = 2) -> str:
    """The output's pixel format for a source: `pix_fmt` itself, or `auto`'s choice."""
    return choose_pix_fmt(codec, source_pix_fmt, width, height) if pix_fmt == PIX_FMT_AUTO else pix_fmt


def check_codec_pix_fmt(codec: str, pix_fmt: str) -> None:
    """A one-line error naming what `codec` takes, when it cannot encode `pix_fmt`."""
    if pix_fmt == PIX_FMT_AUTO:
        return
    if pix_fmt not in PIX_FMTS:
        raise OutputError(f"unsupported pixel format {pix_fmt} (use auto or one of {', '.join(PIX_FMTS)})")
    offered = codec_pix_fmts(codec)
    if pix_fmt not in offered:
        raise OutputError(f"{codec} cannot encode {pix_fmt}: it takes {', '.join(offered) or 'none of ours'} "
                          f"(or use --pix-fmt auto)")


def codec_table() -> list[tuple[str, str, tuple[str, ...]]]:
    """(encoder, description, pixel formats) for each LISTED_CODECS encoder this FFmpeg build has."""
    rows = []
    for name in LISTED_CODECS:
        try:
            codec = av.Codec(name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
        rows.append((name, codec.long_name, codec_pix_fmts(name)))
    return rows
