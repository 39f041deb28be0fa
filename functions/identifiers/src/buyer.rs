//! Checking a market's buyer in Chorus Pro with the company's technical account
//! (docs/chorus-pro.md#buyer-requirements): find the structure by SIRET, read what it requires, read its services
//! when a code is given or needed, read the chosen service's own rule, and look the
//! commitment number up where the buyer publishes its commitments. The calls gather
//! facts; `shared::domain::market::assess_buyer` decides.
//!
//! Calls: `structures/v1/rechercher`, `structures/v1/consulter`, then in parallel
//! (services) `rechercher/services` and `consulter/service`, and (commitment)
//! `engagementsJuridiques/v1/rechercher` once, or twice when the number is not found (the
//! second asks whether the buyer publishes any commitment at all).

use shared::chorus::{
    BuyerRequirement, ChorusError, CommitmentSearchRequest, ServiceReadRequest,
    ServiceSearchRequest, StructureReadRequest, StructureSearchRequest, TechnicalAccount,
};
use shared::domain::market::{
    BuyerFacts, BuyerFaultKind, BuyerRecord, BuyerRule, BuyerService, CommitmentCheck, assess_buyer,
};
use shared::domain::{CompanyAccount, MarketTerms};
use shared::http::{FieldError, Problem, ProblemCode, chorus_problem};

use crate::State;

fn rule_of(requirement: BuyerRequirement) -> BuyerRule {
    match requirement {
        BuyerRequirement::None => BuyerRule::None,
        BuyerRequirement::Service => BuyerRule::ServiceCode,
        BuyerRequirement::Commitment => BuyerRule::CommitmentNumber,
        BuyerRequirement::ServiceAndCommitment => BuyerRule::Both,
        BuyerRequirement::ServiceOrCommitment => BuyerRule::Either,
    }
}

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

/// What Chorus Pro says of the market's buyer, or why the market cannot be invoiced.
pub async fn check(
    state: &State,
    account: &CompanyAccount,
    terms: &MarketTerms,
) -> Result<BuyerRecord, Problem> {
    let stored = state
        .secrets
        .technical_account(&account.siret, &account.password_version)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "stored technical account unreadable");
            Problem::service_unavailable()
        })?;
    let tech = TechnicalAccount::new(stored.login, stored.password);
    let chorus = &state.chorus;
    let buyer_siret = terms.buyer_siret.as_str();

    let found = chorus
        .search_structures(&tech, &StructureSearchRequest::by_siret(buyer_siret))
        .await
        .map_err(|e| chorus_problem(&e))?;
    let Some(structure) = found
        .liste_structures
        .iter()
        .find(|s| s.identifiant_structure == buyer_siret)
    else {
        return Err(buyer_not_found(buyer_siret, ""));
    };
    let id = structure.id_structure_cpp;
    let read = match chorus
        .read_structure(&tech, &StructureReadRequest::new(id))
        .await
    {
        Ok(read) => read,
        Err(ChorusError::BusinessRefusal { code_retour, .. }) => {
            tracing::warn!(code_retour, "buyer structure found but not readable");
            return Err(buyer_not_found(
                buyer_siret,
                " (structure trouvée mais non consultable)",
            ));
        }
        Err(e) => return Err(chorus_problem(&e)),
    };
    let rule = rule_of(read.requirement());
    let general = read.information_generales.as_ref();
    let name = general
        .and_then(|g| {
            g.raison_sociale_structure
                .clone()
                .or_else(|| g.libelle_structure.clone())
        })
        .or_else(|| structure.designation_structure.clone());

    let service_code = terms.buyer_service_code.as_ref();
    let commitment = terms.commitment_number.as_ref();
    let services = async {
        if !rule.needs_services(service_code.is_some(), commitment.is_some()) {
            return Ok((None, false));
        }
        let listed = chorus
            .search_services(&tech, &ServiceSearchRequest::all(id))
            .await
            .map_err(|e| chorus_problem(&e))?;
        let chosen = service_code.and_then(|code| {
            listed
                .liste_services
                .iter()
                .find(|s| s.code_service == code.as_str() && s.est_actif)
        });
        let requires_commitment = match chosen {
            None => false,
            Some(service) => match chorus
                .read_service(&tech, &ServiceReadRequest::new(id, service.id_service))
                .await
            {
                Ok(read) => read.requires_commitment(),
                Err(ChorusError::BusinessRefusal { code_retour, .. }) => {
                    tracing::warn!(code_retour, "buyer service listed but not readable");
                    return Err(Problem::new(
                        ProblemCode::ServiceInactive,
                        format!(
                            "Chorus Pro ne donne pas accès au service « {} » de l'acheteur (code retour {code_retour}) : vérifiez le code service auprès de l'acheteur. Rien n'a été enregistré.",
                            service.code_service
                        ),
                    ));
                }
                Err(e) => return Err(chorus_problem(&e)),
            },
        };
        let services: Vec<BuyerService> = listed
            .liste_services
            .into_iter()
            .map(|s| BuyerService {
                code: s.code_service,
                active: s.est_actif,
            })
            .collect();
        Ok((Some(services), requires_commitment))
    };
    let commitment_check = async {
        let Some(number) = commitment else {
            return Ok(CommitmentCheck::NotGiven);
        };
        let tech = &tech;
        let search = |request: CommitmentSearchRequest| async move {
            match chorus.search_commitments(tech, &request).await {
                // Read with the published names (`libelleEtatCourantEJ`, …): an entry in
                // another state than ordered (`COMMANDE`) does not count.
                Ok(found) => {
                    Ok(Some(found.liste_engagement_juridique.iter().any(|c| {
                        c.libelle_etat_courant_ej.is_none() || c.is_ordered()
                    })))
                }
                // The search is refused by some buyers: the number cannot be checked there.
                Err(ChorusError::BusinessRefusal { code_retour, .. }) => {
                    tracing::info!(code_retour, "commitment search refused");
                    Ok(None)
                }
                Err(e) => Err(chorus_problem(&e)),
            }
        };
        Ok(
            match search(CommitmentSearchRequest::ordered(id, number.as_str())).await? {
                Some(true) => CommitmentCheck::Found,
                None => CommitmentCheck::NotPublished,
                Some(false) => match search(CommitmentSearchRequest::published_by(id)).await? {
                    Some(true) => CommitmentCheck::Absent,
                    _ => CommitmentCheck::NotPublished,
                },
            },
        )
    };
    let ((services, service_requires_commitment), commitment_check) =
        tokio::try_join!(services, commitment_check)?;

    let facts = BuyerFacts {
        rule,
        services,
        service_requires_commitment,
        commitment: commitment_check,
    };
    if let Err(faults) = assess_buyer(service_code, commitment, &facts) {
        let buyer = match &name {
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
        tracing::info!(
            faults = ?faults.iter().map(|f| f.code()).collect::<Vec<_>>(),
            requirement = rule.as_str(),
            "market refused by the buyer's rules"
        );
        return Err(Problem::new(code, detail).with_errors(errors));
    }
    Ok(BuyerRecord {
        name,
        chorus_structure_id: id,
        rule,
        service_requires_commitment,
        commitment: commitment_check,
        checked_at: state.clock.now(),
    })
}
