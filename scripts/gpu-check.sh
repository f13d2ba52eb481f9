#!/usr/bin/env bash
# GPU validation, one line per check: model fidelity on the fixtures, a short training run and
# the training throughput of ResNet-32, ViT-B/16 and GPT-2 small, on a CUDA device. Needs an NVIDIA GPU and driver; the build
# itself works offline (Burn 0.21 compiles its kernels with NVRTC at run time).
#   scripts/gpu-check.sh [cuda:N]
set -euo pipefail
cd "$(dirname "$0")/.."
device="${1:-cuda:0}"

cargo build --release --features cuda --quiet
bin=target/release/repro

echo "== fidelity: repro verify on $device"
"$bin" verify --device "$device" --weights both --tolerance-ulps 8 tests/fixtures/models/*.json

echo "== training: resnet8 AGLU + APA* on the synthetic source, 3 epochs, on $device"
run_dir=$(mktemp -d)
cat > "$run_dir/run.yaml" <<'YAML'
model: { arch: resnet8, num_classes: 10, activation: aglu, attention: se, gate: apa,
         attention_layernorm: true, attention_dropout: 0.1, reduction: 4 }
data: { dataset: synthetic_lt, classes: 10, image_size: 16 }
train: { epochs: 3, batch_size: 64, lr: 0.05, schedule: { warmup_epochs: 1 } }
YAML
"$bin" train "$run_dir/run.yaml" --device "$device"

echo "== throughput: CIFAR ResNet-32 training step, batch 128, on $device"
cargo bench --quiet --features cuda --bench train_step -- "$device"

echo "== throughput: ViT-B/16 (batch 32, 224²) and GPT-2 small (4 × 1024 tokens), GELU and AGLU MLPs, on $device"
cargo bench --quiet --features cuda --bench train_step -- "$device" vit
cargo bench --quiet --features cuda --bench train_step -- "$device" gpt2
