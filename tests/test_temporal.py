import av
import numpy as np
import pytest
import torch

from vidcolor.color import rgb_to_lab
from vidcolor.temporal import (
    SMOOTHERS,
    CutDetector,
    EmaSmoother,
    FlowSmoother,
    NoSmoothing,
    WindowSmoother,
    make_smoother,
)


def clip_luminance(path) -> torch.Tensor:
    """(N,1,H,W) L* of every frame of a gray clip."""
    with av.open(str(path)) as container:
        gray = np.stack([f.to_ndarray(format="gray") for f in container.decode(video=0)])
    rgb = torch.from_numpy(gray).float().div(255).unsqueeze(1).expand(-1, 3, -1, -1)
    return rgb_to_lab(rgb)[:, :1]


def detect(L: torch.Tensor, batch: int, **options) -> list[int]:
    detector = CutDetector(**options)
    flags = torch.cat([detector.update(part) for part in L.split(batch)])
    return flags.nonzero().flatten().tolist()


def test_finds_known_cuts_in_generated_clip(tmp_path, make_video):
    L = clip_luminance(make_video(tmp_path / "cuts.mp4", frames=36, cuts=(10, 23)))
    assert detect(L, batch=5) == [10, 23]
    assert detect(L, batch=1) == [10, 23]  # state carries across batches
    assert detect(L, batch=36) == [10, 23]


def test_no_cut_within_min_interval(tmp_path, make_video):
    L = clip_luminance(make_video(tmp_path / "close.mp4", frames=24, cuts=(10, 13)))
    assert detect(L, batch=4, min_interval=8) == [10]
    assert detect(L, batch=4, min_interval=2) == [10, 13]


