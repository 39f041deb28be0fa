//! The Chorus Pro calls, answered from the emulator's state with Chorus Pro's field names
//! and envelope (`codeRetour`, `libelle`).
//!
//! Return codes: `0`/`TRA_MSG_00.000` success; `20000`/`TRA_MSG_00.015` search without
//! result (Pastell); `20001`/`GDP_MSG_11.022` deposit file too large (omnibill,
//! unconfirmed). The real codes of the other refusals are unknown; the emulator uses its
//! own, all answered with HTTP 400: `20090` malformed request, `20091` unknown or hidden
//! object, `20092` unreadable invoice file, `20093` `syntaxeFlux` not accepted, `20094`
//! `fichierFlux` not base64.

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::seed::{SeedCommitment, SeedStructure};
use super::state::{Flux, Invoice, Shapes, State, chorus_datetime};
use super::ubl::UblInvoice;

pub const NO_RESULT: i64 = 20000;
pub const FILE_TOO_LARGE: i64 = 20001;
pub const MALFORMED_REQUEST: i64 = 20090;
pub const UNKNOWN_OBJECT: i64 = 20091;
pub const UNREADABLE_FILE: i64 = 20092;
pub const SYNTAX_NOT_ACCEPTED: i64 = 20093;
pub const NOT_BASE64: i64 = 20094;

/// Largest decoded flux (omnibill, reading the API annex: unconfirmed).
pub const MAX_FLUX_BYTES: usize = 10 * 1024 * 1024;

pub type Answer = (StatusCode, Value);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    StructuresSearch,
    StructureRead,
    ServicesSearch,
    ServiceRead,
    CommitmentsSearch,
    SupplierActiveStructures,
    FluxDeposit,
    FluxReport,
    SupplierInvoicesSearch,
    InvoiceHistory,
    FluxFormats,
    InvoiceRecycle,
    FileUpload,
    InvoiceComplete,
    InvoiceSubmit,
    WorksInvoicesSearch,
    WorksInvoiceRead,
    WorksInvoiceRecycle,
}

impl Route {
    /// The route of a path under `/cpro/`.
    pub fn from_path(path: &str) -> Option<Route> {
        Some(match path {
            "structures/v1/rechercher" => Route::StructuresSearch,
            "structures/v1/consulter" => Route::StructureRead,
            "structures/v1/rechercher/services" => Route::ServicesSearch,
            "structures/v1/consulter/service" => Route::ServiceRead,
            "engagementsJuridiques/v1/rechercher" => Route::CommitmentsSearch,
            "transverses/v1/recuperer/structures/actives/fournisseur" => {
                Route::SupplierActiveStructures
            }
            "factures/v1/deposer/flux" => Route::FluxDeposit,
            "transverses/v1/consulterCRDetaille" => Route::FluxReport,
            "factures/v1/rechercher/fournisseur" => Route::SupplierInvoicesSearch,
            "factures/v1/consulter/historique" => Route::InvoiceHistory,
            "transverses/v1/recuperer/formatflux" => Route::FluxFormats,
            "factures/v1/recycler" => Route::InvoiceRecycle,
            "transverses/v1/ajouter/fichier" => Route::FileUpload,
            "factures/v1/completer" => Route::InvoiceComplete,
            "factures/v1/soumettre" => Route::InvoiceSubmit,
            "facturesTravaux/v1/rechercher" => Route::WorksInvoicesSearch,
            "facturesTravaux/v1/consulter" => Route::WorksInvoiceRead,
            "facturesTravaux/v1/recycler" => Route::WorksInvoiceRecycle,
            _ => return None,
        })
    }
}

pub(super) fn ok(mut body: Value) -> Answer {
    if let Some(object) = body.as_object_mut() {
        object.insert("codeRetour".into(), json!(0));
        object.insert("libelle".into(), json!("TRA_MSG_00.000"));
    }
    (StatusCode::OK, body)
}

pub fn refusal(code: i64, libelle: &str) -> Answer {
    (
        StatusCode::BAD_REQUEST,
        json!({"codeRetour": code, "libelle": libelle}),
    )
}

