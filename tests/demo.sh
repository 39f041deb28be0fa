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

# A market of this run: a second `make demo` on the same stack starts a market of its own
# (a transmitted situation keeps its invoice number for ever).
GYMNASE="gymnase-$(date +%H%M%S)"
bold "9. A works market (A4, monthly statements) — checked against what the buyer requires in Chorus Pro"
show PUT "/v1/companies/$SIRET/markets/$GYMNASE" '{"market_number":"2026-TRV-014","buyer_siret":"21380456000018","buyer_service_code":"DIRINFRA","framework":"A4","project_manager":{"siret":"79876543400013"},"label":"Réhabilitation du gymnase"}'

bold "10. A works market without the service code the buyer requires: refused, with what to fix"
show PUT "/v1/companies/$SIRET/markets/gymnase-bis" '{"market_number":"2026-TRV-015","buyer_siret":"21380456000018","framework":"A4","project_manager":{"siret":"79876543400013"}}'

NUMBER="SIT-014-03-$(date +%H%M%S)"
bold "11. Its third monthly situation, with its invoice number ($NUMBER)"
show PUT "/v1/companies/$SIRET/markets/$GYMNASE/situations/3" "{\"invoice_number\":\"$NUMBER\",\"period\":\"2026-11\"}"

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
bold "12. Transmit it: checked (EN 16931 and Chorus Pro rules), then sent once by the works route — its PDF, then one submission naming the maître d'œuvre"
show POST "/v1/companies/$SIRET/markets/$GYMNASE/situations/3/transmission" "$BODY"

bold "13. The same request again (a client retry): the same answer, nothing sent twice"
show POST "/v1/companies/$SIRET/markets/$GYMNASE/situations/3/transmission" "$BODY"

SYNC_AT=0
sync() { # one run of the follow-up, its clock further ahead each time
  SYNC_AT=$((SYNC_AT + 20))
  local now; now=$(date -u -d "+$SYNC_AT minutes" +%Y-%m-%dT%H:%M:%SZ)
  tests/stack/run_function.sh status-sync "$now" 2>/dev/null \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); [print("   ", a["market_ref"], a["number"], a["from"], "→", a["to"], a["note"]) for a in r["actions"]]'
}
works() { # the emulator plays the MOE or the MOA: action [json-extra]
  echo "  emulator, $1: $(curl -sS -X POST "$SANDBOX/_admin/works" -H 'Content-Type: application/json' \
    --data "{\"numeroFacture\":\"$NUMBER\",\"action\":\"$1\"${2:+,$2}}")"
  sleep 1
  sync
}
works_view() {
  curl -sS -H "Authorization: Bearer $TOKEN" "$API/v1/companies/$SIRET/markets/$GYMNASE/situations/3" \
    | python3 -c 'import json,sys; v=json.load(sys.stdin); print("   chorus_status:", v["transmission"]["chorus_status"], "| next_action:", v["next_action"]); print("   works:", json.dumps(v["works"], ensure_ascii=False)); print("   payment:", {k: v["payment"][k] for k in ("clock_started_at", "due_on", "paid_on")})'
}

bold "14. The works circuit, followed by the scheduled follow-up (status-sync): the maître d'œuvre receives the statement (the payment clock starts), reviews it, admits 14 000.00 € HT of the 14 875.00 claimed; the maître d'ouvrage validates; payment"
sleep 2
sync
works_view
works moe_review
works moe_associate '"montant":"14000.00"'
works_view
works moa_validate
works pay
show GET "/v1/companies/$SIRET/markets/$GYMNASE/situations/3"
echo "  submissions of $NUMBER in the emulator: $(curl -s "$SANDBOX/_admin/journal?path=/cpro/factures/v1/soumettre" | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin)['entries'] if (e.get('body') or {}).get('numeroFactureSaisi')=='$NUMBER'))")"

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

# --- Large documents and a returned invoice (issue 16) -----------------------------------
VOIRIE_NUMBER="SIT-021-01-$(date +%H%M%S)"
VOIRIE="voirie-$(date +%H%M%S)"
bold "16. A large PDF: announced (name, type, size), then uploaded straight to S3 through its URL"
show PUT "/v1/companies/$SIRET/markets/$VOIRIE" '{"market_number":"2026-VOI-021","buyer_siret":"21690123100011","label":"Voirie 2026"}'
show PUT "/v1/companies/$SIRET/markets/$VOIRIE/situations/1" "{\"invoice_number\":\"$VOIRIE_NUMBER\",\"period\":\"2026-11\"}"
BIG_PDF=$(mktemp)
trap 'rm -f "$BIG_PDF"' EXIT
python3 -c 'import sys; head = b"%PDF-1.4\n%"; open(sys.argv[1], "wb").write(head + bytes(97 + i % 26 for i in range(3_000_000 - len(head))))' "$BIG_PDF"
printf '\033[36mPOST /v1/companies/%s/documents\033[0m\n' "$SIRET"
CREATED=$(curl -sS -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data '{"filename":"situation-voirie-01.pdf","content_type":"application/pdf","size":3000000}' \
  "$API/v1/companies/$SIRET/documents")