def test_sustained_change_is_not_a_cut():
    """Large differences on every frame (fast motion, noise) fail the ratio test after the first."""
    still = torch.full((12, 1, 32, 32), 50.0)
    noise = torch.rand(12, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 100
    assert detect(torch.cat([still, noise]), batch=5) == [12]


def test_static_clip_has_no_cuts():
    assert detect(torch.full((10, 1, 16, 16), 40.0), batch=4) == []


def ab_frames(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 2, 4, 4).clone()


def test_ema_resets_at_cut():
    ab = ab_frames([10, 10, 10, 10, -30, -30, -30])
    L = torch.zeros(7, 1, 4, 4)
    cuts = torch.tensor([False, False, False, False, True, False, False])
    out = EmaSmoother(strength=0.8).push(ab, L, cuts)
    assert torch.equal(out[:4], ab[:4])
    assert torch.equal(out[4:], ab[4:])  # nothing of the first shot's colour after the cut
    no_cut = EmaSmoother(strength=0.8).push(ab, L, torch.zeros(7, dtype=torch.bool))
    assert no_cut[4, 0, 0, 0] == pytest.approx(0.8 * 10 + 0.2 * -30)


def test_ema_state_carries_across_pushes():
    ab = torch.randn(9, 2, 3, 5, generator=torch.Generator().manual_seed(1))
    L, cuts = torch.zeros(9, 1, 3, 5), torch.zeros(9, dtype=torch.bool)
    cuts[6] = True
    whole = EmaSmoother(0.6).push(ab, L, cuts)
    smoother = EmaSmoother(0.6)
    parts = [smoother.push(ab[i:i + 2], L[i:i + 2], cuts[i:i + 2]) for i in range(0, 9, 2)]
    assert torch.allclose(torch.cat(parts), whole)
    assert len(smoother.flush()) == 0
    assert whole[1:6].std(dim=0).mean() < ab[1:6].std(dim=0).mean()  # it does smooth


def test_no_smoothing_and_zero_strength_pass_through():
    ab = torch.randn(5, 2, 3, 3)
    L, cuts = torch.zeros(5, 1, 3, 3), torch.zeros(5, dtype=torch.bool)
    assert torch.equal(NoSmoothing().push(ab, L, cuts), ab)
    assert torch.equal(EmaSmoother(0.0).push(ab, L, cuts), ab)


def test_make_smoother():
    assert set(SMOOTHERS) == {"none", "ema", "window", "flow"}
    smoother = make_smoother("ema", strength=0.3)
    assert isinstance(smoother, EmaSmoother) and smoother.strength == 0.3
    assert make_smoother("ema").strength == EmaSmoother.DEFAULT_STRENGTH
    assert make_smoother("flow").strength == FlowSmoother.DEFAULT_STRENGTH
    assert isinstance(make_smoother("none"), NoSmoothing)
    window = make_smoother("window", window=7)
    assert isinstance(window, WindowSmoother) and window.window == 7
    assert make_smoother("window").window == WindowSmoother.DEFAULT_WINDOW
    with pytest.raises(ValueError, match="unknown smoothing"):
        make_smoother("median")
    with pytest.raises(ValueError, match="strength"):
        make_smoother("ema", strength=1.0)
    with pytest.raises(ValueError, match="odd"):
        make_smoother("window", window=4)


# -- window ---------------------------------------------------------------------------------

def window_reference(ab: torch.Tensor, cuts: list[int], window: int) -> torch.Tensor:
    """Frame t = triangular-weighted mean of the frames of its shot within t-h..t+h, written out."""
    h, n = window // 2, len(ab)
    shot = [sum(t >= c for c in cuts) for t in range(n)]
    out = []
    for t in range(n):
        num, den = torch.zeros_like(ab[0]), 0.0
        for k in range(-h, h + 1):
            if 0 <= t + k < n and shot[t + k] == shot[t]:
                num, den = num + (h + 1 - abs(k)) * ab[t + k], den + (h + 1 - abs(k))
        out.append(num / den)
    return torch.stack(out)


@pytest.mark.parametrize("window", [1, 3, 5, 9])
@pytest.mark.parametrize("batch", [1, 3, 4, 20])
def test_window_count_order_and_values_for_any_batching(window, batch):
    n, cut_at = 17, [6, 9]
    ab = torch.randn(n, 2, 3, 4, generator=torch.Generator().manual_seed(window))
    L, cuts = torch.zeros(n, 1, 3, 4), torch.zeros(n, dtype=torch.bool)
    cuts[cut_at] = True
    smoother = WindowSmoother(window=window)
    parts, received, returned = [], 0, 0
    for i in range(0, n, batch):
        out = smoother.push(ab[i:i + batch], L[i:i + batch], cuts[i:i + batch])
        received, returned = received + len(ab[i:i + batch]), returned + len(out)
        assert returned == max(0, received - window // 2)  # exactly h frames of look-ahead held back
        parts.append(out)
    tail = smoother.flush()
    assert len(tail) == min(n, window // 2)
    result = torch.cat([p for p in parts + [tail] if len(p)])
    assert result.shape == ab.shape
    assert torch.allclose(result, window_reference(ab, cut_at, window), atol=1e-5)


def test_window_of_one_is_identity_and_window_smooths():
    ab = torch.randn(10, 2, 4, 4, generator=torch.Generator().manual_seed(3))
    L, cuts = torch.zeros(10, 1, 4, 4), torch.zeros(10, dtype=torch.bool)
    assert torch.equal(WindowSmoother(window=1).push(ab, L, cuts), ab)
    smoother = WindowSmoother(window=5)
    out = torch.cat([smoother.push(ab, L, cuts), smoother.flush()])
    assert out.diff(dim=0).abs().mean() < 0.5 * ab.diff(dim=0).abs().mean()


# -- flow -----------------------------------------------------------------------------------

def pattern(h: int, w: int, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured L (1,h,w) and an ab (2,h,w) that is part of the same texture, both moved right by `shift` px."""
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float() - shift, indexing="ij")
    L = 50 + 20 * torch.sin(xx / 4.0) * torch.cos(yy / 5.0) + 10 * torch.sin(xx / 9.0 + yy / 7.0)
    ab = torch.stack([30 * torch.sin(xx / 6.0), 20 * torch.cos(xx / 6.0 + yy / 8.0)])
    return L[None], ab


def test_flow_on_static_scene_converges_to_the_mean_prediction():
    L, clean = pattern(48, 64, 0.0)
    n = 30
    noise = torch.randn(n, 2, 48, 64, generator=torch.Generator().manual_seed(0)) * 6
    ab, Ls = clean + noise, L.expand(n, 1, 48, 64)
    out = FlowSmoother(0.8).push(ab, Ls, torch.zeros(n, dtype=torch.bool))
    assert torch.equal(out[0], ab[0])
    err_in, err_out = (ab[-10:] - clean).abs().mean(), (out[-10:] - clean).abs().mean()
    assert err_out < 0.45 * err_in  # an 0.8 running average keeps 1/3 of the noise's std
    constant = FlowSmoother(0.8).push(clean.expand(n, -1, -1, -1), Ls, torch.zeros(n, dtype=torch.bool))
    assert torch.allclose(constant, clean.expand(n, -1, -1, -1), atol=1e-3)


def test_flow_follows_a_moving_pattern_where_ema_smears_it():
    n, speed = 12, 2.5
    frames = [pattern(64, 96, speed * t) for t in range(n)]
    L = torch.stack([f[0] for f in frames])
    ab = torch.stack([f[1] for f in frames])
    cuts = torch.zeros(n, dtype=torch.bool)
    flow = FlowSmoother(0.8).push(ab, L, cuts)
    ema = EmaSmoother(0.8).push(ab, L, cuts)
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))  # new content enters at the left edge
    flow_err = (flow - ab)[inner][4:].abs().mean()
    ema_err = (ema - ab)[inner][4:].abs().mean()
    assert ema_err > 5  # the running average of a moving pattern blurs it
    assert flow_err < 0.25 * ema_err


# -- no mode carries colour across a cut ------------------------------------------------------

@pytest.mark.parametrize("mode", sorted(SMOOTHERS))
@pytest.mark.parametrize("batch", [1, 4, 32])
def test_no_mode_carries_colour_across_a_cut(mode, batch):
    """Two shots of the same textured scene (so flow matches perfectly across the cut) with
    different, constant colours: every output frame must be exactly its own shot's colour."""
    n, cut = 16, 7
    L0, _ = pattern(32, 48, 0.0)
    L = L0.expand(n, 1, 32, 48)
    ab = torch.empty(n, 2, 32, 48)
    ab[:cut] = torch.tensor([25.0, -10.0]).view(2, 1, 1)
    ab[cut:] = torch.tensor([-30.0, 40.0]).view(2, 1, 1)
    cuts = torch.zeros(n, dtype=torch.bool)
    cuts[cut] = True
    smoother = make_smoother(mode, strength=0.9 if mode in ("ema", "flow") else None, window=9)
    parts = [smoother.push(ab[i:i + batch], L[i:i + batch], cuts[i:i + batch]) for i in range(0, n, batch)]
    out = torch.cat([p for p in parts + [smoother.flush()] if len(p)])
    assert torch.allclose(out, ab, atol=1e-4)
    if mode != "none":  # and the same clip without the cut flag does mix the shots (the test can fail)
        smoother = make_smoother(mode, strength=0.9 if mode in ("ema", "flow") else None, window=9)
        mixed = torch.cat([p for p in (smoother.push(ab, L, torch.zeros(n, dtype=torch.bool)), smoother.flush())
                           if len(p)])
        assert (mixed[cut] - ab[cut]).abs().max() > 10


def test_cut_in_the_first_frames_of_a_stream_is_found():
    """A segment's warm-up frames start a fresh detector: a cut among them must still be flagged."""
    L = torch.cat([torch.full((3, 1, 16, 16), 20.0), torch.full((6, 1, 16, 16), 80.0)])
    assert detect(L, batch=4) == [3]


def test_smoother_modes_and_defaults_are_the_declared_ones():
    """The CLI offers `controls.SMOOTHING_MODES` without importing torch: they must be exactly the smoothers."""
    from vidcolor import controls

    assert sorted(SMOOTHERS) == sorted(controls.SMOOTHING_MODES) and controls.DEFAULT_SMOOTHING in SMOOTHERS
    assert make_smoother("ema").strength == controls.EMA_STRENGTH
    assert make_smoother("flow").strength == controls.FLOW_STRENGTH
    assert make_smoother("window").lookahead == controls.WINDOW // 2
