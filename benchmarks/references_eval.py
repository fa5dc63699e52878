"""Reference colours and keyframes, scored under the exemplar-video papers' protocol: the first frame's
true colours are the reference.

For each colour clip: its gray version is coloured (1) automatically, (2) with `--reference first.png`,
(3) with `--keyframe 0=first.png`, each through `Colorizer.run` (the `vidcolor run` path), the last also
with `--pix-fmt yuv444p` (full-size chroma, as the unencoded floor has); beside them
the gray baseline and plain flow propagation (the first frame's ab warped frame to frame along DIS flow
on the gray frames, no model, no fading, joined with each frame's L*). Scores on the whole clip and on
the keyframe's own shot (up to the first cut `vidcolor run` finds): PSNR, colourfulness, CDC and warp
error on RGB and on chroma (`vidcolor.scoring.score_video`). The product's outputs are encoded losslessly,
as the floor is not encoded at all.

    python benchmarks/references_eval.py ../shared/data/eval/*.mp4 --json refs.json --picture refs.png

Use the pack's validation videos for choices; `eval/` only to report.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from av.video.reformatter import ColorRange, VideoReformatter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from vidcolor.color import luma_lightness, rgb_luma  # noqa: E402
from vidcolor.evaluate import decode_rgb, find_cuts, write_gray  # noqa: E402
from vidcolor.finish import chroma_from_lab  # noqa: E402
from vidcolor.flow import optical_flow, warp  # noqa: E402
from vidcolor.color import rgb_to_lab  # noqa: E402
from vidcolor.media import OutputOptions, probe  # noqa: E402
from vidcolor.pipeline import Colorizer  # noqa: E402
from vidcolor.scoring import score_video  # noqa: E402
from vidcolor.media import RGB_EXACT, plane_arrays, sws_colorspace, to_planar  # noqa: E402
from vidcolor.yuv import to_uint8, yuv_to_rgb  # noqa: E402

MODES = ("gray", "automatic", "reference", "keyframe", "keyframe 4:4:4", "plain propagation",
         "plain propagation 4:2:0")
FIELDS = ("psnr", "colorfulness", "colorfulness_ref", "cdc", "cdc_chroma", "warp_error", "warp_error_chroma")


def frames_of(path: Path) -> torch.Tensor:
    return torch.cat(list(decode_rgb(path)))


def source_luma(clip: Path) -> list[np.ndarray]:
    """The clip's own Y planes (8-bit), which `run` passes through."""
    reformatter = VideoReformatter()
    video = probe(clip).video
    with av.open(str(clip)) as container:
        return [plane_arrays(to_planar(f, "yuv420p", video.color.yuv_spec, reformatter))[0].copy()
                for f in container.decode(video=0)]


def as_420_video(chroma: list[torch.Tensor], luma: list[np.ndarray], spec) -> torch.Tensor:
    """Frames (Y planes + full-size Cb/Cr in code values / 255) as a lossless 4:2:0 video would give them back:
    chroma averaged 2x2 and rounded to 8 bits, then decoded to RGB as `decode_rgb` decodes every output."""
    reformatter = VideoReformatter()
    rng = ColorRange.JPEG if spec.full_range else ColorRange.MPEG
    out = []
    for y, c in zip(luma, chroma):
        half = to_uint8(F.avg_pool2d(c, 2, ceil_mode=True)).numpy()
        frame = av.VideoFrame(y.shape[1], y.shape[0], "yuv420p")
        for view, plane in zip(plane_arrays(frame), (y, half[0], half[1])):
            view[...] = plane
        rgb = reformatter.reformat(frame, format="rgb24", src_colorspace=sws_colorspace(spec), src_color_range=rng,
                                   dst_color_range=ColorRange.JPEG, interpolation=RGB_EXACT)
        out.append(torch.from_numpy(rgb.to_ndarray()).permute(2, 0, 1))
    return torch.stack(out)


