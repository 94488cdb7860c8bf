#!/usr/bin/env python3
"""A pitboss worker in Python: reads the task JSON on stdin, reports progress, and
prints its result as the last JSON line on stdout.

Results of the task's dependencies arrive in task["inputs"], keyed by task id.
Fail with {"status": "failed", "error": "..."} (or a non-zero exit): pitboss retries
with backoff and dead-letters the task once its attempts are spent.
"""
import json
import sys

task = json.load(sys.stdin)
payload = task.get("payload", {})
text = payload.get("text", "")
if not text:
    print(json.dumps({"status": "failed", "error": "payload.text is empty"}))
    sys.exit(0)

print(f"python-agent: {task['id']} attempt {task['attempt']}", file=sys.stderr)
print(json.dumps({"pitboss": "progress", "pct": 50, "msg": "counting words"}), flush=True)
words = len(text.split())
upstream = {dep: result for dep, result in task.get("inputs", {}).items()}
print(json.dumps({"words": words, "upstream": sorted(upstream)}))
