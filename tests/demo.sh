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

bold "9. A works market (A4, monthly statements) — checked against what the buyer requires in Chorus Pro"
show PUT "/v1/companies/$SIRET/markets/gymnase-2026" '{"market_number":"2026-TRV-014","buyer_siret":"21380456000018","buyer_service_code":"DIRINFRA","framework":"A4","project_manager":{"siret":"79876543400013"},"label":"Réhabilitation du gymnase"}'

bold "10. A works market without the service code the buyer requires: refused, with what to fix"
show PUT "/v1/companies/$SIRET/markets/gymnase-bis" '{"market_number":"2026-TRV-015","buyer_siret":"21380456000018","framework":"A4","project_manager":{"siret":"79876543400013"}}'

NUMBER="SIT-014-03-$(date +%H%M%S)"
bold "11. Its third monthly situation, with its invoice number ($NUMBER)"
show PUT "/v1/companies/$SIRET/markets/gymnase-2026/situations/3" "{\"invoice_number\":\"$NUMBER\",\"period\":\"2026-11\"}"

PDF=$(printf '%%PDF-1.4\n%% situation 3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%%%EOF\n' | base64 | tr -d '\n')
BODY=$(cat <<JSON
{"issue_date":"$(date -u +%Y-%m-%d)","due_date":"$(date -u -d '+30 days' +%Y-%m-%d)","currency":"EUR",
 "seller":{"name":"BATIMENTS DU RHONE SAS","vat_id":"FR19812345676","address":{"line1":"1 rue des Artisans","city":"Lyon","postal_code":"69001","country":"FR"},"iban":"FR7630006000011234567890189","bic":"AGRIFRPP"},
 "buyer":{"name":"DEPARTEMENT DE L'ISERE TEST","address":{"line1":"7 rue Fantin-Latour","city":"Grenoble","postal_code":"38000","country":"FR"}},
 "lines":[{"id":"1","description":"Lot 2 gros œuvre, avancement novembre","quantity":"1","unit":"C62","unit_price":"12500.00","vat_category":"S","vat_rate":"20.00"},
          {"id":"2","description":"Lot 3 charpente (sous-traitant, autoliquidation)","quantity":"1","unit":"C62","unit_price":"3000.00","vat_category":"AE","vat_rate":"0.00"}],
 "allowances_charges":[{"charge":false,"amount":"625.00","reason":"Retenue de garantie 5 %","vat_category":"S","vat_rate":"20.00"}],
 "prepaid_amount":"0.00","vat_exemption_reason":"Autoliquidation (article 283-2 nonies du CGI)","note":"Situation n°3",
 "document":{"filename":"situation-03.pdf","content_base64":"$PDF"}}
JSON
)
bold "12. Transmit it: EN 16931 UBL built and checked, deposited once in Chorus Pro"
show POST "/v1/companies/$SIRET/markets/gymnase-2026/situations/3/transmission" "$BODY"

bold "13. The same request again (a client retry): the same answer, no second deposit"
show POST "/v1/companies/$SIRET/markets/gymnase-2026/situations/3/transmission" "$BODY"

bold "14. Follow it to payment: the scheduled follow-up (status-sync), run a few times"
for minutes in 5 20 60 180; do
  sleep 2
  NOW=$(date -u -d "+$minutes minutes" +%Y-%m-%dT%H:%M:%SZ)
  echo "  status-sync at $NOW:"
  tests/stack/run_function.sh status-sync "$NOW" 2>/dev/null \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); [print("   ", a["market_ref"], a["number"], a["from"], "→", a["to"], a["note"]) for a in r["actions"]]'
done
show GET "/v1/companies/$SIRET/markets/gymnase-2026/situations/3"
echo "  deposits of $NUMBER in the emulator: $(curl -s "$SANDBOX/_admin/deposits" | python3 -c "import json,sys; print(sum(1 for d in json.load(sys.stdin)['deposits'] if d.get('numeroFacture')=='$NUMBER'))")"

