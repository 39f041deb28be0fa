#!/usr/bin/env bash
# Runs one scheduled function once against the local stack, with its clock at NOW when
# given, and prints its result (JSON) on stdout; logs go to stderr.
#   tests/stack/run_function.sh FN [NOW]     e.g. password-reminder 2027-11-20T06:00:00Z
# `make run FN=… NOW=…` calls it. Each scheduled function has a local runner binary.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

FN=${1:-}
NOW=${2:-${NOW:-}}
case "$FN" in
  password-reminder) PKG=password-reminder; BIN=password-reminder-run ;;
  status-sync) PKG=status-sync; BIN=status-sync-run ;;
  "") echo "usage: $0 FN [NOW]   (FN: password-reminder, status-sync)" >&2; exit 2 ;;
  *) echo "error: no scheduled function named '$FN' (known: password-reminder, status-sync)" >&2; exit 2 ;;
esac

# The stack's variables (table, moto endpoint, sender, …), unless already set.
eval "$("$ROOT/tests/stack/stack.sh" env)"
if ! (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null; then
  echo "error: the local stack is not running (nothing on 127.0.0.1:$MOTO_PORT): make up" >&2
  exit 1
fi

(cd "$ROOT" && cargo build --quiet -p "$PKG" --bin "$BIN" >&2)
if [ -n "$NOW" ]; then
  exec "$ROOT/target/debug/$BIN" --now "$NOW"
else
  exec "$ROOT/target/debug/$BIN"
fi
