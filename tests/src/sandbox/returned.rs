//! The services for an invoice Chorus Pro returned to its supplier, with the field names of
//! the sources (docs/chorus-pro.md#returned-invoices):
//!
//! - `factures/v1/recycler` `{identifiantFactureCPP, destinataire{codeDestinataire,
//!   codeServiceExecutant}, reference{numeroBonCommande}, commentaire}`: only in
//!   `A_RECYCLER`; the new recipient must be a public structure whose requirements the new
//!   routing meets (the same rules as an integration); the invoice is then
//!   `MISE_A_DISPOSITION` for the new recipient and goes on along the seed's path;
//! - `transverses/v1/ajouter/fichier` `{pieceJointeFichier, pieceJointeNom,
//!   pieceJointeTypeMime, pieceJointeExtension}` → `pieceJointeId`: base64, not empty,
//!   at most 10 MB (20003 beyond, as GO documents);
//! - `factures/v1/completer` `{identifiantFactureCPP, commentaire,
//!   pieceJointeComplementaire[]{pieceJointeComplementaireId, …Designation, …Type}}`: only
//!   in `SUSPENDUE` or `A_COMPLETER`, with files this account added; the invoice is then
//!   `COMPLETEE`, and goes on from `MISE_A_DISPOSITION`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use super::cpro::{
    Answer, MALFORMED_REQUEST, NOT_BASE64, UNKNOWN_OBJECT, id_field, ok, refusal, text_field,
};
use super::state::{State, UploadedFile, buyer_requirement_errors, chorus_datetime};

/// `ajouter/fichier` over 10 MB (GO `transverses_pieces_jointes.go`).
pub const ATTACHMENT_TOO_LARGE: i64 = 20003;
/// The action is not allowed in the invoice's status.
pub const WRONG_STATUS: i64 = 20095;
/// The new routing does not reach a structure that may receive it.
pub const WRONG_RECIPIENT: i64 = 20096;
const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

impl State {
    /// The index of the account's invoice `identifiantFactureCPP` in `allowed` statuses.
    fn returned_invoice(
        &self,
        login: &str,
        body: &Value,
        allowed: &[&str],
    ) -> Result<usize, Answer> {
        let Some(id) = id_field(body, &["identifiantFactureCPP"]) else {
            return Err(refusal(
                MALFORMED_REQUEST,
                "identifiantFactureCPP est obligatoire",
            ));
        };
        let structures = self.account_structures(login);
        let Some(index) = self
            .invoices
            .iter()
            .position(|i| i.id == id && structures.contains(&i.supplier_id))
        else {
            return Err(refusal(
                UNKNOWN_OBJECT,
                "Facture inconnue ou non accessible",
            ));
        };
        let status = self.invoices[index].current().map(|h| h.statut.clone());
        match status {
            Some(s) if allowed.contains(&s.as_str()) => Ok(index),
            other => Err(refusal(
                WRONG_STATUS,
                &format!("Action impossible au statut {}", other.unwrap_or_default()),
            )),
        }
    }

    /// The seed's path after `MISE_A_DISPOSITION`, to go on from there.
    fn path_after_delivery(&self) -> std::collections::VecDeque<super::state::ScriptStep> {
        self.seed()
            .invoice_path
            .iter()
            .skip_while(|s| s.as_str() != "MISE_A_DISPOSITION")
            .skip(1)
            .map(|s| super::state::ScriptStep::new(s, None))
            .collect()
    }

