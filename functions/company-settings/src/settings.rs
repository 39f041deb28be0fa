//! The settings routes: input to domain, domain to storage, storage to the account view.

use lambda_http::{Body, Response};
use shared::domain::account::{LoginError, PasswordError, PasswordField};
use shared::domain::email::EmailError;
use shared::domain::{
    CompanyAccount, CredentialsStatus, Email, Environment, PasswordPair, Siret, SiretCheck,
    TechnicalLogin,
};
use shared::http::json::{body_bytes, empty_response};
use shared::http::{Caller, FieldError, JsonObject, Problem, ProblemCode, json_response};
use shared::http::{path_account, store_problem};
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
    /// `None`: as stored (on for a new account).
    notify_overdue: Option<bool>,
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
        notify_overdue: object.bool("notify_overdue"),
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
    notify_overdue: bool,
}

fn validate(
    input: SettingsInput,
    path_siret: &str,
    existing: Option<&CompanyAccount>,
    default_environment: Environment,
) -> Result<Validated, Problem> {
    let mut errors = Vec::new();
    let environment = environment_field(
        input.environment.as_deref(),
        existing,
        default_environment,
        &mut errors,
    );
    // Until the environment is known, a SIRET is checked for shape only.
    let check = environment.map_or(SiretCheck::ShapeOnly, Environment::siret_check);
    let siret = Siret::parse(path_siret, check)
        .map_err(|e| errors.push(FieldError::new("siret", e.code(), e.message_fr(path_siret))))
        .ok();
    let referent_email = email_field(input.referent_email.as_deref())
        .map_err(|e| errors.push(e))
        .ok();
    let technical_login = login_field(input.technical_login.as_deref())
        .map_err(|e| errors.push(e))
        .ok();
    let password = PasswordPair::parse(
        input.password.as_deref(),
        input.password_confirmation.as_deref(),
        existing.is_none(),
    )
    .map_err(|faults| {
        errors.extend(
            faults
                .into_iter()
                .map(|(field, fault)| password_error(field, fault)),
        )
    })
    .ok();
    if let (Some(existing), Some(PasswordPair::Keep)) = (existing, password.as_ref()) {
        errors.extend(kept_password_fault(
            existing,
            technical_login.as_ref(),
            environment,
        ));
    }
    let verify = input.verify;
    let notify_overdue = input
        .notify_overdue
        .unwrap_or_else(|| existing.is_none_or(|a| a.notify_overdue));
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
            notify_overdue,
        }),
        // `finish` answered for every missing part above.
        _ => Err(Problem::internal()),
    }
}

/// The environment asked for, else the stored one, else the deployment's default.
fn environment_field(
    raw: Option<&str>,
    existing: Option<&CompanyAccount>,
    default_environment: Environment,
    errors: &mut Vec<FieldError>,
) -> Option<Environment> {
    let Some(raw) = raw else {
        return Some(existing.map_or(default_environment, |a| a.environment));
    };
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

fn email_field(raw: Option<&str>) -> Result<Email, FieldError> {
    let required = || {
        FieldError::new(
            "referent_email",
            "required",
            "L'adresse e-mail du référent est obligatoire : elle reçoit les rappels de renouvellement du mot de passe.",
        )
    };
    let raw = raw.ok_or_else(required)?;
    Email::parse(raw).map_err(|e| match e {
        EmailError::Empty => required(),
        EmailError::TooLong => FieldError::new(
            "referent_email",
            "too_long",
            "L'adresse e-mail du référent ne doit pas dépasser 254 caractères.",
        ),
        EmailError::Invalid => FieldError::new(
            "referent_email",
            "invalid_email",
            format!("L'adresse e-mail « {raw} » n'est pas valide (exemple attendu : compta@entreprise.fr)."),
        ),
    })
}

fn login_field(raw: Option<&str>) -> Result<TechnicalLogin, FieldError> {
    let raw = raw.filter(|r| !r.is_empty()).ok_or_else(|| {
        FieldError::new(
            "technical_login",
            "required",
            "L'identifiant du compte technique Chorus Pro est obligatoire (de la forme TECH_…@cpp2017.fr).",
        )
    })?;
    TechnicalLogin::parse(raw).map_err(|e| match e {
        LoginError::TooLong => FieldError::new(
            "technical_login",
            "too_long",
            "L'identifiant du compte technique ne doit pas dépasser 254 caractères.",
        ),
        _ => FieldError::new(
            "technical_login",
            "invalid_login",
            "L'identifiant du compte technique doit avoir la forme d'une adresse e-mail, sans « : » (exemple : TECH_00000000012345@cpp2017.fr).",
        ),
    })
}

/// A password belongs to one technical account on one platform: a new login or a new
/// environment needs the password that goes with it.
fn kept_password_fault(
    existing: &CompanyAccount,
    login: Option<&TechnicalLogin>,
    environment: Option<Environment>,
) -> Option<FieldError> {
    let login_changed = login.is_some_and(|l| *l != existing.technical_login);
    let env_changed = environment.is_some_and(|e| e != existing.environment);
    (login_changed || env_changed).then(|| {
        FieldError::new(
            "password",
            "required",
            "Le mot de passe et sa confirmation sont requis lorsque l'identifiant technique ou l'environnement change.",
        )
    })
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
    note(
        old.is_none_or(|o| o.notify_overdue != new.notify_overdue),
        "notify_overdue",
    );
    fields
}

/// One save being decided: the validated settings against the stored account.
struct Save<'a> {
    valid: &'a Validated,
    existing: Option<&'a CompanyAccount>,
    fields: Vec<String>,
    credentials_changed: bool,
    now: time::OffsetDateTime,
}