printf '%s' "$CREATED" | python3 -m json.tool --no-ensure-ascii
DOC_ID=$(printf '%s' "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["document_id"])')
UPLOAD_URL=$(printf '%s' "$CREATED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["upload_url"])')
echo "  PUT the 3,000,000-byte file to upload_url (Content-Type: application/pdf) → HTTP $(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/pdf' --upload-file "$BIG_PDF" "$UPLOAD_URL")"

# The buyer's agent will return this invoice: the emulator's script (/_admin) makes it
# integrated, then A_RECYCLER with the agent's comment.
curl -sS -X POST -H 'Content-Type: application/json' "$SANDBOX/_admin/invoices/script" \
  --data "{\"numeroFacture\":\"$VOIRIE_NUMBER\",\"steps\":[{\"statut\":\"MISE_A_DISPOSITION\"},{\"statut\":\"A_RECYCLER\",\"commentaire\":\"Service destinataire erroné : Département de l'Isère, service DIRINFRA\"}]}"

bold "17. Transmit the situation naming the document: read from S3, checked, deposited once"
DOC_BODY=$(printf '%s' "$BODY" | python3 -c 'import json,sys; b = json.load(sys.stdin); b["buyer"]["name"] = "COMMUNE DE VILLEURBANNE"; b["document"] = {"document_id": sys.argv[1]}; print(json.dumps(b))' "$DOC_ID")
show POST "/v1/companies/$SIRET/markets/$VOIRIE/situations/1/transmission" "$DOC_BODY"
echo "  the uploaded file:              sha256 $(sha256sum "$BIG_PDF" | cut -c1-64)"
curl -sS "$SANDBOX/_admin/deposits" | python3 -c '
import json, sys
for d in json.load(sys.stdin)["deposits"]:
    if d.get("numeroFacture") == sys.argv[1]:
        for f in d["embeddedFiles"]:
            print("  what Chorus Pro received:       sha256", f["sha256"], "(" + f["filename"] + ",", f["size"], "bytes)")
' "$VOIRIE_NUMBER"

bold "18. The next situation naming a document that was never uploaded (or another company's): refused, nothing sent"
show PUT "/v1/companies/$SIRET/markets/$VOIRIE/situations/2" "{\"invoice_number\":\"${VOIRIE_NUMBER}B\",\"period\":\"2026-12\"}"
show POST "/v1/companies/$SIRET/markets/$VOIRIE/situations/2/transmission" "$(printf '%s' "$DOC_BODY" | python3 -c 'import json,sys; b = json.load(sys.stdin); b["document"] = {"document_id": "0" * 32}; print(json.dumps(b))')"

bold "19. The buyer returns the invoice (A_RECYCLER: wrong recipient); the follow-up sees it"
for minutes in 5 10 15 20 25 30; do
  sleep 2
  tests/stack/run_function.sh status-sync "$(date -u -d "+$minutes minutes" +%Y-%m-%dT%H:%M:%SZ)" >/dev/null 2>&1 || true
  STATUS=$(curl -sS -H "Authorization: Bearer $TOKEN" "$API/v1/companies/$SIRET/markets/$VOIRIE/situations/1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["transmission"]["chorus_status"] or "")')
  [ "$STATUS" = A_RECYCLER ] && break
done
show GET "/v1/companies/$SIRET/markets/$VOIRIE/situations/1"

bold "20. Recycle it to the right recipient: checked like a market's buyer, sent once, the invoice keeps its number"
show POST "/v1/companies/$SIRET/markets/$VOIRIE/situations/1/transmission/recycle" '{"buyer_siret":"21380456000018","buyer_service_code":"DIRINFRA","comment":"Destinataire corrigé"}'

NUMBER4="SIT-014-04-$(date +%H%M%S)"
bold "21. A situation the buyer does not pay: made available 45 days ago, 30-day deadline, found overdue"
show PUT "/v1/companies/$SIRET/markets/$VOIRIE/situations/3" "{\"invoice_number\":\"$NUMBER4\",\"period\":\"2027-01\"}"
# The emulator plays Chorus Pro's own dates: available 45 days ago, then nothing (unpaid).
curl -sS -X POST "$SANDBOX/_admin/invoices/script" -H 'Content-Type: application/json' \
  -d "{\"numeroFacture\":\"$NUMBER4\",\"steps\":[{\"statut\":\"MISE_A_DISPOSITION\",\"datePassage\":\"$(date -u -d '-45 days' +%Y-%m-%dT%H:%M:%SZ)\"}]}"
curl -sS -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data "$(printf '%s' "$BODY" | python3 -c 'import json,sys; b = json.load(sys.stdin); b["buyer"]["name"] = "COMMUNE DE VILLEURBANNE"; print(json.dumps(b))')" \
  "$API/v1/companies/$SIRET/markets/$VOIRIE/situations/3/transmission"
for minutes in 5 20 60 180; do
  sleep 2
  NOW=$(date -u -d "+$minutes minutes" +%Y-%m-%dT%H:%M:%SZ)
  tests/stack/run_function.sh status-sync "$NOW" 2>/dev/null \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); o=r["overdue"]; print("    status-sync: followed", len(r["actions"]), "· overdue marked", o["marked"], "· e-mailed", o["mailed"])'
done
bold "22. The company-wide list: the situations overdue, with their interest (and the CSV export)"
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
