#!/usr/bin/env bash
# Schemathesis against the local API, bounded: every operation of infra/openapi.yaml that the
# running local API serves, a fixed number of examples per operation, a fixed seed, a hard
# time limit.
#
#   tests/infra/schemathesis.sh            (from the repository root, the local stack up)
#
# Checks: no 5xx (not_a_server_error); every answer matches the spec (status_code_conformance,
# content_type_conformance, response_schema_conformance); and no secret ever comes back
# (no_secret_in_response, tests/infra/schemathesis_hooks.py).
#
# It installs nothing: schemathesis is pinned in tests/requirements.txt (`make venv`).
# Overrides: ST_MAX_EXAMPLES (default 40), ST_SEED (default 20261127), ST_TIMEOUT (seconds,
# default 300: a hard stop; the run is bounded by its examples, not by time),
# ST_PHASES (default examples,coverage,fuzzing).
# Exit code: 0 all checks passed, 1 a check failed, 2 the environment is not ready.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=.venv/bin/python
ST=.venv/bin/schemathesis
LOCAL_API=target/debug/local-api
OUT=.local/schemathesis
mkdir -p "$OUT"

[ -x "$ST" ] || { echo "error: $ST missing: run 'make venv'" >&2; exit 2; }
[ -x "$LOCAL_API" ] || { echo "error: $LOCAL_API missing: run 'make build'" >&2; exit 2; }
eval "$(tests/stack/stack.sh env)"
BASE_URL="http://127.0.0.1:${LOCAL_API_PORT}"

MAX_EXAMPLES=${ST_MAX_EXAMPLES:-40}
SEED=${ST_SEED:-20261127}
TIMEOUT=${ST_TIMEOUT:-300}
PHASES=${ST_PHASES:-examples,coverage,fuzzing}

