#!/usr/bin/env python3
"""A persistent pitboss worker (pool `mode = "persistent"`): one long-lived process
that reads one task JSON per line on stdin and answers one JSON line per task on
stdout. Expensive setup (loading a model, opening a session) happens once.

Put the task's "id" in the reply so pitboss can match it even with several tasks in
flight (`per_worker`); fail a task with {"id": ..., "status": "failed", "error": ...}.
Exit when stdin closes: pitboss closes it to recycle the process.
"""
import json
import os
import sys

handled = 0
for line in sys.stdin:
    task = json.loads(line)
    handled += 1
    text = task.get("payload", {}).get("text", "")
    if not text:
        reply = {"id": task["id"], "status": "failed", "error": "payload.text is empty"}
    else:
        reply = {"id": task["id"], "words": len(text.split()), "pid": os.getpid(), "handled": handled}
    print(json.dumps(reply), flush=True)
