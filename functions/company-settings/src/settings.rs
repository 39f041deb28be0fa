//! The settings routes: input to domain, domain to storage, storage to the account view.

use lambda_http::{Body, Response};
use shared::domain::account::{LoginError, PasswordError, PasswordField};
use shared::domain::email::EmailError;
use shared::domain::{
    CompanyAccount, CredentialsStatus, Email, Environment, PasswordPair, Siret, SiretCheck,
    TechnicalLogin,
};
use shared::http::json::{body_bytes, empty_response};
use shared::http::store_problem;
use shared::http::{Caller, FieldError, JsonObject, Problem, ProblemCode, json_response};
use shared::secrets::StagedVersion;
use shared::store::{AuditEntry, StoreError, Verification};

use crate::verify::{Verdict, rejected_problem, test_credentials};
use crate::{BODY_LIMIT, State};
use secrecy::SecretString;

/// Concurrent saves of one company race on the item's revision; the loser starts again
/// from a fresh read, a few times at most.
const SAVE_ATTEMPTS: usize = 3;

/// What a `PUT` body says, before it meets the stored account.
struct SettingsInput {
    referent_email: Option<String>,
    technical_login: Option<String>,
    password: Option<String>,
    password_confirmation: Option<String>,
    environment: Option<String>,
    verify: bool,
    object: JsonObject,
}

fn read_input(body: &Body) -> Result<SettingsInput, Problem> {
    let mut object = JsonObject::parse(body_bytes(body, BODY_LIMIT)?)?;
    let input = SettingsInput {
        referent_email: object.string("referent_email"),
        technical_login: object.string("technical_login"),
        password: object.string("password"),
        password_confirmation: object.string("password_confirmation"),
        environment: object.string("environment"),
        verify: object.bool("verify").unwrap_or(true),
        object,
    };
    Ok(input)
}

/// The validated settings of a save.
struct Validated {
    siret: Siret,
    referent_email: Email,
    technical_login: TechnicalLogin,
    environment: Environment,
    password: PasswordPair,
    verify: bool,
}

