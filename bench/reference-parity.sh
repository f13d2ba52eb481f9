#!/usr/bin/env bash
# Trains the reference implementation (github.com/kostas1515/AGLU, classification/train.py) and
# repro side by side on CIFAR-10-LT (imbalance 100) from the same JPEG images, per recipe and
# seed, and writes their test accuracies and wall times to results/parity/.
#
#   CIFAR10_JPEG_ARCHIVE=/path/cifar10-jpeg.tar.gz \
#     bench/reference-parity.sh REFERENCE_CHECKOUT [SEEDS] [EPOCHS]
#
#   REFERENCE_CHECKOUT  a checkout of github.com/kostas1515/AGLU (its code is run, not changed)
#   SEEDS               number of seeds per implementation and recipe (default 3: 0, 1, 2)
#   EPOCHS              epochs per run (default 30)
#   CIFAR10_JPEG_ARCHIVE  (required) tarball with train/<class>/*.jpg and test/<class>/*.jpg
#   RECIPES             recipes to run (default "1 2"; see bench/parity/*.yaml)
#   PARITY_WORK         scratch folder (default target/parity): venv, images, pickles, runs
#   REPRO_BIN           repro binary (default: target/release/repro, built here)
#   PARITY_VENV         Python venv to use or create (default $PARITY_WORK/venv)
#   PYTHON              interpreter for the venv (default python3)
#
# Both sides read the same images: the JPEG folder directly (repro's image_folder dataset) and
# the same files decoded by PIL and written in the python pickle layout the reference's
# torchvision CIFAR10 reads (bench/cifar_jpeg_to_pickle.py), in the same per-class file order, so
# the long-tailed construction keeps the same images on both sides. The two JPEG decoders
# (PIL's libjpeg and the Rust `image` crate) may differ by a grey level here and there.
#
# Shims needed to run the reference on the CPU, offline (all in bench/reference_run.py, which
# imports train.py and calls its main(); none changes training code):
#   1. `catalyst` is a stub module (train.py imports samplers that the random sampler never uses);
#   2. torchvision's CIFAR md5 check is bypassed (rewritten pickles cannot have the official
#      checksums, and a failed check makes torchvision download);
#   3. torch.Tensor.cuda returns the tensor (the cosine classifier calls .cuda() on its weight);
#   4. custom.IIFLoss defaults to device 'cpu' (it defaults to 'cuda');
#   5. torch/numpy/random are seeded with the seed (the reference seeds only its LT subset);
#   6. the reference reads CIFAR from '../../../datasets/', so each run's working folder is
#      three levels below a folder with datasets/ (a symlink to the pickles).
# The warm-up is min(3, EPOCHS - 1) epochs on both sides (the reference's cosine needs epochs
# beyond the warm-up). Wall time per epoch is each command's whole wall time / EPOCHS.
set -euo pipefail

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
[ $# -ge 1 ] || usage
REFERENCE=$(cd "$1" && pwd)
SEEDS=${2:-3}
EPOCHS=${3:-30}
RECIPES=${RECIPES:-"1 2"}
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${PARITY_WORK:-$REPO/target/parity}
PYTHON=${PYTHON:-python3}
ARCHIVE=${CIFAR10_JPEG_ARCHIVE:-}
if [ -z "$ARCHIVE" ] || [ ! -f "$ARCHIVE" ]; then
    echo "error: set CIFAR10_JPEG_ARCHIVE to the CIFAR-10 JPEG tarball (train/<class>/*.jpg, test/<class>/*.jpg); got '${ARCHIVE}'" >&2
    exit 2
fi
[ -f "$REFERENCE/classification/train.py" ] || { echo "error: $REFERENCE/classification/train.py not found" >&2; exit 2; }
WARMUP=$(( EPOCHS > 3 ? 3 : EPOCHS - 1 ))
mkdir -p "$WORK"

# --- Python environment (torch CPU, torchvision, scipy) ---
VENV=${PARITY_VENV:-$WORK/venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import torch, torchvision, scipy" 2>/dev/null; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch torchvision scipy numpy
fi
PY=$VENV/bin/python

# --- Data: the JPEG folder, and the same images as CIFAR-10 python pickles ---
IMAGES=$WORK/cifar10-jpeg
if [ ! -d "$IMAGES/train" ]; then
    rm -rf "$IMAGES.tmp" && mkdir -p "$IMAGES.tmp"
    tar -xzf "$ARCHIVE" -C "$IMAGES.tmp"
    [ -d "$IMAGES.tmp/train" ] || { echo "error: $ARCHIVE has no train/ folder at its top" >&2; exit 2; }
    mv "$IMAGES.tmp" "$IMAGES"
fi
PICKLES=$WORK/datasets/cifar-10-batches-py
[ -f "$PICKLES/batches.meta" ] || "$PY" "$REPO/bench/cifar_jpeg_to_pickle.py" "$IMAGES" "$PICKLES"

# --- repro ---
if [ -z "${REPRO_BIN:-}" ]; then
    (cd "$REPO" && cargo build --release --quiet)
    REPRO_BIN=$REPO/target/release/repro
fi

now() { date +%s.%N; }

run_reference() { # recipe seed out_json
    local recipe=$1 seed=$2 out=$3 flags
    case $recipe in
        1) flags="--model resnet32 --batch-size 128 --lr 0.1 --wd 5e-4" ;;
        2) flags="--model se_resnet32 --use_gumbel_se --classif_norm cosine --criterion iif
                  --auto-augment cifar10 --mixup-alpha 0.2 --batch-size 512 --lr 0.2 --wd 1e-3" ;;
    esac
    local dir=$WORK/runs/reference-r$recipe-s$seed
    rm -rf "$dir" && mkdir -p "$dir/a/b/c"
    ln -sfn "$WORK/datasets" "$dir/datasets"
    local start; start=$(now)
    # shellcheck disable=SC2086  # flags is a word list
    (cd "$dir/a/b/c" && "$PY" "$REPO/bench/reference_run.py" "$REFERENCE" "$seed" "$out.raw" -- \
        --dset_name cifar10 --imb_factor 0.01 --rand_number 0 --device cpu -j 2 \
        --epochs "$EPOCHS" --lr-scheduler cosineannealinglr --lr-warmup-method linear \
        --lr-warmup-epochs "$WARMUP" --lr-warmup-decay 0.01 --momentum 0.9 \
        --output-dir "$dir/out" --print-freq 1000 $flags) > "$dir/log.txt" 2>&1 \
        || { echo "reference run failed; log: $dir/log.txt" >&2; tail -20 "$dir/log.txt" >&2; exit 1; }
    "$PY" - "$out.raw" "$out" "$start" "$(now)" "$EPOCHS" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["wall_s_per_epoch"] = (float(sys.argv[4]) - float(sys.argv[3])) / int(sys.argv[5])
json.dump(r, open(sys.argv[2], "w"))
EOF
}

