#!/usr/bin/env bash
# `make test`: builds, starts the local stack, runs every test against it, checks the SAM
# template offline, checks that no password reached a log, and stops what it started.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STACK=tests/stack/stack.sh
# A stack of its own, fresh: the developer's `make up` stack (and its data) is left alone,
# and every run starts from the same empty moto and seeded emulator, as in CI.
export STACK_STATE_DIR="$ROOT/.local/test"
export MOTO_PORT=${TEST_MOTO_PORT:-5010}
export CHORUS_SANDBOX_PORT=${TEST_CHORUS_SANDBOX_PORT:-8490}
export LOCAL_API_PORT=${TEST_LOCAL_API_PORT:-3010}
unset AWS_ENDPOINT_URL CHORUS_API_URL PISTE_TOKEN_URL
LOGS="$STACK_STATE_DIR/logs"
started_at=$(date +%s)
# The EN 16931 test writes its outcome here (run, or skipped where the validator is absent).
export EN16931_STATUS_FILE="$STACK_STATE_DIR/en16931-status.txt"
# The chaos suite (tests/tests/chaos.rs) writes its table here.
export CHAOS_REPORT_FILE="$STACK_STATE_DIR/chaos-report.md"
# Every answer the tests see is recorded here, then checked against infra/openapi.yaml.
export OPENAPI_ANSWERS_FILE="$STACK_STATE_DIR/openapi-answers.jsonl"
rm -f "$EN16931_STATUS_FILE" "$CHAOS_REPORT_FILE" "$OPENAPI_ANSWERS_FILE"
# Logs of this run only (the failure block reads them).
rm -rf "$LOGS"
mkdir -p "$LOGS"

current_step="start"
step() { current_step="$*"; printf '\n== %s\n' "$*"; }

# On any failure, a closing block still says where it stopped and what is known so far
# (the all-passed block is tests/summary.sh, at the end).
failure_summary() {
  printf '\n== summary\nmake test: FAILED during "%s"\n' "$current_step"
  if [ -f "$LOGS/cargo-test.log" ]; then
    awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "  Rust tests               %d passed, %d failed, %d ignored\n", p, f, i }' "$LOGS/cargo-test.log"
    grep -E '^test .* FAILED$' "$LOGS/cargo-test.log" | sed 's/^/    /' || true
  fi
  printf '  %s\n' "$(cat "$EN16931_STATUS_FILE" 2>/dev/null || echo 'EN 16931 official rules: not reported')"
  printf '  wall time                %s s\n' "$(( $(date +%s) - started_at ))"
}
cleanup() {
  local rc=$?
  "$STACK" down >/dev/null || true
  if [ "$rc" != 0 ]; then failure_summary; fi
  return "$rc"
}
trap cleanup EXIT

step "build (workspace, tests included)"
cargo build --workspace --all-targets

step "local stack (fresh, ports $MOTO_PORT $CHORUS_SANDBOX_PORT $LOCAL_API_PORT)"
"$STACK" down >/dev/null || true
"$STACK" up
eval "$("$STACK" env)"

step "cargo test (unit, handler and integration tests)"
cargo test --workspace --no-fail-fast 2>&1 | tee "$LOGS/cargo-test.log"
test "${PIPESTATUS[0]}" = 0

step "SAM template (cfn-lint, SAM transform, IAM, routes) and OpenAPI spec"
target/debug/local-api routes >"$LOGS/local-api-routes.json"
.venv/bin/python tests/infra/check_template.py --routes-file "$LOGS/local-api-routes.json"
.venv/bin/python tests/infra/check_routes.py --local-api-routes "$LOGS/local-api-routes.json"
.venv/bin/python tests/infra/check_answers.py "$OPENAPI_ANSWERS_FILE" | tee "$LOGS/openapi-answers.log"
test "${PIPESTATUS[0]}" = 0
.venv/bin/python -m unittest discover -s tests/infra -p 'test_*.py' 2>&1 | tee "$LOGS/python-tests.log"
test "${PIPESTATUS[0]}" = 0

step "schemathesis against the local API (bounded, fixed seed)"
# Not tee'd into the logs: on a failure it prints request bodies, test passwords included.
# Only its request count is kept, for the summary.
schemathesis_out=$(tests/infra/schemathesis.sh 2>&1) || { printf '%s\n' "$schemathesis_out"; exit 1; }
printf '%s\n' "$schemathesis_out"
schemathesis_requests=$(sed -nE 's/^ +all +([0-9]+)$/\1/p' <<<"$schemathesis_out" | tail -n 1)

step "no password in any log"
# Every password the tests use carries the marker NeverLogged; the emulator's seeded
# passwords and the PISTE client secret are searched for too. Logs of the local API, the
# emulator, moto, and the output of every test.
.venv/bin/python - "$LOGS" <<'PY'
import json, pathlib, sys
seed = json.load(open("tests/fixtures/chorus-sandbox-seed.json"))
needles = {"NeverLogged", "Renouvele-2027"}
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("password", "clientSecret") and isinstance(v, str):
                needles.add(v)
            walk(v)
    elif isinstance(o, list):
        for x in o:
            walk(x)
walk(seed)
found = []
files = [p for p in pathlib.Path(sys.argv[1]).glob("*.log")]
for path in files:
    text = path.read_text(errors="replace")
    for n in needles:
        if n in text:
            found.append(f"{path}: {n[:4]}…")
if found:
    print("FAILED: a password appears in:", *found, sep="\n  ")
    sys.exit(1)
print(f"  ok: none of {len(needles)} passwords/secrets in {len(files)} log files")
PY

step "summary"
tests/summary.sh "$LOGS" "$EN16931_STATUS_FILE" "$CHAOS_REPORT_FILE" "${schemathesis_requests:-?}" "$(( $(date +%s) - started_at ))"