fn validate(
    input: SettingsInput,
    path_siret: &str,
    existing: Option<&CompanyAccount>,
    default_environment: Environment,
) -> Result<Validated, Problem> {
    let mut errors = Vec::new();

    let environment = match input.environment.as_deref() {
        None => Some(existing.map_or(default_environment, |a| a.environment)),
        Some(raw) => {
            let parsed = Environment::parse(raw);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "environment",
                    "invalid_value",
                    "L'environnement doit être « production » ou « sandbox ».",
                ));
            }
            parsed
        }
    };
    // Until the environment is known, a SIRET is checked for shape only.
    let check = environment.map_or(SiretCheck::ShapeOnly, Environment::siret_check);
    let siret = match Siret::parse(path_siret, check) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(FieldError::new("siret", e.code(), e.message_fr(path_siret)));
            None
        }
    };

    let referent_email = match input.referent_email.as_deref() {
        None => {
            errors.push(FieldError::new(
                "referent_email",
                "required",
                "L'adresse e-mail du référent est obligatoire : elle reçoit les rappels de renouvellement du mot de passe.",
            ));
            None
        }
        Some(raw) => match Email::parse(raw) {
            Ok(e) => Some(e),
            Err(EmailError::Empty) => {
                errors.push(FieldError::new(
                    "referent_email",
                    "required",
                    "L'adresse e-mail du référent est obligatoire : elle reçoit les rappels de renouvellement du mot de passe.",
                ));
                None
            }
            Err(EmailError::TooLong) => {
                errors.push(FieldError::new(
                    "referent_email",
                    "too_long",
                    "L'adresse e-mail du référent ne doit pas dépasser 254 caractères.",
                ));
                None
            }
            Err(EmailError::Invalid) => {
                errors.push(FieldError::new(
                    "referent_email",
                    "invalid_email",
                    format!("L'adresse e-mail « {raw} » n'est pas valide (exemple attendu : compta@entreprise.fr)."),
                ));
                None
            }
        },
    };

    let technical_login = match input.technical_login.as_deref() {
        None | Some("") => {
            errors.push(FieldError::new(
                "technical_login",
                "required",
                "L'identifiant du compte technique Chorus Pro est obligatoire (de la forme TECH_…@cpp2017.fr).",
            ));
            None
        }
        Some(raw) => match TechnicalLogin::parse(raw) {
            Ok(l) => Some(l),
            Err(LoginError::TooLong) => {
                errors.push(FieldError::new(
                    "technical_login",
                    "too_long",
                    "L'identifiant du compte technique ne doit pas dépasser 254 caractères.",
                ));
                None
            }
            Err(_) => {
                errors.push(FieldError::new(
                    "technical_login",
                    "invalid_login",
                    "L'identifiant du compte technique doit avoir la forme d'une adresse e-mail, sans « : » (exemple : TECH_00000000012345@cpp2017.fr).",
                ));
                None
            }
        },
    };

    let password = match PasswordPair::parse(
        input.password.as_deref(),
        input.password_confirmation.as_deref(),
        existing.is_none(),
    ) {
        Ok(pair) => Some(pair),
        Err(faults) => {
            for (field, fault) in faults {
                errors.push(password_error(field, fault));
            }
            None
        }
    };

    // A password belongs to one technical account on one platform: a new login or a new
    // environment needs the password that goes with it.
    if let (Some(existing), Some(PasswordPair::Keep)) = (existing, password.as_ref()) {
        let login_changed = technical_login
            .as_ref()
            .is_some_and(|l| *l != existing.technical_login);
        let env_changed = environment.is_some_and(|e| e != existing.environment);
        if login_changed || env_changed {
            errors.push(FieldError::new(
                "password",
                "required",
                "Le mot de passe et sa confirmation sont requis lorsque l'identifiant technique ou l'environnement change.",
            ));
        }
    }

    let verify = input.verify;
    input.object.finish(errors)?;
    match (
        siret,
        referent_email,
        technical_login,
        environment,
        password,
    ) {
        (
            Some(siret),
            Some(referent_email),
            Some(technical_login),
            Some(environment),
            Some(password),
        ) => Ok(Validated {
            siret,
            referent_email,
            technical_login,
            environment,
            password,
            verify,
        }),
        // `finish` answered for every missing part above.
        _ => Err(Problem::internal()),
    }
}

fn password_error(field: PasswordField, fault: PasswordError) -> FieldError {
    let name = match field {
        PasswordField::Password => "password",
        PasswordField::Confirmation => "password_confirmation",
    };
    let (code, message) = match (field, fault) {
        (PasswordField::Password, PasswordError::Required) => (
            "required",
            "Le mot de passe du compte technique est obligatoire (avec sa confirmation).",
        ),
        (PasswordField::Confirmation, PasswordError::Required) => (
            "required",
            "La confirmation du mot de passe est obligatoire quand un mot de passe est saisi.",
        ),
        (_, PasswordError::TooLong) => (
            "too_long",
            "Le mot de passe ne doit pas dépasser 256 caractères.",
        ),
        (_, PasswordError::InvalidCharacters) => (
            "invalid_characters",
            "Le mot de passe contient des espaces en début ou en fin, ou des caractères de contrôle : vérifiez le copier-coller.",
        ),
        (_, PasswordError::Mismatch) => (
            "password_mismatch",
            "La confirmation ne correspond pas au mot de passe saisi.",
        ),
    };
    FieldError::new(name, code, message)
}

fn changed_fields(old: Option<&CompanyAccount>, new: &Validated) -> Vec<String> {
    let mut fields = Vec::new();
    let mut note = |changed: bool, name: &str| {
        if changed {
            fields.push(name.to_owned());
        }
    };
    note(
        old.is_none_or(|o| o.referent_email != new.referent_email),
        "referent_email",
    );
    note(
        old.is_none_or(|o| o.technical_login != new.technical_login),
        "technical_login",
    );
    note(
        old.is_none_or(|o| o.environment != new.environment),
        "environment",
    );
    note(new.password.is_new(), "password");
    fields
}

