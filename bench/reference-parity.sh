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
#   EPOCHS              epochs per run, or one count per recipe in RECIPES' order,
#                       comma-separated ("8,2": recipe 1 at 8 epochs, recipe 2 at 2); default:
#                       the committed results' counts, 8 for recipe 1 and 5 for recipe 2
#                       (about 2 h and 1 h 45 min on 2 cores with 3 seeds)
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
# beyond the warm-up). Wall time per epoch is each command's whole wall time / EPOCHS. The
# report, results/parity/cifar10-lt-r<recipe>-e<epochs>…-s<seeds>.md, names what ran.
set -euo pipefail

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
[ $# -ge 1 ] || usage
REFERENCE=$1
SEEDS=${2:-3}
RECIPES=${RECIPES:-"1 2"}
read -ra recipes <<<"$RECIPES"
default_epochs() { case $1 in 1) echo 8 ;; *) echo 5 ;; esac; }
if [ -n "${3:-}" ]; then
    IFS=, read -ra epoch_counts <<<"$3"
else
    epoch_counts=()
    for recipe in "${recipes[@]}"; do epoch_counts+=("$(default_epochs "$recipe")"); done
fi
if [ ${#epoch_counts[@]} -eq 1 ]; then
    for _ in "${recipes[@]:1}"; do epoch_counts+=("${epoch_counts[0]}"); done
fi
[ ${#epoch_counts[@]} -eq ${#recipes[@]} ] ||
    { echo "error: EPOCHS '${3:-}' has ${#epoch_counts[@]} counts for ${#recipes[@]} recipes ($RECIPES)" >&2; exit 2; }
for n in "${epoch_counts[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "error: EPOCHS '${3:-}': '$n' is not a positive whole number" >&2; exit 2; }
done
EPOCHS=${epoch_counts[0]}
REPO=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/parity/lib.sh
. "$REPO/bench/parity/lib.sh"

RESULTS=$WORK/results
rm -rf "$RESULTS"
report=cifar10-lt
for i in "${!recipes[@]}"; do
    recipe=${recipes[$i]}
    set_epochs "${epoch_counts[$i]}"
    report+=-r$recipe-e$EPOCHS
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
"$PY" "$REPO/bench/parity_report.py" "$RESULTS" "$REPO/results/parity/$report-s$SEEDS.md"
