#!/usr/bin/env bash
# `make test`: builds, starts the local stack, runs every test against it, checks the SAM
# template offline, checks that no password reached a log, and stops what it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STACK=tests/stack/stack.sh
LOGS=.local/logs
mkdir -p "$LOGS"
started_at=$(date +%s)

step() { printf '\n== %s\n' "$*"; }

step "build (workspace, tests included)"
cargo build --workspace --all-targets

# A stack already running (make up) is reused and left running; one started here is stopped.
was_up=0
if [ -f .local/local-api.pid ] && kill -0 "$(cat .local/local-api.pid)" 2>/dev/null; then was_up=1; fi
cleanup() { if [ "$was_up" = 0 ]; then "$STACK" down >/dev/null || true; fi; }
trap cleanup EXIT

step "local stack"
"$STACK" up
eval "$("$STACK" env)"

step "cargo test (unit, handler and integration tests)"
cargo test --workspace --no-fail-fast 2>&1 | tee "$LOGS/cargo-test.log"
test "${PIPESTATUS[0]}" = 0

step "SAM template (cfn-lint, SAM transform, IAM, routes)"
target/debug/local-api routes >"$LOGS/local-api-routes.json"
.venv/bin/python tests/infra/check_template.py --routes-file "$LOGS/local-api-routes.json"

step "no password in any log"
# Every password the tests use carries this marker; none may reach a log or a test output.
if grep -rl "NeverLogged" "$LOGS" .local/logs 2>/dev/null | sort -u | grep .; then
  echo "FAILED: a test password appears in the files above" >&2
  exit 1
fi
echo "  ok: no test password in $(ls "$LOGS" | wc -l) log files"

printf '\nmake test: all passed in %ss\n' "$(( $(date +%s) - started_at ))"
