#!/usr/bin/env bash
# The local stack: moto server (AWS), the Chorus Pro sandbox emulator and the local API,
# in the background, idempotently. `stack.sh up | down | status | env`.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# `make test` runs a stack of its own (its own state folder and ports), fresh each time,
# beside the one `make up` may have started.
STATE="${STACK_STATE_DIR:-$ROOT/.local}"
mkdir -p "$STATE/logs"

export MOTO_PORT=${MOTO_PORT:-5000}
export CHORUS_SANDBOX_PORT=${CHORUS_SANDBOX_PORT:-8480}
export LOCAL_API_PORT=${LOCAL_API_PORT:-3000}
export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:$MOTO_PORT}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export AWS_REGION=${AWS_REGION:-eu-west-3}
export AWS_DEFAULT_REGION=$AWS_REGION
export TABLE_NAME=${TABLE_NAME:-choruspro-gateway-local}
export DOCUMENTS_BUCKET=${DOCUMENTS_BUCKET:-choruspro-gateway-local-documents}
export SECRET_PREFIX=${SECRET_PREFIX:-choruspro-gateway-local}
export PISTE_CREDENTIALS_SECRET=${PISTE_CREDENTIALS_SECRET:-choruspro-gateway-local/piste-credentials}
export SENDER_EMAIL=${SENDER_EMAIL:-rappels@choruspro-gateway.local}
export EVENT_BUS_NAME=${EVENT_BUS_NAME:-choruspro-gateway-local}
export DEFAULT_ENVIRONMENT=${DEFAULT_ENVIRONMENT:-production}
export PASSWORD_LIFETIME_DAYS=${PASSWORD_LIFETIME_DAYS:-365}
export LOCAL_JWT_SECRET=${LOCAL_JWT_SECRET:-local-dev-secret}
# Given both, the functions talk to that Chorus Pro and no emulator is started.
if [ -n "${CHORUS_API_URL:-}" ] && [ -n "${PISTE_TOKEN_URL:-}" ]; then
  START_SANDBOX=0
else
  START_SANDBOX=1
  export CHORUS_API_URL=http://127.0.0.1:$CHORUS_SANDBOX_PORT/cpro
  export PISTE_TOKEN_URL=http://127.0.0.1:$CHORUS_SANDBOX_PORT/api/oauth/token
fi
export CHORUS_CONNECT_TIMEOUT_MS=${CHORUS_CONNECT_TIMEOUT_MS:-2000}
export CHORUS_TIMEOUT_MS=${CHORUS_TIMEOUT_MS:-5000}
export RUST_LOG=${RUST_LOG:-info}
# The emulator moves fluxes and invoices on by itself, like Chorus Pro (one step a second
# here); a lost deposit answer is searched for 20 s before it is deemed never received.
export CHORUS_SANDBOX_PROGRESS=${CHORUS_SANDBOX_PROGRESS:-1s}
export RECONCILE_GRACE_SECONDS=${RECONCILE_GRACE_SECONDS:-20}
export DEPOSIT_LEASE_SECONDS=${DEPOSIT_LEASE_SECONDS:-15}
# The late-payment rates of the payment clock (docs/payment-deadline.md); the 2027 entry is a test value.
export LATE_PAYMENT_RATES=${LATE_PAYMENT_RATES:-2025-07-01=10.15,2027-01-01=10.40}

BIN="$ROOT/target/debug"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

stop() {
  local name=$1
  if alive "$name"; then
    kill "$(cat "$STATE/$name.pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$name" || break; sleep 0.1; done
    alive "$name" && kill -9 "$(cat "$STATE/$name.pid")" 2>/dev/null || true
    echo "  $name stopped"
  fi
  rm -f "$STATE/$name.pid"
}

start() { # name port command…
  local name=$1 port=$2; shift 2
  # A process started before its binary was rebuilt is restarted: tests must run the code
  # just built.
  if alive "$name" && [ -f "$1" ] && [ "$1" -nt "$STATE/$name.pid" ]; then
    echo "  $name was built again: restarting it"
    stop "$name"
    for _ in $(seq 1 50); do answers "$port" || break; sleep 0.1; done
  fi
  if alive "$name" && answers "$port"; then
    echo "  $name already running on 127.0.0.1:$port"
    return
  fi
  if answers "$port"; then
    echo "error: port $port is taken by another process; set the matching *_PORT variable" >&2
    exit 1
  fi
  nohup "$@" >>"$STATE/logs/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
  for _ in $(seq 1 150); do
    if answers "$port"; then echo "  $name on 127.0.0.1:$port"; return; fi
    if ! alive "$name"; then
      echo "error: $name stopped at start; see $STATE/logs/$name.log:" >&2
      tail -n 20 "$STATE/logs/$name.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "error: $name did not answer on port $port in 30 s" >&2
  exit 1
}

case "${1:-}" in
  up)
    [ -x "$ROOT/.venv/bin/moto_server" ] || { echo "error: run 'make venv' first" >&2; exit 1; }
    [ -x "$BIN/local-api" ] || { echo "error: run 'make build' first" >&2; exit 1; }
    start moto "$MOTO_PORT" "$ROOT/.venv/bin/python" "$ROOT/tests/stack/moto_server.py" -H 127.0.0.1 -p "$MOTO_PORT"
    "$ROOT/.venv/bin/python" "$ROOT/tests/stack/init_aws.py"
    if [ "$START_SANDBOX" = 1 ]; then
      (cd "$ROOT" && start chorus-sandbox "$CHORUS_SANDBOX_PORT" "$BIN/chorus-sandbox")
    else
      echo "  Chorus Pro: $CHORUS_API_URL (no emulator started)"
    fi
    start local-api "$LOCAL_API_PORT" "$BIN/local-api"
    echo "local stack up:"
    echo "  API          http://127.0.0.1:$LOCAL_API_PORT"
    echo "  AWS (moto)   $AWS_ENDPOINT_URL"
    echo "  Chorus Pro   $CHORUS_API_URL"
    ;;
  down)
    stop local-api; stop chorus-sandbox; stop moto
    ;;
  env)
    # For tests and tools: the variables of this stack, as shell assignments.
    for v in MOTO_PORT CHORUS_SANDBOX_PORT LOCAL_API_PORT AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID \
             AWS_SECRET_ACCESS_KEY AWS_REGION TABLE_NAME SECRET_PREFIX PISTE_CREDENTIALS_SECRET \
             SENDER_EMAIL EVENT_BUS_NAME DEFAULT_ENVIRONMENT PASSWORD_LIFETIME_DAYS LOCAL_JWT_SECRET \
             CHORUS_API_URL PISTE_TOKEN_URL CHORUS_SANDBOX_PROGRESS RECONCILE_GRACE_SECONDS \
             DEPOSIT_LEASE_SECONDS LATE_PAYMENT_RATES DOCUMENTS_BUCKET; do
      echo "export $v=${!v}"
    done
    ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
