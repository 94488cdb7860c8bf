#!/usr/bin/env bash
# The long crash-torture variant, for manual runs: 1,000 tasks, the manager SIGKILLed
# 20 times at random moments and resumed each time (see tests/crash_torture.rs).
#   scripts/crash-torture.sh                 # 1000 tasks, 20 kills
#   TASKS=5000 KILLS=50 scripts/crash-torture.sh
#   PITBOSS_TORTURE_SEED=N scripts/crash-torture.sh   # replay a failing run's kill points
set -euo pipefail
cd "$(dirname "$0")/.."
PITBOSS_TORTURE_TASKS=${TASKS:-1000} PITBOSS_TORTURE_KILLS=${KILLS:-20} \
  cargo test --test crash_torture -- --nocapture 2>&1 | grep -E '^crash torture|^test |test result'