    pub(super) fn recycle(&mut self, login: &str, body: &Value) -> Answer {
        let index = match self.returned_invoice(login, body, &["A_RECYCLER"]) {
            Ok(i) => i,
            Err(answer) => return answer,
        };
        // A works document is recycled by `recyclerFactureTravaux` (AIFE recycle-works-invoice).
        if self.invoices[index].works.is_some() {
            return refusal(
                WRONG_STATUS,
                "Facture de travaux : utilisez le recyclage des factures de travaux",
            );
        }
        let recipient = body.get("destinataire").cloned().unwrap_or(Value::Null);
        let Some(siret) = text_field(&recipient, "codeDestinataire").map(str::to_owned) else {
            return refusal(
                MALFORMED_REQUEST,
                "destinataire.codeDestinataire est obligatoire",
            );
        };
        let Some(buyer) = self
            .structure_by_siret(&siret)
            .filter(|s| s.public)
            .cloned()
        else {
            return refusal(WRONG_RECIPIENT, "Destinataire non reference ou inactif");
        };
        let mut data = self.invoices[index].data.clone();
        data.buyer_sirets = vec![siret];
        data.service_code = text_field(&recipient, "codeServiceExecutant").map(str::to_owned);
        if let Some(number) = body
            .get("reference")
            .and_then(|r| text_field(r, "numeroBonCommande"))
        {
            data.commitment_number = Some(number.to_owned());
        }
        let errors = buyer_requirement_errors(&buyer, &data);
        if let Some(first) = errors.first() {
            return refusal(WRONG_RECIPIENT, first);
        }
        let comment = text_field(body, "commentaire").map(str::to_owned);
        let entry = self.history_entry("MISE_A_DISPOSITION", comment);
        let pending = self.path_after_delivery();
        let invoice = &mut self.invoices[index];
        invoice.data = data;
        invoice.buyer_id = buyer.id_structure_cpp;
        invoice.history.push(entry);
        invoice.pending = pending;
        invoice.last_step = std::time::Instant::now();
        ok(json!({
            "identifiantFactureCPP": invoice.id,
            "numeroFacture": invoice.numero,
            "statutFacture": "MISE_A_DISPOSITION",
            "dateDepot": chorus_datetime(invoice.deposited_at),
        }))
    }

    pub(super) fn upload_file(&mut self, login: &str, body: &Value) -> Answer {
        let (Some(content), Some(name)) = (
            text_field(body, "pieceJointeFichier"),
            text_field(body, "pieceJointeNom"),
        ) else {
            return refusal(
                MALFORMED_REQUEST,
                "pieceJointeFichier et pieceJointeNom sont obligatoires",
            );
        };
        let Ok(bytes) = BASE64.decode(content) else {
            return refusal(NOT_BASE64, "La piece jointe n'est pas encodee en base64");
        };
        if bytes.is_empty() {
            return refusal(MALFORMED_REQUEST, "La piece jointe est vide");
        }
        if bytes.len() > MAX_ATTACHMENT_BYTES {
            return refusal(ATTACHMENT_TOO_LARGE, "La piece jointe depasse 10 Mo");
        }
        let id = self.next_file;
        self.next_file += 1;
        self.files.push(UploadedFile {
            id,
            login: login.to_owned(),
            name: name.to_owned(),
            size: bytes.len(),
        });
        ok(json!({"pieceJointeId": id}))
    }

    pub(super) fn complete(&mut self, login: &str, body: &Value) -> Answer {
        let index = match self.returned_invoice(login, body, &["SUSPENDUE", "A_COMPLETER"]) {
            Ok(i) => i,
            Err(answer) => return answer,
        };
        let pieces = body
            .get("pieceJointeComplementaire")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for piece in &pieces {
            let id = id_field(piece, &["pieceJointeComplementaireId"]);
            let known =
                id.is_some_and(|id| self.files.iter().any(|f| f.id == id && f.login == login));
            if !known {
                return refusal(UNKNOWN_OBJECT, "Piece jointe inconnue pour ce compte");
            }
        }
        let comment = text_field(body, "commentaire").map(str::to_owned);
        let entry = self.history_entry("COMPLETEE", comment);
        let mut pending = self.path_after_delivery();
        pending.push_front(super::state::ScriptStep::new("MISE_A_DISPOSITION", None));
        if self.invoices[index].works.is_some() {
            // A completed works statement goes back to its MOE (works.rs).
            pending = [super::state::ScriptStep::new(
                "MISE_A_DISPOSITION_MOE",
                None,
            )]
            .into();
        }
        let invoice = &mut self.invoices[index];
        invoice.history.push(entry);
        invoice.pending = pending;
        invoice.last_step = std::time::Instant::now();
        ok(json!({
            "identifiantFactureCPP": invoice.id,
            "numeroFacture": invoice.numero,
            "dateTraitement": invoice.current().map(|h| chorus_datetime(h.at)),
        }))
    }

    /// Files added to accounts: login, name and size (never the content).
    pub fn uploaded_files(&self) -> Vec<(String, String, usize)> {
        self.files
            .iter()
            .map(|f| (f.login.clone(), f.name.clone(), f.size))
            .collect()
    }
}
