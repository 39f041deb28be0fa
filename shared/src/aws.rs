//! AWS SDK configuration, built once per cold start. Endpoints come from the standard
//! variables (`AWS_ENDPOINT_URL`, …), which is how the local stack points at moto.
//!
//! Each SDK client is a [`LazyClient`]: built from that configuration on its first use, so
//! a function pays at its cold start only for the configuration, and for a client only
//! when an event needs it (issue 18). A new AWS service is added the same way: its
//! adapter holds a `LazyClient<aws_sdk_x::Client>` made by `LazyClient::new(sdk,
//! aws_sdk_x::Client::new)`, and functions that never call it never build it.

use std::ops::Deref;
use std::sync::{Arc, LazyLock};

mod https;

pub async fn sdk_config() -> aws_config::SdkConfig {
    config_loader().load().await
}

/// aws-config's loader as every function (and the tests' clients) use it: the HTTPS client
/// below and, where the environment holds them, the region and the credentials taken from
/// it directly. Lambda always sets `AWS_REGION` and the execution role's
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN` (AWS Lambda Developer
/// Guide, "Defined runtime environment variables"), which are what the default chains would
/// find first anyway (environment, then profile, web identity, ECS, IMDS); building those
/// chains constructs IMDS and ECS clients before the first event (issue 18). Without these
/// variables the default chains are used, as before.
pub fn config_loader() -> aws_config::ConfigLoader {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http_client());
    if let Ok(region) = std::env::var("AWS_REGION") {
        loader = loader.region(aws_config::Region::new(region));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        && std::env::var_os("AWS_SECRET_ACCESS_KEY").is_some()
    {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    loader
}

/// The SDK's HTTPS client: reqwest with rustls, ring and Mozilla's roots compiled in, as the
/// Chorus Pro client. Nothing is read or parsed when it is made or first used.
pub use https::http_client;

type Build<C> = Box<dyn FnOnce() -> C + Send>;

/// An SDK client built on first use (then shared by every clone), or given ready-made
/// (tests, the bench: `From<C>`). Dereferences to the client.
pub struct LazyClient<C>(Arc<LazyLock<C, Build<C>>>);

impl<C: 'static> LazyClient<C> {
    /// `build` (e.g. `aws_sdk_dynamodb::Client::new`) runs at the first dereference.
    pub fn new(sdk: &SdkConfig, build: fn(&SdkConfig) -> C) -> Self {
        let sdk = sdk.clone();
        LazyClient(Arc::new(LazyLock::new(Box::new(move || build(&sdk)))))
    }

    /// Whether the client has been built (the bench checks what a cold start left unbuilt).
    pub fn is_built(&self) -> bool {
        LazyLock::get(&self.0).is_some()
    }
}

impl<C: Send + 'static> From<C> for LazyClient<C> {
    fn from(client: C) -> Self {
        let client: LazyLock<C, Build<C>> = LazyLock::new(Box::new(move || client));
        LazyLock::force(&client);
        LazyClient(Arc::new(client))
    }
}

impl<C> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        LazyClient(Arc::clone(&self.0))
    }
}

impl<C: std::fmt::Debug> std::fmt::Debug for LazyClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match LazyLock::get(&self.0) {
            Some(client) => client.fmt(f),
            None => f.write_str("LazyClient(not built yet)"),
        }
    }
}

impl<C> Deref for LazyClient<C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.0
    }
}

/// The message of an SDK error, without the request or response it carries (which may
/// hold a secret value).
pub fn error_text<E, R>(err: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error,
{
    use aws_sdk_dynamodb::error::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let inner = e.err();
            format!(
                "{}: {}",
                inner.code().unwrap_or("ServiceError"),
                inner.message().unwrap_or("")
            )
        }
        SdkError::TimeoutError(_) => "timeout".into(),
        SdkError::DispatchFailure(_) => "dispatch failure".into(),
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "request construction failure".into(),
        _ => "sdk error".into(),
    }
}

pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb as dynamodb;
pub use aws_sdk_secretsmanager as secretsmanager;
pub use aws_sdk_sesv2 as sesv2;

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    fn count_build(_: &SdkConfig) -> usize {
        BUILT.fetch_add(1, Ordering::SeqCst) + 1
    }

    #[test]
    fn a_lazy_client_is_built_once_at_its_first_use_and_shared_by_its_clones() {
        let client = LazyClient::new(&SdkConfig::builder().build(), count_build);
        let clone = client.clone();
        assert!(!client.is_built());
        assert_eq!(
            BUILT.load(Ordering::SeqCst),
            0,
            "built before its first use"
        );
        assert_eq!(*clone, 1);
        assert!(client.is_built());
        assert_eq!(*client, 1);
        assert_eq!(BUILT.load(Ordering::SeqCst), 1, "built more than once");
    }

    #[test]
    fn a_ready_client_is_used_as_given() {
        let client = LazyClient::from(String::from("ready"));
        assert!(client.is_built());
        assert_eq!(client.as_str(), "ready");
    }
}
