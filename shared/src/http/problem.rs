//! problem+json (RFC 9457) answers: a stable English `code`, French `title`, `detail` and
//! messages written for the person who reads them in the caller's screen.

use lambda_http::{Body, Response};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemCode {
    Unauthenticated,
    Forbidden,
    ValidationFailed,
    MalformedJson,
    PayloadTooLarge,
    CompanyNotConfigured,
    MarketNotFound,
    SituationNotFound,
    InvoiceNumberTaken,
    AlreadyTransmitted,
    TransmissionInProgress,
    CredentialsRejected,
    BuyerNotFound,
    /// `buyer_not_found` on the buyer look-up route (`GET …/buyers/{buyer_siret}`), where the
    /// contract answers it `404`: the structure asked for is the resource, and it does not
    /// exist. Elsewhere (a market's buyer) the same code is `422`: the request names an
    /// unusable buyer. Same code and title, one status per variant.
    BuyerNotFoundOnLookup,
    BuyerRequirementsUnmet,
    ProjectManagerNotFound,
    ServiceInactive,
    InvoiceInvalid,
    ChorusUnavailable,
    ChorusUnexpectedAnswer,
    GatewayNotAuthorised,
    NotFound,
    MethodNotAllowed,
    Conflict,
    IdempotencyKeyReused,
    ActionNotAllowed,
    DocumentNotFound,
    Internal,
    ServiceUnavailable,
}

