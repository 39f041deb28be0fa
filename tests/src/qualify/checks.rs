//! The checks that only read: PISTE token, technical account, flux formats, buyer, MOE,
//! and the error shapes (docs/chorus-pro.md#piste-and-authentication, #buyer-requirements,
//! #commitment-ej-search, #works-flows-e4-e5).

use serde_json::{Value, json};
use shared::chorus::paths::{
    COMMITMENTS_SEARCH, FLUX_FORMATS, SERVICE_READ, SERVICES_SEARCH, STRUCTURE_READ,
    STRUCTURES_SEARCH, SUPPLIER_ACTIVE_STRUCTURES,
};
use shared::chorus::{
    ActiveStructuresResponse, ChorusError, CommitmentSearchRequest, CommitmentSearchResponse,
    FluxFormats, ServiceReadRequest, ServiceReadResponse, ServiceSearchRequest,
    ServiceSearchResponse, ServiceSummary, StructureReadRequest, StructureReadResponse,
    StructureSearchRequest, StructureSearchResponse, StructureSummary, TechnicalAccount,
};

use super::Run;
use super::report::{Check, Exchange, Status};

/// The password check 9 sends on purpose (never a real one; elided all the same).
pub const WRONG_PASSWORD: &str = "qualify-wrong-password";

/// A route no Chorus Pro API has, for the shape of PISTE's refusal.
const UNKNOWN_ROUTE: &str = "transverses/v1/qualification/route-inconnue";

/// Pages of services read at most (1000 each).
const MAX_SERVICE_PAGES: u32 = 20;

/// Check 1: a PISTE token, then a call with it, then the same token still in use.
pub async fn token(run: &mut Run<'_>) -> Check {
    let mut check = Check::new("1", "PISTE token, reused by the next call", true);
    check.exchanges.push(Exchange {
        call: format!("POST {}", run.settings.token_url),
        sent: json!({"grant_type": "client_credentials", "client_id": run.settings.client_id,
                     "client_secret": "<elided>", "scope": "openid"}),
        status: None,
        www_authenticate: None,
        received: json!("access_token, kept by the client (never shown)"),
        reading: String::new(),
    });
    let first = match run.client.token_generation().await {
        Ok(generation) => generation,
        Err(error) => return check.finish(Status::Fail, format!("no token: {error}")),
    };
    let account = run.account.clone();
    let call = run
        .exchange(&mut check, &account, SUPPLIER_ACTIVE_STRUCTURES, &json!({}))
        .await;
    let after = run.client.token_generation().await.unwrap_or(0);
    if let Some(token) = check.exchanges.first_mut() {
        token.reading = format!("token obtained (generation {first})");
    }
    match call {
        Err(error) => check.finish(Status::Fail, format!("token obtained, then: {error}")),
        Ok(probe) if matches!(probe.outcome(), Err(ChorusError::GatewayNotAuthorised)) => check
            .finish(
                Status::Fail,
                format!("token obtained but refused by PISTE on the next call (HTTP {}): is the Chorus Pro API subscribed for this application?", probe.status),
            ),
        Ok(probe) if after == first => check.finish(
            Status::Pass,
            format!("token obtained; {SUPPLIER_ACTIVE_STRUCTURES} → HTTP {} with it; generation still {first}: reused", probe.status),
        ),
        Ok(_) => check.finish(
            Status::Fail,
            format!("the token changed between two calls (generation {first} → {after})"),
        ),
    }
}

/// Check 2: the technical account is accepted and the supplier is among its active structures.
pub async fn account(run: &mut Run<'_>) -> Check {
    let mut check = Check::new(
        "2",
        "technical account accepted, supplier among its active structures",
        true,
    );
    let account = run.account.clone();
    let answer = run
        .exchange(&mut check, &account, SUPPLIER_ACTIVE_STRUCTURES, &json!({}))
        .await
        .and_then(|probe| probe.read::<ActiveStructuresResponse>());
    let structures = match answer {
        Ok(found) => found.liste_structures,
        Err(ChorusError::CredentialsRejected) => {
            return check.finish(
                Status::Fail,
                "the technical account is refused (login or password)",
            );
        }
        Err(error) => return check.finish(Status::Fail, error.to_string()),
    };
    let sirets: Vec<&str> = structures.iter().map(|s| s.identifiant.as_str()).collect();
    let supplier = structures
        .iter()
        .find(|s| s.identifiant == run.settings.supplier_siret)
        .cloned();
    let listed = sirets.join(", ");
    match supplier {
        Some(found) => {
            let summary = format!(
                "{} active structure(s) ({listed}); supplier {} is idStructureCPP {}",
                sirets.len(),
                found.identifiant,
                found.id_structure_cpp
            );
            run.supplier = Some(found);
            check.finish(Status::Pass, summary)
        }
        None => check.finish(
            Status::Fail,
            format!(
                "supplier {} is not among the account's active structures ({listed})",
                run.settings.supplier_siret
            ),
        ),
    }
}

