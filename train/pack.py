"""Frame packs, written once so that epochs never decode video again.

A folder pack holds `frames.bin` (concatenated JPEGs at the pack's short side) and `index.json` (offset,
length, size, source group, source file and split of every frame). A tensor pack is one `torch.save` file
of uint8 YCbCr 4:2:0 square frames with the same groups and splits: what a GPU machine with torch alone
can train from, sized to travel (44 MiB holds about 1,475 frames at 144 px).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from vidcolor.errors import OptionError
from vidcolor.lab import rgb_to_lab

from .augment import center_crop, rgb_to_ycbcr420
from .config import TENSOR_MIB, TENSOR_SIDE

IMAGE_EXTS = {".jpg", ".jpeg", ".png"}
VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"}
INDEX_NAME, DATA_NAME = "index.json", "frames.bin"
TENSOR_FORMAT = "vidcolor-tensor-pack-v1"
TENSOR_VAL_SHARE = 0.15


@dataclass
class PrepareStats:
    kept: int = 0
    duplicates: int = 0
    colourless: int = 0
    unreadable: int = 0
    groups: dict[str, int] = field(default_factory=dict)
    held_out: set[str] = field(default_factory=set)


def resize_short_side(rgb: torch.Tensor, size: int, max_aspect: float = 2.0) -> torch.Tensor:
    """(1,3,H,W) float in 0..255 -> short side `size` (antialiased), long side capped at `max_aspect * size`
    by centre crop."""
    h, w = rgb.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    t = F.interpolate(rgb, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    cap = int(size * max_aspect)
    top, left = max(nh - cap, 0) // 2, max(nw - cap, 0) // 2
    return t[..., top:top + cap, left:left + cap]


def mean_chroma(rgb: torch.Tensor) -> float:
    """Mean Lab chroma sqrt(a^2+b^2) on a thumbnail: near 0 for gray frames that teach no colour."""
    ab = rgb_to_lab(rgb[..., ::4, ::4])[:, 1:]
    return float(ab.pow(2).sum(1).sqrt().mean())


def read_image(path: Path):
    """Any JPEG/PNG as (H, W, 3) uint8 RGB."""
    import kornia_rs
    import numpy as np
    img = kornia_rs.io.read_image(str(path))
    img = img[..., None] if img.ndim == 2 else img
    return np.ascontiguousarray(np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3])


def iter_video_frames(path: Path, every: int) -> Iterator:
    import av

    from vidcolor.media import RGB_EXACT
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            if i % every == 0:
                yield frame.reformat(format="rgb24", interpolation=RGB_EXACT).to_ndarray()


def _sources(paths: list[Path]) -> Iterator[tuple[str, str, Path]]:
    """(kind, group, file) for every usable file; the group is the top-level source name."""
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            kind = "video" if f.suffix.lower() in VIDEO_EXTS else "image" if f.suffix.lower() in IMAGE_EXTS else None
            if kind:
                yield kind, root.name, f


def _names(root_group: str, path: Path, roots: list[Path]) -> set[str]:
    """What `--val-sources` may call a file: its group, any folder it lies in below its root, its name, its stem."""
    names = {root_group, path.name, path.stem}
    for root in roots:
        if root.is_dir() and path.is_relative_to(root):
            names |= set(path.relative_to(root).parts[:-1])
    return names


def prepare_pack(sources: list[Path], out: Path, size: int = 256, every: int = 5, dedup: float = 2.0,
                 min_chroma: float = 3.0, val_every: int = 50, quality: int = 92,
                 progress: Callable[[Path], None] | None = None, val_files: int = 0,
                 val_sources: tuple[str, ...] = ()) -> PrepareStats:
    """Pack photos and every `every`-th video frame at short side `size` into folder `out`.

    Video frames whose 16x16 gray thumbnail differs from the last kept one by less than `dedup` (mean abs,
    0-255) are near-duplicates; frames under `min_chroma` mean chroma are dropped. Validation: every
    `val_every`-th kept frame; or, with `val_files` K, every K-th file of each group, whole; and always every
    file that `val_sources` names (a group, a folder below a source, or a file), so whole sources are unseen.
    """
    import av
    import kornia_rs
    out.mkdir(parents=True, exist_ok=True)
    stats, index, offset, wanted = PrepareStats(), [], 0, set(val_sources)
    with open(out / DATA_NAME, "wb") as data:
        def add(rgb, group: str, origin: str, held_out: bool) -> None:
            nonlocal offset
            t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
            if mean_chroma(t / 255.0) < min_chroma:
                stats.colourless += 1
                return
            small = resize_short_side(t, size)[0].round().clamp(0, 255).byte().permute(1, 2, 0).contiguous().numpy()
            blob = kornia_rs.io.encode_image_jpeg(small, quality)
            data.write(blob)
            every_kth = not val_files and not wanted and stats.kept % val_every == val_every - 1
            split = "val" if held_out or every_kth else "train"
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
            named = wanted & _names(group, path, sources)
            stats.held_out |= named
            held_out = bool(named) or (bool(val_files) and files_seen[group] % val_files == 0)
            try:
                if kind == "image":
                    add(read_image(path), group, path.name, held_out)
                    continue
                last = None
                for i, rgb in enumerate(iter_video_frames(path, every)):
                    thumb = F.adaptive_avg_pool2d(torch.from_numpy(rgb).float().mean(2)[None, None], (16, 16))
                    if last is not None and float((thumb - last).abs().mean()) < dedup:
                        stats.duplicates += 1
                        continue
                    last = thumb
                    add(rgb, group, f"{path.name}#{i * every}", held_out)
            except (av.error.FFmpegError, ValueError, OSError):
                stats.unreadable += 1
    missing = wanted - stats.held_out
    if missing:
        raise OptionError(f"--val-sources names {', '.join(sorted(missing))}, which matches no source "
                          f"(groups: {', '.join(sorted(stats.groups))})")
    meta = {"size": size, "every": every, "dedup": dedup, "min_chroma": min_chroma, "val_files": val_files,
            "val_sources": sorted(wanted), "sources": [str(s) for s in sources], "groups": stats.groups,
            "frames": index}
    (out / INDEX_NAME).write_text(json.dumps(meta))
    return stats


class FolderPack:
    """A folder pack's split: its frames' index entries, and each stored frame as (3,H,W) uint8."""

    def __init__(self, root: Path, split: str = "train"):
        self.root = Path(root)
        meta = json.loads((self.root / INDEX_NAME).read_text())
        self.items = [f for f in meta["frames"] if f["split"] == split]
        self._data: Any = None

    def __len__(self) -> int:
        return len(self.items)

    def group_of(self, idx: int) -> str:
        return self.items[idx]["group"]

    def raw(self, idx: int) -> torch.Tensor:
        import kornia_rs
        import numpy as np
        if self._data is None:  # opened lazily so a reader pickles cheaply into DataLoader workers
            self._data = np.memmap(self.root / DATA_NAME, dtype=np.uint8, mode="r")
        item = self.items[idx]
        rgb = kornia_rs.io.decode_image_jpeg(self._data[item["offset"]:item["offset"] + item["length"]].tobytes())
        if rgb.ndim == 2 or rgb.shape[-1] == 1:
            rgb = np.repeat(rgb.reshape(rgb.shape[0], rgb.shape[1], 1), 3, axis=2)
        return torch.from_numpy(np.ascontiguousarray(rgb[..., :3])).permute(2, 0, 1).contiguous()


def spread(total: int, n: int) -> list[int]:
    """`n` indices spread evenly over `range(total)` (all of them when n >= total): a split ordered by
    source then gives every group its share."""
    if n >= total:
        return list(range(total))
    return [i * total // n for i in range(n)]


def _quotas(counts: dict[str, int], total: int) -> dict[str, int]:
    """Frames per group for a pack of `total`: in proportion to the square root of each group's size (so a
    large group cannot crowd out the small ones), never more than a group has."""
    quota = {g: 0 for g in counts}
    left = dict(counts)
    budget = min(total, sum(counts.values()))
    while budget > 0 and left:
        roots = {g: n ** 0.5 for g, n in left.items()}
        scale = budget / sum(roots.values())
        give = {g: min(left[g], max(1, int(roots[g] * scale))) for g in left}
        for g, n in sorted(give.items(), key=lambda kv: kv[1]):
            n = min(n, budget)
            quota[g] += n
            left[g] -= n
            budget -= n
        left = {g: n for g, n in left.items() if n > 0}
    return quota


def tensor_capacity(side: int = TENSOR_SIDE, mib: float = TENSOR_MIB) -> int:
    """Frames a tensor pack of `mib` holds at `side` px (1.5 bytes a pixel)."""
    return int(mib * 2 ** 20 * 0.995) // (side * side * 3 // 2)


def write_tensor_pack(pack: Path, out: Path, side: int = TENSOR_SIDE, mib: float = TENSOR_MIB) -> dict[str, Any]:
    """A tensor pack from folder pack `pack`: square `side` px centre crops as uint8 YCbCr 4:2:0, at most
    `mib` MiB, 15% of them validation; each split's frames are spread over its groups by `_quotas`.
    Returns its summary."""
    if side % 2:
        raise OptionError(f"--tensor-side must be even, got {side}")
    capacity = tensor_capacity(side, mib)
    val, train = FolderPack(pack, "val"), FolderPack(pack, "train")
    n_val = min(len(val), int(capacity * TENSOR_VAL_SHARE))
    picked: list[tuple[FolderPack, int, int]] = []
    for split, (ds, budget) in enumerate(((train, capacity - n_val), (val, n_val))):
        by_group: dict[str, list[int]] = {}
        for i, item in enumerate(ds.items):
            by_group.setdefault(item["group"], []).append(i)
        quota = _quotas({g: len(v) for g, v in by_group.items()}, budget)
        for group, idx in sorted(by_group.items()):
            picked += [(ds, idx[j], split) for j in spread(len(idx), quota[group])]
    groups = sorted({ds.items[i]["group"] for ds, i, _ in picked})
    y = torch.empty(len(picked), side, side, dtype=torch.uint8)
    cbcr = torch.empty(len(picked), 2, side // 2, side // 2, dtype=torch.uint8)
    for k, (ds, i, _) in enumerate(picked):
        y[k:k + 1], cbcr[k:k + 1] = rgb_to_ycbcr420(center_crop(ds.raw(i).float() / 255.0, side)[None])
    doc = {"format": TENSOR_FORMAT, "side": side, "y": y, "cbcr": cbcr,
           "split": torch.tensor([s for _, _, s in picked], dtype=torch.uint8),
           "group": torch.tensor([groups.index(ds.items[i]["group"]) for ds, i, _ in picked], dtype=torch.int16),
           "groups": groups, "sources": [ds.items[i].get("source", "") for ds, i, _ in picked]}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    torch.save(doc, tmp)
    tmp.replace(out)
    return {"frames": len(picked), "val": sum(s for _, _, s in picked), "bytes": out.stat().st_size, "groups": groups}


def read_tensor_pack(path: Path) -> dict[str, Any]:
    """A tensor pack's dict (plain tensors and lists: `weights_only` loading)."""
    doc = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(doc, dict) or doc.get("format") != TENSOR_FORMAT:
        raise OptionError(f"{path} is not a vidcolor tensor pack (make one with `train prepare --tensor`)")
    return doc
