#!/usr/bin/env bash
# The prepared GPU check (benchmarks/gpu_check.py): CUDA against CPU colours, model fps by batch size, 1080p run
# against transcode. The GPU machine has torch, OpenCV, click and rich but not PyAV or kornia: they travel as wheels.
#
#   here, once:   benchmarks/gpu_check.sh --prepare            (cp312 wheels of av, kornia, kornia_rs into .whl/)
#   device tool:  run command="bash benchmarks/gpu_check.sh" carry=[".whl"] timeout_s=420
#   CPU dry run:  DEVICE=cpu QUICK=1 OUT=/tmp/gpu-check benchmarks/gpu_check.sh      (tests/test_gpu_check.py)
#
# Settings (environment): DEVICE (default cuda), QUICK (1: small sizes), OUT (default $OUT or gpu-out), PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
if [ "${1:-}" = --prepare ]; then
  mkdir -p .whl
  for spec in "av==$("$PYTHON" -c 'import av; print(av.__version__)')" kornia kornia_rs; do
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .whl "$spec"
  done
  du -sh .whl
  exit 0
fi
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
if ! "$PYTHON" -c "import av, kornia" 2>/dev/null; then
  [ -d .whl ] || { echo "PyAV or kornia missing and no .whl/ folder: run benchmarks/gpu_check.sh --prepare here first"; exit 2; }
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-check-site .whl/*.whl
  export PYTHONPATH="/tmp/gpu-check-site${PYTHONPATH:+:$PYTHONPATH}"
fi
# vidcolor importable without installing it (as benchmarks/gpu_train.sh does): the package, train/ as vidcolor.train
SITE=$(mktemp -d)
trap 'rm -rf "$SITE"' EXIT
mkdir "$SITE/vidcolor"
for f in "$REPO"/vidcolor/*; do ln -s "$f" "$SITE/vidcolor/"; done
ln -s "$REPO/train" "$SITE/vidcolor/train"
export PYTHONPATH="$SITE:${PYTHONPATH:-}" PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; } \
  | tee "$OUT/device.txt" || true
"$PYTHON" benchmarks/gpu_check.py --out "$OUT" --device "${DEVICE:-cuda}" ${QUICK:+--quick}
