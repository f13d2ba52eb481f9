#!/usr/bin/env bash
# PyTorch (CPU) against repro on the same shapes, side by side in one sitting. Group `resnet`
# (default): CIFAR ResNet-32 training steps (batch 128; ReLU, and AGLU + APA* with a cosine
# head), its 3×3 convolutions and [128,64,32,32] activation layers, forward + backward. Group
# `vit`: ViT-B/16 training steps (batch 32, 224²; GELU and AGLU MLPs; timm's model on the
# PyTorch side). Group `gpt2`: GPT-2 small training steps (4 × 1024 tokens; GELU-tanh and AGLU
# MLPs; AdamW; Hugging Face's GPT2LMHeadModel on the PyTorch side). Creates its own virtual
# environment with torch (from PyPI; several GB) and, for `vit`, timm, for `gpt2`, transformers.
# Not part of CI.
#   bench/pytorch-compare.sh [threads] [resnet|vit|gpt2]
set -euo pipefail
cd "$(dirname "$0")/.."
threads="${1:-2}"
group="${2:-resnet}"
case $group in resnet | vit | gpt2) ;; *) echo "error: group '$group' is not resnet, vit or gpt2" >&2; exit 2 ;; esac
venv="${REPRO_BENCH_VENV:-target/bench-venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install --quiet torch
[ "$group" != vit ] || "$venv/bin/python" -c "import timm" 2>/dev/null || "$venv/bin/pip" install --quiet timm
[ "$group" != gpt2 ] || "$venv/bin/python" -c "import transformers" 2>/dev/null || "$venv/bin/pip" install --quiet transformers

echo "== PyTorch ($threads threads)"
torch_out=$("$venv/bin/python" bench/pytorch_step.py "$threads" "$group")
echo "$torch_out"
echo "== repro"
ours=$(cargo bench --quiet --bench train_step -- "$group" 2>/dev/null)
echo "$ours"

ratio() {
    local theirs mine
    theirs=$(echo "$torch_out" | awk -v k="$2" '$1 == k {print $2}')
    mine=$(echo "$ours" | awk -v k="$3" 'index($0, k) {print $(NF - 3)}')
    echo "== $1: repro $mine ${4:-img/s}, PyTorch $theirs ${4:-img/s}, ratio $(echo "scale=3; $mine / $theirs" | bc)"
}
if [ "$group" = gpt2 ]; then
    ratio "GPT-2 small training step, GELU-tanh" gpt2_gelu_tanh_train_step "gpt2 gelu_tanh" tok/s
    ratio "GPT-2 small training step, AGLU" gpt2_aglu_train_step "gpt2 aglu" tok/s
elif [ "$group" = vit ]; then
    ratio "ViT-B/16 training step, GELU" vit_b16_gelu_train_step "vit_b16 gelu"
    ratio "ViT-B/16 training step, AGLU" vit_b16_aglu_train_step "vit_b16 aglu"
else
    cargo bench --quiet --bench activation 2>/dev/null
    cargo bench --quiet --bench conv 2>/dev/null
    ratio "ResNet-32 training step, ReLU" resnet32_relu_train_step "resnet32 relu"
    ratio "ResNet-32 training step, AGLU + APA*" resnet32_aglu_apa_train_step "resnet32 aglu + APA*"
fi
