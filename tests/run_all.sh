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

step "SAM template (cfn-lint, SAM transform, IAM, routes) and OpenAPI spec"
target/debug/local-api routes >"$LOGS/local-api-routes.json"
.venv/bin/python tests/infra/check_template.py --routes-file "$LOGS/local-api-routes.json"
.venv/bin/python tests/infra/check_routes.py --local-api-routes "$LOGS/local-api-routes.json"
.venv/bin/python -m unittest discover -s tests/infra -p 'test_*.py'

step "schemathesis against the local API (bounded, fixed seed)"
# Not tee'd into the logs: on a failure it prints request bodies, test passwords included.
tests/infra/schemathesis.sh

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

printf '\nmake test: all passed in %ss\n' "$(( $(date +%s) - started_at ))"
