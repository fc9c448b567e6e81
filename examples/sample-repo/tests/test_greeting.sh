#!/bin/sh
# The sample project's acceptance test: the greeting must be spelled right.
out=$(sh src/greeting.sh)
if [ "$out" != "Hello, world" ]; then
  echo "FAIL: expected 'Hello, world', got '$out'" >&2
  exit 1
fi
echo "ok: greeting is '$out'"
