#!/usr/bin/env bash
# One lent GPU minute budget -> one model, with torch alone (no PyAV, kornia or OpenCV needed).
# Trains the recipe on the tensor pack for MINUTES, exports the checkpoint the recipe's rule picks, scores it on
# the pack's validation split, and leaves everything worth bringing back in $OUT (at most 8 files).
#
#   on this machine:  benchmarks/gpu_prepare.sh PACK_FOLDER        (writes .gpu/, ignored by git)
#   device tool:      run command="bash benchmarks/gpu_train.sh" carry=[".gpu"] timeout_s=600
#
# Settings (environment): MINUTES (training time, default 6), RECIPE (default gpu), PACK (default .gpu/pack.pt),
# DEVICE (default auto), EXTRA (more `fit` arguments, e.g. "--set steps=3"), PYTHON (default python3),
# OUT (default gpu-out), RUN (the run folder, default /tmp/vidcolor-gpu-run; keep it outside OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PYTHON=${PYTHON:-python3}
MINUTES=${MINUTES:-6}
RECIPE=${RECIPE:-gpu}
PACK=${PACK:-.gpu/pack.pt}
DEVICE=${DEVICE:-auto}
OUT=${OUT:-gpu-out}
RUN=${RUN:-/tmp/vidcolor-gpu-run}
mkdir -p "$OUT"

# vidcolor importable without installing it: the package, with train/ as vidcolor.train. PYTHONSAFEPATH keeps
# `python -m` from putting the repository first on the path, where vidcolor/ has no train/.
SITE=$(mktemp -d)
trap 'rm -rf "$SITE"' EXIT
mkdir "$SITE/vidcolor"
for f in "$REPO"/vidcolor/*; do ln -s "$f" "$SITE/vidcolor/"; done
ln -s "$REPO/train" "$SITE/vidcolor/train"
export PYTHONPATH="$SITE:$REPO/.gpu/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONSAFEPATH=1

{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; } \
  | tee "$OUT/device.txt" || true
"$PYTHON" -c "import torch, vidcolor.train; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" \
  | tee -a "$OUT/device.txt"

rm -rf "$RUN"
# The run stops itself at MINUTES (and saves its state at least every minute); the timeout is a backstop.
WHOLE=${MINUTES%.*}
set +e
timeout $(( ${WHOLE:-0} * 60 + 150 )) "$PYTHON" -m vidcolor.train fit --recipe "$RECIPE" --data "$PACK" \
  --out "$RUN" --time-limit "$MINUTES" --device "$DEVICE" ${EXTRA:-} > "$OUT/train.log" 2>&1
STATUS=$?
set -e
grep -v "^train " "$OUT/train.log" | tail -40
cp "$RUN/metrics.csv" "$RUN/recipe.toml" "$OUT/" 2>/dev/null || true
[ "$STATUS" = 0 ] || echo "training ended with status $STATUS; exporting what it saved" | tee -a "$OUT/train.log"

"$PYTHON" -m vidcolor.train export "$RUN" -o "$OUT/model.pt" --pick best --no-int8 | tee -a "$OUT/train.log"
"$PYTHON" -m vidcolor.train export "$RUN" -o "$OUT/last.pt" --pick last --no-int8 | tee -a "$OUT/train.log"
SIZE=$(sed -n 's/^size = //p' "$RUN/recipe.toml")
"$PYTHON" -m vidcolor.train.validate "$OUT/model.pt" "$PACK" "$SIZE" "$OUT/val.json" | tee -a "$OUT/train.log"
cp "$RUN/metrics.csv" "$RUN/recipe.toml" "$OUT/"
ls -la "$OUT"
exit "$STATUS"
