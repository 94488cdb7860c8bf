#!/usr/bin/env bash
# Memory (issue 14, deliverable 4): peak resident set size of the commands that read a
# 100,000-task workflow and its run, measured with `/usr/bin/time -v` ("Maximum
# resident set size"). The workflow: 3 persistent pools (concurrency 16, per_worker 8)
# whose worker is `awk` answering `{"ok":true}` to each task line (replies without an
# id go to tasks in order), so the worker is not what is measured; each task has a
# small payload, every tenth depends on the one before it.
#
#   cargo build --release && benches/memory.sh            # N=100000
#   N=20000 benches/memory.sh
#   KEEP=/tmp/mem benches/memory.sh                       # keep the workflow and run folder
set -euo pipefail
N=${N:-100000}
PITBOSS=${PITBOSS:-$(dirname "$0")/../target/release/pitboss}
[ -x "$PITBOSS" ] || { echo "build first: cargo build --release (looked for $PITBOSS)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time, for -v)" >&2; exit 2; }
if [ -n "${KEEP:-}" ]; then work=$KEEP; mkdir -p "$work"; rm -rf "$work/run" "$work/home"; else
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi

awk -v n="$N" 'BEGIN {
  print "[run]\nname = \"memory\"\nmax_parallel = 48\n"
  print "[defaults]\ntimeout = \"1m\"\n"
  for (p = 1; p <= 3; p++) {
    printf "[[pool]]\nname = \"p%d\"\nmode = \"persistent\"\nconcurrency = 16\nper_worker = 8\n", p
    print "command = [\"awk\", \"{ print \\\"{\\\\\\\"ok\\\\\\\":true}\\\"; fflush() }\"]\n"
  }
  for (i = 1; i <= n; i++) {
    printf "[[task]]\nid = \"t%06d\"\npayload = { n = %d }\n", i, i
    if (i % 10 == 0) printf "depends_on = [\"t%06d\"]\n", i - 1
  }
}' > "$work/wf.toml"

# Peak RSS in MB and wall time of one command (its output discarded).
measure() {
  local label=$1; shift
  local report="$work/time.txt"
  /usr/bin/time -v -o "$report" "$@" > /dev/null 2> "$work/stderr.txt" || {
    echo "$label failed:" >&2; tail -5 "$work/stderr.txt" >&2; exit 1; }
  local kb secs
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$report")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$report")
  printf '%-32s %8.1f MB  %s\n' "$label" "$(echo "$kb / 1024" | bc -l)" "$secs"
}

size=$(stat -c %s "$work/wf.toml")
printf 'workflow: %d tasks, %.1f MB of TOML\n' "$N" "$(echo "$size / 1048576" | bc -l)"
measure "validate" "$PITBOSS" validate "$work/wf.toml"
export PITBOSS_HOME="$work/home"
measure "run --headless (manager)" "$PITBOSS" run --headless --state-dir "$work/run" "$work/wf.toml"
printf 'log: %d records, %.1f MB\n' "$(wc -l < "$work/run/events.jsonl")" \
  "$(echo "$(stat -c %s "$work/run/events.jsonl") / 1048576" | bc -l)"
measure "inspect --json" "$PITBOSS" inspect "$work/run" --json
measure "resume --headless (finished)" "$PITBOSS" resume "$work/run" --headless
