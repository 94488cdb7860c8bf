#!/bin/sh
# A pitboss [[notify]] hook: a desktop notification for what happened.
#
#   [[notify]]
#   on = ["dead_lettered", "awaiting_approval", "run_finished"]
#   command = ["./hooks/desktop.sh"]
#
# Needs notify-send (libnotify) and a desktop session; without them it says so on
# stderr and exits 1, which pitboss writes to STATE_DIR/notify.log.
set -eu
doc=$(cat)
if ! command -v notify-send >/dev/null 2>&1; then
    echo "notify-send is not installed; no desktop notification was shown" >&2
    exit 1
fi
# Pull a few fields out without needing jq: the names are pitboss's own and the
# values are JSON strings; good enough for a title line. jq, when present, does it properly.
if command -v jq >/dev/null 2>&1; then
    on=$(printf '%s' "$doc" | jq -r '.on')
    task=$(printf '%s' "$doc" | jq -r '.task.id // "run"')
    why=$(printf '%s' "$doc" | jq -r '.task.why // ""')
else
    on=$(printf '%s' "$doc" | sed -n 's/^{"on":"\([^"]*\)".*/\1/p')
    task=$(printf '%s' "$doc" | sed -n 's/.*"task":{"id":"\([^"]*\)".*/\1/p')
    why=""
fi
urgency=normal
case "$on" in
    dead_lettered | breaker_opened | awaiting_approval) urgency=critical ;;
esac
# `--` so that a task id starting with a dash is never read as an option.
notify-send --urgency="$urgency" --app-name=pitboss -- "pitboss: $on ${task:-run}" "$why"