fn no_result() -> Answer {
    (
        StatusCode::OK,
        json!({"codeRetour": NO_RESULT, "libelle": "TRA_MSG_00.015"}),
    )
}

/// `periodeDateHeureEtatCourantDu` / `Au` of a supplier search: the invoices whose
/// current status was set within the period, both ends included (go-choruspro
/// `RechercherFactureParFournisseurOptions`; Pastell sends `2022-01-07T10:11:47.823Z`, or a
/// date; docs/chorus-pro.md#change-driven-follow-up).
struct ChangeWindow {
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
}

impl ChangeWindow {
    fn read(body: &Value) -> Result<ChangeWindow, String> {
        let bound = |name: &str| -> Result<Option<OffsetDateTime>, String> {
            match text_field(body, name) {
                None => Ok(None),
                Some(text) => shared::chorus::parse_chorus_datetime(text)
                    .map(Some)
                    .ok_or_else(|| format!("{name} : date et heure invalides ({text})")),
            }
        };
        Ok(ChangeWindow {
            from: bound("periodeDateHeureEtatCourantDu")?,
            to: bound("periodeDateHeureEtatCourantAu")?,
        })
    }

    fn contains(&self, at: Option<OffsetDateTime>) -> bool {
        if self.from.is_none() && self.to.is_none() {
            return true;
        }
        at.is_some_and(|at| {
            self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at <= to)
        })
    }
}

/// The page asked for (`pageResultatDemandee`, from 1, of `nbResultatsParPage`), in the
/// order of the invoices' identifiers, and its `parametresRetour`.
fn one_page(found: Vec<Value>, asked: Option<&Value>) -> (Vec<Value>, Value) {
    let total = found.len();
    let size = asked
        .and_then(|p| id_field(p, &["nbResultatsParPage"]))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n > 0);
    let Some(size) = size else {
        return (found, paging(total));
    };
    let pages = total.div_ceil(size).max(1);
    let page = asked
        .and_then(|p| id_field(p, &["pageResultatDemandee"]))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let slice = found
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    let parametres =
        json!({"pageCourante": page, "pages": pages, "nbResultatsParPage": size, "total": total});
    (slice, parametres)
}

fn paging(total: usize) -> Value {
    json!({"pageCourante": 1, "pages": 1, "nbResultatsParPage": total.max(1), "total": total})
}

/// A number given as JSON number or string.
pub(super) fn id_field(body: &Value, names: &[&str]) -> Option<i64> {
    names.iter().find_map(|name| {
        let value = body.get(*name)?;
        value
            .as_i64()
            .or_else(|| value.as_str()?.trim().parse().ok())
    })
}

pub(super) fn text_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)?
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// A SIRET as the shapes setting wants it: a JSON number in the published search example.
fn siret_value(siret: &str, shapes: Shapes) -> Value {
    match (shapes, siret.parse::<u64>()) {
        (Shapes::Published, Ok(number)) => json!(number),
        _ => json!(siret),
    }
}

/// A `liste…` as the shapes setting wants it: the published example sends one element as a
/// single object.
fn liste(items: Vec<Value>, shapes: Shapes) -> Value {
    match (shapes, items.len()) {
        (Shapes::Published, 1) => items.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(items),
    }
}

/// Amounts go out as JSON numbers, as Chorus Pro sends them.
fn amount(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| t.trim().parse::<serde_json::Number>().ok())
        .map_or(Value::Null, Value::Number)
}

/// The published answer's entry, field for field (rechercher-engagement-juridique, see
/// docs/chorus-pro.md#reading-answers-liberally). The receiving structure is the supplier
/// (docs/chorus-pro.md#commitment-ej-search); the executing service is the buyer's.
fn commitment_entry(
    buyer: &SeedStructure,
    supplier: &SeedStructure,
    k: i64,
    e: &SeedCommitment,
) -> Value {
    json!({
        "idEngagementJuridique": buyer.id_structure_cpp * 100 + k,
        "libelleTypeEngagementJuridique": "BON_DE_COMMANDE",
        "numeroEngagementJuridique": e.numero_engagement_juridique,
        "structureReceptrice": supplier.siret,
        "identifiantStructureReceptrice": supplier.id_structure_cpp.to_string(),
        "libelleStructureReceptrice": supplier.designation,
        "codeServiceExecutant": e.code_service_executant,
        "libelleServiceExecutant": e.code_service_executant.as_ref().and_then(|code| {
            buyer
                .services
                .iter()
                .find(|sv| &sv.code_service == code)
                .map(|sv| sv.libelle_service.clone())
        }),
        "dateNotificationEJ": "2026-01-05T00:00:00+01:00",
        "libelleEtatCourantEJ": e.etat_courant_engagement_juridique,
        "montantTotalTtc": e.montant_total_ttc,
        "deviseEngagement": "EUR",
        "taillePJ": Value::Null,
    })
}

