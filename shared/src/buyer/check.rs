//! Checking a market's buyer and *maître d'œuvre* in Chorus Pro with the company's
//! technical account (docs/chorus-pro.md#buyer-requirements): find the structure by SIRET,
//! read what it requires, read its services when a code is given or needed, read the
//! chosen service's own rule, and look the commitment number up among those issued to the
//! company (docs/chorus-pro.md#commitment-ej-search). The calls (`structure`) gather
//! facts; `shared::domain::market::assess_buyer` decides.

use crate::chorus::{ChorusClient, CommitmentSearchRequest, ServiceSummary, TechnicalAccount};
use crate::domain::market::{
    BuyerFacts, BuyerFault, BuyerFaultKind, BuyerRecord, BuyerService, CommitmentCheck,
    CommitmentNumber, ProjectManager, ServiceCode, assess_buyer,
};
use crate::domain::{CompanyAccount, MarketTerms};
use crate::http::{FieldError, Problem, ProblemCode, chorus_problem};

use super::structure::{self, Lookup, Structure};

fn buyer_not_found(siret: &str, why: &str) -> Problem {
    let message = format!(
        "Aucune structure accessible n'est enregistrée dans Chorus Pro sous le SIRET {siret}{why} : vérifiez le SIRET de l'acheteur public (il figure sur l'acte d'engagement ou le bon de commande). Rien n'a été enregistré."
    );
    Problem::new(ProblemCode::BuyerNotFound, message.clone()).with_errors(vec![FieldError::new(
        "buyer_siret",
        "buyer_not_found",
        message,
    )])
}

/// The buyer's structure, or why the market cannot be addressed to it.
async fn buyer_structure(
    chorus: &ChorusClient,
    tech: &TechnicalAccount,
    siret: &str,
) -> Result<Structure, Problem> {
    match structure::find(chorus, tech, siret).await? {
        Lookup::Found(s) if s.active => Ok(s),
        Lookup::Found(_) => Err(buyer_not_found(siret, " (structure inactive)")),
        Lookup::Unreadable => Err(buyer_not_found(
            siret,
            " (structure trouvée mais non consultable)",
        )),
        Lookup::Absent => Err(buyer_not_found(siret, "")),
    }
}

/// The buyer's services when the market needs them, and the given service's own rule.
async fn service_facts(
    chorus: &ChorusClient,
    tech: &TechnicalAccount,
    buyer: &Structure,
    terms: &MarketTerms,
) -> Result<(Option<Vec<BuyerService>>, bool), Problem> {
    let code = terms.buyer_service_code.as_ref();
    if !buyer
        .rule
        .needs_services(code.is_some(), terms.commitment_number.is_some())
    {
        return Ok((None, false));
    }
    let listed = structure::all_services(chorus, tech, buyer.id).await?;
    let chosen = code.and_then(|code| {
        listed
            .iter()
            .find(|s| s.code_service == code.as_str() && s.est_actif)
    });
    let requires_commitment = match chosen {
        None => false,
        Some(service) => {
            structure::service_requires_commitment(chorus, tech, buyer.id, service.id_service)
                .await?
                .ok_or_else(|| {
                    Problem::new(
                        ProblemCode::ServiceInactive,
                        format!(
                            "Chorus Pro ne donne pas accès au service « {} » de l'acheteur : vérifiez le code service auprès de l'acheteur. Rien n'a été enregistré.",
                            service.code_service
                        ),
                    )
                })?
        }
    };
    let services = listed
        .into_iter()
        .map(|s| BuyerService {
            code: s.code_service,
            active: s.est_actif,
        })
        .collect();
    Ok((Some(services), requires_commitment))
}

/// Looks the number up among the ordered commitments issued to the company. Nothing found,
/// a refused search or an unknown company structure cannot confirm the number, and never
/// disprove it (docs/chorus-pro.md#commitment-ej-search): `NotPublished`.
async fn commitment_check(
    chorus: &ChorusClient,
    tech: &TechnicalAccount,
    account: &CompanyAccount,
    number: Option<&CommitmentNumber>,
) -> Result<CommitmentCheck, Problem> {
    let Some(number) = number else {
        return Ok(CommitmentCheck::NotGiven);
    };
    let Some(company) = structure::company_structure(chorus, tech, account).await? else {
        tracing::info!("company structure unknown: commitment cannot be confirmed");
        return Ok(CommitmentCheck::NotPublished);
    };
    let request = CommitmentSearchRequest::ordered(company, number.as_str());
    match chorus.search_commitments(tech, &request).await {
        Ok(found) if found.confirms(number.as_str()) => Ok(CommitmentCheck::Found),
        Ok(_) => Ok(CommitmentCheck::NotPublished),
        Err(crate::chorus::ChorusError::BusinessRefusal { code_retour, .. }) => {
            tracing::info!(code_retour, "commitment search refused");
            Ok(CommitmentCheck::NotPublished)
        }
        Err(e) => Err(chorus_problem(&e)),
    }
}

