#!/usr/bin/env bash
# Runs every supported manifest and sweep at the smoke profile with the given repro binary in a
# fresh folder, then dumps what the store holds (final and per-epoch metrics, per-class results,
# learned parameters) and the rendered tables, so two builds can be compared with `diff -r`.
# Timing fields (images_per_s, tokens_per_s, eval_s, wall time) and the code revision in table
# footnotes are masked: they differ between any two runs.
#
#   scripts/smoke-snapshot.sh target/release/repro OUT_DIR
set -euo pipefail
bin=$(realpath "$1")
out=$(realpath -m "$2")
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/experiments" "$work/"
cd "$work"
for f in experiments/*.yaml experiments/sweeps/*.yaml; do
    id=$(sed -n 's/^id: *//p' "$f" | head -1 | tr -d '"')
    grep -q '^unsupported:' "$f" && continue
    case "$f" in experiments/sweeps/*) cmd=sweep ;; *) cmd=run ;; esac
    "$bin" "$cmd" "$id" --profile smoke >/dev/null 2>"$work/err.txt" || { echo "FAILED: $cmd $id"; cat "$work/err.txt"; }
done
"$bin" render >/dev/null 2>&1 || true
mkdir -p "$out"
python3 - "$work/results/repro.sqlite" "$out" <<'PY'
import sqlite3, sys, json
db = sqlite3.connect(sys.argv[1]); out = sys.argv[2]
def dump(name, sql):
    with open(f"{out}/{name}.txt", "w") as f:
        for row in db.execute(sql):
            f.write("\t".join(repr(v) for v in row) + "\n")
dump("metrics", "SELECT run_id, split, epoch, name, value FROM metrics WHERE name NOT IN ('images_per_s', 'tokens_per_s', 'eval_s') ORDER BY 1,2,3,4")
dump("class_metrics", "SELECT * FROM class_metrics ORDER BY 1,2")
dump("learned_params", "SELECT run_id, module, name, value FROM learned_params ORDER BY 1,2,3")
dump("runs", "SELECT id, stage, status, seed, error FROM runs ORDER BY 1")
dump("members", "SELECT manifest, profile, run_id, stage, labels, seed FROM manifest_runs ORDER BY 1,2,3,5")
PY
mkdir -p "$out/tables"
for t in results/tables/*; do
    sed -E 's/code [0-9a-f]{7}[^;]*;/code REV;/; s/code [0-9a-f]{7}[^,.]*/code REV/' "$t" > "$out/tables/$(basename "$t")"
done
echo "$(wc -l < "$out/runs.txt") runs, $(wc -l < "$out/metrics.txt") metric rows, $(ls "$out/tables" | wc -l) table files → $out"
