#!/bin/sh
# A pitboss [[notify]] hook: appends the notification (one JSON document, read from
# stdin) as one line to the file named by the first argument.
#
#   [[notify]]
#   on = ["dead_lettered", "run_finished"]
#   command = ["./hooks/append.sh", "notifications.jsonl"]
#
# A relative file name is relative to the directory pitboss was started in.
set -eu
if [ "$#" -ne 1 ]; then
    echo "usage: append.sh FILE (the notification JSON comes on stdin)" >&2
    exit 2
fi
# pitboss writes one line without a newline at the end; `cat` copies it whole, and
# the newline makes the file JSON lines. One write per document, appended, so hooks
# running at once do not interleave inside a line (documents up to PIPE_BUF).
doc=$(cat)
printf '%s\n' "$doc" >> "$1"