fn refusal(faults: &[BuyerFault], name: Option<&str>, buyer_siret: &str) -> Problem {
    let buyer = match name {
        Some(name) => format!("{name} (SIRET {buyer_siret})"),
        None => format!("l'acheteur (SIRET {buyer_siret})"),
    };
    let code = if faults
        .iter()
        .any(|f| f.kind() == BuyerFaultKind::ServiceInactive)
    {
        ProblemCode::ServiceInactive
    } else {
        ProblemCode::BuyerRequirementsUnmet
    };
    let errors: Vec<FieldError> = faults
        .iter()
        .map(|f| FieldError::new(f.field(), f.code(), f.message_fr(&buyer)))
        .collect();
    let detail = format!(
        "{} Rien n'a été enregistré.",
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    Problem::new(code, detail).with_errors(errors)
}

/// What Chorus Pro says of the market's buyer, or why the market cannot be invoiced.
pub async fn check(
    chorus: &ChorusClient,
    tech: &TechnicalAccount,
    account: &CompanyAccount,
    terms: &MarketTerms,
    now: time::OffsetDateTime,
) -> Result<BuyerRecord, Problem> {
    let buyer_siret = terms.buyer_siret.as_str();
    let buyer = buyer_structure(chorus, tech, buyer_siret).await?;
    let ((services, service_requires_commitment), commitment) = tokio::try_join!(
        service_facts(chorus, tech, &buyer, terms),
        commitment_check(chorus, tech, account, terms.commitment_number.as_ref())
    )?;
    let facts = BuyerFacts {
        rule: buyer.rule,
        services,
        service_requires_commitment,
        commitment,
    };
    let service_code = terms.buyer_service_code.as_ref();
    if let Err(faults) = assess_buyer(service_code, terms.commitment_number.as_ref(), &facts) {
        tracing::info!(
            faults = ?faults.iter().map(|f| f.code()).collect::<Vec<_>>(),
            requirement = buyer.rule.as_str(),
            "market refused by the buyer's rules"
        );
        return Err(refusal(&faults, buyer.name.as_deref(), buyer_siret));
    }
    Ok(BuyerRecord {
        name: buyer.name,
        chorus_structure_id: buyer.id,
        rule: buyer.rule,
        service_requires_commitment,
        commitment,
        checked_at: now,
    })
}

fn project_manager_not_found(field: &str, code: &str, message: String) -> Problem {
    let detail = format!("{message} Rien n'a été enregistré.");
    Problem::new(ProblemCode::ProjectManagerNotFound, detail)
        .with_errors(vec![FieldError::new(field, code, message)])
}

/// The codes an MOE's service could be, for the message.
fn active_codes(services: &[ServiceSummary]) -> String {
    let codes: Vec<&str> = services
        .iter()
        .filter(|s| s.est_actif && !s.is_reserved_for_public_bodies())
        .map(|s| s.code_service.as_str())
        .collect();
    match codes.as_slice() {
        [] => {
            " Ce maître d'œuvre n'a aucun service actif dans Chorus Pro : retirez le code service."
                .to_owned()
        }
        many => format!(" Services actifs : {}.", many.join(", ")),
    }
}

/// The *maître d'œuvre* must be a structure Chorus Pro knows, active, and its service (if
/// given) known and active, like a buyer: works statements are addressed to it first.
pub async fn check_project_manager(
    chorus: &ChorusClient,
    tech: &TechnicalAccount,
    moe: &ProjectManager,
) -> Result<(), Problem> {
    let siret = moe.siret.as_str();
    let found = match structure::find(chorus, tech, siret).await? {
        Lookup::Found(s) if s.active => s,
        // Listed by the search, but its details are not shown to this account (a private
        // structure may keep them to its own accounts, unconfirmed): known, which is all a
        // project manager without a service code needs.
        Lookup::Unreadable if moe.service_code.is_none() => return Ok(()),
        Lookup::Unreadable => {
            return Err(project_manager_not_found(
                "project_manager.service_code",
                "unknown_service",
                format!(
                    "Chorus Pro ne montre pas les services du maître d'œuvre (SIRET {siret}) à ce compte : le code service ne peut pas être vérifié. Vérifiez-le auprès du maître d'œuvre, ou retirez-le s'il n'en a pas."
                ),
            ));
        }
        Lookup::Found(_) => {
            return Err(project_manager_not_found(
                "project_manager.siret",
                "inactive_structure",
                format!(
                    "La structure du maître d'œuvre (SIRET {siret}) est inactive dans Chorus Pro : un document de travaux qui lui serait adressé serait rejeté. Vérifiez le SIRET auprès du maître d'œuvre."
                ),
            ));
        }
        Lookup::Absent => {
            return Err(project_manager_not_found(
                "project_manager.siret",
                "unknown_structure",
                format!(
                    "Aucune structure accessible n'est enregistrée dans Chorus Pro sous le SIRET {siret} du maître d'œuvre : vérifiez-le (il figure sur l'acte d'engagement ou l'ordre de service)."
                ),
            ));
        }
    };
    let Some(code) = moe.service_code.as_ref() else {
        return Ok(());
    };
    let services = structure::all_services(chorus, tech, found.id).await?;
    match services.iter().find(|s| s.code_service == code.as_str()) {
        Some(s) if s.est_actif => Ok(()),
        Some(_) => Err(moe_service_refused(
            code,
            siret,
            "inactive_service",
            "est inactif",
            &services,
        )),
        None => Err(moe_service_refused(
            code,
            siret,
            "unknown_service",
            "n'existe pas",
            &services,
        )),
    }
}

fn moe_service_refused(
    code: &ServiceCode,
    siret: &str,
    field_code: &str,
    what: &str,
    services: &[ServiceSummary],
) -> Problem {
    project_manager_not_found(
        "project_manager.service_code",
        field_code,
        format!(
            "Le service « {code} » du maître d'œuvre (SIRET {siret}) {what} dans Chorus Pro : vérifiez le code service auprès du maître d'œuvre.{}",
            active_codes(services)
        ),
    )
}
