//! The works circuit (docs/chorus-pro.md#works-circuit), with the field names of the sources:
//!
//! - `factures/v1/soumettre` `{modeDepot, numeroFactureSaisi, dateFacture,
//!   destinataire{codeDestinataire, codeServiceExecutant}, fournisseur{idFournisseur},
//!   cadreDeFacturation{codeCadreFacturation, codeStructureValideur, codeServiceValideur},
//!   references{numeroMarche, numeroBonCommande, …}, montantTotal{montantHtTotal, montantTVA,
//!   montantTtcTotal, montantAPayer}, pieceJointePrincipale[{pieceJointePrincipaleId,
//!   pieceJointePrincipaleDesignation}]}` → `{identifiantFactureCPP, numeroFacture,
//!   statutFacture, dateDepot}` (AIFE submit-invoice example, GO `factures_depots.go`). A
//!   works framework needs a known MOE (`codeStructureValideur`) and a main attachment this
//!   account added (`DEPOT_PDF_API`); a number the supplier already used is refused with
//!   the words of a flux rejection. The statement is `DEPOSEE`, then
//!   `MISE_A_DISPOSITION_MOE` (timestamped: the payment deadline runs from it, AIFE "bonne
//!   pratique … maîtrises d'œuvre");
//! - `facturesTravaux/v1/rechercher` `{roleUtilisateur, numeroFactureTravaux,
//!   rechercheFactureTravaux{…}}` → `listeFacturesTravaux[]{idFactureTravaux,
//!   numeroFactureTravaux, statutFactureTravaux, dateDepotFactureTravaux,
//!   cadreFacturation}`; nothing found: `codeRetour` 20007 (Pastell);
//! - `facturesTravaux/v1/consulter` `{idFactureTravaux}` → `factureTravaux{…, montantHT,
//!   montantAPayer, pieceSuivante{idPieceSuivante, numeroPieceSuivante,
//!   cadreFacturationPieceSuivante}}`: any document of the supplier's invoicing file (AIFE:
//!   the MOE's état d'acompte "sera disponible dans le dossier de facturation, à la
//!   disposition de tous les acteurs du marché").
//!
//! - `facturesTravaux/v1/recycler` `{idFactureTravaux, identifiantDestinataire,
//!   codeServiceExecutant, numeroBonCommande}` → `{idFactureTravaux, numeroFactureTravaux,
//!   statutFactureTravaux, dateDepotFactureTravaux}` (AIFE recycle-works-invoice): only a
//!   works document in `A_RECYCLER`, to a public structure; it goes back to its MOE
//!   (`MISE_A_DISPOSITION_MOE`). The ordinary `factures/v1/recycler` refuses works documents.
//!
//! `POST /_admin/works` `{"numeroFacture","action","montant","commentaire"}` plays the MOE
//! and the MOA: `moe_review` (`A_VALIDER_MOE`), `moe_refuse` (`REFUSEE_MOE` with the reason:
//! a refusal stops the circuit), `moe_ask_completion` (`A_COMPLETER`), `moe_wrong_recipient`
//! (`ERREUR_FOURNISSEUR_SUR_MOE`), `moe_no_validation`
//! (`ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE`), `moe_associate` (the MOE's A16 with the
//! admitted HT amount `montant`, `TRANSMISE_MOA`; the statement `ASSOCIEE` with it as
//! `pieceSuivante`), `moa_validate` (the MOA's A19, `MISE_A_DISPOSITION`; the A16
//! `ASSOCIEE`), `pay` (the last document `MISE_EN_PAIEMENT`).

use std::collections::VecDeque;
use std::time::Instant;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use super::cpro::{Answer, MALFORMED_REQUEST, UNKNOWN_OBJECT, id_field, ok, refusal, text_field};
use super::state::{Invoice, ScriptStep, State, chorus_datetime};
use super::ubl::UblInvoice;

/// `rechercherFactureTravaux` without result (Pastell `CPPWrapper`).
pub const NO_WORKS_RESULT: i64 = 20007;
/// The emulator's own code for a works submission it cannot route (no source gives one).
pub const WORKS_ROUTING_ERROR: i64 = 20097;