pub async fn put(
    state: &State,
    caller: &Caller,
    path_siret: &str,
    body: &Body,
) -> Result<Response<Body>, Problem> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let input = read_input(body)?;
        // A path SIRET of the wrong shape cannot be stored: validation reports it with the
        // body's faults, without a read.
        let existing = match shared::http::path_siret(path_siret) {
            Ok(siret) => state
                .store
                .get_account(&siret)
                .await
                .map_err(|e| store_problem(&e))?,
            Err(_) => None,
        };
        let valid = validate(
            input,
            path_siret,
            existing.as_ref(),
            state.config.default_environment,
        )?;
        let fields = changed_fields(existing.as_ref(), &valid);
        let credentials_changed = fields
            .iter()
            .any(|f| f == "password" || f == "technical_login" || f == "environment");
        let now = state.clock.now();

        // Tested before anything is written: a refusal changes nothing.
        let verified_structure = if valid.verify {
            let password = match (valid.password.new_password(), existing.as_ref()) {
                (Some(p), _) => SecretString::from(p.to_owned()),
                (None, Some(old)) => stored_password(state, old).await?,
                (None, None) => return Err(Problem::internal()),
            };
            match test_credentials(
                &state.chorus,
                &valid.siret,
                valid.technical_login.as_str(),
                password,
            )
            .await?
            {
                Verdict::Accepted {
                    chorus_structure_id,
                } => Some(chorus_structure_id),
                Verdict::Rejected(reason) => {
                    if let (Some(old), false) = (existing.as_ref(), credentials_changed) {
                        // The stored credentials themselves are refused: that is news.
                        record_verdict(state, caller, old, CredentialsStatus::Rejected, None).await;
                    }
                    return Err(rejected_problem(reason));
                }
            }
        } else {
            None
        };
        let accepted = verified_structure.is_some();

        if let (Some(existing), true) = (existing.as_ref(), fields.is_empty()) {
            // Nothing changes but, maybe, what Chorus Pro said of the credentials, or the
            // structure id an account saved before it was kept lacks.
            if accepted
                && (existing.credentials_status != CredentialsStatus::Valid
                    || existing.chorus_structure_id != verified_structure)
            {
                let recorded = record_verdict(
                    state,
                    caller,
                    existing,
                    CredentialsStatus::Valid,
                    verified_structure,
                )
                .await;
                return view_after_verdict(state, recorded, &existing.siret).await;
            }
            return Ok(json_response(
                200,
                &existing.view(state.config.password_lifetime, now),
            ));
        }

        let staged = match valid.password.new_password() {
            Some(password) => state
                .secrets
                .stage_technical_account(
                    &valid.siret,
                    &valid.technical_login,
                    &SecretString::from(password.to_owned()),
                    existing.is_some(),
                )
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "secret write failed");
                    Problem::service_unavailable()
                })?,
            None => StagedVersion {
                id: existing
                    .as_ref()
                    .map(|a| a.password_version.clone())
                    .ok_or_else(Problem::internal)?,
                current: true,
            },
        };
        let password_version = staged.id.clone();

        let (credentials_status, verified_at) = match (&existing, accepted, credentials_changed) {
            (_, true, _) => (CredentialsStatus::Valid, Some(now)),
            (Some(old), false, false) => (old.credentials_status, old.verified_at),
            _ => (CredentialsStatus::Unverified, None),
        };
        let account = CompanyAccount {
            siret: valid.siret.clone(),
            referent_email: valid.referent_email.clone(),
            technical_login: valid.technical_login.clone(),
            environment: valid.environment,
            password_set_at: match (&existing, valid.password.is_new()) {
                (Some(old), false) => old.password_set_at,
                _ => now,
            },
            password_version: password_version.clone(),
            credentials_status,
            verified_at,
            created_at: existing.as_ref().map_or(now, |a| a.created_at),
            updated_at: now,
            revision: existing.as_ref().map_or(1, |a| a.revision + 1),
            next_reminder_on: shared::reminder::next_reminder_on_save(
                existing.as_ref(),
                valid.password.is_new(),
                now,
            ),
            // The structure belongs to the SIRET in one Chorus Pro: a new login or password
            // keeps it, another environment does not.
            chorus_structure_id: verified_structure.or_else(|| {
                existing
                    .as_ref()
                    .filter(|old| old.environment == valid.environment)
                    .and_then(|old| old.chorus_structure_id)
            }),
        };
        let audit = AuditEntry {
            at: now,
            actor: caller.sub.clone(),
            action: if existing.is_some() {
                "account_updated"
            } else {
                "account_created"
            }
            .into(),
            fields: fields.clone(),
        };
        match state
            .store
            .save_account(&account, existing.as_ref().map(|a| a.revision), &audit)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) if attempt < SAVE_ATTEMPTS => {
                tracing::warn!(attempt, "concurrent save, starting again");
                continue;
            }
            Err(StoreError::Conflict) => {
                return Err(Problem::new(
                    ProblemCode::Conflict,
                    "Les réglages ont été modifiés en même temps par une autre requête ; rechargez-les puis réessayez.",
                ));
            }
            Err(e) => return Err(store_problem(&e)),
        }
        if !staged.current
            && let Err(e) = state
                .secrets
                .promote(
                    &valid.siret,
                    &password_version,
                    existing.as_ref().map(|a| a.password_version.as_str()),
                )
                .await
        {
            // The account item names its version: readers are unaffected.
            tracing::warn!(error = %e, "secret version saved but not promoted to AWSCURRENT");
        }
        tracing::info!(action = %audit.action, fields = ?fields, status = account.credentials_status.as_str(), "settings saved");
        let status = if existing.is_some() { 200 } else { 201 };
        return Ok(json_response(
            status,
            &account.view(state.config.password_lifetime, now),
        ));
    }
}

