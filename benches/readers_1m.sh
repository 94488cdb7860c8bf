#!/usr/bin/env bash
# Readers of a finished 1,000,000-event run (issue 14, deliverable 6): wall time and
# peak RSS of what an operator runs on a finished run, each against its peer in the
# same round: the time to merely parse the log (`examples/parse_log.rs`:
# `serde_json::Value` over every line of every segment, nothing kept).
#
# The run: a real `pitboss run --headless` of N trivial tasks (default 250,000, four
# records each: ~1,000,000 records) on 3 persistent pools of `pitboss sim-agent
# --persistent` (concurrency 16, per_worker 8), every tenth task depending on the one
# before it (the workflow of benches/throughput.sh), so the folder holds what the
# engine writes: its log, its snapshots, its output folder.
#
# Measured, each with `/usr/bin/time` for the peak RSS and `date` around it for the wall:
#   parse            the peer (examples/parse_log DIR)
#   inspect          pitboss inspect DIR            (the task table)
#   inspect --json   pitboss inspect DIR --json     (the streamed document)
#   inspect TASK     pitboss inspect DIR t125000    (one task's history and states)
#   resume           pitboss resume DIR --headless  (a finished run: idle at once, exits)
#   tui open         pitboss resume DIR in a private tmux server (160x48): from the
#                    start until the pane first shows the run's name (the first frame
#                    drawn); its RSS is the peak over loading, that frame and `q`.
# Rounds alternate the commands; the table gives medians and ratios to the parse.
# `resume` appends a few records and a snapshot each time, as it does for an operator.
#
#   cargo build --release --bin pitboss --example parse_log && benches/readers_1m.sh
#   KEEP=/tmp/r1m benches/readers_1m.sh        # generate once into /tmp/r1m, reuse after
#   N=25000 ROUNDS=1 benches/readers_1m.sh     # a quick look
set -euo pipefail
N=${N:-250000}
ROUNDS=${ROUNDS:-3}
here=$(dirname "$0")
# shellcheck source=benches/lib.sh
. "$here/lib.sh"
PITBOSS=$(realpath "${PITBOSS:-$here/../target/release/pitboss}")
PARSE=${PARSE:-$here/../target/release/examples/parse_log}
[ -x "$PITBOSS" ] || { echo "build first: cargo build --release (looked for $PITBOSS)" >&2; exit 2; }
[ -x "$PARSE" ] || { echo "build first: cargo build --release --example parse_log (looked for $PARSE)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 2; }
command -v tmux > /dev/null || { echo "needs tmux (to open the TUI in a terminal)" >&2; exit 2; }
if [ -n "${KEEP:-}" ]; then work=$(realpath -m "$KEEP"); mkdir -p "$work"; else
  work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
run="$work/run"
export PITBOSS_HOME="$work/home"
TMUX_SOCKET="pitboss-readers-$$"

if [ -s "$run/events.jsonl" ] && grep -q '"type":"run_finished"' "$run/events.jsonl"; then
  echo "reusing the finished run in $run"
else
  rm -rf "$run" "$work/home"
  persistent_workflow readers "$N" "$PITBOSS" > "$work/wf.toml"
  t0=$(now)
  "$PITBOSS" run --headless --state-dir "$run" "$work/wf.toml" > /dev/null 2> "$work/run.stderr" || {
    echo "the run failed:" >&2; tail -5 "$work/run.stderr" >&2; exit 1; }
  printf 'generated: %d tasks in %.1f s\n' "$N" "$(echo "$(now) - $t0" | bc -l)"
fi
shopt -s nullglob
segs=("$run"/archive/*.jsonl "$run/events.jsonl")
shopt -u nullglob
records=$(cat "${segs[@]}" | wc -l)
bytes=$(cat "${segs[@]}" | wc -c)
tasks=$(cat "${segs[@]}" | grep -c '"type":"attempt_succeeded"' || true)
TASK=${TASK:-$(printf 't%06d' $(( (tasks + 1) / 2 )))}
printf 'log: %d records, %.1f MB, %d snapshots; inspect TASK uses %s\n' "$records" "$(echo "$bytes / 1048576" | bc -l)" \
  "$(find "$run" -maxdepth 1 -name 'snapshot-*.json' | wc -l)" "$TASK"

declare -A wall rss cpu
labels=(parse inspect "inspect --json" "inspect TASK" "resume" "tui open")
# label wall-s "peak-KB user-s sys-s" (as /usr/bin/time -f '%M %U %S' writes them)
add() {
  local m u s
  read -r m u s <<< "$3"
  wall[$1]="${wall[$1]:-} $2"; rss[$1]="${rss[$1]:-} $m"; cpu[$1]="${cpu[$1]:-} $(echo "$u + $s" | bc -l)"
}

# One command: its wall time (s) and peak RSS (KB), its output discarded.
measure() { # label command...
  local label=$1; shift
  local t0 t1
  t0=$(now)
  /usr/bin/time -f '%M %U %S' -o "$work/time.txt" "$@" > /dev/null 2> "$work/stderr.txt" || {
    echo "$label failed:" >&2; tail -5 "$work/stderr.txt" >&2; exit 1; }
  t1=$(now)
  add "$label" "$(echo "$t1 - $t0" | bc -l)" "$(tail -1 "$work/time.txt")"
}

# The TUI on the finished run in a private tmux server: the wall until its first
# frame shows the run's name, then `q`, then the peak RSS once it has exited.
measure_tui() {
  local t0 t1 deadline
  rm -f "$work/tui.time"
  t0=$(now)
  tmux -L "$TMUX_SOCKET" -f /dev/null new-session -d -s tui -x 160 -y 48 \
    "PITBOSS_HOME='$PITBOSS_HOME' /usr/bin/time -f '%M %U %S' -o '$work/tui.time' '$PITBOSS' resume '$run' 2> '$work/tui.stderr'"
  deadline=$(echo "$t0 + 120" | bc -l)
  until tmux -L "$TMUX_SOCKET" capture-pane -p -t tui 2> /dev/null | grep -q readers; do
    if (( $(echo "$(now) > $deadline" | bc -l) )) || ! tmux -L "$TMUX_SOCKET" has-session -t tui 2> /dev/null; then
      echo "the TUI showed no frame:" >&2; cat "$work/tui.stderr" >&2 || true
      tmux -L "$TMUX_SOCKET" kill-server 2> /dev/null || true; exit 1
    fi
    sleep 0.01
  done
  t1=$(now)
  tmux -L "$TMUX_SOCKET" send-keys -t tui q
  deadline=$(echo "$(now) + 60" | bc -l)
  while tmux -L "$TMUX_SOCKET" has-session -t tui 2> /dev/null; do
    if (( $(echo "$(now) > $deadline" | bc -l) )); then
      echo "the TUI did not quit on q" >&2; tmux -L "$TMUX_SOCKET" kill-server 2> /dev/null || true; exit 1
    fi
    sleep 0.05
  done
  until [ -s "$work/tui.time" ]; do sleep 0.01; done
  add "tui open" "$(echo "$t1 - $t0" | bc -l)" "$(tail -1 "$work/tui.time")"
}

printf 'release build %s, %d rounds, load before: %s\n' "$PITBOSS" "$ROUNDS" "$(load)"
for r in $(seq 1 "$ROUNDS"); do
  measure parse "$PARSE" "$run"
  measure inspect "$PITBOSS" inspect "$run"
  measure "inspect --json" "$PITBOSS" inspect "$run" --json
  measure "inspect TASK" "$PITBOSS" inspect "$run" "$TASK"
  measure resume "$PITBOSS" resume "$run" --headless
  measure_tui
  printf 'round %d done (load %s)\n' "$r" "$(cut -d' ' -f1 /proc/loadavg)"
done

# shellcheck disable=SC2086
base=$(median ${wall[parse]})
# shellcheck disable=SC2086
cbase=$(median ${cpu[parse]})
# CPU time (user + system, all threads) is the steadier yardstick on a loaded box:
# the wall of a 2-core machine shared with other work moves ±30 % between rounds.
printf '\nmedians over %d rounds (load after: %s)\n' "$ROUNDS" "$(load)"
printf '%-16s %9s %9s %9s %9s %10s   %s\n' "" "wall s" "× parse" "cpu s" "× parse" "peak MB" "goal: <= 0.10x, <= 150 MB"
for l in "${labels[@]}"; do
  # shellcheck disable=SC2086
  w=$(median ${wall[$l]}); m=$(median ${rss[$l]}); c=$(median ${cpu[$l]})
  printf '%-16s %9.3f %9.3f %9.3f %9.3f %10.1f\n' "$l" "$w" "$(echo "$w / $base" | bc -l)" "$c" \
    "$(echo "$c / $cbase" | bc -l)" "$(echo "$m / 1024" | bc -l)"
done
