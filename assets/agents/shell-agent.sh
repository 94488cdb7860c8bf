#!/bin/sh
# A minimal pitboss worker in POSIX sh.
#
# Protocol (see the README): the task arrives as one JSON object on stdin; anything
# printed is log output except the LAST JSON value on stdout, which is the result.
# Exit 0 = success. To fail with a message, print {"status":"failed","error":"..."}
# (on stdout or stderr) or exit non-zero. Lines {"pitboss":"progress",...} update
# the live view. pitboss also sets PITBOSS_TASK_ID, PITBOSS_ATTEMPT, PITBOSS_RUN_ID.
task=$(cat)                                   # read the whole task JSON
echo "shell-agent: got task $PITBOSS_TASK_ID (attempt $PITBOSS_ATTEMPT)" >&2
echo '{"pitboss":"progress","pct":50,"msg":"counting"}'
bytes=$(printf '%s' "$task" | wc -c | tr -d ' ')
echo "{\"task\":\"$PITBOSS_TASK_ID\",\"task_json_bytes\":$bytes}"
