"""Frame datasets: packing video frames and photos into a compact on-disk pack, and reading it back.

A pack is a folder with `frames.bin` (concatenated JPEG bytes at the training size) and
`index.json` (offset, length, size, source group and split of every frame), so epochs never
re-decode video and a pack can travel to a GPU machine as two files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import av
import kornia_rs
import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab
from vidcolor.errors import VidcolorError
from vidcolor.media.streams import RGB_EXACT

IMAGE_EXTS = {".jpg", ".jpeg", ".png"}
VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"}
INDEX_NAME, DATA_NAME = "index.json", "frames.bin"


@dataclass
class PrepareStats:
    kept: int = 0
    duplicates: int = 0
    colourless: int = 0
    unreadable: int = 0
    groups: dict[str, int] = field(default_factory=dict)


def resize_short_side(rgb: np.ndarray, size: int, max_aspect: float = 2.0) -> np.ndarray:
    """Short side to `size` (area-style antialiasing), long side capped at `max_aspect * size` by centre crop."""
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    t = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    cap = int(size * max_aspect)
    if nh > cap:
        t = t[..., (nh - cap) // 2:(nh - cap) // 2 + cap, :]
    if nw > cap:
        t = t[..., (nw - cap) // 2:(nw - cap) // 2 + cap]
    return t[0].round().clamp(0, 255).byte().permute(1, 2, 0).contiguous().numpy()


def mean_chroma(rgb: np.ndarray) -> float:
    """Mean Lab chroma sqrt(a^2+b^2) on a thumbnail: near 0 for gray frames that teach no colour."""
    t = torch.from_numpy(rgb[::4, ::4]).permute(2, 0, 1)[None].float() / 255.0
    ab = rgb_to_lab(t)[:, 1:]
    return float(ab.pow(2).sum(1).sqrt().mean())


def _thumb(rgb: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().mean(1, keepdim=True)
    return F.adaptive_avg_pool2d(t, (16, 16)).numpy()


def read_image(path: Path) -> np.ndarray:
    """Any JPEG/PNG as (H, W, 3) uint8 RGB."""
    img = kornia_rs.io.read_image(str(path))
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


def iter_video_frames(path: Path, every: int) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i % every == 0:
                yield frame.reformat(format="rgb24", interpolation=RGB_EXACT).to_ndarray()


def spread(total: int, n: int) -> list[int]:
    """`n` indices spread evenly over `range(total)` (all of them when n >= total).

    A held-out pack's validation split is ordered by source, so its first frames would all
    come from one group; an even spread scores every group in proportion."""
    if n >= total:
        return list(range(total))
    return [i * total // n for i in range(n)]


def _sources(paths: list[Path]) -> Iterator[tuple[str, str, Path]]:
    """(kind, group, file) for every usable file; the group is the top-level source name."""
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            ext = f.suffix.lower()
            if ext in VIDEO_EXTS:
                yield "video", root.name, f
            elif ext in IMAGE_EXTS:
                yield "image", root.name, f


def prepare_pack(sources: list[Path], out: Path, size: int = 256, every: int = 5,
                 dedup: float = 2.0, min_chroma: float = 3.0, val_every: int = 50,
                 quality: int = 92, progress=None, val_files: int = 0) -> PrepareStats:
    """Pack photos and every `every`-th video frame at short side `size`.

    Video frames whose 16x16 gray thumbnail differs from the last kept frame by less than
    `dedup` (mean abs, 0-255) are near-duplicates; frames with mean chroma below `min_chroma`
    are dropped. Every `val_every`-th kept frame goes to the validation split; with `val_files` K > 0,
    every K-th file of each source group goes there whole instead, so no validation video frame has
    near-copies (frames `every` apart) in the training split, and validation scores unseen footage.
    """
    out.mkdir(parents=True, exist_ok=True)
    stats, index, offset = PrepareStats(), [], 0
    with open(out / DATA_NAME, "wb") as data:
        def add(rgb: np.ndarray, group: str, origin: str, held_out: bool) -> None:
            nonlocal offset
            if mean_chroma(rgb) < min_chroma:
                stats.colourless += 1
                return
            small = resize_short_side(rgb, size)
            blob = kornia_rs.io.encode_image_jpeg(small, quality)
            data.write(blob)
            if val_files:
                split = "val" if held_out else "train"
            else:
                split = "val" if stats.kept % val_every == val_every - 1 else "train"
            index.append({"offset": offset, "length": len(blob), "h": small.shape[0], "w": small.shape[1],
                          "group": group, "split": split, "source": origin})
            offset += len(blob)
            stats.kept += 1
            stats.groups[group] = stats.groups.get(group, 0) + 1

        files_seen: dict[str, int] = {}
        for kind, group, path in _sources(sources):
            if progress:
                progress(path)
            files_seen[group] = files_seen.get(group, 0) + 1
            held_out = bool(val_files) and files_seen[group] % val_files == 0
            try:
                if kind == "image":
                    add(read_image(path), group, path.name, held_out)
                    continue
                last = None
                for i, rgb in enumerate(iter_video_frames(path, every)):
                    thumb = _thumb(rgb)
                    if last is not None and float(np.abs(thumb - last).mean()) < dedup:
                        stats.duplicates += 1
                        continue
                    last = thumb
                    add(rgb, group, f"{path.name}#{i * every}", held_out)
            except (av.error.FFmpegError, ValueError, OSError):
                stats.unreadable += 1
    meta = {"size": size, "every": every, "dedup": dedup, "min_chroma": min_chroma, "val_files": val_files,
            "sources": [str(s) for s in sources], "groups": stats.groups, "frames": index}
    (out / INDEX_NAME).write_text(json.dumps(meta))
    return stats


class FramePack(torch.utils.data.Dataset):
    """Random-access reader of a pack split, with deterministic per-item augmentation.

    Augmentation randomness is derived from (seed, epoch, position), so a resumed run and
    any number of workers see exactly the same crops and flips.
    """

    def __init__(self, root: Path, split: str = "train", crop: int = 256, augment: bool = True,
                 seed: int = 0, scale: tuple[float, float] = (0.35, 1.0)):
        self.root = Path(root)
        meta = json.loads((self.root / INDEX_NAME).read_text())
        self.items = [f for f in meta["frames"] if f["split"] == split]
        self.groups = sorted({f["group"] for f in self.items})
        self.crop, self.augment, self.seed, self.epoch, self.scale = crop, augment, seed, 0, scale
        self._data: np.memmap | None = None

    def __len__(self) -> int:
        return len(self.items)

    def _blob(self, item: dict) -> bytes:
        if self._data is None:  # opened lazily so the dataset pickles cheaply into workers
            self._data = np.memmap(self.root / DATA_NAME, dtype=np.uint8, mode="r")
        return self._data[item["offset"]:item["offset"] + item["length"]].tobytes()

    def __getitem__(self, idx: int) -> torch.Tensor:
        item = self.items[idx]
        rgb = kornia_rs.io.decode_image_jpeg(self._blob(item))
        if rgb.ndim == 2 or rgb.shape[-1] == 1:
            rgb = np.repeat(rgb.reshape(rgb.shape[0], rgb.shape[1], 1), 3, axis=2)
        img = torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).permute(2, 0, 1).float() / 255.0
        gen = torch.Generator().manual_seed(hash((self.seed, self.epoch, idx)) & 0x7FFFFFFF)
        return random_resized_crop(img, self.crop, gen, self.scale) if self.augment else center_crop(img, self.crop)


class MemoryFrames:
    """A pack split decoded once into uint8 tensors, cropped and flipped on tensors per batch.

    Decoding JPEG was most of a CPU training step's data cost; 10 k frames at short side 192
    take about 1.5 GB as uint8. Crops are drawn from (seed, epoch, index) like FramePack's, so
    resumed runs see the same batches.
    """

    def __init__(self, root: Path, split: str = "train", crop: int = 128, seed: int = 0,
                 min_scale: float = 0.35, max_scale: float = 1.0):
        pack = FramePack(root, split, crop, augment=False, seed=seed)
        self.items, self.groups = pack.items, pack.groups
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"crop scales must satisfy 0 < smallest <= largest <= 1, got {min_scale}, {max_scale}")
        self.crop, self.seed, self.epoch = crop, seed, 0
        self.min_scale, self.max_scale = min_scale, max_scale
        self.images = [self._decode(pack._blob(item)) for item in self.items]

    @staticmethod
    def _decode(blob: bytes) -> torch.Tensor:
        rgb = kornia_rs.io.decode_image_jpeg(blob)
        if rgb.ndim == 2 or rgb.shape[-1] == 1:
            rgb = np.repeat(rgb.reshape(rgb.shape[0], rgb.shape[1], 1), 3, axis=2)
        return torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).permute(2, 0, 1).contiguous()

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, idx: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(hash((self.seed, self.epoch, idx)) & 0x7FFFFFFF)
        return random_resized_crop(self.images[idx], self.crop, gen, scale=(self.min_scale, self.max_scale))

    def batch(self, indices: list[int]) -> torch.Tensor:
        """(B,3,crop,crop) float RGB in [0,1]."""
        return torch.stack([self.sample(i) for i in indices])

    def ab_sample(self, count: int, seed: int, side: int = 32) -> torch.Tensor:
        """Lab ab of `count` frames at a small size: enough to estimate the colour prior."""
        gen = torch.Generator().manual_seed(seed)
        picks = torch.randperm(len(self.images), generator=gen)[:count].tolist()
        small = [F.interpolate(self.images[i][None].float() / 255.0, size=(side, side), mode="area") for i in picks]
        return rgb_to_lab(torch.cat(small))[:, 1:]


def center_crop(img: torch.Tensor, size: int) -> torch.Tensor:
    _, h, w = img.shape
    scale = size / min(h, w)
    if scale != 1:
        img = F.interpolate(img[None], size=(max(size, round(h * scale)), max(size, round(w * scale))),
                            mode="bilinear", antialias=True, align_corners=False)[0]
    _, h, w = img.shape
    top, left = (h - size) // 2, (w - size) // 2
    return img[:, top:top + size, left:left + size]


def random_resized_crop(img: torch.Tensor, size: int, gen: torch.Generator,
                        scale: tuple[float, float] = (0.35, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """torchvision's RandomResizedCrop + horizontal flip, driven by an explicit generator.

    uint8 input is cropped before it is converted, so only the crop is made float."""
    _, h, w = img.shape
    area = h * w
    for _ in range(10):
        u = torch.rand(3, generator=gen).tolist()
        target = area * (scale[0] + u[0] * (scale[1] - scale[0]))
        aspect = math.exp(math.log(ratio[0]) + u[1] * (math.log(ratio[1]) - math.log(ratio[0])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
            break
    else:
        ch = cw = min(h, w)
        top, left = (h - ch) // 2, (w - cw) // 2
    region = img[None, :, top:top + ch, left:left + cw]
    if region.dtype == torch.uint8:
        region = region.float() / 255.0
    out = F.interpolate(region, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    if u[2] < 0.5:
        out = out.flip(-1)
    return out.clamp(0, 1)


class ResumableSampler(torch.utils.data.Sampler):
    """Weighted sampling by source group, sharded by rank, restartable mid-epoch.

    The order of epoch e is a pure function of (seed, e), so saving (epoch, position) is
    enough to continue a run exactly.
    """

    def __init__(self, dataset: FramePack, mix: dict[str, float] | None = None, seed: int = 0,
                 rank: int = 0, world: int = 1):
        self.dataset, self.seed, self.rank, self.world = dataset, seed, rank, world
        mix = mix or {}
        counts: dict[str, int] = {}
        for it in dataset.items:
            counts[it["group"]] = counts.get(it["group"], 0) + 1
        unknown = sorted(set(mix) - set(counts))
        if unknown:  # a misspelt group would otherwise be ignored without a word
            raise VidcolorError(f"--mix names {', '.join(unknown)}, not a group of this pack "
                                f"(its groups: {', '.join(sorted(counts))})")
        # Each group gets total weight mix[group] (default: its size, i.e. uniform over frames).
        self.weights = torch.tensor([mix.get(it["group"], counts[it["group"]]) / counts[it["group"]]
                                     for it in dataset.items], dtype=torch.double)
        self.per_rank = len(dataset) // world
        self.epoch, self.start = 0, 0

    def set_state(self, epoch: int, start: int) -> None:
        self.epoch, self.start = epoch, start
        self.dataset.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        order = torch.multinomial(self.weights, self.per_rank * self.world, replacement=True, generator=gen)
        mine = order[self.rank::self.world].tolist()
        return iter(mine[self.start:])

    def __len__(self) -> int:
        return self.per_rank - self.start


def to_lab_batch(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB batch -> (L normalised to [-1,1], ab/110), in fp32 on rgb's device."""
    from vidcolor.color import normalize_ab, normalize_l
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])


def degrade_l(L: torch.Tensor, gen: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Film-like degradations on normalised L only: contrast/brightness jitter, slight blur, grain.

    Archival input is noisy and uneven, so the model sees such L during training while its
    target colours stay clean. `gen` lives on the CPU; the noise is drawn there and moved.
    """
    if strength <= 0:
        return L
    b = L.shape[0]
    r = torch.rand(b, 4, generator=gen).to(L.device)
    contrast = 1 + (r[:, 0] - 0.5) * 0.4 * strength
    bright = (r[:, 1] - 0.5) * 0.2 * strength
    mean = L.mean(dim=(1, 2, 3), keepdim=True)
    out = (L - mean) * contrast.view(b, 1, 1, 1) + mean + bright.view(b, 1, 1, 1)
    blur = r[:, 2] < 0.3 * strength
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0], device=L.device)
        k = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3)
        blurred = F.conv2d(F.pad(out, (1, 1, 1, 1), mode="reflect"), k)
        out = torch.where(blur.view(b, 1, 1, 1), blurred, out)
    sigma = (r[:, 3] * 0.06 * strength).view(b, 1, 1, 1)
    noise = torch.randn(L.shape, generator=gen).to(L.device)
    return (out + sigma * noise).clamp(-1, 1)