def plain_propagation(truth: torch.Tensor, spec, luma: list[np.ndarray] | None = None
                      ) -> dict[str, torch.Tensor]:
    """The floor: frame 0's ab carried by DIS flow on the gray frames, nothing else. Scored two ways: unencoded
    with full-size chroma ("plain propagation"), and as the same lossless 4:2:0 video the product writes, with
    the source's Y ("plain propagation 4:2:0"): the product's outputs are 4:2:0 videos of 4:2:0 sources, so
    the first charges the chroma subsampling (about 2 dB at the keyframe itself) to the product alone."""
    rgb = truth.float() / 255.0
    y = rgb_luma(rgb, spec)
    L = luma_lightness(y, tuple(y.shape[-2:]), spec)
    gray = (y[:, 0] * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    ab = rgb_to_lab(rgb[:1])[:, 1:]
    out, chromas = [], []
    for t in range(len(truth)):
        if t:
            ab = warp(ab, optical_flow(gray[t], gray[t - 1], max_side=None, preset="medium"))
        chroma = chroma_from_lab(L[t:t + 1], ab, spec)
        out.append(yuv_to_rgb(torch.cat([y[t:t + 1], chroma], 1), spec))
        chromas.append(chroma[0])
    plain = {"plain propagation": (torch.cat(out) * 255).round().clamp(0, 255).to(torch.uint8)}
    if luma is not None:
        plain["plain propagation 4:2:0"] = as_420_video(chromas, luma, spec)
    return plain


def scores(pred: torch.Tensor, truth: torch.Tensor, shot: int) -> dict[str, dict[str, float]]:
    out = {}
    for name, end in (("clip", len(truth)), ("shot", shot)):
        s = score_video([pred[:end]], [truth[:end]])
        out[name] = {f: getattr(s, f) for f in FIELDS} | {"frames": end}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="+", type=Path)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--picture", type=Path, help="gray | automatic | keyframe | truth of the first clip's mid-shot frame")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results: dict[str, dict] = {}
    # Lossless output (x264 qp 0): plain propagation is scored unencoded, so a lossy encode would count the
    # codec's luma and chroma loss against the product only (about 5 dB at the keyframe itself at CRF 12).
    lossless = OutputOptions(preset="veryfast", crf=0, overwrite=True)
    for clip in a.clips:
        with tempfile.TemporaryDirectory(prefix="vidcolor-refs-") as tmp:
            tmp = Path(tmp)
            truth = frames_of(clip)
            cuts = find_cuts(clip)
            shot = cuts[0][0] if cuts else len(truth)
            first = tmp / "first.png"
            cv2.imwrite(str(first), truth[0].permute(1, 2, 0).numpy()[..., ::-1])
            gray = write_gray(clip, tmp / "gray.mp4")
            preds = {"gray": frames_of(gray)}
            seconds = {}
            for mode, kw, pix_fmt in (("automatic", {}, "auto"), ("reference", {"references": [first]}, "auto"),
                                      ("keyframe", {"keyframes": [f"0={first}"]}, "auto"),
                                      ("keyframe 4:4:4", {"keyframes": [f"0={first}"]}, "yuv444p")):
                start = time.perf_counter()
                Colorizer(a.model, device="cpu", cpu_threads=a.threads, **kw).run(
                    gray, tmp / f"{mode}.mp4", replace(lossless, pix_fmt=pix_fmt))
                seconds[mode] = time.perf_counter() - start
                preds[mode] = frames_of(tmp / f"{mode}.mp4")
            preds |= plain_propagation(truth, probe(clip).video.color.yuv_spec, source_luma(clip))
            results[clip.name] = {"frames": len(truth), "shot_frames": shot, "seconds": seconds,
                                  "modes": {m: scores(preds[m], truth, shot) for m in MODES}}
            print(clip.name, {m: round(results[clip.name]["modes"][m]["shot"]["psnr"], 2) for m in MODES},
                  flush=True)
            if a.picture and clip == a.clips[0]:
                t = shot // 2
                row = [preds[m][t] for m in ("gray", "automatic", "keyframe")] + [truth[t]]
                cv2.imwrite(str(a.picture), torch.cat(row, dim=2).permute(1, 2, 0).numpy()[..., ::-1])
    mean = {m: {part: {f: float(np.mean([r["modes"][m][part][f] for r in results.values()])) for f in FIELDS}
                for part in ("clip", "shot")} for m in MODES}
    print(f"\nmean over {len(results)} clips (PSNR dB on RGB; shot = up to the first cut)")
    print(f"{'mode':<24} {'shot PSNR':>9} {'clip PSNR':>9} {'CF':>6} {'CF ref':>6} {'CDC':>7} {'CDC chr':>7} "
          f"{'warp':>8} {'warp chr':>8}")
    for m in MODES:
        s, c = mean[m]["shot"], mean[m]["clip"]
        print(f"{m:<24} {s['psnr']:9.2f} {c['psnr']:9.2f} {c['colorfulness']:6.1f} {c['colorfulness_ref']:6.1f} "
              f"{c['cdc']:7.4f} {c['cdc_chroma']:7.4f} {c['warp_error']:8.5f} {c['warp_error_chroma']:8.6f}")
    if a.json:
        clean = lambda v: None if isinstance(v, float) and not math.isfinite(v) else v  # noqa: E731
        doc = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
               "clips": results, "mean": mean}
        a.json.write_text(json.dumps(doc, indent=2, default=clean))


if __name__ == "__main__":
    main()