/// Check 3: the flux formats the platform lists, against the configured `FLUX_SYNTAX`.
pub async fn formats(run: &mut Run<'_>) -> Check {
    let mut check = Check::new(
        "3",
        "flux formats (recuperer/formatflux) against FLUX_SYNTAX",
        false,
    );
    let account = run.account.clone();
    let answer = run
        .exchange(&mut check, &account, FLUX_FORMATS, &json!({}))
        .await
        .and_then(|probe| probe.read::<FluxFormats>());
    let listed: Vec<String> = match answer {
        Ok(found) => found
            .liste_format_flux
            .into_iter()
            .map(|f| f.format_flux)
            .collect(),
        Err(error) => return check.finish(Status::Fail, format!("{FLUX_FORMATS}: {error}")),
    };
    let works: Vec<&String> = listed
        .iter()
        .filter(|f| f.contains("_E4_") || f.contains("_E5_"))
        .collect();
    if works.is_empty() {
        check.note("no E4/E5 (works) syntax listed");
    } else {
        check.note(format!("works (E4/E5) syntaxes listed: {works:?}"));
    }
    let works_syntax = &run.settings.flux_syntax_works;
    if *works_syntax != run.settings.flux_syntax {
        let listed_or_not = if listed.contains(works_syntax) {
            "is"
        } else {
            "is NOT"
        };
        check.note(format!(
            "FLUX_SYNTAX_WORKS={works_syntax} {listed_or_not} listed"
        ));
    }
    let configured = run.settings.flux_syntax.clone();
    let known = listed.contains(&configured);
    let summary = format!(
        "{} format(s) listed: {}; FLUX_SYNTAX={configured} {}",
        listed.len(),
        listed.join(", "),
        if known { "is listed" } else { "is NOT listed" }
    );
    run.formats = Some(listed);
    check.finish(if known { Status::Pass } else { Status::Fail }, summary)
}

/// Check 4: the buyer: its structure, what it requires, its services (paged), a commitment search.
pub async fn buyer(run: &mut Run<'_>) -> Check {
    let mut check = Check::new(
        "4",
        "buyer: structure, requirements, services, commitments",
        false,
    );
    let siret = run.settings.buyer_siret.clone();
    let Some(structure) = find_structure(run, &mut check, &siret).await else {
        return check.finish(Status::Fail, format!("buyer {siret} not found"));
    };
    run.buyer = Some(structure.clone());
    let id = structure.id_structure_cpp;
    let account = run.account.clone();
    let read = run
        .exchange(
            &mut check,
            &account,
            STRUCTURE_READ,
            &to_json(&StructureReadRequest::new(id)),
        )
        .await
        .and_then(|probe| probe.read::<StructureReadResponse>());
    let requirement = match read {
        Ok(read) => read.requirement(),
        Err(error) => return check.finish(Status::Fail, format!("{STRUCTURE_READ}: {error}")),
    };
    let services = match all_services(run, &mut check, id).await {
        Ok(services) => services,
        Err(error) => return check.finish(Status::Fail, format!("{SERVICES_SEARCH}: {error}")),
    };
    let service_needs_commitment = service_needs_commitment(run, &mut check, id, &services).await;
    commitments(run, &mut check, id).await;
    buyer_verdict(
        run,
        check,
        &structure,
        requirement,
        &services,
        service_needs_commitment,
    )
}

fn buyer_verdict(
    run: &mut Run<'_>,
    check: Check,
    structure: &StructureSummary,
    requirement: shared::chorus::BuyerRequirement,
    services: &[ServiceSummary],
    service_needs_commitment: bool,
) -> Check {
    use shared::chorus::BuyerRequirement as R;
    let active: Vec<&str> = services
        .iter()
        .filter(|s| s.est_actif)
        .map(|s| s.code_service.as_str())
        .collect();
    let mut problems = Vec::new();
    let service = run.settings.buyer_service.as_deref();
    match service {
        Some(code) if !active.contains(&code) => {
            problems.push(format!(
                "service {code} is not an active service of the buyer"
            ));
        }
        Some("FACTURES_PUBLIQUES") => problems.push("FACTURES_PUBLIQUES is reserved".into()),
        None if matches!(requirement, R::Service | R::ServiceAndCommitment) => {
            problems.push("the buyer requires a service code: set QUALIFY_BUYER_SERVICE".into());
        }
        _ => {}
    }
    let needs_commitment = service_needs_commitment
        || matches!(requirement, R::Commitment | R::ServiceAndCommitment)
        || (requirement == R::ServiceOrCommitment && service.is_none());
    if needs_commitment && run.commitment.is_none() {
        problems.push(
            "a commitment number is required and none is known: set QUALIFY_COMMITMENT_NUMBER"
                .into(),
        );
    }
    let summary = format!(
        "{} {} (idStructureCPP {}), requires {requirement:?}; {} service(s), active: {}; commitment used: {}",
        structure.identifiant_structure,
        structure.designation_structure.as_deref().unwrap_or(""),
        structure.id_structure_cpp,
        services.len(),
        active.join(", "),
        run.commitment.as_deref().unwrap_or("none"),
    );
    if problems.is_empty() {
        check.finish(Status::Pass, summary)
    } else {
        check.finish(Status::Fail, format!("{summary}; {}", problems.join("; ")))
    }
}

