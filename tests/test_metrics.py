"""Metrics on synthetic videos whose answers are known by construction or by hand."""

from __future__ import annotations

import dataclasses
import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidcolor import metrics as M
from vidcolor import scoring as S


def texture(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """(3,h,w) smooth random colour texture in [0.1,0.9]: enough structure for optical flow."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g)
    fine = F.interpolate(coarse, scale_factor=8, mode="bicubic", align_corners=False)[0, :, :h, :w]
    return 0.1 + 0.8 * fine.clamp(0, 1)


def translating(t: int, h: int = 72, w: int = 96, dx: int = 3, dy: int = -2, seed: int = 0) -> torch.Tensor:
    """(t,3,h,w) float video of a camera pan: frame k is a crop of a larger texture moved by k*(dx,dy),
    so next(x + dx, y + dy) = prev(x, y) and new content enters at the edges."""
    m = 4 * max(abs(dx), abs(dy)) * t
    big = texture(h + 2 * m, w + 2 * m, seed)
    return torch.stack([big[:, m - k * dy : m - k * dy + h, m - k * dx : m - k * dx + w] for k in range(t)])


def static(t: int, h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    return texture(h, w, seed).expand(t, -1, -1, -1).clone()


# ---------------------------------------------------------------------------------- input


def test_frames_to_uint8_rounds_float_and_keeps_uint8() -> None:
    f = torch.tensor([0.0, 0.5 / 255, 1.6 / 255, 0.5, 1.0, 1.5, -0.2]).view(1, 1, 1, 7).expand(1, 3, 1, 7)
    assert M.frames_to_uint8(f)[0, 0, 0].tolist() == [0, 0, 2, 128, 255, 255, 0]
    u = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    assert torch.equal(M.frames_to_uint8(u), u)
    assert M.frames_to_uint8(u[0]).shape == (1, 3, 4, 5)  # a single frame is a one-frame video
    with pytest.raises(TypeError):
        M.frames_to_uint8(u.long())
    with pytest.raises(ValueError):
        M.frames_to_uint8(torch.zeros(2, 1, 4, 5))


# ---------------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_of_a_uniform_error_and_the_cap() -> None:
    ref = torch.randint(10, 240, (4, 3, 16, 20), dtype=torch.uint8)
    off = ref + 10  # every value off by 10 -> MSE 100
    expected = 10 * math.log10(255**2 / 100)
    assert M.psnr(off, ref) == pytest.approx(expected, abs=1e-9)
    assert M.psnr(off.float() / 255, ref.float() / 255) == pytest.approx(expected, abs=1e-9)  # float input
    assert M.psnr(ref, ref) == M.PSNR_CAP_DB
    half = torch.cat([ref[:2], off[2:]])  # mean of per-frame values, not PSNR of pooled MSE
    assert M.psnr(half, ref) == pytest.approx((M.PSNR_CAP_DB + expected) / 2, abs=1e-9)


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 written out in float64: (3,H,W) values in 0..255, 11x11 Gaussian sigma 1.5,
    valid window positions only, mean over the map and the channels."""
    x = np.arange(11) - 5
    g = np.exp(-(x**2) / (2 * 1.5**2))
    k = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(img: np.ndarray) -> np.ndarray:
        win = np.lib.stride_tricks.sliding_window_view(img, (11, 11), axis=(-2, -1))
        return (win * k).sum(axis=(-2, -1))

    a, b = a.astype(np.float64), b.astype(np.float64)
    ma, mb = filt(a), filt(b)
    va, vb, cov = filt(a * a) - ma**2, filt(b * b) - mb**2, filt(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(s.mean())


def test_ssim_matches_the_written_out_definition() -> None:
    ref = M.frames_to_uint8(texture(40, 52, seed=1))
    noisy = (ref.float() + 12 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 255)
    noisy = noisy.round().to(torch.uint8)
    got = M.ssim(noisy, ref)
    assert got == pytest.approx(_ssim_reference(noisy[0].numpy(), ref[0].numpy()), abs=1e-5)
    assert got < 0.95  # the noise is visible


def test_ssim_is_one_for_identical_and_drops_with_noise() -> None:
    ref = static(2, 40, 52)
    gen = torch.Generator().manual_seed(0)
    scores = [M.ssim((ref + s * torch.randn(ref.shape, generator=gen)).clamp(0, 1), ref) for s in (0.0, 0.02, 0.1)]
    assert scores[0] == pytest.approx(1.0, abs=1e-6)
    assert scores[0] > scores[1] + 0.02 and scores[1] > scores[2] + 0.2


# ---------------------------------------------------------------------------------- colourfulness


def test_colorfulness_of_gray_is_zero() -> None:
    gray = texture(24, 32)[:1].expand(3, -1, -1).unsqueeze(0).expand(3, -1, -1, -1)
    assert M.colorfulness(gray) == pytest.approx(0.0, abs=1e-9)


def test_colorfulness_of_half_red_half_blue_by_hand() -> None:
    img = torch.zeros(1, 3, 10, 20, dtype=torch.uint8)
    img[:, 0, :, :10] = 255  # left half pure red: rg = 255, yb = 127.5
    img[:, 2, :, 10:] = 255  # right half pure blue: rg = 0, yb = -255
    s_rg, m_rg = 127.5, 127.5
    s_yb, m_yb = (127.5 + 255) / 2, (127.5 - 255) / 2
    expected = math.hypot(s_rg, s_yb) + 0.3 * math.hypot(m_rg, m_yb)
    assert M.colorfulness(img) == pytest.approx(expected, rel=1e-12)
    both = torch.cat([img, torch.full_like(img, 128)])  # video = mean over frames; gray frame adds 0
    assert M.colorfulness(both) == pytest.approx(expected / 2, rel=1e-12)


# ---------------------------------------------------------------------------------- CDC


def test_cdc_known_values_in_nats() -> None:
    black = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    white = torch.full_like(black, 255)
    assert M.cdc(torch.cat([black, black, black])) == 0.0
    # disjoint histograms: JS = ln 2 in every channel; only gap 1 exists for two frames
    assert M.cdc(torch.cat([black, white])) == pytest.approx(math.log(2), abs=1e-12)
    # three frames: gap 1 -> ln 2 (both pairs), gap 2 -> 0 (black vs black); gap 4 has no pair
    assert M.cdc(torch.cat([black, white, black])) == pytest.approx(math.log(2) / 2, abs=1e-12)
    # five frames, a change only at the end: gap 1 -> 1 of 4 pairs, gap 2 -> 1 of 3, gap 4 -> 1 of 1
    expected = math.log(2) * (1 / 4 + 1 / 3 + 1) / 3
    assert M.cdc(torch.cat([black] * 4 + [white])) == pytest.approx(expected, abs=1e-12)


def test_cdc_is_zero_for_static_and_higher_for_flicker() -> None:
    v = static(6)
    assert M.cdc(v) == 0.0
    pan = translating(9)
    flicker = pan.clone()
    flicker[1::2, 0] = (flicker[1::2, 0] + 0.15).clamp(0, 1)  # red jumps every other frame
    steady, jumpy = M.cdc(pan), M.cdc(flicker)
    assert jumpy > 4 * steady and jumpy > 0.01


# ---------------------------------------------------------------------------------- flow / warp


@pytest.mark.parametrize("max_side", [None, 48, 8])  # 48 < 96: downscale and rescale; 8: held at a 32 px short side
def test_optical_flow_recovers_a_translation(max_side: int | None) -> None:
    v = translating(2, dx=3, dy=-2)
    g = M.rgb_to_gray_u8(v)
    flow = M.optical_flow(g[0], g[1], max_side=max_side)
    assert flow.shape == (72, 96, 2) and flow.dtype == torch.float32
    inner = flow[12:-12, 12:-12].reshape(-1, 2)
    med = inner.median(dim=0).values
    assert med[0].item() == pytest.approx(3.0, abs=0.3)
    assert med[1].item() == pytest.approx(-2.0, abs=0.3)


def test_optical_flow_does_not_depend_on_the_sizes_seen_before() -> None:
    # OpenCV's DIS lowers its own finest scale for good on a frame too small for it; a shared
    # object would make a clip's warp error depend on which clips were scored before it
    g = M.rgb_to_gray_u8(translating(2, dx=3, dy=-2))
    tiny = M.rgb_to_gray_u8(translating(2, dx=1, dy=0)[..., :16, :24])
    flows = []

    def in_a_fresh_thread() -> None:  # a thread of its own: DIS objects are cached per thread
        flows.append(M.optical_flow(g[0], g[1], max_side=None))
        M.optical_flow(tiny[0], tiny[1], max_side=None)
        flows.append(M.optical_flow(g[0], g[1], max_side=None))

    worker = threading.Thread(target=in_a_fresh_thread)
    worker.start()
    worker.join()
    assert len(flows) == 2 and torch.equal(flows[0], flows[1])


def test_warp_moves_content_back_by_the_flow() -> None:
    v = translating(2, dx=3, dy=-2)
    flow = torch.tensor([3.0, -2.0]).expand(72, 96, 2)
    back = M.warp(v[1], flow)
    assert back.shape == v[0].shape
    torch.testing.assert_close(back[:, 2:, :-3], v[0][:, 2:, :-3], atol=1e-5, rtol=0)
    batched = M.warp(v[1:].expand(2, -1, -1, -1), flow)  # (N,C,H,W) with one shared flow
    torch.testing.assert_close(batched[1], back)


def test_occlusion_mask_flags_inconsistent_and_out_of_frame_flow() -> None:
    h, w = 20, 30
    fw = torch.tensor([2.0, 0.0]).expand(h, w, 2).clone()
    bw = -fw
    mask = M.non_occluded_mask(fw, bw)
    assert mask[:, : w - 2].all() and not mask[:, w - 2 :].any()  # x + 2 leaves the frame
    bad_bw = bw.clone()
    bad_bw[5:10, 5:10] = torch.tensor([3.0, 3.0])  # disagrees with the forward flow
    mask2 = M.non_occluded_mask(fw, bad_bw)
    assert not mask2[6:9, 4:7].any()  # those pixels land in the bad block
    assert mask2[15:, :20].all()


# ---------------------------------------------------------------------------------- warp error


def test_warp_error_is_zero_for_a_static_scene_even_if_pred_differs() -> None:
    ref = static(4)
    pred = (0.5 * ref + torch.tensor([0.3, 0.0, 0.1]).view(1, 3, 1, 1)).clamp(0, 1)  # other colours, static
    assert M.psnr(pred, ref) < 30
    assert M.warp_error(pred, ref) == pytest.approx(0.0, abs=1e-9)
    assert M.warp_error(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert M.cdc(pred) == 0.0


def test_warp_error_consistent_pan_is_near_zero_and_flicker_is_not() -> None:
    ref = translating(5)
    tint = torch.tensor([0.2, -0.1, 0.05]).view(1, 3, 1, 1)
    consistent = (ref + tint).clamp(0, 1)  # recoloured, but moves with the scene
    flicker = consistent.clone()
    flicker[1::2] = (flicker[1::2] + torch.tensor([-0.15, 0.1, 0.1]).view(1, 3, 1, 1)).clamp(0, 1)
    ok, bad = M.warp_error(consistent, ref), M.warp_error(flicker, ref)
    assert ok < 2e-4
    assert bad > 5e-3 and bad > 50 * ok
    # without the out-of-frame mask the entering edge (2-3 px of 96) would dominate `ok`
    assert M.warp_error(ref, ref) < 2e-4


def test_a_pair_with_no_trusted_pixel_adds_nothing_to_the_warp_error() -> None:
    # as Lai et al.'s script (the difference is masked before it is summed): a cut whose
    # occlusion mask is empty adds 0, not the whole frame's difference
    a, b = M.frames_to_uint8(texture(24, 32, seed=1)), M.frames_to_uint8(texture(24, 32, seed=2))
    flow = torch.zeros(24, 32, 2)
    everywhere = torch.ones(24, 32, dtype=torch.bool)
    mse = ((a.float() - b.float()) / 255).square().mean().item()
    assert M._warp_mse(a[0], b[0], flow, everywhere) == pytest.approx(mse) and mse > 0.01
    assert M._warp_mse(a[0], b[0], flow, ~everywhere) == 0.0


# ---------------------------------------------------------------------------------- streaming


def _splits(video: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    assert sum(sizes) == video.shape[0]
    return list(video.split(sizes))


def test_score_video_equals_whole_video_functions_for_any_batching() -> None:
    ref = translating(7, h=40, w=56)
    pred = ref.clone()
    pred[2::3, 1] = (pred[2::3, 1] + 0.1).clamp(0, 1)
    pred = (pred * 0.9 + 0.05).clamp(0, 1)
    expected = {
        "frames": 7,
        "psnr": M.psnr(pred, ref),
        "ssim": M.ssim(pred, ref),
        "colorfulness": M.colorfulness(pred),
        "colorfulness_ref": M.colorfulness(ref),
        "cdc": M.cdc(pred),
        "cdc_ref": M.cdc(ref),
        "warp_error": M.warp_error(pred, ref),
        "warp_error_ref": M.warp_error(ref, ref),
        "cdc_chroma": M.cdc_chroma(pred),
        "cdc_chroma_ref": M.cdc_chroma(ref),
        "warp_error_chroma": M.warp_error_chroma(pred, ref),
        "warp_error_chroma_ref": M.warp_error_chroma(ref, ref),
        "colorfulness_ratio": M.colorfulness(pred) / M.colorfulness(ref),
        "delta_cf": M.colorfulness(pred) - M.colorfulness(ref),
        "fd_lite0": math.nan,  # not asked for (no `fd` given)
    }
    assert expected["warp_error"] > 2 * expected["warp_error_ref"] and expected["cdc"] > expected["cdc_ref"]
    cuts = [
        ([7], [7]),
        ([1] * 7, [1] * 7),
        ([2, 3, 2], [5, 2]),  # the two sides cut differently
        ([4, 0, 3], [1, 6]),  # an empty batch in the stream
    ]
    for p_cut, r_cut in cuts:
        got = S.score_video(iter(_splits(pred, p_cut)), iter(_splits(ref, r_cut)))
        assert dataclasses.asdict(got) == pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True), (p_cut, r_cut)
    # uint8 frames and single (3,H,W) frames from a generator give the same numbers
    gen = (f for f in M.frames_to_uint8(pred))
    got = S.score_video(gen, [M.frames_to_uint8(ref)])
    assert dataclasses.asdict(got) == pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True)


def test_score_video_rejects_different_lengths_and_sizes() -> None:
    v = static(3, 16, 16)
    with pytest.raises(ValueError):
        S.score_video([v], [v[:2]])
    with pytest.raises(ValueError):
        S.score_video([v[:2]], [v])
    with pytest.raises(ValueError):
        S.score_video([v], [static(3, 16, 20)])


def test_single_frame_video_has_undefined_temporal_metrics() -> None:
    v = static(1, 16, 16)
    s = S.score_video([v], [v])
    assert s.frames == 1 and s.psnr == M.PSNR_CAP_DB
    assert math.isnan(s.cdc) and math.isnan(s.warp_error)


def test_chroma_metrics_ignore_luma_and_see_colour_flicker() -> None:
    assert M.to_chroma_u8(torch.full((3, 2, 2), 0.6)).eq(128).all()  # gray: neutral chroma
    red = M.to_chroma_u8(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1))[0, :, 0, 0].tolist()
    assert red == [round(128 - 0.168736 * 255), 255]  # Cr = 128 + 127.5, clamped
    ref = translating(6, h=40, w=56)
    gray = ref.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1).clone()  # moving luma, no colour at all
    assert M.cdc_chroma(gray) == 0.0 and M.cdc(gray) > 0
    gray[1::2] *= 0.8  # luma flicker on top of the motion: still no colour
    assert M.warp_error_chroma(gray, ref) == pytest.approx(0.0, abs=1e-12) and M.warp_error(gray, ref) > 1e-3
    flicker = ref.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1).clone()
    flicker[1::2, 0] = (flicker[1::2, 0] + 0.15).clamp(0, 1)  # every other frame redder
    assert M.cdc_chroma(flicker) > 0.01
    assert M.warp_error_chroma(flicker, ref) > 1e-3
