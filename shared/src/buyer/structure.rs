//! Looking a structure up in Chorus Pro with the company's technical account: the one
//! code path behind a market's buyer check, its *maître d'œuvre* check and the buyer
//! look-up route (docs/chorus-pro.md#buyer-requirements).
//!
//! Calls: `structures/v1/rechercher` (by SIRET), `structures/v1/consulter`, every page of
//! `structures/v1/rechercher/services`, `structures/v1/consulter/service`, and
//! `transverses/v1/recuperer/structures/actives/fournisseur` for the company's own
//! structure when its account does not hold it yet.

use std::sync::Arc;

use crate::chorus::{
    ChorusClient, ChorusError, ServiceReadRequest, ServiceSearchRequest, ServiceSummary,
    StructureReadRequest, StructureSearchRequest, TechnicalAccount,
};
use crate::domain::CompanyAccount;
use crate::domain::market::BuyerRule;
use crate::http::{Problem, chorus_problem};

use crate::secrets::SecretStore;

/// Pages of services read at most: 20 pages of 1000 is beyond any structure known; the
/// bound only stops a Chorus Pro that would keep announcing more pages.
const MAX_SERVICE_PAGES: u32 = 20;

/// `consulter/service` calls in flight at once for the look-up route.
const SERVICE_READS_IN_FLIGHT: usize = 4;

/// A structure Chorus Pro knows, as far as invoicing it is concerned.
pub struct Structure {
    pub id: i64,
    pub name: Option<String>,
    pub active: bool,
    pub rule: BuyerRule,
}

/// What the SIRET search and the structure read found.
pub enum Lookup {
    Found(Structure),
    /// No structure has this SIRET.
    Absent,
    /// Listed, but `consulter` refuses it: not a structure this account can invoice.
    Unreadable,
}

/// The company's technical account, from the secret version its account item names.
pub async fn technical_account(
    secrets: &SecretStore,
    account: &CompanyAccount,
) -> Result<TechnicalAccount, Problem> {
    secrets.technical_account_of(account).await.map_err(|e| {
        tracing::error!(error = %e, "stored technical account unreadable");
        Problem::service_unavailable()
    })
}

fn rule_of(requirement: crate::chorus::BuyerRequirement) -> BuyerRule {
    use crate::chorus::BuyerRequirement as R;
    match requirement {
        R::None => BuyerRule::None,
        R::Service => BuyerRule::ServiceCode,
        R::Commitment => BuyerRule::CommitmentNumber,
        R::ServiceAndCommitment => BuyerRule::Both,
        R::ServiceOrCommitment => BuyerRule::Either,
    }
}

/// Finds the structure by SIRET and reads what it requires.
pub async fn find(
    chorus: &ChorusClient,
    tech: &TechnicalAccount,
    siret: &str,
) -> Result<Lookup, Problem> {
    let found = chorus
        .search_structures(tech, &StructureSearchRequest::by_siret(siret))
        .await
        .map_err(|e| chorus_problem(&e))?;
    let Some(summary) = found
        .liste_structures
        .iter()
        .find(|s| s.identifiant_structure == siret)
    else {
        return Ok(Lookup::Absent);
    };
    let id = summary.id_structure_cpp;
    let read = match chorus
        .read_structure(tech, &StructureReadRequest::new(id))
        .await
    {
        Ok(read) => read,
        Err(ChorusError::BusinessRefusal { code_retour, .. }) => {
            tracing::warn!(code_retour, "structure found but not readable");
            return Ok(Lookup::Unreadable);
        }
        Err(e) => return Err(chorus_problem(&e)),
    };
    let name = read
        .information_generales
        .as_ref()
        .and_then(|g| {
            g.raison_sociale_structure
                .clone()
                .or_else(|| g.libelle_structure.clone())
        })
        .or_else(|| summary.designation_structure.clone());
    Ok(Lookup::Found(Structure {
        id,
        name,
        active: summary.is_active(),
        rule: rule_of(read.requirement()),
    }))
}

