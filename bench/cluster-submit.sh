#!/usr/bin/env bash
# Submitting a 10,000-run sweep to Slurm, and `repro status` of it from PostgreSQL: the number
# of sbatch calls and the wall time of each command. The jobs are submitted held
# (--sbatch-arg=--hold), so nothing runs, and cancelled at the end.
#
#   bench/cluster-submit.sh REPRO_BINARY POSTGRES_URL
#
# Needs a running Slurm (SLURM_CONF; scripts/cluster/slurm.sh start DIR) and a PostgreSQL
# database (scripts/cluster/postgres.sh start DIR prints one); the database gets a sweep `big`.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 REPRO_BINARY POSTGRES_URL" >&2; exit 2; }
repro=$(realpath "$1")
db=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir -p experiments/sweeps
cat >experiments/sweeps/big.yaml <<'YAML'
id: big
title: 10,000-run sweep
base: { model: { arch: resnet8 }, fake: { epochs: 1 } }
axes:
  lr: { key: train.lr, values: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1] }
  wd: { key: train.weight_decay, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }
  act: { key: model.activation, values: [relu, prelu, elu, mish, gelu] }
  kz: { keys: [model.init.apa_kappa, model.init.apa_lambda], values: [[[-1.0, 0.0], [0.0, 1.0]], [[-0.5, 0.0], [0.0, 0.5]]] }
seeds: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
YAML

timed() {  # label, command...
  local start end
  start=$(date +%s.%N)
  "${@:2}" >"$work/out.json"
  end=$(date +%s.%N)
  printf '%-52s %8.2f s\n' "$1" "$(echo "$end - $start" | bc)"
}

echo "Slurm MaxArraySize: $(scontrol show config | awk '/^MaxArraySize/ {print $3}')"
timed "submit 10,000 runs (repro sweep --executor slurm)" \
  "$repro" sweep big --executor slurm --db "$db" --sbatch-arg=--hold --json
python3 - "$work/out.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"  sbatch calls: {len(s['jobs'])}, runs submitted: {sum(j['runs'] for j in s['jobs'])}")
PY
jobs=$(python3 -c "import json,sys; print(','.join(j['job'] for j in json.load(open(sys.argv[1]))['jobs']))" "$work/out.json")
timed "submit again: everything queued already" \
  "$repro" sweep big --executor slurm --db "$db" --sbatch-arg=--hold --json
python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(f\"  sbatch calls: {len(s['jobs'])}, skipped: {s['skipped']}\")" "$work/out.json"
timed "repro status big (10,000 runs, job states from squeue)" \
  "$repro" status big --db "$db" --json
timed "repro status (every manifest in the store)" "$repro" status --db "$db"
IFS=, read -ra ids <<<"$jobs"
scancel "${ids[@]}"
echo "cancelled jobs $jobs"
