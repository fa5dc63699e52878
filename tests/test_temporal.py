import av
import numpy as np
import pytest
import torch

from vidcolor.color import rgb_to_lab
from vidcolor.temporal import SMOOTHERS, CutDetector, EmaSmoother, NoSmoothing, make_smoother


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
    assert set(SMOOTHERS) == {"none", "ema"}
    smoother = make_smoother("ema", strength=0.3)
    assert isinstance(smoother, EmaSmoother) and smoother.strength == 0.3
    assert isinstance(make_smoother("none"), NoSmoothing)
    with pytest.raises(ValueError, match="unknown smoothing"):
        make_smoother("flow")
    with pytest.raises(ValueError, match="strength"):
        make_smoother("ema", strength=1.0)