bold "15. The password renewal reminder the referent receives 30 days before expiry"
EXPIRES=$(curl -sS -H "Authorization: Bearer $TOKEN" "$API/v1/companies/$SIRET/chorus-account" | python3 -c 'import json,sys; print(json.load(sys.stdin)["password_expires_at"])')
NOW=$(date -u -d "${EXPIRES} - 30 days + 1 hour" +%Y-%m-%dT%H:%M:%SZ)
echo "  password-reminder at $NOW:"
tests/stack/run_function.sh password-reminder "$NOW" 2>/dev/null \
  | python3 -c 'import json,sys; r=json.load(sys.stdin); print("   ", {k: v for k, v in r.items() if k in ("sent", "skipped", "failed")})'
curl -sS "$AWS_ENDPOINT_URL/moto-api/data.json" | python3 -c '
import html, json, re, sys
messages = [m for m in json.load(sys.stdin).get("ses", {}).get("Message", []) if "direction@batiments-rhone.fr" in json.dumps(m.get("destinations"))]
if not messages:
    sys.exit("    (no message found)")
m = messages[-1]
print("    From:   ", m["source"])
print("    To:     ", ", ".join(m["destinations"]["ToAddresses"]))
print("    Subject:", m["subject"])
text = re.sub(r"<(br|/p|/li|/h[1-6]|/tr)[^>]*>", "\n", m["body"])
text = html.unescape(re.sub(r"<[^>]+>", "", text))
for line in [l.strip() for l in text.splitlines() if l.strip()]:
    print("    |", line)
'

NUMBER4="SIT-014-04-$(date +%H%M%S)"
bold "16. A situation the buyer does not pay: made available 45 days ago, 30-day deadline, found overdue"
show PUT "/v1/companies/$SIRET/markets/gymnase-2026/situations/4" "{\"invoice_number\":\"$NUMBER4\",\"period\":\"2026-12\"}"
# The emulator plays Chorus Pro's own dates: available 45 days ago, then nothing (unpaid).
curl -sS -X POST "$SANDBOX/_admin/invoices/script" -H 'Content-Type: application/json' \
  -d "{\"numeroFacture\":\"$NUMBER4\",\"steps\":[{\"statut\":\"MISE_A_DISPOSITION\",\"datePassage\":\"$(date -u -d '-45 days' +%Y-%m-%dT%H:%M:%SZ)\"}]}"
curl -sS -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data "${BODY//situation-03.pdf/situation-04.pdf}" "$API/v1/companies/$SIRET/markets/gymnase-2026/situations/4/transmission"
for minutes in 5 20 60 180; do
  sleep 2
  NOW=$(date -u -d "+$minutes minutes" +%Y-%m-%dT%H:%M:%SZ)
  tests/stack/run_function.sh status-sync "$NOW" 2>/dev/null \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); o=r["overdue"]; print("    status-sync: followed", len(r["actions"]), "· overdue marked", o["marked"], "· e-mailed", o["mailed"])'
done
bold "17. The company-wide list: the situations overdue, with their interest (and the CSV export)"
printf '\033[36m%s %s\033[0m\n' GET "/v1/companies/$SIRET/situations?overdue=true"
curl -sS -H "Authorization: Bearer $TOKEN" "$API/v1/companies/$SIRET/situations?overdue=true" | python3 -c '
import json, sys
for s in json.load(sys.stdin)["situations"]:
    p = s["payment"]
    print("    %s n°%s %s: %s, due %s, %s days late, interest %s € at %s %%, indemnity %s €" % (
        s["market_ref"], s["number"], s["invoice_number"], s["transmission"]["chorus_status"],
        p["due_on"], p["days_late"], p["late_interest"], p["interest_rate"], p["fixed_indemnity"]))
'
printf '\033[36m%s %s\033[0m (Accept: text/csv)\n' GET "/v1/companies/$SIRET/situations"
curl -sS -H "Authorization: Bearer $TOKEN" -H 'Accept: text/csv' "$API/v1/companies/$SIRET/situations" | cut -d';' -f1-6,12-17 | sed 's/^/    /'

bold "Where things are"
echo "  the secret:   $SECRET_PREFIX/companies/$SIRET/technical-account (Secrets Manager, moto)"
echo "  the settings: table $TABLE_NAME, PK=COMPANY#$SIRET SK=ACCOUNT (DynamoDB, moto)"
echo "  local API logs: ${STACK_STATE_DIR:-.local}/logs/local-api.log"
