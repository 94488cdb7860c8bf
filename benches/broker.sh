#!/usr/bin/env bash
# Benchmark P5 (issue 16, DESIGN §7): attempts through Redis to local `pitboss worker`s
# against the embedded queue, in the same script run.
#
#   1. Added latency: N trivial tasks (`sh` reading the task, printing {"ok":true}),
#      max_parallel 8, run three ways: embedded (`run --headless`), through Redis with
#      1 worker (--concurrency 8) and with 2 workers (--concurrency 8 each). Per task,
#      end − `attempt_spawned` from events.jsonl (ms); the median of each, and broker −
#      embedded (goal ≤ 1 ms). Also the median `attempt_started` → end, which includes
#      the trip through the queue to the worker and back (the whole cost of a broker).
#   2. Sleep-bound: S tasks of `sleep 0.05`, max_parallel 16, through 1 worker vs 2
#      workers (--concurrency 4 each), compared on the log's span (first
#      `attempt_started` → last end, so the worker's discovery of the run is left out)
#      and on wall time (goal 2 vs 1 ≥ 1.8×). Twice: the command under `sh -c` (it
#      reads the task, as agents do), and `sleep 0.05` alone (one fork, so the box's
#      2 cores are less of the measure).
# N=0 skips part 1. WORKER_FLAGS are added to every `pitboss worker` (e.g.
# WORKER_FLAGS="--read-ahead 0" to measure without read-ahead).
# Each round uses its own pool name, so workers of other rounds (or other people on the
# same Redis) never take its jobs. Records `nproc` and the load before and after.
#
#   cargo build --release && benches/broker.sh                  # N=2000, S=400, 3 rounds
#   BROKER=redis://127.0.0.1:6379 N=500 S=200 ROUNDS=1 benches/broker.sh
set -euo pipefail
N=${N:-2000}
S=${S:-400}
ROUNDS=${ROUNDS:-3}
BROKER=${BROKER:-redis://127.0.0.1:6379}
PITBOSS=${PITBOSS:-$(dirname "$0")/../target/release/pitboss}
[ -x "$PITBOSS" ] || { echo "build first: cargo build --release (looked for $PITBOSS)" >&2; exit 2; }
PITBOSS=$(realpath "$PITBOSS")
work=$(mktemp -d)
workers=()
stop_workers() { # SIGTERM drains each worker; wait so that none outlives the script
  local pid
  for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${workers[@]}"; do wait "$pid" 2>/dev/null || true; done
  workers=()
}
trap 'stop_workers; rm -rf "$work"' EXIT
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

TRIVIAL='cat >/dev/null; echo {"ok":true}'
SLEEPY='cat >/dev/null; sleep 0.05; echo {"ok":true}'
CHEAP='@sleep'   # `sleep 0.05` run directly (no shell)
read -r -a worker_flags <<<"${WORKER_FLAGS:-}"

command_words() { # script → the command as a TOML array's items, or as words (one a line)
  if [ "$1" = "$CHEAP" ]; then printf 'sleep\n0.05\n'; else printf 'sh\n-c\n%s\n' "$1"; fi
}

workflow() { # name pool tasks max_parallel script
  local cmd=() w
  while IFS= read -r w; do cmd+=("$w"); done < <(command_words "$5")
  awk -v name="$1" -v pool="$2" -v n="$3" -v mp="$4" 'BEGIN {
    printf "[run]\nname = \"%s\"\nmax_parallel = %d\n\n", name, mp
    printf "[[pool]]\nname = \"%s\"\nconcurrency = %d\ncommand = [", pool, mp
    for (i = 1; i < ARGC; i++) {
      w = ARGV[i]; gsub(/\\/, "\\\\", w); gsub(/"/, "\\\"", w)
      printf "%s\"%s\"", (i > 1 ? ", " : ""), w
    }
    printf "]\n\n"
    for (i = 1; i <= n; i++) printf "[[task]]\nid = \"t%d\"\n", i
  }' "${cmd[@]}"
}

start_workers() { # pool count concurrency script
  local i cmd=() w
  while IFS= read -r w; do cmd+=("$w"); done < <(command_words "$4")
  for i in $(seq 1 "$2"); do
    "$PITBOSS" worker --broker "$BROKER" --pool "$1" --concurrency "$3" "${worker_flags[@]}" -- "${cmd[@]}" \
      >"$work/worker-$1-$i.log" 2>&1 &
    workers+=("$!")
  done
}

# Per task: the ms from `attempt_spawned` (or `attempt_started` with FROM=attempt_started)
# to `attempt_succeeded`, last attempt wins; prints the median.
median_to_end() { # events.jsonl from-type
  jq -r --arg from "$2" 'select(.event.type == $from or .event.type == "attempt_succeeded")
    | [.event.type, .event.task, .ts] | @tsv' "$1" |
    awk -F'\t' -v from="$2" '$1 == from {t0[$2] = $3; next} ($2 in t0) {print $3 - t0[$2]}' |
    sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}

# Seconds from the first `attempt_started` to the last `attempt_succeeded`.
span() { # events.jsonl
  jq -r 'select(.event.type == "attempt_started" or .event.type == "attempt_succeeded") | .ts' "$1" |
    sort -g | awk 'NR == 1 {a = $1} {b = $1} END {printf "%.3f", (b - a) / 1000}'
}