pub async fn put(
    state: &State,
    caller: &Caller,
    path_siret: &str,
    body: &Body,
) -> Result<Response<Body>, Problem> {
    for attempt in 1..=SAVE_ATTEMPTS {
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
        let default_environment = state.config.default_environment;
        let valid = validate(input, path_siret, existing.as_ref(), default_environment)?;
        let fields = changed_fields(existing.as_ref(), &valid);
        let credentials_changed = fields
            .iter()
            .any(|f| f == "password" || f == "technical_login" || f == "environment");
        let save = Save {
            valid: &valid,
            existing: existing.as_ref(),
            fields,
            credentials_changed,
            now: state.clock.now(),
        };
        match save_once(state, caller, &save).await? {
            Some(answer) => return Ok(answer),
            None => tracing::warn!(attempt, "concurrent save, starting again"),
        }
    }
    Err(Problem::new(
        ProblemCode::Conflict,
        "Les réglages ont été modifiés en même temps par une autre requête ; rechargez-les puis réessayez.",
    ))
}

/// Verifies, stages the password, writes the account: the answer, or `None` when a
/// concurrent save won the write (decide again from a fresh read).
async fn save_once(
    state: &State,
    caller: &Caller,
    save: &Save<'_>,
) -> Result<Option<Response<Body>>, Problem> {
    // Tested before anything is written: a refusal changes nothing.
    let verified_structure = verify_before_saving(state, caller, save).await?;
    if let (Some(existing), true) = (save.existing, save.fields.is_empty()) {
        return unchanged(state, caller, existing, verified_structure, save.now)
            .await
            .map(Some);
    }
    let staged = stage_password(state, save).await?;
    let account = next_account(save, &staged.id, verified_structure);
    let audit = AuditEntry {
        at: save.now,
        actor: caller.sub.clone(),
        action: match save.existing {
            Some(_) => "account_updated",
            None => "account_created",
        }
        .into(),
        fields: save.fields.clone(),
    };
    let expected = save.existing.map(|a| a.revision);
    match state.store.save_account(&account, expected, &audit).await {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Ok(None),
        Err(e) => return Err(store_problem(&e)),
    }
    promote(state, save, &staged).await;
    tracing::info!(action = %audit.action, fields = ?save.fields, status = account.credentials_status.as_str(), "settings saved");
    let status = if save.existing.is_some() { 200 } else { 201 };
    let view = account.view(state.config.password_lifetime, save.now);
    Ok(Some(json_response(status, &view)))
}

/// Asks Chorus Pro when the save asks for it: the company's structure id when accepted; a
/// refusal is the answer (and, of the stored credentials themselves, recorded).
async fn verify_before_saving(
    state: &State,
    caller: &Caller,
    save: &Save<'_>,
) -> Result<Option<i64>, Problem> {
    let valid = save.valid;
    if !valid.verify {
        return Ok(None);
    }
    let password = match (valid.password.new_password(), save.existing) {
        (Some(p), _) => SecretString::from(p.to_owned()),
        (None, Some(old)) => stored_password(state, old).await?,
        (None, None) => return Err(Problem::internal()),
    };
    let login = valid.technical_login.as_str();
    match test_credentials(&state.chorus, &valid.siret, login, password).await? {
        Verdict::Accepted {
            chorus_structure_id,
        } => Ok(Some(chorus_structure_id)),
        Verdict::Rejected(reason) => {
            if let (Some(old), false) = (save.existing, save.credentials_changed) {
                // The stored credentials themselves are refused: that is news.
                record_verdict(state, caller, old, CredentialsStatus::Rejected, None).await;
            }
            Err(rejected_problem(reason))
        }
    }
}