impl ProblemCode {
    pub fn as_str(self) -> &'static str {
        use ProblemCode::*;
        match self {
            Unauthenticated => "unauthenticated",
            Forbidden => "forbidden",
            ValidationFailed => "validation_failed",
            MalformedJson => "malformed_json",
            PayloadTooLarge => "payload_too_large",
            CompanyNotConfigured => "company_not_configured",
            MarketNotFound => "market_not_found",
            SituationNotFound => "situation_not_found",
            InvoiceNumberTaken => "invoice_number_taken",
            AlreadyTransmitted => "already_transmitted",
            TransmissionInProgress => "transmission_in_progress",
            CredentialsRejected => "credentials_rejected",
            BuyerNotFound | BuyerNotFoundOnLookup => "buyer_not_found",
            BuyerRequirementsUnmet => "buyer_requirements_unmet",
            ProjectManagerNotFound => "project_manager_not_found",
            ServiceInactive => "service_inactive",
            InvoiceInvalid => "invoice_invalid",
            ChorusUnavailable => "chorus_unavailable",
            ChorusUnexpectedAnswer => "chorus_unexpected_answer",
            GatewayNotAuthorised => "gateway_not_authorised",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict => "conflict",
            IdempotencyKeyReused => "idempotency_key_reused",
            ActionNotAllowed => "action_not_allowed",
            DocumentNotFound => "document_not_found",
            Internal => "internal_error",
            ServiceUnavailable => "service_unavailable",
        }
    }

    pub fn status(self) -> u16 {
        use ProblemCode::*;
        match self {
            Unauthenticated => 401,
            Forbidden => 403,
            ValidationFailed | MalformedJson => 400,
            PayloadTooLarge => 413,
            CompanyNotConfigured
            | MarketNotFound
            | SituationNotFound
            | BuyerNotFoundOnLookup
            | NotFound => 404,
            MethodNotAllowed => 405,
            InvoiceNumberTaken
            | AlreadyTransmitted
            | TransmissionInProgress
            | Conflict
            | ActionNotAllowed => 409,
            CredentialsRejected
            | IdempotencyKeyReused
            | BuyerNotFound
            | BuyerRequirementsUnmet
            | ProjectManagerNotFound
            | ServiceInactive
            | DocumentNotFound
            | InvoiceInvalid => 422,
            ChorusUnavailable | ServiceUnavailable => 503,
            GatewayNotAuthorised | ChorusUnexpectedAnswer => 502,
            Internal => 500,
        }
    }

    pub fn title_fr(self) -> &'static str {
        use ProblemCode::*;
        match self {
            Unauthenticated => "Authentification requise",
            Forbidden => "Accès refusé",
            ValidationFailed => "Données invalides",
            MalformedJson => "Requête illisible",
            PayloadTooLarge => "Requête trop volumineuse",
            CompanyNotConfigured => "Compte Chorus Pro non configuré",
            MarketNotFound => "Marché introuvable",
            SituationNotFound => "Situation introuvable",
            InvoiceNumberTaken => "Numéro de facture déjà utilisé",
            AlreadyTransmitted => "Situation déjà transmise",
            TransmissionInProgress => "Transmission en cours",
            CredentialsRejected => "Identifiants Chorus Pro refusés",
            BuyerNotFound | BuyerNotFoundOnLookup => "Acheteur public introuvable",
            BuyerRequirementsUnmet => "Exigences de l'acheteur public non remplies",
            ProjectManagerNotFound => "Maître d'œuvre introuvable ou inactif dans Chorus Pro",
            ServiceInactive => "Service de l'acheteur inactif ou inconnu",
            InvoiceInvalid => "Facture non conforme",
            ChorusUnavailable => "Chorus Pro indisponible",
            ChorusUnexpectedAnswer => "Réponse de Chorus Pro illisible",
            GatewayNotAuthorised => "Passerelle non autorisée par PISTE",
            NotFound => "Ressource introuvable",
            MethodNotAllowed => "Méthode non autorisée",
            Conflict => "Modification concurrente",
            IdempotencyKeyReused => "Clé d'idempotence déjà utilisée",
            ActionNotAllowed => "Action impossible dans cet état",
            DocumentNotFound => "Document introuvable",
            Internal => "Erreur interne",
            ServiceUnavailable => "Service momentanément indisponible",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FieldError {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: ProblemCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    code: &'static str,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
}

impl Problem {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// `validation_failed` listing every field at fault; the detail sums them up.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => one.message.clone(),
            many => format!(
                "{} champs sont invalides : {}.",
                many.len(),
                many.iter()
                    .map(|e| e.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Self {
            code: ProblemCode::ValidationFailed,
            detail,
            errors,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            ProblemCode::Unauthenticated,
            "Jeton d'accès absent, expiré ou invalide : reconnectez-vous.",
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            ProblemCode::Forbidden,
            "Vous n'êtes pas autorisé à agir pour cette entreprise.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            ProblemCode::Internal,
            "Une erreur interne est survenue ; rien n'a été perdu. Réessayez dans quelques instants.",
        )
    }

    pub fn service_unavailable() -> Self {
        Self::new(
            ProblemCode::ServiceUnavailable,
            "Le service est momentanément indisponible ; rien n'a été modifié. Réessayez dans quelques instants.",
        )
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    pub fn to_json(&self) -> String {
        let body = ProblemBody {
            kind: format!("https://choruspro-gateway/problems/{}", self.code.as_str()),
            title: self.code.title_fr(),
            status: self.code.status(),
            code: self.code.as_str(),
            detail: &self.detail,
            errors: &self.errors,
        };
        serde_json::to_string(&body).unwrap_or_else(|_| String::from("{}"))
    }

    pub fn into_response(self) -> Response<Body> {
        super::json::text_response(
            lambda_http::http::StatusCode::from_u16(self.status())
                .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR),
            self.to_json(),
            &[("content-type", "application/problem+json")],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_contract_shape() {
        let p = Problem::validation(vec![FieldError::new(
            "siret",
            "invalid_siret",
            "Le numéro de SIRET est invalide.",
        )]);
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(
            v["type"],
            "https://choruspro-gateway/problems/validation_failed"
        );
        assert_eq!(v["title"], "Données invalides");
        assert_eq!(v["status"], 400);
        assert_eq!(v["code"], "validation_failed");
        assert_eq!(v["detail"], "Le numéro de SIRET est invalide.");
        assert_eq!(v["errors"][0]["code"], "invalid_siret");
        let r = p.into_response();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }

    #[test]
    fn statuses_follow_the_contract() {
        assert_eq!(ProblemCode::CredentialsRejected.status(), 422);
        assert_eq!(ProblemCode::GatewayNotAuthorised.status(), 502);
        assert_eq!(ProblemCode::ChorusUnavailable.status(), 503);
        assert_eq!(ProblemCode::ChorusUnexpectedAnswer.status(), 502);
        assert_eq!(
            ProblemCode::ChorusUnexpectedAnswer.as_str(),
            "chorus_unexpected_answer"
        );
        assert_eq!(ProblemCode::PayloadTooLarge.status(), 413);
        assert_eq!(ProblemCode::CompanyNotConfigured.status(), 404);
        assert_eq!(ProblemCode::ProjectManagerNotFound.status(), 422);
        // One code, two statuses: 422 for a market's buyer, 404 on the look-up route.
        assert_eq!(
            ProblemCode::BuyerNotFoundOnLookup.as_str(),
            ProblemCode::BuyerNotFound.as_str()
        );
        assert_eq!(ProblemCode::BuyerNotFound.status(), 422);
        assert_eq!(ProblemCode::BuyerNotFoundOnLookup.status(), 404);
    }
}
