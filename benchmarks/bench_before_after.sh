#!/bin/bash
# The same CLI steps with an earlier revision (default 9c63ca5, before issue 9's refactor) and with this
# checkout, alternating, on the same footage: merge --force (frames/s) and extract --redo (wall clock).
# Run from the repository root: benchmarks/bench_before_after.sh [REV] [ROUNDS]
set -e
REV=${1:-9c63ca5}; ROUNDS=${2:-3}
PY=$PWD/.venv/bin/python
CLIPS=$(cd "$(dirname "$0")/../.." && pwd)/shared/data/clips
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/base"; git archive "$REV" src | tar xf - -C "$TMP/base"
declare -A SRC=([base]=$TMP/base/src [new]=$PWD/src)
for v in base new; do
  export PYTHONPATH=${SRC[$v]}
  $PY -m doppel init "$TMP/$v" >/dev/null
  $PY -m doppel add "$TMP/$v" --source "$CLIPS/akiyo_cif.mp4" >/dev/null
  $PY -m doppel add "$TMP/$v" --target "$CLIPS/foreman_cif.mp4" >/dev/null
  $PY -m doppel extract "$TMP/$v" >/dev/null 2>&1
  $PY -m doppel train "$TMP/$v" --preset cpu-64 --iterations 10 >/dev/null 2>&1
done
for round in $(seq "$ROUNDS"); do
  for v in base new; do
    export PYTHONPATH=${SRC[$v]}
    echo "$v merge --force: $($PY -m doppel merge "$TMP/$v" --force --json 2>/dev/null \
      | $PY -c 'import json,sys; r=json.load(sys.stdin); print(r["rendered"], "frames at", round(r["fps"], 1), "frames/s")')"
  done
done
for round in $(seq "$ROUNDS"); do
  for v in base new; do
    export PYTHONPATH=${SRC[$v]}
    t0=$(date +%s.%N); $PY -m doppel extract "$TMP/$v" --redo >/dev/null 2>&1; t1=$(date +%s.%N)
    echo "$v extract --redo (akiyo_cif + foreman_cif, 600 frames): $(echo "600 / ($t1 - $t0)" | bc -l | cut -c1-5) frames/s"
  done
done
