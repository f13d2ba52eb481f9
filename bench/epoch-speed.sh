#!/usr/bin/env bash
# Wall time of training epochs as a user waits for them, repro against the reference
# implementation, in one sitting: the parity recipes on CIFAR-10-LT from the JPEG images (real
# decoding, augmentation, evaluation of the 10,000 test images after every epoch), seed 0.
#
#   CIFAR10_JPEG_ARCHIVE=/path/cifar10-jpeg.tar.gz \
#     bench/epoch-speed.sh REFERENCE_CHECKOUT [EPOCHS] [LABEL=REPRO_BINARY ...]
#
#   REFERENCE_CHECKOUT  a checkout of github.com/kostas1515/AGLU (run, not changed)
#   EPOCHS              epochs per run (default 2)
#   LABEL=BINARY        repro builds to time, e.g. before=/tmp/repro-old after=target/release/repro
#                       (default: repro=$REPRO_BIN, built here when unset)
#   RECIPES             recipes to run (default "1 2"; see bench/parity/*.yaml)
#   PARITY_WORK, PARITY_VENV, PYTHON: as for bench/reference-parity.sh, whose set-up it shares
#
# Per recipe and implementation it prints the whole command's wall time per epoch, the training
# part of an epoch (s and images/s) and one evaluation (s), and each one's ratio to the
# reference (reference time / repro time: above 1 is faster than the reference). The reference's
# times come from its own log ("Epoch: [i] Total time", "Test: Total time", whole seconds),
# repro's from its result.json (images/s and eval_seconds of each epoch). Run it on a quiet
# machine: the implementations run one after another, never at once.
set -euo pipefail

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
[ $# -ge 1 ] || usage
REFERENCE=$1
EPOCHS=${2:-2}
shift $(($# >= 2 ? 2 : 1))
RECIPES=${RECIPES:-"1 2"}
REPO=$(cd "$(dirname "$0")/.." && pwd)
builds=("$@")
for build in "${builds[@]}"; do
    [[ $build == *=* && -x ${build#*=} ]] || { echo "error: '$build' is not LABEL=EXECUTABLE" >&2; exit 2; }
done
# Named builds make building here unnecessary (lib.sh builds when REPRO_BIN is unset).
[ ${#builds[@]} -eq 0 ] || REPRO_BIN=${builds[0]#*=}
# shellcheck source=bench/parity/lib.sh
. "$REPO/bench/parity/lib.sh"
[ ${#builds[@]} -gt 0 ] || builds=("repro=$REPRO_BIN")

RESULTS=$WORK/speed
rm -rf "$RESULTS" && mkdir -p "$RESULTS"
for recipe in $RECIPES; do
    echo "recipe $recipe: reference..." >&2
    run_reference "$recipe" 0 "$RESULTS/r$recipe-reference.json"
    cp "$WORK/runs/reference-r$recipe-s0/log.txt" "$RESULTS/r$recipe-reference.log"
    for build in "${builds[@]}"; do
        label=${build%%=*}
        echo "recipe $recipe: repro ($label)..." >&2
        run_repro "$recipe" 0 "$RESULTS/r$recipe-$label.json" "${build#*=}" "$label"
        cp "$WORK/runs/$label-r$recipe-s0/out/result.json" "$RESULTS/r$recipe-$label.result.json"
    done
done
"$PY" "$REPO/bench/epoch_speed_report.py" "$RESULTS" "$EPOCHS" "${builds[@]%%=*}"
