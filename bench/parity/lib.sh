# shellcheck shell=bash
# Shared by bench/reference-parity.sh and bench/epoch-speed.sh (sourced, not run): checks the
# inputs, makes the Python environment and both datasets, and defines run_reference and
# run_repro. Expects REPO, REFERENCE and EPOCHS; honours the variables both scripts document.
REFERENCE=$(cd "$REFERENCE" && pwd)
WORK=${PARITY_WORK:-$REPO/target/parity}
PYTHON=${PYTHON:-python3}
ARCHIVE=${CIFAR10_JPEG_ARCHIVE:-}
if [ -z "$ARCHIVE" ] || [ ! -f "$ARCHIVE" ]; then
    echo "error: set CIFAR10_JPEG_ARCHIVE to the CIFAR-10 JPEG tarball (train/<class>/*.jpg, test/<class>/*.jpg); got '${ARCHIVE}'" >&2
    exit 2
fi
[ -f "$REFERENCE/classification/train.py" ] || { echo "error: $REFERENCE/classification/train.py not found" >&2; exit 2; }
# The warm-up is min(3, EPOCHS - 1) epochs (the reference's cosine needs epochs beyond it).
set_epochs() { EPOCHS=$1; WARMUP=$(( EPOCHS > 3 ? 3 : EPOCHS - 1 )); }
set_epochs "$EPOCHS"
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

run_repro() { # recipe seed out_json [binary label]
    local recipe=$1 seed=$2 out=$3 bin=${4:-$REPRO_BIN} label=${5:-repro}
    local config; config=$(ls "$REPO"/bench/parity/recipe"$recipe"-*.yaml)
    local dir=$WORK/runs/$label-r$recipe-s$seed
    rm -rf "$dir" && mkdir -p "$dir"
    local start; start=$(now)
    "$bin" train "$config" --out "$dir/out" \
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

