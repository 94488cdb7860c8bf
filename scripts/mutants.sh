#!/usr/bin/env bash
# Mutation testing of the core and the engine with cargo-mutants, one shard at a time
# (manual, not in CI; method and figures in docs/RELIABILITY.md).
#
#   scripts/mutants.sh --shard 1/10 --scope core    # the 1-in-10 sample of src/core
#   scripts/mutants.sh --shard 7/10                 # shard 7 of src/core + src/engine
#   scripts/mutants.sh --shard 1/10 --list          # which mutants, which tests; runs nothing
#
# Options:
#   --shard K/N     run shard K (0-based) of N; slices of the mutant list in source
#                   order, so a shard is the same mutants on every run of one tree (default 1/10)
#   --scope S       core | engine | all (default all): src/core, src/engine*, or both
#   --timeout SECS  per-mutant test time before it counts as a timeout (default 180)
#   --list          print the shard's mutants and the test targets chosen, and stop
#   -- ARGS         passed to cargo-mutants as they are (e.g. -- --jobs 2)
#
# Needs cargo-mutants (`cargo install cargo-mutants --locked`). Output goes to
# target/mutants/shard-K-of-N/mutants.out (caught.txt, missed.txt, timeout.txt,
# unviable.txt, outcomes.json, a log per mutant). Exit status: cargo-mutants' own
# (0 every mutant caught, 2 some missed, 3 some timed out, 4 the clean tree fails).
#
# Each shard runs a narrowed test list, picked from the files its mutants are in:
# core mutants run the library's unit tests and the pure core tests plus the two
# real-process suites that exercise decisions end to end; engine mutants run the
# real-process suites. Every wait in those tests has a deadline
# (tests/common: PITBOSS_TEST_DEADLINE_SECS, set to 30 here), so a mutant that stops
# a run from finishing fails its test in seconds instead of reaching the timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

shard=1/10
scope=all
timeout=180
list=false
extra=()
usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --shard) shard=${2:?--shard needs K/N}; shift 2 ;;
    --scope) scope=${2:?--scope needs core, engine or all}; shift 2 ;;
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    --list) list=true; shift ;;
    -h|--help) usage 0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "mutants.sh: unknown argument $1" >&2; usage 2 >&2 ;;
  esac
done
[[ $shard =~ ^[0-9]+/[0-9]+$ ]] || { echo "mutants.sh: --shard wants K/N, got $shard" >&2; exit 2; }
command -v cargo-mutants >/dev/null || { echo "mutants.sh: install cargo-mutants first: cargo install cargo-mutants --locked" >&2; exit 2; }

# The engine is a file today and a folder after the move to src/engine/: accept both.
files=()
case "$scope" in
  core) files=(-f 'src/core/**') ;;
  engine) files=(-f 'src/engine.rs' -f 'src/engine/**') ;;
  all) files=(-f 'src/core/**' -f 'src/engine.rs' -f 'src/engine/**') ;;
  *) echo "mutants.sh: --scope is core, engine or all" >&2; exit 2 ;;
esac
select=("${files[@]}" --shard "$shard" --sharding slice)

mutants=$(cargo mutants --list "${select[@]}")
# Test targets by the files the shard mutates; a target that does not exist (yet, or
# any more) is left out, so the script survives renames in tests/.
declare -A chosen=()
names=()
add() { for t in "$@"; do [ -f "tests/$t.rs" ] && [ -z "${chosen[$t]:-}" ] && chosen[$t]=1 && names+=("$t"); done; return 0; }
engine_tests() { for f in tests/engine*.rs; do [ -f "$f" ] && add "$(basename "$f" .rs)"; done; return 0; }
if grep -q '^src/core/' <<<"$mutants"; then
  add core_decisions core_properties core_protocol golden resilience
  engine_tests
fi
if grep -q '^src/engine' <<<"$mutants"; then
  engine_tests
  add resilience durability interrupt persistent
fi
tests=(--lib)
for t in "${names[@]}"; do tests+=(--test "$t"); done

if $list; then
  echo "$mutants"
  echo "$(grep -c . <<<"$mutants") mutants; tests: cargo test ${tests[*]}"
  exit 0
fi

out="target/mutants/shard-${shard%/*}-of-${shard#*/}"
mkdir -p "$out"
echo "mutants.sh: shard $shard of $scope, $(grep -c . <<<"$mutants") mutants; tests: ${tests[*]}" >&2
start=$(date +%s)
status=0
# --copy-target reuses the warm target/ (dependencies are not rebuilt in the copy);
# --jobs 1 because a build already uses both cores of the reference machine.
# RUST_BACKTRACE=0: a failing property test prints one backtrace per shrinking step.
PITBOSS_TEST_DEADLINE_SECS=30 RUST_BACKTRACE=0 cargo mutants "${select[@]}" \
  --timeout "$timeout" --build-timeout 900 --copy-target=true --jobs 1 --no-shuffle \
  --output "$out" "${extra[@]}" -- "${tests[@]}" || status=$?
elapsed=$(( $(date +%s) - start ))
count() { if [ -f "$out/mutants.out/$1.txt" ]; then grep -c . "$out/mutants.out/$1.txt" || true; else echo 0; fi; }
echo "mutants.sh: shard $shard of $scope: caught $(count caught), missed $(count missed)," \
  "unviable $(count unviable), timeouts $(count timeout); wall time $((elapsed / 60))m$((elapsed % 60))s" >&2
exit "$status"
