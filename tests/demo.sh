#!/usr/bin/env bash
# `make demo`: walks a whole scenario through the local API and prints each step.
# Expects the local stack (make up). Uses the Chorus Pro sandbox emulator's seeded
# supplier "BATIMENTS DU RHONE SAS" (tests/fixtures/chorus-sandbox-seed.json).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
eval "$(tests/stack/stack.sh env)"
API="http://127.0.0.1:$LOCAL_API_PORT"
SANDBOX="http://127.0.0.1:$CHORUS_SANDBOX_PORT"

SIRET=81234567600017
LOGIN=TECH_1_batiments-rhone@cpro.fr
PASSWORD='Rhone-Tech-2026!'
TOKEN=$(target/debug/local-api token --sub demo-user "$SIRET")

bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }
show() { # method path [json-body]
  local method=$1 path=$2 body=${3:-}
  printf '\033[36m%s %s\033[0m\n' "$method" "$path"
  local args=(-sS -X "$method" -H "Authorization: Bearer $TOKEN" -w '\n%{http_code}')
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data "$body")
  local out; out=$(curl "${args[@]}" "$API$path")
  local code=${out##*$'\n'}
  local text=${out%$'\n'*}
  echo "→ HTTP $code"
  [ -n "$text" ] && printf '%s' "$text" | python3 -m json.tool --no-ensure-ascii 2>/dev/null || true
}
settings() { # email password confirmation
  printf '{"referent_email":"%s","technical_login":"%s","password":"%s","password_confirmation":"%s"}' "$1" "$LOGIN" "$2" "$3"
}

# A fresh start for the demo company (the emulator keeps its seed; moto keeps state).
curl -sS -X POST "$SANDBOX/_admin/reset" >/dev/null || true
curl -sS -X DELETE -H "Authorization: Bearer $TOKEN" "$API/v1/companies/$SIRET/chorus-account" >/dev/null

bold "1. « Mon compte » — a typo in the password confirmation is refused (nothing saved)"
show PUT "/v1/companies/$SIRET/chorus-account" "$(settings compta@batiments-rhone.fr "$PASSWORD" 'Rhone-Tech-2026')"

bold "2. A wrong password: Chorus Pro refuses the technical account (nothing saved)"
show PUT "/v1/companies/$SIRET/chorus-account" "$(settings compta@batiments-rhone.fr 'Mauvais-Mot-De-Passe' 'Mauvais-Mot-De-Passe')"

bold "3. The right password: tested against Chorus Pro, then saved (password in Secrets Manager only)"
show PUT "/v1/companies/$SIRET/chorus-account" "$(settings compta@batiments-rhone.fr "$PASSWORD" "$PASSWORD")"

bold "4. Read back: the password never comes back"
show GET "/v1/companies/$SIRET/chorus-account"

bold "5. An update that keeps the stored password (no password fields)"
show PUT "/v1/companies/$SIRET/chorus-account" "{\"referent_email\":\"direction@batiments-rhone.fr\",\"technical_login\":\"$LOGIN\"}"

bold "6. A refused input: a SIRET with a wrong check key, and every fault of the body at once"
TOKEN_BAD=$(target/debug/local-api token --sub demo-user 81234567600018)
TOKEN_SAVE=$TOKEN; TOKEN=$TOKEN_BAD
show PUT "/v1/companies/81234567600018/chorus-account" '{"referent_email":"compta@","technical_login":"TECH_1","password":"a","password_confirmation":"b","colour":"blue"}'
TOKEN=$TOKEN_SAVE

bold "7. Another company's settings: forbidden, without saying whether it exists"
show GET "/v1/companies/79876543400013/chorus-account"

bold "8. Test the stored credentials now"
show POST "/v1/companies/$SIRET/chorus-account/verify"

bold "Where things are"
echo "  the secret:   $SECRET_PREFIX/companies/$SIRET/technical-account (Secrets Manager, moto)"
echo "  the settings: table $TABLE_NAME, PK=COMPANY#$SIRET SK=ACCOUNT (DynamoDB, moto)"
echo "  local API logs: .local/logs/local-api.log"