run_one() { # label pool workers concurrency tasks max_parallel script → sets $dir, $wall
  local label=$1 pool=$2 nw=$3 conc=$4
  workflow "p5-$label" "$pool" "$5" "$6" "$7" >"$work/$label.toml"
  dir="$work/$label"
  local broker_args=()
  if [ "$nw" -gt 0 ]; then
    start_workers "$pool" "$nw" "$conc" "$7"
    broker_args=(--broker "$BROKER")
  fi
  local t0 t1
  t0=$(now)
  PITBOSS_HOME="$work/home" "$PITBOSS" run --headless "${broker_args[@]}" --state-dir "$dir" \
    "$work/$label.toml" >/dev/null 2>"$work/$label.err" ||
    { echo "run $label failed:" >&2; cat "$work/$label.err" >&2; exit 1; }
  t1=$(now)
  stop_workers
  wall=$(echo "$t1 - $t0" | bc -l)
  local done
  done=$(grep -c '"type":"attempt_succeeded"' "$dir/events.jsonl")
  [ "$done" -eq "$5" ] || { echo "run $label: $done of $5 tasks succeeded" >&2; exit 1; }
}

echo "nproc $(nproc); load before $(load); N=$N S=$S ROUNDS=$ROUNDS broker $BROKER"
declare -a add1 add2 ratios cheap_ratios
for r in $(seq 1 "$ROUNDS"); do
  tag="$$-$r"
  if [ "$N" -gt 0 ]; then
  run_one "emb$r" "e$tag" 0 0 "$N" 8 "$TRIVIAL"
  e_sp=$(median_to_end "$dir/events.jsonl" attempt_spawned)
  e_st=$(median_to_end "$dir/events.jsonl" attempt_started); e_wall=$wall
  rm -rf "$dir"
  run_one "one$r" "a$tag" 1 8 "$N" 8 "$TRIVIAL"
  a_sp=$(median_to_end "$dir/events.jsonl" attempt_spawned)
  a_st=$(median_to_end "$dir/events.jsonl" attempt_started); a_wall=$wall
  rm -rf "$dir"
  run_one "two$r" "b$tag" 2 8 "$N" 8 "$TRIVIAL"
  b_sp=$(median_to_end "$dir/events.jsonl" attempt_spawned)
  b_st=$(median_to_end "$dir/events.jsonl" attempt_started); b_wall=$wall
  rm -rf "$dir"
  printf 'round %d trivial ×%d, median ms spawned→end (started→end), wall s:\n' "$r" "$N"
  printf '  embedded %s (%s) %.2fs | 1 worker %s (%s) %.2fs | 2 workers %s (%s) %.2fs\n' \
    "$e_sp" "$e_st" "$e_wall" "$a_sp" "$a_st" "$a_wall" "$b_sp" "$b_st" "$b_wall"
  add1+=("$(echo "$a_sp - $e_sp" | bc -l)"); add2+=("$(echo "$b_sp - $e_sp" | bc -l)")
  fi

  run_one "s1$r" "c$tag" 1 4 "$S" 16 "$SLEEPY"
  s1=$(span "$dir/events.jsonl"); s1_wall=$wall; rm -rf "$dir"
  run_one "s2$r" "d$tag" 2 4 "$S" 16 "$SLEEPY"
  s2=$(span "$dir/events.jsonl"); s2_wall=$wall; rm -rf "$dir"
  ratio=$(echo "$s1 / $s2" | bc -l)
  printf 'round %d sleep 0.05 ×%d: 1 worker %ss (wall %.2fs), 2 workers %ss (wall %.2fs): %.2f× (wall %.2f×)\n' \
    "$r" "$S" "$s1" "$s1_wall" "$s2" "$s2_wall" "$ratio" "$(echo "$s1_wall / $s2_wall" | bc -l)"
  ratios+=("$ratio")

  run_one "k1$r" "f$tag" 1 4 "$S" 16 "$CHEAP"
  k1=$(span "$dir/events.jsonl"); k1_wall=$wall; rm -rf "$dir"
  run_one "k2$r" "g$tag" 2 4 "$S" 16 "$CHEAP"
  k2=$(span "$dir/events.jsonl"); k2_wall=$wall; rm -rf "$dir"
  ratio=$(echo "$k1 / $k2" | bc -l)
  printf 'round %d bare sleep 0.05 ×%d: 1 worker %ss (wall %.2fs), 2 workers %ss (wall %.2fs): %.2f× (wall %.2f×)\n' \
    "$r" "$S" "$k1" "$k1_wall" "$k2" "$k2_wall" "$ratio" "$(echo "$k1_wall / $k2_wall" | bc -l)"
  cheap_ratios+=("$ratio")
done
if [ "$N" -gt 0 ]; then
  printf 'median added latency spawned→end, broker − embedded: 1 worker %s ms, 2 workers %s ms (goal ≤ 1)\n' \
    "$(median "${add1[@]}")" "$(median "${add2[@]}")"
fi
printf 'median speed-up of 2 workers over 1 (sleep-bound, sh): %.2f× (goal ≥ 1.8)\n' "$(median "${ratios[@]}")"
printf 'median speed-up of 2 workers over 1 (bare sleep): %.2f×\n' "$(median "${cheap_ratios[@]}")"
echo "load after $(load)"
