"""Reading packs for training: three frame sources behind one `batch(indices)` idea, the resumable weighted
sampler, and `TrainData`, which hands the trainer its next batch and remembers where it is.

Crops are drawn from (seed, epoch, index), so a resumed run and any number of workers see exactly the same
batches. Torch only, except a folder pack's JPEG decoding (kornia_rs, imported where used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from vidcolor.errors import VidcolorError

from .augment import box_grid, center_crop, crop_box, random_resized_crop, ycbcr_to_rgb
from .pack import FolderPack, read_tensor_pack


def _crop_gen(seed: int, epoch: int, idx: int) -> torch.Generator:
    return torch.Generator().manual_seed(hash((seed, epoch, idx)) & 0x7FFFFFFF)


class FramePack(FolderPack, torch.utils.data.Dataset):
    """A folder pack's split, one frame per item (a DataLoader's workers decode the JPEGs)."""

    def __init__(self, root: Path, split: str = "train", crop: int = 256, augment: bool = True,
                 seed: int = 0, scale: tuple[float, float] = (0.35, 1.0)):
        super().__init__(root, split)
        self.crop, self.augment, self.seed, self.epoch, self.scale = crop, augment, seed, 0, scale

    def __getitem__(self, idx: int) -> torch.Tensor:
        img = self.raw(idx).float() / 255.0
        if not self.augment:
            return center_crop(img, self.crop)
        return random_resized_crop(img, self.crop, _crop_gen(self.seed, self.epoch, idx), self.scale)


class MemoryFrames(FramePack):
    """A folder pack's split decoded once into uint8 tensors, cropped per batch without workers."""

    def __init__(self, root: Path, split: str = "train", crop: int = 128, seed: int = 0,
                 scale: tuple[float, float] = (0.35, 1.0)):
        super().__init__(root, split, crop, True, seed, scale)
        self.images = [self.raw(i) for i in range(len(self.items))]

    def batch(self, indices: list[int]) -> torch.Tensor:
        """(B,3,crop,crop) float RGB in [0,1]."""
        return torch.stack([random_resized_crop(self.images[i], self.crop, _crop_gen(self.seed, self.epoch, i),
                                                self.scale) for i in indices])


