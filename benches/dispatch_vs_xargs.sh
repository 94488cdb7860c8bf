#!/usr/bin/env bash
# Benchmark P1 (DESIGN §8): dispatch of N trivial spawn tasks at concurrency 8,
# through `pitboss run --headless` (event log fsync'd, outputs captured) and through
# `xargs -P8` running the same processes, alternating runs. Prints each round and the
# median ratio pitboss/xargs.
#
#   cargo build --release && benches/dispatch_vs_xargs.sh            # N=2000, 7 rounds
#   N=500 ROUNDS=3 benches/dispatch_vs_xargs.sh
set -euo pipefail
N=${N:-2000}
ROUNDS=${ROUNDS:-7}
PITBOSS=${PITBOSS:-$(dirname "$0")/../target/release/pitboss}
[ -x "$PITBOSS" ] || { echo "build first: cargo build --release (looked for $PITBOSS)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ~200-byte task JSON on stdin: the payload text pads it.
pad=$(printf 'x%.0s' $(seq 1 120))
{
  printf '[run]\nname = "p1"\nmax_parallel = 8\n'
  printf '[[pool]]\nname = "sh"\nconcurrency = 8\n'
  printf 'command = ["sh", "-c", "cat >/dev/null; echo {\\"ok\\":true}"]\n'
  for i in $(seq 1 "$N"); do printf '[[task]]\nid = "t%d"\npayload = { text = "%s" }\n' "$i" "$pad"; done
} > "$work/p1.toml"
"$PITBOSS" validate "$work/p1.toml" >/dev/null

now() { date +%s.%N; }
ratios=()
for r in $(seq 1 "$ROUNDS"); do
  t0=$(now)
  seq "$N" | xargs -P8 -n1 sh -c 'cat >/dev/null; echo {"ok":true}' _ > /dev/null
  t1=$(now)
  PITBOSS_HOME="$work/home" "$PITBOSS" run --headless --state-dir "$work/run$r" "$work/p1.toml" 2>/dev/null
  t2=$(now)
  x=$(echo "$t1 - $t0" | bc -l); p=$(echo "$t2 - $t1" | bc -l); ratio=$(echo "$p / $x" | bc -l)
  events=$(wc -l < "$work/run$r/events.jsonl")
  printf 'round %d: xargs %.3fs  pitboss %.3fs  ratio %.3f  (%d events logged)\n' "$r" "$x" "$p" "$ratio" "$events"
  ratios+=("$ratio")
  rm -rf "$work/run$r"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
printf 'median ratio pitboss/xargs over %d rounds, N=%d: %.3f\n' "$ROUNDS" "$N" "$median"
