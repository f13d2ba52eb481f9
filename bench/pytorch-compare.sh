#!/usr/bin/env bash
# PyTorch (CPU) against repro on the same shapes, side by side in one sitting: a CIFAR ResNet-32
# training step (batch 128) and [128,64,32,32] activation layers, forward + backward. Creates
# its own virtual environment with torch (from PyPI; several GB). Not part of CI.
#   bench/pytorch-compare.sh [threads]
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
venv="${REPRO_BENCH_VENV:-target/bench-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install --quiet torch

echo "== PyTorch ($threads threads)"
torch_out=$("$venv/bin/python" bench/pytorch_step.py "$threads")
echo "$torch_out"
echo "== repro"
ours=$(cargo bench --quiet --bench train_step 2>/dev/null)
echo "$ours"
cargo bench --quiet --bench activation 2>/dev/null

theirs=$(echo "$torch_out" | awk '/resnet32_relu_train_step/ {print $2}')
mine=$(echo "$ours" | awk '/resnet32 relu/ {print $3}')
echo "== ResNet-32 training step: repro $mine img/s, PyTorch $theirs img/s, ratio $(echo "scale=3; $mine / $theirs" | bc)"
