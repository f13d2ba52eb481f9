#!/usr/bin/env bash
# PyTorch (CPU) against repro on the same shapes, side by side in one sitting: CIFAR ResNet-32
# training steps (batch 128; ReLU, and AGLU + APA* with a cosine head), its 3×3 convolutions
# and [128,64,32,32] activation layers, forward + backward. Creates its own virtual environment
# with torch (from PyPI; several GB). Not part of CI.
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
cargo bench --quiet --bench conv 2>/dev/null

ratio() {
    local theirs mine
    theirs=$(echo "$torch_out" | awk -v k="$2" '$1 == k {print $2}')
    mine=$(echo "$ours" | awk -v k="$3" 'index($0, k) {print $(NF - 3)}')
    echo "== ResNet-32 training step, $1: repro $mine img/s, PyTorch $theirs img/s, ratio $(echo "scale=3; $mine / $theirs" | bc)"
}
ratio ReLU resnet32_relu_train_step "resnet32 relu"
ratio "AGLU + APA*" resnet32_aglu_apa_train_step "resnet32 aglu + APA*"