impl State {
    /// Answers one authenticated Chorus Pro call.
    pub fn chorus(&mut self, route: Route, login: &str, body: &[u8]) -> Answer {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return refusal(
                MALFORMED_REQUEST,
                "Le corps de la requete n'est pas un JSON valide",
            );
        };
        self.tick();
        match route {
            Route::StructuresSearch => self.search_structures(&body),
            Route::StructureRead => self.read_structure(login, &body),
            Route::ServicesSearch => self.search_services(login, &body),
            Route::ServiceRead => self.read_service(login, &body),
            Route::CommitmentsSearch => self.search_commitments(&body),
            Route::SupplierActiveStructures => self.active_structures(login),
            Route::FluxDeposit => self.deposit(login, &body),
            Route::FluxReport => self.flux_report(login, &body),
            Route::SupplierInvoicesSearch => self.search_invoices(login, &body),
            Route::InvoiceHistory => self.invoice_history(login, &body),
            Route::FluxFormats => self.flux_formats(),
            Route::InvoiceRecycle => self.recycle(login, &body),
            Route::FileUpload => self.upload_file(login, &body),
            Route::InvoiceComplete => self.complete(login, &body),
            Route::InvoiceSubmit => self.submit(login, &body),
            Route::WorksInvoicesSearch => self.search_works(login, &body),
            Route::WorksInvoiceRead => self.read_works(login, &body),
            Route::WorksInvoiceRecycle => self.recycle_works(login, &body),
        }
    }

    fn search_structures(&self, body: &Value) -> Answer {
        let criteria = body.get("structure").cloned().unwrap_or(Value::Null);
        let identifier = text_field(&criteria, "identifiantStructure");
        let kind = text_field(&criteria, "typeIdentifiantStructure");
        let name = text_field(&criteria, "raisonSocialeStructure").map(str::to_uppercase);
        let public_only = body
            .get("restreindreStructuresPrivees")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if kind.is_some_and(|k| k != "SIRET") {
            return ok(json!({"listeStructures": [], "parametresRetour": paging(0)}));
        }
        let shapes = self.settings.shapes;
        let found: Vec<Value> = self
            .seed()
            .structures
            .iter()
            .filter(|s| identifier.is_none_or(|id| s.siret == id))
            .filter(|s| {
                name.as_ref()
                    .is_none_or(|n| s.designation.contains(n.as_str()))
            })
            .filter(|s| s.public || !public_only)
            .map(|s| {
                json!({
                    "idStructureCPP": s.id_structure_cpp,
                    "identifiantStructure": siret_value(&s.siret, shapes),
                    "designationStructure": s.designation,
                    "statut": "ACTIVE",
                    "typeIdentifiantStructure": "SIRET",
                })
            })
            .collect();
        let total = found.len();
        ok(json!({"listeStructures": found, "parametresRetour": paging(total)}))
    }

    fn read_structure(&self, login: &str, body: &Value) -> Answer {
        // OCA sends idStructureCPP, GO idStructure: both are read.
        let Some(id) = id_field(body, &["idStructureCPP", "idStructure"]) else {
            return refusal(MALFORMED_REQUEST, "idStructureCPP est obligatoire");
        };
        let Some(structure) = self.visible_structure(login, id) else {
            return refusal(UNKNOWN_OBJECT, "Structure inconnue ou non accessible");
        };
        let mut general = json!({
            "emailStructure": "",
            "idStructureCPP": structure.id_structure_cpp,
            "identifiantStructure": structure.siret,
            "typeIdentifiantStructure": "SIRET",
            "libelleStructure": structure.designation,
            "raisonSocialeStructure": structure.designation,
            "structurePriveePublique": if structure.public { "PUBLIQUE" } else { "PRIVEE" },
        });
        // Reported by GO only (unconfirmed): shown to the structure's own accounts.
        if let Some(account) = self.account(login)
            && account.structures.contains(&id)
        {
            general["dateExpirationMotPasseCompteTech"] = json!(account.expires_on.to_string());
        }
        let flags = &structure.parametres;
        ok(json!({
            "informationGenerales": general,
            "parametres": {
                "codeServiceDoitEtreRenseigne": flags.code_service_doit_etre_renseigne,
                "numeroEJDoitEtreRenseigne": flags.numero_ej_doit_etre_renseigne,
                "gestionNumeroEJOuCodeService": flags.gestion_numero_ej_ou_code_service,
                "estMoaUniquement": flags.est_moa_uniquement,
                "statutMiseEnPaiementNestPasRemonte": flags.statut_mise_en_paiement_nest_pas_remonte,
                "connexionEDI": false,
                "recevoirDonneesViaEDI": false,
            },
            "adressePostaleDuSiege": {
                "adresse": "1 place de la Mairie", "codePostal": "69000",
                "complementAdresse1": "", "complementAdresse2": "",
                "fax": "", "indicatifFax": "+33", "indicatifTelephone": "+33",
                "pays": "France", "telephone": "472000000", "ville": "LYON",
            },
        }))
    }

    /// Pages as the published example's `parametresRechercherServicesStructure`
    /// (`nbResultatsParPage`, `pageResultatDemandee` from 1) and `parametresRetour`; a page
    /// holds at most the seed's `servicesPerPage` (docs/chorus-pro.md#calls-the-gateway-makes).
    fn search_services(&self, login: &str, body: &Value) -> Answer {
        let Some(id) = id_field(body, &["idStructure", "idStructureCPP"]) else {
            return refusal(MALFORMED_REQUEST, "idStructure est obligatoire");
        };
        let Some(structure) = self.visible_structure(login, id) else {
            return refusal(UNKNOWN_OBJECT, "Structure inconnue ou non accessible");
        };
        let asked = body
            .get("parametresRechercherServicesStructure")
            .cloned()
            .unwrap_or(Value::Null);
        let per_page = id_field(&asked, &["nbResultatsParPage"])
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0)
            .unwrap_or(usize::MAX)
            .min(self.seed().services_per_page.max(1) as usize);
        let page = id_field(&asked, &["pageResultatDemandee"])
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0)
            .unwrap_or(1);
        let total = structure.services.len();
        let services: Vec<Value> = structure
            .services
            .iter()
            .skip((page - 1).saturating_mul(per_page))
            .take(per_page)
            .map(|s| {
                json!({
                    "idService": s.id_service,
                    "codeService": s.code_service,
                    "libelleService": s.libelle_service,
                    "estActif": s.est_actif,
                    "dateDbtService": "2020-01-01 00:00",
                })
            })
            .collect();
        let pages = total.div_ceil(per_page).max(1);
        ok(json!({
            "listeServices": services,
            "parametresRetour": {"pageCourante": page, "pages": pages, "nbResultatsParPage": per_page, "total": total},
        }))
    }

    fn read_service(&self, login: &str, body: &Value) -> Answer {
        let (Some(structure_id), Some(service_id)) = (
            id_field(body, &["idStructure", "idStructureCPP"]),
            id_field(body, &["idService"]),
        ) else {
            return refusal(
                MALFORMED_REQUEST,
                "idStructure et idService sont obligatoires",
            );
        };
        let service = self
            .visible_structure(login, structure_id)
            .and_then(|s| s.services.iter().find(|sv| sv.id_service == service_id));
        let Some(service) = service else {
            return refusal(UNKNOWN_OBJECT, "Service inconnu ou non accessible");
        };
        ok(json!({
            "adressePostale": {
                "adresse": "1 place de la Mairie", "codePostal": "69000", "complementAdresse1": "",
                "fax": "", "pays": "France", "telephone": "472000000", "ville": "LYON",
            },
            "informationsGenerales": {
                "codeService": service.code_service,
                "nomService": service.libelle_service,
                "descriptionService": service.libelle_service,
            },
            "parametres": {
                "dateCreation": "2020-01-01T00:00:00.000+01:00",
                "dateDebutValidite": "2020-01-01T00:00:00.000+01:00",
                "numeroEngagement": service.numero_engagement,
            },
        }))
    }

    /// Commitments are issued by a buyer **to** a supplier: the criterion
    /// `structureReceptriceEngagementJuridique` is the supplier's own `idStructureCPP`, as
    /// OCA sends it (docs/chorus-pro.md#commitment-ej-search). A buyer's id there finds
    /// nothing.
    fn search_commitments(&self, body: &Value) -> Answer {
        let Some(id) = id_field(body, &["structureReceptriceEngagementJuridique"]) else {
            return refusal(
                MALFORMED_REQUEST,
                "structureReceptriceEngagementJuridique est obligatoire",
            );
        };
        let number = text_field(body, "numeroEngagementJuridique");
        let state = text_field(body, "etatCourantEngagementJuridique");
        let Some(supplier) = self.structure_by_id(id).filter(|s| !s.public) else {
            return ok(json!({"listeEngagementJuridique": [], "parametresRetour": paging(0)}));
        };
        let found: Vec<Value> = self
            .seed()
            .structures
            .iter()
            .flat_map(|buyer| {
                (1_i64..)
                    .zip(buyer.engagements.iter())
                    .map(move |(k, e)| (buyer, k, e))
            })
            .filter(|(_, _, e)| e.fournisseur == supplier.siret)
            .filter(|(_, _, e)| number.is_none_or(|n| e.numero_engagement_juridique == n))
            .filter(|(_, _, e)| state.is_none_or(|st| e.etat_courant_engagement_juridique == st))
            .map(|(buyer, k, e)| commitment_entry(buyer, supplier, k, e))
            .collect();
        let total = found.len();
        ok(json!({"listeEngagementJuridique": found, "parametresRetour": paging(total)}))
    }

    /// `transverses/v1/recuperer/formatflux`, in GO's shape (`listeFormatFlux[].formatFlux`):
    /// the syntaxes this emulator accepts now (the seed's, or what `/_admin/settings` set),
    /// so that what it lists and what `deposer/flux` takes never disagree.
    fn flux_formats(&self) -> Answer {
        let formats: Vec<Value> = self
            .settings
            .accepted_syntaxes
            .iter()
            .map(|syntax| json!({"formatFlux": syntax}))
            .collect();
        ok(json!({"listeFormatFlux": formats}))
    }

    fn active_structures(&self, login: &str) -> Answer {
        let structures: Vec<Value> = self
            .account(login)
            .map(|a| a.structures.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| self.structure_by_id(id))
            .map(|s| {
                json!({
                    "idStructureCPP": s.id_structure_cpp,
                    "identifiant": s.siret,
                    "designationStructure": s.designation,
                })
            })
            .collect();
        ok(json!({"listeStructures": structures}))
    }

    /// Checks the envelope and that the file is a readable UBL invoice; the content rules
    /// (seller, number, buyer, duplicates) answer later through `IN_REJETE`, as Chorus Pro
    /// reports them after integration (official example, INV's live rejections).
    fn deposit(&mut self, login: &str, body: &Value) -> Answer {
        let (Some(file), Some(name), Some(syntax)) = (
            text_field(body, "fichierFlux"),
            text_field(body, "nomFichier"),
            text_field(body, "syntaxeFlux"),
        ) else {
            return refusal(
                MALFORMED_REQUEST,
                "fichierFlux, nomFichier et syntaxeFlux sont obligatoires",
            );
        };
        if !self.accepts_syntax(syntax) {
            return refusal(
                SYNTAX_NOT_ACCEPTED,
                &format!("La syntaxe de flux {syntax} n'est pas acceptee"),
            );
        }
        // Decoded size is at most 3/4 of the text: refuse an oversize file before decoding.
        if file.len() / 4 * 3 > MAX_FLUX_BYTES + 3 {
            return refusal(FILE_TOO_LARGE, "GDP_MSG_11.022");
        }
        let Ok(bytes) = BASE64.decode(file) else {
            return refusal(NOT_BASE64, "Le fichier du flux n'est pas encode en base64");
        };
        if bytes.len() > MAX_FLUX_BYTES {
            return refusal(FILE_TOO_LARGE, "GDP_MSG_11.022");
        }
        let invoice = std::str::from_utf8(&bytes)
            .map_err(|_| "le fichier n'est pas du texte UTF-8".to_owned())
            .and_then(UblInvoice::read);
        let invoice = match invoice {
            Ok(invoice) => invoice,
            Err(reason) => {
                return refusal(
                    UNREADABLE_FILE,
                    &format!("Le fichier du flux est illisible : {reason}"),
                );
            }
        };
        let numero = self.record_deposit(login, syntax, name, invoice);
        ok(json!({
            "numeroFluxDepot": numero,
            "dateDepot": super::state::today().to_string(),
            "syntaxeFlux": syntax,
        }))
    }

    fn flux_visible(flux: &Flux, login: &str, structures: &[i64]) -> bool {
        flux.login == login
            || flux
                .account_structures
                .iter()
                .any(|s| structures.contains(s))
    }

    pub(super) fn account_structures(&self, login: &str) -> Vec<i64> {
        self.account(login)
            .map(|a| a.structures.clone())
            .unwrap_or_default()
    }

    fn flux_report(&mut self, login: &str, body: &Value) -> Answer {
        let Some(numero) = text_field(body, "numeroFluxDepot") else {
            return refusal(MALFORMED_REQUEST, "numeroFluxDepot est obligatoire");
        };
        let structures = self.account_structures(login);
        let Some(index) = self
            .fluxes
            .iter()
            .position(|f| f.numero == numero && Self::flux_visible(f, login, &structures))
        else {
            return refusal(UNKNOWN_OBJECT, "Flux inconnu");
        };
        let flux = &self.fluxes[index];
        let errors: Vec<Value> = flux
            .errors
            .iter()
            .map(|e| {
                json!({
                    "identifiantDestinataire": e.buyer,
                    "identifiantFournisseur": e.supplier,
                    "libelleErreurDP": e.message,
                    "numeroDP": e.number,
                })
            })
            .collect();
        // The published answer's fields (show-detailed-report); no `listeErreurTechnique`.
        let answer = ok(json!({
            "codeInterfaceDepotFlux": "FSO1110A",
            "dateDepotFlux": chorus_datetime(flux.deposited_at),
            "dateHeureEtatCourantFlux": chorus_datetime(flux.state_at),
            "etatCourantDepotFlux": flux.state,
            "listeErreurDP": liste(errors, self.settings.shapes),
            "nomFichier": format!("FSO1110A_CPP001_{}", flux.numero),
        }));
        if self.polled() {
            self.process_flux(index);
        }
        answer
    }

    fn search_invoices(&mut self, login: &str, body: &Value) -> Answer {
        let structures = self.account_structures(login);
        let by_flux = text_field(body, "numeroFluxDepot").map(str::to_owned);
        let by_number = text_field(body, "numeroFacture").map(str::to_owned);
        let by_supplier = id_field(body, &["idFournisseur"]);
        let statuses: Vec<String> = body
            .get("statutCourant")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let changed = match ChangeWindow::read(body) {
            Ok(window) => window,
            Err(message) => return refusal(MALFORMED_REQUEST, &message),
        };
        let found: Vec<Value> = self
            .invoices
            .iter()
            .filter(|i| structures.contains(&i.supplier_id))
            .filter(|i| by_flux.as_ref().is_none_or(|f| &i.numero_flux == f))
            .filter(|i| by_number.as_ref().is_none_or(|n| &i.numero == n))
            .filter(|i| by_supplier.is_none_or(|s| i.supplier_id == s))
            .filter(|i| {
                statuses.is_empty() || i.current().is_some_and(|h| statuses.contains(&h.statut))
            })
            .filter(|i| changed.contains(i.current().map(|h| h.recorded_at)))
            .map(|i| self.invoice_summary(i))
            .collect();
        // A search is a poll of the fluxes it names: a pending one is integrated after.
        if self.polled() {
            let pending: Vec<usize> = (0..self.fluxes.len())
                .filter(|&k| {
                    let f = &self.fluxes[k];
                    Self::flux_visible(f, login, &structures)
                        && (by_flux.as_ref() == Some(&f.numero)
                            || by_number.as_ref() == Some(&f.invoice.number))
                })
                .collect();
            for index in pending {
                self.process_flux(index);
            }
        }
        if found.is_empty() {
            return no_result();
        }
        let (page, parametres) = one_page(found, body.get("rechercheFactureParFournisseur"));
        ok(json!({"listeFactures": page, "parametresRetour": parametres}))
    }

    fn invoice_summary(&self, invoice: &Invoice) -> Value {
        let supplier = self.structure_by_id(invoice.supplier_id);
        let buyer = self.structure_by_id(invoice.buyer_id);
        let current = invoice.current();
        let data = &invoice.data;
        json!({
            "identifiantFactureCPP": invoice.id,
            "numeroFacture": invoice.numero,
            "statut": current.map(|h| h.statut.clone()),
            "commentaireEtatCourant": current.and_then(|h| h.commentaire.clone()),
            "dateHeureEtatCourant": current.map(|h| chorus_datetime(h.recorded_at)),
            "numeroFluxDepot": invoice.numero_flux,
            "dateDepot": invoice.deposited_at.date().to_string(),
            "dateFacture": data.issue_date,
            "idDestinataire": invoice.buyer_id,
            "codeDestinataire": buyer.map(|b| b.siret.clone()),
            "designationDestinataire": buyer.map(|b| b.designation.clone()),
            "codeServiceExecutant": data.service_code,
            "idFournisseur": invoice.supplier_id,
            "codeFournisseur": supplier.map(|s| s.siret.clone()),
            "designationFournisseur": supplier.map(|s| s.designation.clone()),
            "numeroBonCommande": data.commitment_number,
            "numeroMarche": data.market_number,
            "typeFacture": if data.credit_note { "AVOIR" } else { "FACTURE" },
            "typeDemandePaiement": "FACTURE",
            "devise": data.currency,
            "montantHT": amount(&data.tax_exclusive_amount),
            "montantTTC": amount(&data.tax_inclusive_amount),
            "montantAPayer": amount(&data.payable_amount),
            "modeDepot": "DEPOT_FLUX",
        })
    }

    fn invoice_history(&mut self, login: &str, body: &Value) -> Answer {
        let Some(id) = id_field(body, &["idFacture", "identifiantFactureCPP"]) else {
            return refusal(MALFORMED_REQUEST, "idFacture est obligatoire");
        };
        let structures = self.account_structures(login);
        let Some(index) = self
            .invoices
            .iter()
            .position(|i| i.id == id && structures.contains(&i.supplier_id))
        else {
            return refusal(UNKNOWN_OBJECT, "Facture inconnue ou non accessible");
        };
        let invoice = &self.invoices[index];
        // Newest first: Pastell notes a default descending sort on the date.
        let entries: Vec<Value> = invoice
            .history
            .iter()
            .rev()
            .map(|h| {
                json!({
                    "histoStatutId": h.id,
                    "histoStatutCode": h.statut,
                    "histoStatutCommentaire": h.commentaire,
                    "histoStatutDatePassage": chorus_datetime(h.at),
                })
            })
            .collect();
        let total = entries.len();
        let answer = ok(json!({
            "idFacture": invoice.id,
            "numeroFacture": invoice.numero,
            "modeDepot": "DEPOT_FLUX",
            "statutCourantCode": invoice.current().map(|h| h.statut.clone()),
            "historiquesDesStatuts": {
                "histoStatut": entries,
                "nbResultatsParPageHistoStatut": total.max(1),
                "pageCouranteHistoStatut": 1,
                "pagesHistoStatut": 1,
                "totalHistoStatut": total,
            },
        }));
        if self.polled() {
            self.advance_invoice(index);
        }
        answer
    }
}