/// Every service of the structure, all pages (Chorus Pro may answer fewer per page than
/// asked: `parametresRetour.pages` says how many there are).
pub async fn all_services(
    chorus: &ChorusClient,
    tech: &TechnicalAccount,
    id: i64,
) -> Result<Vec<ServiceSummary>, Problem> {
    let mut services = Vec::new();
    let mut page = 1;
    loop {
        let answer = chorus
            .search_services(tech, &ServiceSearchRequest::page(id, page))
            .await
            .map_err(|e| chorus_problem(&e))?;
        let pages = answer.pages();
        let empty = answer.liste_services.is_empty();
        services.extend(answer.liste_services);
        if empty || page >= pages {
            return Ok(services);
        }
        if page >= MAX_SERVICE_PAGES {
            tracing::warn!(pages, "services beyond the pages read are left out");
            return Ok(services);
        }
        page += 1;
    }
}

/// Whether the service itself requires a commitment number (`consulter/service`
/// `numeroEngagement`); `None` when Chorus Pro refuses to show it.
pub async fn service_requires_commitment(
    chorus: &ChorusClient,
    tech: &TechnicalAccount,
    structure_id: i64,
    service_id: i64,
) -> Result<Option<bool>, Problem> {
    match chorus
        .read_service(tech, &ServiceReadRequest::new(structure_id, service_id))
        .await
    {
        Ok(read) => Ok(Some(read.requires_commitment())),
        Err(ChorusError::BusinessRefusal { code_retour, .. }) => {
            tracing::warn!(code_retour, "service listed but not readable");
            Ok(None)
        }
        Err(e) => Err(chorus_problem(&e)),
    }
}

/// [`service_requires_commitment`] for each service, a few at a time, in their order.
pub async fn services_requiring_commitment(
    chorus: &Arc<ChorusClient>,
    tech: &TechnicalAccount,
    structure_id: i64,
    service_ids: &[i64],
) -> Result<Vec<Option<bool>>, Problem> {
    let permits = Arc::new(tokio::sync::Semaphore::new(SERVICE_READS_IN_FLIGHT));
    let mut reads = tokio::task::JoinSet::new();
    for (index, &service_id) in service_ids.iter().enumerate() {
        let (chorus, tech, permits) = (chorus.clone(), tech.clone(), permits.clone());
        reads.spawn(async move {
            // The semaphore is never closed: a permit always comes.
            let _permit = permits.acquire_owned().await;
            let rule = service_requires_commitment(&chorus, &tech, structure_id, service_id).await;
            (index, rule)
        });
    }
    let mut rules = vec![None; service_ids.len()];
    while let Some(joined) = reads.join_next().await {
        let (index, rule) = joined.map_err(|e| {
            tracing::error!(error = %e, "service read task failed");
            Problem::internal()
        })?;
        if let Some(slot) = rules.get_mut(index) {
            *slot = rule?;
        }
    }
    Ok(rules)
}

/// The company's own `idStructureCPP`, which the commitment search needs
/// (docs/chorus-pro.md#commitment-ej-search): kept on the account by the credentials
/// check, or read with the same call for an account saved before it was kept. `None`
/// when Chorus Pro does not attach the company's SIRET to its technical account.
pub async fn company_structure(
    chorus: &ChorusClient,
    tech: &TechnicalAccount,
    account: &CompanyAccount,
) -> Result<Option<i64>, Problem> {
    if let Some(id) = account.chorus_structure_id {
        return Ok(Some(id));
    }
    match chorus.supplier_active_structures(tech).await {
        Ok(answer) => Ok(answer.structure_id_of(account.siret.as_str())),
        Err(ChorusError::BusinessRefusal { code_retour, .. }) => {
            tracing::info!(code_retour, "company's active structures not given");
            Ok(None)
        }
        Err(e) => Err(chorus_problem(&e)),
    }
}
