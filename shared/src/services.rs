//! What every function keeps for its warm life, made once per cold start from the
//! `Config`: the table, the secret store and the Chorus Pro client (`State`), plus the
//! depositor for the two functions that deposit (`DepositingState`). Made, not built: the SDK
//! clients are `LazyClient`s and the Chorus Pro client builds its HTTP client (and reads
//! the PISTE credentials from Secrets Manager) at its first call, so a cold start connects
//! nothing and an event pays only for the clients it uses (issue 18).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::SecretString;

use crate::aws::LazyClient;
use crate::chorus::{
    ChorusClient, ChorusConfig, ChorusError, PisteCredentials, PisteCredentialsSource,
};
use crate::config::Config;
use crate::deposit::Depositor;
use crate::mail::Mailer;
use crate::secrets::SecretStore;
use crate::store::Store;

/// What every function that calls Chorus Pro holds for its warm life: company-settings
/// and identifiers hold exactly this; the two functions that deposit add their depositor
/// (`DepositingState`).
#[derive(Clone)]
pub struct State {
    pub config: Config,
    pub store: Store,
    pub secrets: SecretStore,
    pub chorus: Arc<ChorusClient>,
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl State {
    pub fn from_sdk(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        // Nothing is built here but the handles: each client at its first use (issue 18).
        let events = config.event_bus_name.as_ref().map(|bus| {
            crate::store::outbox::EventSink::new(
                LazyClient::new(sdk, aws_sdk_eventbridge::Client::new),
                bus,
            )
        });
        let store = Store::new(
            LazyClient::new(sdk, aws_sdk_dynamodb::Client::new),
            config.table_name.clone(),
        )
        .with_events(events);
        let secrets = SecretStore::new(
            LazyClient::new(sdk, aws_sdk_secretsmanager::Client::new),
            config.secret_prefix.clone(),
        );
        Self::from_clients(config, store, secrets)
    }

    /// Around the table and secret store given (the tests and the bench count or fault
    /// their calls); the Chorus Pro client as `from_sdk` makes it, the system clock.
    pub fn from_clients(config: Config, store: Store, secrets: SecretStore) -> Self {
        let chorus = Arc::new(lazy_chorus_client(&config, secrets.clone()));
        State {
            config,
            store,
            secrets,
            chorus,
            clock: Arc::new(crate::clock::SystemClock),
        }
    }

    /// The follow-up's: its Chorus Pro calls wait for the shared rate limit
    /// (`paced_chorus_client`).
    pub fn paced(mut self) -> Self {
        self.chorus = paced_chorus_client(&self.config, self.secrets.clone());
        self
    }
}

pub fn chorus_config(config: &Config) -> ChorusConfig {
    let mut chorus = ChorusConfig::new(
        config.chorus_api_url.clone(),
        config.piste_token_url.clone(),
    );
    chorus.connect_timeout = config.chorus_connect_timeout;
    chorus.request_timeout = config.chorus_request_timeout;
    chorus
}

/// The client of the follow-up, whose calls wait for a shared rate limit
/// (`CHORUS_RATE_PER_SECOND`). Every client pauses all its calls after a `429`.
fn paced_chorus_client(config: &Config, secrets: SecretStore) -> Arc<ChorusClient> {
    let pacer = crate::chorus::Pacer::per_second(config.follow.rate_per_second);
    Arc::new(lazy_chorus_client(config, secrets).with_pacer(Arc::new(pacer)))
}

/// Its HTTP client (and TLS roots) at the first Chorus Pro call; the gateway's PISTE
/// credentials read from Secrets Manager then.
fn lazy_chorus_client(config: &Config, secrets: SecretStore) -> ChorusClient {
    let source = SecretPisteCredentials {
        secrets,
        name: config.piste_credentials_secret.clone(),
    };
    ChorusClient::lazy(chorus_config(config), Arc::new(source))
}

/// The gateway's PISTE application credentials, from one JSON secret
/// `{"client_id": "…", "client_secret": "…"}`.
struct SecretPisteCredentials {
    secrets: SecretStore,
    name: String,
}

#[derive(serde::Deserialize)]
struct PisteSecret {
    client_id: String,
    client_secret: String,
}

impl PisteCredentialsSource for SecretPisteCredentials {
    fn load(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<PisteCredentials, ChorusError>> + Send + '_>> {
        Box::pin(async move {
            let secret: PisteSecret = self.secrets.json_secret(&self.name).await.map_err(|e| {
                ChorusError::GatewayCredentialsUnavailable {
                    reason: format!("secret {}: {e}", self.name),
                }
            })?;
            Ok(PisteCredentials {
                client_id: secret.client_id,
                client_secret: SecretString::from(secret.client_secret),
            })
        })
    }
}

/// What a function that deposits holds for its warm life (`transmit-invoice` and
/// `status-sync`): the clients of every function and the depositor built on them. It reads
/// as its `State` (`state.store`, `state.config`, …).
pub struct DepositingState {
    pub state: State,
    pub depositor: Depositor,
}

impl DepositingState {
    pub fn from_sdk(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        let mailer = alert_mailer(&config, sdk);
        Self::new(State::from_sdk(config, sdk), mailer)
    }

    /// The follow-up's state: its Chorus Pro calls paced (`State::paced`).
    pub fn paced(config: Config, sdk: &aws_config::SdkConfig) -> Self {
        let mailer = alert_mailer(&config, sdk);
        Self::new(State::from_sdk(config, sdk).paced(), mailer)
    }

    /// The depositor on the state's own clients; `mailer` sends the referent alerts.
    pub fn new(state: State, mailer: Option<Arc<dyn Mailer>>) -> Self {
        let depositor = Depositor {
            store: state.store.clone(),
            secrets: state.secrets.clone(),
            chorus: Arc::clone(&state.chorus),
            mailer,
            config: state.config.clone(),
        };
        DepositingState { state, depositor }
    }
}

impl std::ops::Deref for DepositingState {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for DepositingState {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

/// The referent alerts' mailer: SES from `SENDER_EMAIL`; without it a refused password is
/// recorded and nobody is e-mailed.
pub fn alert_mailer(config: &Config, sdk: &aws_config::SdkConfig) -> Option<Arc<dyn Mailer>> {
    config.sender_email.clone().map(|sender| {
        Arc::new(crate::mail::SesMailer::new(
            LazyClient::new(sdk, aws_sdk_sesv2::Client::new),
            sender,
        )) as Arc<dyn Mailer>
    })
}

/// The payment terms of a situation view: the market's buyer category (the default when
/// the market is not at hand), the deployment's rates, today.
pub fn payment_terms<'a>(
    config: &'a Config,
    clock: &dyn crate::clock::Clock,
    market: Option<&crate::domain::Market>,
) -> crate::domain::payment::PaymentTerms<'a> {
    crate::domain::payment::PaymentTerms::at(
        market.map(|m| m.terms.buyer_category),
        &config.late_payment_rates,
        clock.now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cold_start_builds_no_chorus_pro_http_client() {
        let config = Config::from_lookup(|name| (name == "TABLE_NAME").then(|| "t".into()))
            .expect("configuration");
        let sdk = aws_config::SdkConfig::builder().build();
        let state = State::from_sdk(config, &sdk);
        assert!(!state.chorus.http_client_built());
    }
}