/// The structure of a SIRET (`structures/v1/rechercher`), recorded in `check`.
async fn find_structure(run: &Run<'_>, check: &mut Check, siret: &str) -> Option<StructureSummary> {
    let request = to_json(&StructureSearchRequest::by_siret(siret));
    let answer = run
        .exchange(check, &run.account, STRUCTURES_SEARCH, &request)
        .await
        .and_then(|probe| probe.read_search::<StructureSearchResponse>());
    match answer {
        Ok(found) => found
            .liste_structures
            .into_iter()
            .find(|s| s.identifiant_structure == siret),
        Err(error) => {
            check.note(format!("{STRUCTURES_SEARCH}: {error}"));
            None
        }
    }
}

/// Every service, page after page, as `parametresRetour.pages` says.
async fn all_services(
    run: &Run<'_>,
    check: &mut Check,
    id: i64,
) -> Result<Vec<ServiceSummary>, ChorusError> {
    let mut services = Vec::new();
    let mut page = 1;
    loop {
        let request = ServiceSearchRequest::page(id, page);
        let found = run
            .exchange(check, &run.account, SERVICES_SEARCH, &to_json(&request))
            .await?
            .read_search::<ServiceSearchResponse>()?;
        services.extend(found.liste_services);
        let pages = found.parametres_retour.map_or(1, |p| p.pages);
        if i64::from(page) >= pages || page >= MAX_SERVICE_PAGES {
            check.note(format!("services read in {page} page(s)"));
            return Ok(services);
        }
        page += 1;
    }
}

/// Reads the configured service (`consulter/service`): does it require a commitment?
async fn service_needs_commitment(
    run: &Run<'_>,
    check: &mut Check,
    structure: i64,
    services: &[ServiceSummary],
) -> bool {
    let Some(code) = run.settings.buyer_service.as_deref() else {
        return false;
    };
    let Some(service) = services.iter().find(|s| s.code_service == code) else {
        return false;
    };
    let request = to_json(&ServiceReadRequest::new(structure, service.id_service));
    let answer = run
        .exchange(check, &run.account, SERVICE_READ, &request)
        .await
        .and_then(|probe| probe.read::<ServiceReadResponse>());
    match answer {
        Ok(read) => {
            check.note(format!(
                "service {code} requires a commitment: {}",
                read.requires_commitment()
            ));
            read.requires_commitment()
        }
        Err(error) => {
            check.note(format!("{SERVICE_READ}: {error}"));
            false
        }
    }
}

/// Searches commitments with the supplier's own structure (what the gateway sends, as OCA
/// does), the buyer's and none, and records which finds what
/// (docs/chorus-pro.md#commitment-ej-search).
async fn commitments(run: &mut Run<'_>, check: &mut Check, buyer_id: i64) {
    let configured = run.settings.commitment_number.clone().unwrap_or_default();
    let mut variants = Vec::new();
    if let Some(supplier) = &run.supplier {
        variants.push((
            "supplier's idStructureCPP (the gateway's search, as OCA's)",
            Some(supplier.id_structure_cpp),
        ));
    }
    variants.push(("buyer's idStructureCPP", Some(buyer_id)));
    variants.push(("no structure", None));
    let mut found_number = None;
    for (label, structure) in variants {
        let mut request = to_json(&CommitmentSearchRequest::ordered(0, configured.clone()));
        match structure {
            Some(id) => request["structureReceptriceEngagementJuridique"] = json!(id.to_string()),
            None => {
                if let Some(map) = request.as_object_mut() {
                    map.remove("structureReceptriceEngagementJuridique");
                }
            }
        }
        let answer = run
            .exchange(check, &run.account, COMMITMENTS_SEARCH, &request)
            .await
            .and_then(|probe| probe.read_search::<CommitmentSearchResponse>());
        let text = match answer {
            Ok(found) => {
                let numbers: Vec<String> = found
                    .liste_engagement_juridique
                    .iter()
                    .filter_map(|c| c.numero_engagement_juridique.clone())
                    .collect();
                if found_number.is_none() {
                    found_number = numbers.first().cloned();
                }
                format!("{} commitment(s) {numbers:?}", numbers.len())
            }
            Err(error) => error.to_string(),
        };
        check.note(format!("commitment search with the {label}: {text}"));
    }
    run.commitment = run.settings.commitment_number.clone().or(found_number);
}