class TensorFrames:
    """A tensor pack's split, kept on the training device and cropped for a whole batch in one
    `grid_sample` (no per-image work, no workers): what keeps a GPU busy."""

    def __init__(self, path: Path, split: str = "train", crop: int = 128, seed: int = 0,
                 scale: tuple[float, float] = (0.35, 1.0), device: torch.device | str = "cpu"):
        doc = read_tensor_pack(Path(path))
        keep = (doc["split"] == (1 if split == "val" else 0)).nonzero().flatten()
        self.y = doc["y"][keep].to(device)
        self.cbcr = doc["cbcr"][keep].to(device)
        self.items = [{"group": doc["groups"][int(doc["group"][i])], "source": doc["sources"][int(i)]} for i in keep]
        self.side, self.crop, self.seed, self.epoch, self.scale = doc["side"], crop, seed, 0, scale

    def __len__(self) -> int:
        return len(self.items)

    def group_of(self, idx: int) -> str:
        return self.items[idx]["group"]

    def whole(self, indices: list[int]) -> torch.Tensor:
        """(B,3,side,side) float RGB of the stored frames, chroma upsampled."""
        idx = torch.as_tensor(indices, device=self.y.device)
        cbcr = F.interpolate(self.cbcr[idx].float(), scale_factor=2, mode="bilinear", align_corners=False)
        return ycbcr_to_rgb(self.y[idx, None].float(), cbcr)

    def batch(self, indices: list[int]) -> torch.Tensor:
        """(B,3,crop,crop) float RGB in [0,1]: random boxes and flips, Y and chroma sampled by one grid."""
        boxes = [crop_box(self.side, self.side, _crop_gen(self.seed, self.epoch, i), self.scale) for i in indices]
        grid = box_grid(boxes, self.side, self.side, self.crop, self.y.device)
        idx = torch.as_tensor(indices, device=self.y.device)
        y = F.grid_sample(self.y[idx, None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        c = F.grid_sample(self.cbcr[idx].float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        return ycbcr_to_rgb(y, c)

    def center(self, indices: list[int], size: int) -> torch.Tensor:
        return torch.stack([center_crop(frame, size) for frame in self.whole(indices)])


def is_tensor_pack(path: Path | str) -> bool:
    return Path(path).is_file()


def open_split(path: Path | str, split: str, crop: int, seed: int = 0, scale: tuple[float, float] = (0.35, 1.0),
               in_memory: bool = False, device: torch.device | str = "cpu") -> Any:
    """The right reader for `path` (a tensor pack file or a pack folder)."""
    if is_tensor_pack(path):
        return TensorFrames(Path(path), split, crop, seed, scale, device)
    if in_memory:
        return MemoryFrames(Path(path), split, crop, seed, scale)
    return FramePack(Path(path), split, crop, augment=split == "train", seed=seed, scale=scale)


def center_batch(dataset: Any, indices: list[int], size: int) -> torch.Tensor:
    """Validation crops: the frames' centres at `size`."""
    if isinstance(dataset, TensorFrames):
        return dataset.center(indices, size)
    return torch.stack([center_crop(dataset.raw(i).float() / 255.0, size) for i in indices])


class ResumableSampler(torch.utils.data.Sampler):
    """Weighted sampling by source group, sharded by rank, restartable mid-epoch: the order of epoch e is a
    pure function of (seed, e), so (epoch, position) is enough to continue a run exactly."""

    def __init__(self, dataset: Any, mix: dict[str, float] | None = None, seed: int = 0, rank: int = 0,
                 world: int = 1):
        self.dataset, self.seed, self.rank, self.world = dataset, seed, rank, world
        mix = mix or {}
        counts: dict[str, int] = {}
        for it in dataset.items:
            counts[it["group"]] = counts.get(it["group"], 0) + 1
        unknown = sorted(set(mix) - set(counts))
        if unknown:  # a misspelt group would otherwise be ignored without a word
            raise VidcolorError(f"mix names {', '.join(unknown)}, not a training group of this pack "
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
        return iter(order[self.rank::self.world].tolist()[self.start:])

    def __len__(self) -> int:
        return self.per_rank - self.start


class TrainData:
    """The training split, its sampler and the position in it: `next()` is the next batch, `epoch` and
    `pos` (batches into the epoch) are what a checkpoint keeps."""

    def __init__(self, dataset: Any, mix: dict[str, float], batch: int, seed: int, workers: int = 0,
                 pin_memory: bool = False, rank: int = 0, world: int = 1):
        if len(dataset) < batch * world:
            raise VidcolorError(f"the pack has {len(dataset)} training frames, fewer than one batch ({batch})")
        self.dataset, self.batch, self.workers, self.pin_memory = dataset, batch, workers, pin_memory
        self.sampler = ResumableSampler(dataset, mix, seed, rank, world)
        self.epoch, self.pos = 0, 0
        self._it: Iterator | None = None

    def _start(self) -> Iterator:
        self.sampler.set_state(self.epoch, self.pos * self.batch)
        if hasattr(self.dataset, "batch"):  # crops made here, a batch at a time
            return iter(self.sampler)
        return iter(torch.utils.data.DataLoader(self.dataset, batch_size=self.batch, sampler=self.sampler,
                                                drop_last=True, num_workers=self.workers, pin_memory=self.pin_memory))

    def _take(self) -> torch.Tensor | None:
        if not hasattr(self.dataset, "batch"):
            return next(self._it, None)
        idx = [i for _, i in zip(range(self.batch), self._it)]
        return self.dataset.batch(idx) if len(idx) == self.batch else None

    def next(self, crop: int | None = None) -> torch.Tensor:
        """The next batch; `crop` (progressive resizing) changes the crop side from this batch on."""
        if crop is not None and crop != self.dataset.crop:
            self.dataset.crop, self._it = crop, None  # a DataLoader's workers hold the old side: restart here
        if self._it is None:
            self._it = self._start()
        out = self._take()
        if out is None:
            self.epoch, self.pos = self.epoch + 1, 0
            self._it = self._start()
            out = self._take()
        self.pos += 1
        return out

    def first(self, n: int) -> torch.Tensor:
        """A fixed batch of the first `n` frames (for measuring step times), the position untouched."""
        n = min(n, len(self.dataset))
        if hasattr(self.dataset, "batch"):
            return self.dataset.batch(list(range(n)))
        return torch.stack([self.dataset[i] for i in range(n)])

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load(self, state: dict[str, int]) -> None:
        self.epoch, self.pos, self._it = state["epoch"], state["pos"], None
