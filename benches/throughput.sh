#!/usr/bin/env bash
# Throughput (issue 14): N trivial tasks through persistent workers, end to end
# (`pitboss run --headless`: parse, fsync'd log, workers, exit), in tasks per second.
# The workflow is the one of benches/memory.sh: 3 persistent pools (concurrency 16,
# per_worker 8, so 48 tasks in flight), each task a small payload, every tenth
# depending on the one before it; the worker is `pitboss sim-agent --persistent`, so
# the worker is not what is measured.
#
# Peers in the same run, alternating round by round:
#   - worker: the N task lines piped through one sim-agent process (what the worker
#     alone can do; the run has 6 of them);
#   - BEFORE=path: another pitboss build on the same workflow (before/after pairs);
#   - SNAPSHOTS="0 50000": one run per PITBOSS_SNAPSHOT_EVERY value (cost of snapshots).
# Prints each run, then the median of each column.
#
#   cargo build --release && benches/throughput.sh                       # N=100000, 3 rounds
#   BEFORE=/tmp/pitboss-before ROUNDS=5 benches/throughput.sh
#   SNAPSHOTS="0 default 500" N=20000 benches/throughput.sh
set -euo pipefail
N=${N:-100000}
ROUNDS=${ROUNDS:-3}
PITBOSS=${PITBOSS:-$(dirname "$0")/../target/release/pitboss}
BEFORE=${BEFORE:-}
SNAPSHOTS=${SNAPSHOTS:-default}
[ -x "$PITBOSS" ] || { echo "build first: cargo build --release (looked for $PITBOSS)" >&2; exit 2; }
[ -z "$BEFORE" ] || [ -x "$BEFORE" ] || { echo "BEFORE=$BEFORE is not an executable" >&2; exit 2; }
PITBOSS=$(realpath "$PITBOSS")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

# The worker command names a build by path, so that each build runs its own worker.
workflow() { # $1: the pitboss binary whose sim-agent serves the pools
  persistent_workflow throughput "$N" "$1"
}

declare -A results
columns=()
add() { # column value
  [[ -v "results[$1]" ]] || columns+=("$1")
  results[$1]="${results[$1]:-} $2"
}

# One headless run; prints tasks/s and checks that every task completed.
run_once() { # label binary snapshot_every
  local label=$1 exe=$2 every=$3 dir="$work/run"
  rm -rf "$dir"
  local env=(PITBOSS_HOME="$work/home")
  [ "$every" = default ] || env+=(PITBOSS_SNAPSHOT_EVERY="$every")
  local t0 t1
  t0=$(now)
  env "${env[@]}" "$exe" run --headless --state-dir "$dir" "$work/wf-$label.toml" > /dev/null 2> "$work/stderr.txt" || {
    echo "$label failed:" >&2; tail -5 "$work/stderr.txt" >&2; exit 1; }
  t1=$(now)
  local done events
  done=$(grep -c '"type":"attempt_succeeded"' "$dir/events.jsonl" || true)
  events=$(wc -l < "$dir/events.jsonl")
  [ "$done" -eq "$N" ] || { echo "$label: only $done of $N tasks succeeded" >&2; exit 1; }
  local secs rate
  secs=$(echo "$t1 - $t0" | bc -l)
  rate=$(echo "$N / $secs" | bc -l)
  printf '  %-28s %7.3f s  %8.0f tasks/s  (%d events, %d snapshots)\n' "$label snap=$every" "$secs" "$rate" \
    "$events" "$(find "$dir" -maxdepth 1 -name 'snapshot-*.json' | wc -l)"
  add "$label snap=$every" "$rate"
}

workflow "$PITBOSS" > "$work/wf-after.toml"
[ -z "$BEFORE" ] || workflow "$(realpath "$BEFORE")" > "$work/wf-before.toml"
# The worker alone: the same task lines (as the manager writes them) through one process.
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++)
  printf "{\"id\":\"t%06d\",\"type\":\"task\",\"payload\":{\"n\":%d},\"attempt\":1,\"inputs\":{},\"run_id\":\"r\"}\n", i, i }' \
  > "$work/lines.jsonl"
printf 'N=%d tasks, %d rounds, load before: %s\n' "$N" "$ROUNDS" "$(load)"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r:"
  t0=$(now)
  "$PITBOSS" sim-agent --persistent < "$work/lines.jsonl" > /dev/null
  t1=$(now)
  rate=$(echo "$N / ($t1 - $t0)" | bc -l)
  printf '  %-28s %7.3f s  %8.0f tasks/s\n' "worker alone (1 process)" "$(echo "$t1 - $t0" | bc -l)" "$rate"
  add "worker alone" "$rate"
  for every in $SNAPSHOTS; do
    [ -z "$BEFORE" ] || run_once before "$BEFORE" "$every"
    run_once after "$PITBOSS" "$every"
  done
done
echo "medians over $ROUNDS rounds (load after: $(load)):"
for c in "${columns[@]}"; do
  # shellcheck disable=SC2086
  printf '  %-28s %8.0f tasks/s\n' "$c" "$(median ${results[$c]})"
done