/// Frameworks deposited through the MOE (docs/chorus-pro.md#frameworks).
const THROUGH_MOE: &[&str] = &["A4_", "A5_", "A7_", "A10_", "A13_", "A14_", "A22_"];

/// What makes an invoice a works document.
#[derive(Debug, Clone)]
pub(super) struct WorksDoc {
    /// Long code (`A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR`).
    pub framework: String,
    pub moe_id: Option<i64>,
    pub amount_ht: Decimal,
    pub amount_to_pay: Decimal,
    /// The supplier whose invoicing file this document belongs to.
    pub file_owner: i64,
    pub next: Option<i64>,
}

/// `POST /_admin/works`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorksAction {
    pub numero_facture: String,
    pub action: String,
    #[serde(default)]
    pub montant: Option<String>,
    #[serde(default)]
    pub commentaire: Option<String>,
}

fn amount(body: &Value, name: &str) -> Option<Decimal> {
    match body.get("montantTotal").and_then(|t| t.get(name))? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

impl State {
    /// `factures/v1/soumettre`: a works statement (or an invoice) submitted with its PDF.
    pub(super) fn submit(&mut self, login: &str, body: &Value) -> Answer {
        let framework = body
            .get("cadreDeFacturation")
            .and_then(|c| text_field(c, "codeCadreFacturation"))
            .unwrap_or("A1_FACTURE_FOURNISSEUR")
            .to_owned();
        let (Some(number), Some(buyer_siret)) = (
            text_field(body, "numeroFactureSaisi").map(str::to_owned),
            body.get("destinataire")
                .and_then(|d| text_field(d, "codeDestinataire"))
                .map(str::to_owned),
        ) else {
            return refusal(
                MALFORMED_REQUEST,
                "numeroFactureSaisi et destinataire.codeDestinataire sont obligatoires",
            );
        };
        let (supplier_id, buyer_id, moe_id) = match self.works_routing(login, body, &framework) {
            Ok(ids) => ids,
            Err(answer) => return answer,
        };
        if self
            .invoices
            .iter()
            .any(|i| i.supplier_id == supplier_id && i.numero == number)
        {
            return refusal(
                WORKS_ROUTING_ERROR,
                &format!("Le numero de facture {number} a deja ete utilise par ce fournisseur"),
            );
        }
        let data = UblInvoice {
            number: number.clone(),
            buyer_sirets: vec![buyer_siret],
            framework: Some(framework.clone()),
            ..UblInvoice::default()
        };
        let works = WorksDoc {
            framework: framework.clone(),
            moe_id,
            amount_ht: amount(body, "montantHtTotal").unwrap_or_default(),
            amount_to_pay: amount(body, "montantAPayer").unwrap_or_default(),
            file_owner: supplier_id,
            next: None,
        };
        let through_moe = THROUGH_MOE.iter().any(|p| framework.starts_with(p));
        let pending: VecDeque<ScriptStep> = match through_moe {
            true => [ScriptStep::new("MISE_A_DISPOSITION_MOE", None)].into(),
            false => self
                .seed()
                .invoice_path
                .iter()
                .map(|s| ScriptStep::new(s, None))
                .collect(),
        };
        let id = self.push_works_document(number, supplier_id, buyer_id, data, works, "DEPOSEE");
        let index = self.invoices.len() - 1;
        self.invoices[index].pending = pending;
        let invoice = &self.invoices[index];
        ok(json!({
            "identifiantFactureCPP": id,
            "numeroFacture": invoice.numero,
            "statutFacture": "DEPOSEE",
            "dateDepot": chorus_datetime(invoice.deposited_at),
        }))
    }

    /// The supplier, buyer and MOE a submission names, and its main attachment, checked.
    fn works_routing(
        &self,
        login: &str,
        body: &Value,
        framework: &str,
    ) -> Result<(i64, i64, Option<i64>), Answer> {
        let structures = self.account_structures(login);
        let supplier = body
            .get("fournisseur")
            .and_then(|f| id_field(f, &["idFournisseur"]))
            .filter(|id| structures.contains(id))
            .or_else(|| structures.first().copied())
            .ok_or_else(|| refusal(UNKNOWN_OBJECT, "Fournisseur inconnu pour ce compte"))?;
        let buyer = body
            .get("destinataire")
            .and_then(|d| text_field(d, "codeDestinataire"))
            .and_then(|siret| self.structure_by_siret(siret))
            .filter(|s| s.public)
            .map(|s| s.id_structure_cpp)
            .ok_or_else(|| refusal(WORKS_ROUTING_ERROR, "Destinataire non reference ou inactif"))?;
        let moe = body
            .get("cadreDeFacturation")
            .and_then(|c| text_field(c, "codeStructureValideur"))
            .and_then(|siret| self.structure_by_siret(siret))
            .map(|s| s.id_structure_cpp);
        if THROUGH_MOE.iter().any(|p| framework.starts_with(p)) && moe.is_none() {
            return Err(refusal(
                WORKS_ROUTING_ERROR,
                "La maitrise d'oeuvre (codeStructureValideur) est obligatoire et doit etre une structure connue pour ce cadre de facturation",
            ));
        }
        let attachment = body
            .get("pieceJointePrincipale")
            .and_then(Value::as_array)
            .and_then(|list| list.first())
            .and_then(|p| id_field(p, &["pieceJointePrincipaleId"]));
        let attached =
            attachment.is_some_and(|id| self.files.iter().any(|f| f.id == id && f.login == login));
        if !attached {
            return Err(refusal(
                UNKNOWN_OBJECT,
                "pieceJointePrincipale : piece jointe inconnue pour ce compte (DEPOT_PDF_API)",
            ));
        }
        Ok((supplier, buyer, moe))
    }

    fn push_works_document(
        &mut self,
        numero: String,
        supplier_id: i64,
        buyer_id: i64,
        data: UblInvoice,
        works: WorksDoc,
        first_status: &str,
    ) -> i64 {
        let id = self.next_invoice_id();
        let first = self.history_entry(first_status, None);
        self.invoices.push(Invoice {
            id,
            numero,
            numero_flux: String::new(),
            supplier_id,
            buyer_id,
            data,
            deposited_at: first.at,
            history: vec![first],
            pending: VecDeque::new(),
            last_step: Instant::now(),
            works: Some(works),
        });
        id
    }

    /// The works documents of the account's supplier structures (and of their files).
    fn works_visible(&self, login: &str, invoice: &Invoice) -> bool {
        let structures = self.account_structures(login);
        invoice
            .works
            .as_ref()
            .is_some_and(|w| structures.contains(&w.file_owner))
    }

    /// `facturesTravaux/v1/rechercher` as the supplier; polled, each document found then
    /// moves one step (like the other searches).
    pub(super) fn search_works(&mut self, login: &str, body: &Value) -> Answer {
        let number = text_field(body, "numeroFactureTravaux");
        let indexes: Vec<usize> = (0..self.invoices.len())
            .filter(|&k| self.works_visible(login, &self.invoices[k]))
            .filter(|&k| {
                self.account_structures(login)
                    .contains(&self.invoices[k].supplier_id)
            })
            .filter(|&k| number.is_none_or(|n| self.invoices[k].numero == n))
            .collect();
        let found: Vec<Value> = indexes
            .iter()
            .map(|&k| &self.invoices[k])
            .map(|i| {
                json!({
                    "idFactureTravaux": i.id,
                    "numeroFactureTravaux": i.numero,
                    "statutFactureTravaux": i.current().map(|h| h.statut.clone()),
                    "dateDepotFactureTravaux": chorus_datetime(i.deposited_at),
                    "cadreFacturation": i.works.as_ref().map(|w| w.framework.clone()),
                })
            })
            .collect();
        if found.is_empty() {
            return refusal(NO_WORKS_RESULT, "TRA_MSG_00.015");
        }
        let total = found.len();
        let answer = ok(json!({
            "listeFacturesTravaux": found,
            "parametresRetour": {"pageCourante": 1, "pages": 1, "nbResultatsParPage": total, "total": total},
        }));
        if self.polled() {
            for k in indexes {
                self.advance_invoice(k);
            }
        }
        answer
    }

    /// `facturesTravaux/v1/consulter`: one document of the account's invoicing files.
    pub(super) fn read_works(&mut self, login: &str, body: &Value) -> Answer {
        let Some(id) = id_field(body, &["idFactureTravaux"]) else {
            return refusal(MALFORMED_REQUEST, "idFactureTravaux est obligatoire");
        };
        let Some(index) = self
            .invoices
            .iter()
            .position(|i| i.id == id && self.works_visible(login, i))
        else {
            return refusal(
                UNKNOWN_OBJECT,
                "Facture de travaux inconnue ou non accessible",
            );
        };
        let answer = ok(json!({"factureTravaux": self.works_document(index)}));
        if self.polled() {
            self.advance_invoice(index);
        }
        answer
    }

    fn works_document(&self, index: usize) -> Value {
        let invoice = &self.invoices[index];
        let works = invoice.works.as_ref();
        let next = works
            .and_then(|w| w.next)
            .and_then(|id| self.invoices.iter().find(|i| i.id == id));
        let current = invoice.current();
        json!({
            "idFactureTravaux": invoice.id,
            "numeroFactureTravaux": invoice.numero,
            "cadreFacturation": works.map(|w| w.framework.clone()),
            "statutFactureTravaux": current.map(|h| h.statut.clone()),
            "dateStatutFactureTravaux": current.map(|h| chorus_datetime(h.at)),
            "commentaireStatut": current.and_then(|h| h.commentaire.clone()),
            "dateDepotFactureTravaux": chorus_datetime(invoice.deposited_at),
            "idStructureMoe": works.and_then(|w| w.moe_id),
            "montantHT": works.map(|w| w.amount_ht.to_string()),
            "montantAPayer": works.map(|w| w.amount_to_pay.to_string()),
            "pieceSuivante": next.map(|n| json!({
                "idPieceSuivante": n.id,
                "numeroPieceSuivante": n.numero,
                "cadreFacturationPieceSuivante": n.works.as_ref().map(|w| w.framework.clone()),
            })),
        })
    }

    /// `facturesTravaux/v1/recycler`: new routing for a works document in `A_RECYCLER`.
    pub(super) fn recycle_works(&mut self, login: &str, body: &Value) -> Answer {
        let Some(id) = id_field(body, &["idFactureTravaux"]) else {
            return refusal(MALFORMED_REQUEST, "idFactureTravaux est obligatoire");
        };
        let Some(index) = self.invoices.iter().position(|i| {
            i.id == id
                && i.works.is_some()
                && self.account_structures(login).contains(&i.supplier_id)
        }) else {
            return refusal(
                UNKNOWN_OBJECT,
                "Facture de travaux inconnue ou non accessible",
            );
        };
        let status = self.invoices[index].current().map(|h| h.statut.clone());
        if status.as_deref() != Some("A_RECYCLER") {
            return refusal(
                super::returned::WRONG_STATUS,
                &format!("Action impossible au statut {}", status.unwrap_or_default()),
            );
        }
        let buyer = text_field(body, "identifiantDestinataire")
            .and_then(|siret| self.structure_by_siret(siret))
            .filter(|s| s.public)
            .map(|s| s.id_structure_cpp);
        let Some(buyer) = buyer else {
            return refusal(
                super::returned::WRONG_RECIPIENT,
                "Destinataire non reference ou inactif",
            );
        };
        self.invoices[index].buyer_id = buyer;
        self.set_status(index, "MISE_A_DISPOSITION_MOE", None);
        let invoice = &self.invoices[index];
        ok(json!({
            "idFactureTravaux": invoice.id,
            "numeroFactureTravaux": invoice.numero,
            "statutFactureTravaux": "MISE_A_DISPOSITION_MOE",
            "dateDepotFactureTravaux": chorus_datetime(invoice.deposited_at),
        }))
    }

    // --- admin ----------------------------------------------------------------------------

    /// Plays the MOE or the MOA on the works statement `numeroFacture` (see the module doc).
    pub fn works_action(&mut self, action: WorksAction) -> Result<Value, String> {
        let index = self
            .invoices
            .iter()
            .position(|i| i.numero == action.numero_facture && i.works.is_some())
            .ok_or_else(|| format!("no works statement {}", action.numero_facture))?;
        let comment = action.commentaire.clone();
        match action.action.as_str() {
            "moe_review" => self.set_status(index, "A_VALIDER_MOE", comment),
            "moe_refuse" => self.set_status(index, "REFUSEE_MOE", comment),
            "moe_ask_completion" => self.set_status(index, "A_COMPLETER", comment),
            "moe_wrong_recipient" => self.set_status(index, "ERREUR_FOURNISSEUR_SUR_MOE", comment),
            "moe_no_validation" => {
                self.set_status(index, "ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE", comment)
            }
            "moe_associate" => {
                let admitted = action
                    .montant
                    .as_deref()
                    .map(|m| m.parse::<Decimal>().map_err(|_| format!("montant {m:?}")))
                    .transpose()?;
                self.associate(
                    index,
                    "A16_ETAT_ACOMPTE_VALIDE_MOE",
                    "TRANSMISE_MOA",
                    admitted,
                )?;
            }
            "moa_validate" => {
                let last = self.last_of_chain(index);
                self.associate(
                    last,
                    "A19_ETAT_ACOMPTE_VALIDE_MOA",
                    "MISE_A_DISPOSITION",
                    None,
                )?;
            }
            "pay" => {
                let last = self.last_of_chain(index);
                self.set_status(last, "MISE_EN_PAIEMENT", comment);
            }
            other => return Err(format!("unknown action {other:?}")),
        }
        Ok(json!({"identifiantFactureCPP": self.invoices[index].id}))
    }

    fn set_status(&mut self, index: usize, statut: &str, commentaire: Option<String>) {
        let entry = self.history_entry(statut, commentaire);
        let invoice = &mut self.invoices[index];
        invoice.pending.clear();
        invoice.history.push(entry);
        invoice.last_step = Instant::now();
    }

    fn last_of_chain(&self, mut index: usize) -> usize {
        for _ in 0..8 {
            let next = self.invoices[index].works.as_ref().and_then(|w| w.next);
            match next.and_then(|id| self.invoices.iter().position(|i| i.id == id)) {
                Some(i) => index = i,
                None => break,
            }
        }
        index
    }

    /// The next party's document, associated to `index` (which becomes `ASSOCIEE`); its
    /// HT amount is `admitted` (the MOE corrects rather than refuses) or the previous one,
    /// its amount to pay in the same proportion.
    fn associate(
        &mut self,
        index: usize,
        framework: &str,
        status: &str,
        admitted: Option<Decimal>,
    ) -> Result<(), String> {
        let previous = &self.invoices[index];
        let works = previous.works.clone().ok_or("not a works document")?;
        if works.next.is_some() {
            return Err(format!(
                "{} already has a following document",
                previous.numero
            ));
        }
        let amount_ht = admitted.unwrap_or(works.amount_ht);
        let amount_to_pay = match works.amount_ht.is_zero() {
            true => amount_ht,
            false => (works.amount_to_pay * amount_ht / works.amount_ht).round_dp(2),
        };
        let prefix = framework.split('_').next().unwrap_or("EA");
        let numero = format!("{prefix}-{}", previous.id);
        let (supplier, buyer) = (works.moe_id.unwrap_or(previous.buyer_id), previous.buyer_id);
        let data = UblInvoice {
            number: numero.clone(),
            framework: Some(framework.to_owned()),
            ..UblInvoice::default()
        };
        let doc = WorksDoc {
            framework: framework.to_owned(),
            moe_id: works.moe_id,
            amount_ht,
            amount_to_pay,
            file_owner: works.file_owner,
            next: None,
        };
        let id = self.push_works_document(numero, supplier, buyer, data, doc, status);
        if let Some(w) = self.invoices[index].works.as_mut() {
            w.next = Some(id);
        }
        self.set_status(index, "ASSOCIEE", None);
        Ok(())
    }
}
