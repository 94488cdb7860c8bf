#!/bin/sh
# A pitboss [[notify]] hook: POSTs the notification JSON to a webhook (Slack-style
# incoming webhooks, ntfy, your own endpoint).
#
#   [[notify]]
#   on = ["dead_lettered", "breaker_opened", "run_finished"]
#   command = ["./hooks/webhook.sh"]
#   timeout = "15s"
#
# The URL comes from PITBOSS_WEBHOOK_URL in pitboss's environment (hooks get
# pitboss's environment as it is), never from the workflow file, so a secret URL is
# not written into the run's event log with the workflow.
set -eu
url=${PITBOSS_WEBHOOK_URL:-}
if [ -z "$url" ]; then
    echo "PITBOSS_WEBHOOK_URL is not set; nothing was sent" >&2
    exit 1
fi
if ! command -v curl >/dev/null 2>&1; then
    echo "curl is not installed; nothing was sent" >&2
    exit 1
fi
# --fail: an HTTP error is a failure pitboss logs; short timeouts, so a dead endpoint
# ends this hook well before pitboss's own timeout kills it. The body is stdin as is.
curl --silent --show-error --fail \
    --connect-timeout 5 --max-time 10 \
    --header 'Content-Type: application/json' \
    --data-binary @- \
    -- "$url" >/dev/null