run_repro() { # recipe seed out_json
    local recipe=$1 seed=$2 out=$3
    local config; config=$(ls "$REPO"/bench/parity/recipe"$recipe"-*.yaml)
    local dir=$WORK/runs/repro-r$recipe-s$seed
    rm -rf "$dir" && mkdir -p "$dir"
    local start; start=$(now)
    "$REPRO_BIN" train "$config" --out "$dir/out" \
        --set seed="$seed" --set train.epochs="$EPOCHS" \
        --set train.schedule.warmup_epochs="$WARMUP" --set data.root="$IMAGES" > "$dir/log.txt" 2>&1 \
        || { echo "repro run failed; log: $dir/log.txt" >&2; tail -20 "$dir/log.txt" >&2; exit 1; }
    "$PY" - "$dir/out/result.json" "$out" "$start" "$(now)" "$EPOCHS" "$seed" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
classes = sorted(r["classes"], key=lambda c: c["class"])
json.dump({
    "implementation": "repro",
    "seed": int(sys.argv[6]),
    "epochs": int(sys.argv[5]),
    "top1": 100.0 * sum(c["correct"] for c in classes) / sum(c["n_test"] for c in classes),
    "per_class": [100.0 * c["correct"] / c["n_test"] for c in classes],
    "train_counts": [c["n_train"] for c in classes],
    "wall_s_per_epoch": (float(sys.argv[4]) - float(sys.argv[3])) / int(sys.argv[5]),
}, open(sys.argv[2], "w"))
EOF
}

RESULTS=$WORK/results
rm -rf "$RESULTS"
for recipe in $RECIPES; do
    name=$(basename "$(ls "$REPO"/bench/parity/recipe"$recipe"-*.yaml)" .yaml)
    mkdir -p "$RESULTS/$name"
    rm -f "$RESULTS/$name"/*.json
    for seed in $(seq 0 $((SEEDS - 1))); do
        echo "recipe $recipe seed $seed: reference..." >&2
        run_reference "$recipe" "$seed" "$RESULTS/$name/reference-seed$seed.json"
        echo "recipe $recipe seed $seed: repro..." >&2
        run_repro "$recipe" "$seed" "$RESULTS/$name/repro-seed$seed.json"
    done
done
"$PY" "$REPO/bench/parity_report.py" "$RESULTS" "$REPO/results/parity/cifar10-lt-e${EPOCHS}-s${SEEDS}.md"
