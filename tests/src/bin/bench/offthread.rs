//! The AWS SDK's HTTP transport moved to an I/O thread of its own, so that the CPU time of
//! the thread running a handler is the handler's and the SDK's own work (serialising,
//! signing, deserialising, retries, interceptors) without the network's: connecting,
//! writing, reading and HTTP framing happen in the I/O thread's runtime.
//!
//! The wrapped client is the functions' own (`shared::aws::http_client`: reqwest, rustls), as
//! in Lambda; only where its futures are polled changes. Each call costs the calling thread a
//! task hand-off (a spawn and a wake-up), which stays in the measure.

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use tokio::runtime::Handle;

/// An SDK HTTP client whose connections live on `io`.
#[derive(Debug, Clone)]
pub struct OffThread {
    inner: SharedHttpClient,
    io: Handle,
}

impl OffThread {
    /// The functions' SDK HTTPS client (`shared::aws::http_client`), polled on `io`.
    pub fn default_client(io: Handle) -> SharedHttpClient {
        let inner = shared::aws::http_client();
        SharedHttpClient::new(OffThread { inner, io })
    }
}

impl HttpClient for OffThread {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(OffThreadConnector {
            inner: self.inner.http_connector(settings, components),
            io: self.io.clone(),
        })
    }
}

#[derive(Debug)]
struct OffThreadConnector {
    inner: SharedHttpConnector,
    io: Handle,
}

impl HttpConnector for OffThreadConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let task = self.io.spawn(async move { inner.call(request).await });
        HttpConnectorFuture::new(async move {
            task.await
                .map_err(|e| ConnectorError::other(Box::new(e), None))?
        })
    }
}
