#!/usr/bin/env bash
# P1 (benches/dispatch_vs_xargs.sh's workflow) for two pitboss builds side by side:
# each round runs xargs, BEFORE, AFTER, xargs (the builds' order swapped every other
# round), and gives each build's ratio against the mean of the round's two xargs
# runs. On a box others load, that ratio moves ±15 % between identical rounds, so it
# also prints what the load moves less: from each run's own events.jsonl, the slots'
# busy fraction (Σ attempt duration_ms / (8 × the run's span)) and the idle time per
# attempt (8 × span − Σ duration) / N.
#
#   BEFORE=/tmp/pitboss-before AFTER=target/release/pitboss ROUNDS=7 benches/p1_pair.sh
set -euo pipefail
N=${N:-2000}
ROUNDS=${ROUNDS:-7}
BEFORE=${BEFORE:?BEFORE=path of the build to compare with}
AFTER=${AFTER:-$(dirname "$0")/../target/release/pitboss}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=benches/lib.sh
. "$(dirname "$0")/lib.sh"

pad=$(printf 'x%.0s' $(seq 1 120))
{
  printf '[run]\nname = "p1"\nmax_parallel = 8\n'
  printf '[[pool]]\nname = "sh"\nconcurrency = 8\n'
  printf 'command = ["sh", "-c", "cat >/dev/null; echo {\\"ok\\":true}"]\n'
  for i in $(seq 1 "$N"); do printf '[[task]]\nid = "t%d"\npayload = { text = "%s" }\n' "$i" "$pad"; done
} > "$work/p1.toml"

xargs_run() {
  local t0; t0=$(now)
  seq "$N" | xargs -P8 -n1 sh -c 'cat >/dev/null; echo {"ok":true}' _ > /dev/null
  echo "$(now) - $t0" | bc -l
}

# busy fraction and idle ms per attempt, from a run folder's log
slots() {
  python3 - "$1/events.jsonl" <<'PY'
import json, sys
first = last = None; busy = 0; n = 0
for line in open(sys.argv[1]):
    r = json.loads(line); e = r["event"]; t = e["type"]
    if t == "attempt_started" and first is None: first = r["ts"]
    if t == "attempt_succeeded": busy += e.get("duration_ms", 0); n += 1; last = r["ts"]
span = last - first
print(f"{busy / (8 * span):.3f} {(8 * span - busy) / n:.2f}")
PY
}

pitboss_run() { # build tag -> "seconds busy idle"
  local t0 t; t0=$(now)
  PITBOSS_HOME="$work/home" "$1" run --headless --state-dir "$work/run-$2" "$work/p1.toml" 2>/dev/null
  t=$(echo "$(now) - $t0" | bc -l)
  echo "$t $(slots "$work/run-$2")"
  rm -rf "$work/run-$2"
}

declare -a rb ra bb ba ib ia
echo "load at start: $(load)"
for r in $(seq 1 "$ROUNDS"); do
  x1=$(xargs_run)
  if (( r % 2 )); then b=$(pitboss_run "$BEFORE" b); a=$(pitboss_run "$AFTER" a)
  else a=$(pitboss_run "$AFTER" a); b=$(pitboss_run "$BEFORE" b); fi
  x2=$(xargs_run)
  x=$(echo "($x1 + $x2) / 2" | bc -l)
  read -r tb busyb idleb <<<"$b"; read -r ta busya idlea <<<"$a"
  rb+=("$(echo "$tb / $x" | bc -l)"); ra+=("$(echo "$ta / $x" | bc -l)")
  bb+=("$busyb"); ba+=("$busya"); ib+=("$idleb"); ia+=("$idlea")
  printf 'round %d: xargs %.3fs  before %.3fs (%.3f; busy %s, idle %s ms/attempt)  after %.3fs (%.3f; busy %s, idle %s ms/attempt)  load %s\n' \
    "$r" "$x" "$tb" "${rb[-1]}" "$busyb" "$idleb" "$ta" "${ra[-1]}" "$busya" "$idlea" "$(load)"
done
printf 'median over %d rounds, N=%d: before %.3f (busy %s, idle %s ms)  after %.3f (busy %s, idle %s ms)\n' "$ROUNDS" "$N" \
  "$(median "${rb[@]}")" "$(median "${bb[@]}")" "$(median "${ib[@]}")" \
  "$(median "${ra[@]}")" "$(median "${ba[@]}")" "$(median "${ia[@]}")"
