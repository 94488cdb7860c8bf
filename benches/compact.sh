#!/usr/bin/env bash
# Compaction (issue 14, deliverable 2): what `pitboss compact` costs on a finished
# 100,000-task run (400,003 records; the run made by benches/memory.sh), the readers
# before and after it (they read the archived segment and the live log as one stream,
# so they should cost the same), and a live run that rolls its log every ROLL bytes
# against the same run that never rolls, alternating, in the same session.
#
#   cargo build --release && benches/compact.sh          # N=100000, ROLL=8 MiB, 2 rounds
#   N=20000 ROLL=1048576 ROUNDS=3 benches/compact.sh
set -euo pipefail
N=${N:-100000}
ROLL=${ROLL:-8388608}
ROUNDS=${ROUNDS:-2}
here=$(cd "$(dirname "$0")" && pwd)
PITBOSS=${PITBOSS:-$here/../target/release/pitboss}
[ -x "$PITBOSS" ] || { echo "build first: cargo build --release (looked for $PITBOSS)" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "== the finished run (benches/memory.sh)"
KEEP="$work" N="$N" PITBOSS="$PITBOSS" "$here/memory.sh" | grep -E "workflow|log:|run --headless"
export PITBOSS_HOME="$work/home"
run="$work/run"
# Wall seconds and peak RSS of one command (output discarded).
t() {
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t.txt" "$@" > /dev/null 2> "$work/err.txt" || {
    echo "$label failed:" >&2; tail -3 "$work/err.txt" >&2; exit 1; }
  read -r secs kb < "$work/t.txt"
  printf '  %-30s %6.2f s %8.1f MB\n' "$label" "$secs" "$(echo "$kb / 1024" | bc -l)"
}
readers() {
  local dir=$1 tag=$2
  t "$tag events --json" "$PITBOSS" events "$dir" --json
  t "$tag inspect --json" "$PITBOSS" inspect "$dir" --json
  t "$tag inspect TASK --json" "$PITBOSS" inspect "$dir" t000500 --json
  t "$tag dlq --json" "$PITBOSS" dlq "$dir" --json
}
cp -a "$run" "$work/plain"
echo "== compact"; t "compact" "$PITBOSS" compact "$run"
ls "$run/archive"
echo "== readers: the same run uncompacted (plain) and compacted, alternating"
for r in $(seq "$ROUNDS"); do
  readers "$work/plain" "plain    "
  readers "$run" "compacted"
done
t "verify plain" "$PITBOSS" verify "$work/plain"
t "verify compacted" "$PITBOSS" verify "$run"
t "resume plain (finished)" "$PITBOSS" resume "$work/plain" --headless
t "resume compacted (finished)" "$PITBOSS" resume "$run" --headless
echo "== a live run: never rolls vs rolls every $ROLL bytes (alternating)"
for r in $(seq "$ROUNDS"); do
  for roll in 0 "$ROLL"; do
    rm -rf "$work/live"
    PITBOSS_ROLL_BYTES=$roll t "run, roll=$roll" "$PITBOSS" run --headless --state-dir "$work/live" "$work/wf.toml"
    segs=$(find "$work/live" -path '*/archive/*.jsonl' | wc -l)
    echo "    round $r: $segs archived segment(s)"
  done
done