/// The password in force: the secret version the account item names.
async fn stored_password(state: &State, account: &CompanyAccount) -> Result<SecretString, Problem> {
    state
        .secrets
        .technical_account(&account.siret, &account.password_version)
        .await
        .map(|stored| stored.password)
        .map_err(|e| {
            tracing::error!(error = %e, "stored technical account unreadable");
            Problem::service_unavailable()
        })
}

/// Records a verdict on the stored credentials and returns the account as it now stands
/// when that is known without reading it again (nothing else changed since it was read),
/// `None` otherwise. Losing the race to a newer save is fine (that
/// save carries its own status), so failures are logged, not answered.
async fn record_verdict(
    state: &State,
    caller: &Caller,
    account: &CompanyAccount,
    status: CredentialsStatus,
    chorus_structure_id: Option<i64>,
) -> Option<CompanyAccount> {
    let audit = AuditEntry {
        at: state.clock.now(),
        actor: caller.sub.clone(),
        action: match status {
            CredentialsStatus::Valid => "credentials_verified",
            _ => "credentials_rejected",
        }
        .into(),
        fields: vec!["credentials_status".into()],
    };
    let verification = Verification {
        status,
        chorus_structure_id,
    };
    let recorded = match state
        .store
        .record_verification(
            &account.siret,
            &account.password_version,
            Some(account.revision),
            verification,
            audit.at,
            &audit,
        )
        .await
    {
        // Something else changed since the account was read (a save keeping the
        // password): the verdict still holds for that password, and the answer is read.
        Err(StoreError::Conflict) => state
            .store
            .record_verification(
                &account.siret,
                &account.password_version,
                None,
                verification,
                audit.at,
                &audit,
            )
            .await
            .map(|()| false),
        other => other.map(|()| true),
    };
    match recorded {
        Ok(false) => {
            tracing::info!(status = status.as_str(), "credentials status recorded");
            None
        }
        Ok(true) => {
            tracing::info!(status = status.as_str(), "credentials status recorded");
            Some(CompanyAccount {
                credentials_status: status,
                verified_at: Some(audit.at),
                revision: account.revision + 1,
                chorus_structure_id: chorus_structure_id.or(account.chorus_structure_id),
                ..account.clone()
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "credentials status not recorded");
            None
        }
    }
}

/// The account after a verdict: as recorded (the item read first, with the verdict), or,
/// if the verdict lost a race, as it is now.
async fn view_after_verdict(
    state: &State,
    recorded: Option<CompanyAccount>,
    siret: &Siret,
) -> Result<Response<Body>, Problem> {
    match recorded {
        Some(account) => Ok(json_response(
            200,
            &account.view(state.config.password_lifetime, state.clock.now()),
        )),
        None => current_view(state, siret).await,
    }
}

async fn current_view(state: &State, siret: &Siret) -> Result<Response<Body>, Problem> {
    let account = state
        .store
        .get_account(siret)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(not_configured)?;
    Ok(json_response(
        200,
        &account.view(state.config.password_lifetime, state.clock.now()),
    ))
}

fn not_configured() -> Problem {
    Problem::new(
        ProblemCode::CompanyNotConfigured,
        "Aucun compte Chorus Pro n'est enregistré pour cette entreprise : renseignez-le dans « Mon compte ».",
    )
}

pub async fn get(state: &State, path_siret: &str) -> Result<Response<Body>, Problem> {
    let siret = shared::http::path_siret(path_siret)?;
    let account = state
        .store
        .get_account(&siret)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(not_configured)?;
    Ok(json_response(
        200,
        &account.view(state.config.password_lifetime, state.clock.now()),
    ))
}

pub async fn delete(
    state: &State,
    caller: &Caller,
    path_siret: &str,
) -> Result<Response<Body>, Problem> {
    let siret = shared::http::path_siret(path_siret)?;
    for attempt in 1..=SAVE_ATTEMPTS {
        let Some(account) = state
            .store
            .get_account(&siret)
            .await
            .map_err(|e| store_problem(&e))?
        else {
            // A secret left behind by an earlier delete that stopped half-way is removed too.
            if let Err(e) = state.secrets.schedule_deletion(&siret).await {
                tracing::warn!(error = %e, "could not schedule a leftover secret for deletion");
            }
            return Err(not_configured());
        };
        let audit = AuditEntry {
            at: state.clock.now(),
            actor: caller.sub.clone(),
            action: "account_deleted".into(),
            fields: Vec::new(),
        };
        match state
            .store
            .delete_account(&siret, account.revision, &audit)
            .await
        {
            Ok(()) => {
                // The item went first: from now on nothing reads the secret.
                if let Err(e) = state.secrets.schedule_deletion(&siret).await {
                    tracing::error!(error = %e, "settings deleted but secret deletion not scheduled");
                }
                tracing::info!("settings deleted");
                return Ok(empty_response(204));
            }
            Err(StoreError::Conflict) if attempt < SAVE_ATTEMPTS => continue,
            Err(StoreError::Conflict) => break,
            Err(e) => return Err(store_problem(&e)),
        }
    }
    Err(Problem::new(
        ProblemCode::Conflict,
        "Les réglages ont été modifiés en même temps par une autre requête ; réessayez.",
    ))
}

pub async fn verify(
    state: &State,
    caller: &Caller,
    path_siret: &str,
) -> Result<Response<Body>, Problem> {
    let siret = shared::http::path_siret(path_siret)?;
    let account = state
        .store
        .get_account(&siret)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(not_configured)?;
    let password = stored_password(state, &account).await?;
    match test_credentials(
        &state.chorus,
        &siret,
        account.technical_login.as_str(),
        password,
    )
    .await?
    {
        Verdict::Accepted {
            chorus_structure_id,
        } => {
            let recorded = record_verdict(
                state,
                caller,
                &account,
                CredentialsStatus::Valid,
                Some(chorus_structure_id),
            )
            .await;
            view_after_verdict(state, recorded, &siret).await
        }
        Verdict::Rejected(reason) => {
            record_verdict(state, caller, &account, CredentialsStatus::Rejected, None).await;
            Err(rejected_problem(reason))
        }
    }
}