/// Nothing changes but, maybe, what Chorus Pro said of the credentials, or the structure id
/// an account saved before it was kept lacks.
async fn unchanged(
    state: &State,
    caller: &Caller,
    existing: &CompanyAccount,
    verified_structure: Option<i64>,
    now: time::OffsetDateTime,
) -> Result<Response<Body>, Problem> {
    let news = existing.credentials_status != CredentialsStatus::Valid
        || existing.chorus_structure_id != verified_structure;
    if verified_structure.is_some() && news {
        let valid = CredentialsStatus::Valid;
        let recorded = record_verdict(state, caller, existing, valid, verified_structure).await;
        return view_after_verdict(state, recorded, &existing.siret).await;
    }
    let view = existing.view(state.config.password_lifetime, now);
    Ok(json_response(200, &view))
}

/// A new password goes to a new secret version (staged, not yet current); otherwise the
/// version in force stays.
async fn stage_password(state: &State, save: &Save<'_>) -> Result<StagedVersion, Problem> {
    let valid = save.valid;
    match valid.password.new_password() {
        Some(password) => state
            .secrets
            .stage_technical_account(
                &valid.siret,
                &valid.technical_login,
                &SecretString::from(password.to_owned()),
                save.existing.is_some(),
            )
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "secret write failed");
                Problem::service_unavailable()
            }),
        None => Ok(StagedVersion {
            id: save
                .existing
                .map(|a| a.password_version.clone())
                .ok_or_else(Problem::internal)?,
            current: true,
        }),
    }
}

/// The account as saved: the validated settings, what Chorus Pro said, the secret version.
fn next_account(
    save: &Save<'_>,
    password_version: &str,
    verified_structure: Option<i64>,
) -> CompanyAccount {
    let (valid, existing, now) = (save.valid, save.existing, save.now);
    let (credentials_status, verified_at) = match (
        existing,
        verified_structure.is_some(),
        save.credentials_changed,
    ) {
        (_, true, _) => (CredentialsStatus::Valid, Some(now)),
        (Some(old), false, false) => (old.credentials_status, old.verified_at),
        _ => (CredentialsStatus::Unverified, None),
    };
    CompanyAccount {
        siret: valid.siret.clone(),
        referent_email: valid.referent_email.clone(),
        technical_login: valid.technical_login.clone(),
        environment: valid.environment,
        password_set_at: match (existing, valid.password.is_new()) {
            (Some(old), false) => old.password_set_at,
            _ => now,
        },
        password_version: password_version.to_owned(),
        credentials_status,
        verified_at,
        created_at: existing.map_or(now, |a| a.created_at),
        updated_at: now,
        revision: existing.map_or(1, |a| a.revision + 1),
        next_reminder_on: shared::reminder::next_reminder_on_save(
            existing,
            valid.password.is_new(),
            now,
        ),
        // The structure belongs to the SIRET in one Chorus Pro: a new login or password
        // keeps it, another environment does not.
        chorus_structure_id: verified_structure.or_else(|| {
            existing
                .filter(|old| old.environment == valid.environment)
                .and_then(|old| old.chorus_structure_id)
        }),
        notify_overdue: valid.notify_overdue,
    }
}

/// The saved version becomes `AWSCURRENT`. A failure is harmless: the account item names
/// its version, and readers read that one.
async fn promote(state: &State, save: &Save<'_>, staged: &StagedVersion) {
    if staged.current {
        return;
    }
    let previous = save.existing.map(|a| a.password_version.as_str());
    if let Err(e) = state
        .secrets
        .promote(&save.valid.siret, &staged.id, previous)
        .await
    {
        tracing::warn!(error = %e, "secret version saved but not promoted to AWSCURRENT");
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
        was: Some(account.credentials_status),
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
    let (_, account) = path_account(&state.store, path_siret, not_configured).await?;
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
    let (siret, account) = path_account(&state.store, path_siret, not_configured).await?;
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