# The companies of this run (the token's):
# - SIRET_A, the emulator's qualification-style supplier (its SIRET fails Luhn, so its
#   account is a `sandbox` one), whose technical account Chorus Pro accepts: saves with
#   `verify`, the verify route and the buyer checks of markets get real answers;
# - SIRET_B, Luhn-valid and unknown to Chorus Pro, with an unverified account and this run's
#   own password.
# SIRET_FOREIGN is valid but not in the token: always 403. No other test uses these through
# the API; the accounts are deleted at the end (markets and situations cannot be).
SIRET_A=12345678200099
SIRET_B=95123456600010
SIRET_FOREIGN=95123456600028
LOGIN_A=DEV_FOURNISSEUR_QUALIF@cpp2017.fr
PASSWORD_A=$("$PY" -c '
import json, sys
seed = json.load(open("tests/fixtures/chorus-sandbox-seed.json"))
print(next(a["password"] for a in seed["technicalAccounts"] if a["login"] == sys.argv[1]))' "$LOGIN_A")
# The passwords of this run carry NeverLogged: tests/run_all.sh fails if one reaches a log
# (the emulator's seeded passwords are searched for too).
PASSWORD_B="NeverLogged-Schemathesis-7q2Z"

# The local API may be restarting after a rebuild: wait for it a little.
ready=0
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$LOCAL_API_PORT") 2>/dev/null; then ready=1; break; fi
  sleep 0.2
done
[ "$ready" = 1 ] || { echo "error: no local API on $BASE_URL: run 'make up'" >&2; exit 2; }

TOKEN=$("$LOCAL_API" token --sub schemathesis --ttl 3600 "$SIRET_A" "$SIRET_B")
"$LOCAL_API" routes >"$OUT/local-api-routes.json"

# The spec as tested ($OUT/openapi.yaml):
# - only the operations the running local API serves (tests/infra/check_routes.py is what
#   fails on a missing route). Asked of the API itself: without a token, a route it has
#   answers 401, one it lacks 404 `not_found` (the process may be older than the binary);
# - examples that reach the handlers: path examples are SIRET_A, its market and situation 1
#   (SIRET_B for DELETE, so that SIRET_A keeps its account for the operations after it;
#   situation 2 for the transmission, with an invoice that passes the checks); the
#   account's examples are SIRET_A's real credentials, and a mismatch.
"$PY" - "$OUT" "$BASE_URL" "$SIRET_A" "$SIRET_B" "$LOGIN_A" "$PASSWORD_A" "$PASSWORD_B" <<'PY'
import copy, datetime, json, sys, urllib.error, urllib.request, yaml
out, base, siret_a, siret_b, login_a, password_a, password_b = sys.argv[1:8]
METHODS = ("get", "put", "post", "delete", "patch")
spec = yaml.safe_load(open("infra/openapi.yaml", encoding="utf-8"))
binary_routes = set(json.load(open(f"{out}/local-api-routes.json")))

def served_by_running_api(method, path):
    url = base + path.replace("{siret}", siret_a).replace("{market_ref}", "st-probe").replace("{number}", "1")
    request = urllib.request.Request(url, method=method, data=b"" if method in ("PUT", "POST") else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    if status == 401:
        return True
    if status == 404 and json.loads(body or b"{}").get("code") == "not_found":
        return False
    sys.exit(f"error: probing {method} {path} without a token answered {status}, not 401 or 404 not_found")

kept, skipped = [], []
for path in list(spec["paths"]):
    item = spec["paths"][path]
    for method in [m for m in METHODS if m in item]:
        route = f"{method.upper()} {path}"
        if served_by_running_api(method.upper(), path):
            kept.append(route)
        else:
            skipped.append(route)
            del item[method]
    if not any(m in item for m in METHODS):
        del spec["paths"][path]
json.dump(kept, open(f"{out}/served-routes.json", "w"), indent=1)

params = spec["components"]["parameters"]
params["Siret"]["example"] = siret_a
params["MarketRef"]["example"] = "st-market-1"
params["SituationNumber"]["example"] = "1"
account = spec["paths"].get("/v1/companies/{siret}/chorus-account", {})
if "delete" in account:
    siret_b_param = copy.deepcopy(params["Siret"])
    siret_b_param["example"] = siret_b
    account["delete"]["parameters"] = [siret_b_param]
if "put" in account:
    common = {"referent_email": "compta@schemathesis.test", "technical_login": login_a, "environment": "sandbox"}
    account["put"]["requestBody"]["content"]["application/json"]["examples"] = {
        "first_save": {"value": {**common, "password": password_a, "password_confirmation": password_a, "verify": True}},
        "keep_password": {"value": {**common, "verify": True}},
        "mismatch": {"value": {**common, "password": password_b, "password_confirmation": password_b + "x"}},
    }
transmission = spec["paths"].get("/v1/companies/{siret}/markets/{market_ref}/situations/{number}/transmission", {})
if "post" in transmission:
    # Situation 2 is the one transmitted: deposited by the first run, answered as it stands after.
    number = copy.deepcopy(params["SituationNumber"])
    number["example"] = "2"
    op = transmission["post"]
    op["parameters"] = [number] + op.get("parameters", [])
    example = op["requestBody"]["content"]["application/json"]["examples"]["monthly_statement"]["value"]
    siren = int(siret_a[:9])
    today = datetime.date.today()
    example.update(issue_date=today.isoformat(), due_date=(today + datetime.timedelta(days=30)).isoformat())
    example["seller"].update(name="FOURNISSEUR QUALIF", vat_id=f"FR{(12 + 3 * (siren % 97)) % 97:02d}{siren:09d}")
    example["buyer"]["name"] = "COMMUNE DE VILLEURBANNE TEST"
yaml.safe_dump(spec, open(f"{out}/openapi.yaml", "w", encoding="utf-8"), allow_unicode=True, sort_keys=False)

print(f"operations tested: {len(kept)}; not served by the running local API: {len(skipped)}")
for r in skipped:
    print(f"  skipped  {r}")
stale = sorted(binary_routes - set(kept))
if stale:
    print("note: target/debug/local-api is newer than the running local API and also serves:")
    for r in stale:
        print(f"  {r}")
    print("  restart the local API to test them (tests/stack/stack.sh down && tests/stack/stack.sh up)")
PY

served() { grep -q "\"$1\"" "$OUT/served-routes.json"; }
call() { # METHOD PATH [BODY] -> prints the status
  curl -sS -o /dev/null -w '%{http_code}' -X "$1" "$BASE_URL$2" -H "Authorization: Bearer $TOKEN" \
    ${3:+-H 'content-type: application/json' --data "$3"}
}
expect() { # what, status, accepted statuses…
  local what=$1 got=$2; shift 2
  for ok in "$@"; do [ "$got" = "$ok" ] && return 0; done
  echo "error: $what answered $got (expected $*)" >&2
  exit 2
}

# What the run starts from: SIRET_A with its verified account, a market with a checked buyer
# (a buyer that requires nothing) and its first situation; SIRET_B with an unverified account.
account_a="{\"referent_email\":\"compta@schemathesis.test\",\"technical_login\":\"$LOGIN_A\",\"password\":\"$PASSWORD_A\",\"password_confirmation\":\"$PASSWORD_A\",\"environment\":\"sandbox\",\"verify\":true}"
account_b="{\"referent_email\":\"compta@schemathesis.test\",\"technical_login\":\"TECH_st@cpp2017.fr\",\"password\":\"$PASSWORD_B\",\"password_confirmation\":\"$PASSWORD_B\",\"verify\":false}"
expect "seeding the account of $SIRET_A" "$(call PUT "/v1/companies/$SIRET_A/chorus-account" "$account_a")" 200 201
expect "seeding the account of $SIRET_B" "$(call PUT "/v1/companies/$SIRET_B/chorus-account" "$account_b")" 200 201
market_refs=""; situation_numbers=""
if served "PUT /v1/companies/{siret}/markets/{market_ref}"; then
  expect "seeding market st-market-1" "$(call PUT "/v1/companies/$SIRET_A/markets/st-market-1" \
    '{"market_number":"ST-2026-001","buyer_siret":"21690123100011","framework":"A1","label":"Schemathesis"}')" 200 201
  market_refs="st-market-1"
  if served "PUT /v1/companies/{siret}/markets/{market_ref}/situations/{number}"; then
    # 409: transmitted by an earlier run (its identifiers are frozen); it still exists.
    for n in 1 2; do
      expect "seeding situation $n" "$(call PUT "/v1/companies/$SIRET_A/markets/st-market-1/situations/$n" \
        "{\"invoice_number\":\"ST-SIT-000$n\",\"period\":\"2026-11\"}")" 200 201 409
    done
    # A situation of this run, not transmitted yet: transmission bodies are validated until
    # one of them is deposited (after that, the answer is the situation as it stands).
    run=$(date +%s)
    run_number=$(( 3 + run % 997 ))
    expect "seeding situation $run_number" "$(call PUT "/v1/companies/$SIRET_A/markets/st-market-1/situations/$run_number" \
      "{\"invoice_number\":\"ST-R-$run\"}")" 200 201 409
    situation_numbers="1 2 $run_number"
  fi
fi

export SCHEMATHESIS_HOOKS="$ROOT/tests/infra/schemathesis_hooks.py"
# Hypothesis keeps caches (unicode tables, constants) in .hypothesis of the current folder.
export HYPOTHESIS_STORAGE_DIRECTORY="$ROOT/$OUT/hypothesis"
export ST_TOKEN_SIRETS="$SIRET_A $SIRET_B" ST_FOREIGN_SIRET="$SIRET_FOREIGN"
export ST_MARKET_REFS="$market_refs" ST_SITUATION_NUMBERS="$situation_numbers"

# Schemathesis' own cache (crash files for `st replay`) goes under .local, not the work tree.
printf '[cache]\ndirectory = "%s"\n' "$ROOT/$OUT/cache" >"$OUT/schemathesis.toml"

# One worker: Python 3.11's ast.parse is not thread-safe ("AST constructor recursion depth
# mismatch" inside hypothesis with two), and one is fast enough.
cmd=(timeout --signal=INT --kill-after=20 "$TIMEOUT"
  "$ST" --config-file "$OUT/schemathesis.toml" run "$OUT/openapi.yaml"
  --url "$BASE_URL"
  --header "Authorization: Bearer $TOKEN"
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,no_secret_in_response
  --phases "$PHASES"
  --max-examples "$MAX_EXAMPLES"
  --seed "$SEED"
  --workers 1
  --request-timeout 30
  --generation-database none
  --suppress-health-check too_slow,filter_too_much
  --output-truncate false
  --report junit,ndjson --report-junit-path "$OUT/junit.xml" --report-ndjson-path "$OUT/events.ndjson"
  --no-color)
echo "schemathesis $("$ST" --version | awk '{print $NF}'): ${PHASES}, ${MAX_EXAMPLES} examples per operation, seed ${SEED}, hard stop after ${TIMEOUT}s"
echo "token SIRETs $SIRET_A $SIRET_B, foreign $SIRET_FOREIGN"
started=$(date +%s)
set +e
"${cmd[@]}" >"$OUT/run.log" 2>&1
rc=$?
set -e
elapsed=$(( $(date +%s) - started ))

# Leave no account behind (best effort): the next run, or another test, starts clean.
for s in "$SIRET_A" "$SIRET_B"; do call DELETE "/v1/companies/$s/chorus-account" >/dev/null || true; done

# The end of schemathesis' own report (failures, then its summary), and ours.
if [ "$rc" != 0 ]; then
  { sed -n '/= FAILURES =\|= ERRORS =/,$p' "$OUT/run.log" | head -n 250; } || true
else
  sed -n '/= SUMMARY =/,$p' "$OUT/run.log"
fi
"$PY" - "$OUT/events.ndjson" <<'PY' || true
# Per operation: requests sent, answers by status, and how many times each check ran.
import collections, json, pathlib, sys
path = pathlib.Path(sys.argv[1])
if not path.exists():
    sys.exit(0)
statuses = collections.defaultdict(collections.Counter)
checks = collections.Counter()
for line in path.read_text().splitlines():
    try:
        event = json.loads(line)
    except ValueError:
        continue
    recorder = event.get("ScenarioFinished", {}).get("recorder")
    if not recorder:
        continue
    label = recorder.get("label", "?")
    for interaction in recorder.get("interactions", {}).values():
        response = interaction.get("response") or {}
        statuses[label][response.get("status_code", "none")] += 1
    for results in recorder.get("checks", {}).values():
        for result in results:
            checks[(result.get("name"), result.get("status"))] += 1
if not statuses:
    sys.exit(0)
width = max(map(len, statuses))
print("requests by operation and status:")
for label in sorted(statuses, key=lambda l: (l.split(" ", 1)[1], l)):
    counts = statuses[label]
    print(f"  {label:{width}}  {sum(counts.values()):4}  " + " ".join(f"{k}:{v}" for k, v in sorted(counts.items(), key=str)))
total = sum(sum(c.values()) for c in statuses.values())
print(f"  {'all':{width}}  {total:4}")
print("checks run: " + ", ".join(f"{n} {st} {c}" for (n, st), c in sorted(checks.items())))
PY
if [ "$rc" = 0 ]; then
  echo "schemathesis: PASSED in ${elapsed}s (log: $OUT/run.log)"
else
  if [ "$elapsed" -ge "$TIMEOUT" ]; then echo "schemathesis: stopped by the ${TIMEOUT}s limit"; fi
  echo "schemathesis: FAILED (exit $rc) in ${elapsed}s; full log: $OUT/run.log, JUnit: $OUT/junit.xml"
  exit 1
fi
