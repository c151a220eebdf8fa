#!/usr/bin/env bash
# Does vlmcal's GPU path work? One run on a machine with one CUDA GPU answers it, in under 8 minutes:
#   1. the tests that need CUDA (pytest -m cuda);
#   2. TPT, batched against the one-image reference, on a random-weight ViT-B/16 at 224 px with 200 classes under
#      float16 autocast: images/s of each, their ratio (goal: batched >= 10x), identical predictions, peak memory;
#   3. feature extraction against a plain open_clip loop on the GPU;
#   4. one page, executed with -p device cuda.
# Without CUDA it says so and exits with status 2. Run from the repository after `make setup`:
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "gpu_check: $PY cannot import torch; run \`make setup\` first (or set PY to a Python with vlmcal installed)" >&2
  exit 2
fi
if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device on this machine (torch.cuda.is_available() is False); run it on a machine with a CUDA GPU" >&2
  exit 2
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
out=$(mktemp -d)
echo "== 1/4 the tests that need CUDA"
"$PY" -m pytest -q -m cuda tests
echo "== 2/4 TPT on ViT-B/16 (random weights), 224 px, 200 classes, float16 autocast"
"$PY" benchmarks/bench_tpt.py --backbone openclip:ViT-B-16:random --device cuda --classes 200 --batch 16 --repeats 1
echo "== 3/4 feature extraction against a plain open_clip loop"
"$PY" benchmarks/bench_features.py --arch ViT-B-16 --device cuda --n-images 512 --batch-size 128 --repeats 2
echo "== 4/4 one page on the GPU"
"$PY" -m vlmcal.book.run notebooks/calibration_101.ipynb "$out/calibration_101.ipynb" \
  -p backbone openclip:ViT-B-16:random -p device cuda -p n_resamples 200
echo "gpu_check: all four steps ran on $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))')"