/// Check 5: the MOE, when given: its structure and service.
pub async fn moe(run: &mut Run<'_>) -> Check {
    let mut check = Check::new("5", "MOE: structure and service", false);
    let Some(siret) = run.settings.moe_siret.clone() else {
        return check.finish(Status::Skip, "no QUALIFY_MOE_SIRET");
    };
    let Some(structure) = find_structure(run, &mut check, &siret).await else {
        return check.finish(Status::Fail, format!("MOE {siret} not found"));
    };
    let services = match all_services(run, &mut check, structure.id_structure_cpp).await {
        Ok(services) => services,
        Err(error) => {
            return check.finish(
                Status::Fail,
                format!(
                    "MOE {siret} is idStructureCPP {}, its services: {error}",
                    structure.id_structure_cpp
                ),
            );
        }
    };
    let summary = format!(
        "MOE {siret} is idStructureCPP {} ({} service(s))",
        structure.id_structure_cpp,
        services.len()
    );
    match run.settings.moe_service.as_deref() {
        Some(code)
            if !services
                .iter()
                .any(|s| s.code_service == code && s.est_actif) =>
        {
            check.finish(
                Status::Fail,
                format!("{summary}; service {code} is not one of its active services"),
            )
        }
        Some(code) => check.finish(Status::Pass, format!("{summary}; service {code} active")),
        None => check.finish(Status::Pass, summary),
    }
}

/// Check 9a: a wrong technical-account password: the shape of the refusal and how the gateway
/// reads it (expected: the LDAP 401, read as "technical account refused").
pub async fn wrong_password(run: &mut Run<'_>) -> Check {
    let mut check = Check::new("9a", "error shape: wrong technical-account password", false);
    let wrong = TechnicalAccount::new(run.settings.login.clone(), WRONG_PASSWORD);
    let answer = run
        .exchange(&mut check, &wrong, SUPPLIER_ACTIVE_STRUCTURES, &json!({}))
        .await;
    let probe = match answer {
        Ok(probe) => probe,
        Err(error) => return check.finish(Status::Fail, format!("no answer: {error}")),
    };
    let body = probe.body();
    let ldap = probe.status == 401 && body.get("codeRetour") == Some(&json!(401));
    let header = probe.www_authenticate.clone().unwrap_or_default();
    let shape = format!(
        "HTTP {}, codeRetour {}, libelle {}, WWW-Authenticate {:?}",
        probe.status,
        body.get("codeRetour").unwrap_or(&Value::Null),
        body.get("libelle").unwrap_or(&Value::Null),
        header
    );
    if header.contains("login or password") && !ldap {
        check.note("PISTE's realm header names the password (OCA's comment): the gateway's 401/403 rule should read that header too");
    }
    match probe.outcome() {
        Err(ChorusError::CredentialsRejected) => check.finish(
            Status::Pass,
            format!(
                "{shape}: read as the technical account refused{}",
                if ldap { " (the LDAP 401)" } else { "" }
            ),
        ),
        other => check.finish(
            Status::Fail,
            format!(
                "{shape}: the gateway reads {}, not \"technical account refused\"",
                describe(&other)
            ),
        ),
    }
}

/// Check 9b: an unknown route: what PISTE answers (docs: `403 {}`).
pub async fn unknown_route(run: &mut Run<'_>) -> Check {
    let mut check = Check::new("9b", "error shape: unknown route", false);
    let account = run.account.clone();
    let answer = run
        .exchange(&mut check, &account, UNKNOWN_ROUTE, &json!({}))
        .await;
    match answer {
        Err(error) => check.finish(Status::Fail, format!("no answer: {error}")),
        Ok(probe) => {
            let shape = format!("HTTP {}, body {}", probe.status, probe.body());
            match probe.outcome() {
                Err(ChorusError::GatewayNotAuthorised)
                | Err(ChorusError::UnexpectedResponse { .. }) => check.finish(
                    Status::Pass,
                    format!("{shape}: read as {}", describe(&probe.outcome())),
                ),
                other => check.finish(
                    Status::Fail,
                    format!("{shape}: the gateway reads {}", describe(&other)),
                ),
            }
        }
    }
}

fn describe(outcome: &Result<Value, ChorusError>) -> String {
    match outcome {
        Ok(_) => "a success".to_owned(),
        Err(error) => format!("\"{error}\""),
    }
}

pub fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
