//! The AWS SDK's HTTPS transport: the same reqwest, rustls, ring and compiled-in Mozilla
//! roots as the Chorus Pro client (`crate::tls`), behind the SDK's `HttpClient` interface.
//!
//! One HTTPS stack per binary (issue 18): the SDK's own client (aws-smithy-http-client)
//! brought a second hyper client with HTTP/2, and read and parsed the system's trust store
//! at the first event that called AWS. Any client can be given to the SDK through this
//! interface; Amazon's own Q Developer CLI gives it reqwest the same way.
//!
//! What the interface asks (aws-smithy-runtime-api's `HttpClient` documentation: "must apply
//! connect/read timeout settings, and must maintain a connection pool", "responsible for
//! caching the connector across requests"), and how it is kept:
//! - its timeouts (`HttpConnectorSettings`): the connect timeout is the reqwest client's,
//!   one client per distinct value, built when first asked for and then reused with its
//!   connection pool; the read timeout bounds the wait for the answer's head, as the SDK's
//!   own client does (reqwest's would also cut a body read slowly by its reader);
//! - the request goes as signed: its method, URI, headers and body as they are (reqwest
//!   adds only an unsigned `accept` where there is none; its URL parsing drops `.` and `..`
//!   path segments, which no key of ours holds), no redirect is followed (S3 answers 301 for
//!   another region, which the SDK reads), and no proxy is taken from the environment (the
//!   SDK's client takes none either);
//! - failures are classified as the SDK's retry strategy reads them: a timeout as
//!   `timeout`, a failure to connect or to send as `io` (both retried as transient), a
//!   request reqwest cannot build as `user` (not retried), anything else as `other`. reqwest
//!   reports every hyper failure as one to send, so a malformed answer is retried too, where
//!   the SDK's client would not; the retry strategy's attempts still bound it.
//!
//! Not kept: the SDK "poisons" a connection after a transient failure so that the retry
//! opens another; reqwest does not hand it the connection. A connection that failed or timed
//! out is closed anyway; one that answered a 5xx goes back to the pool.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

/// The SDK's HTTP client (given to `aws_config::ConfigLoader::http_client`).
pub fn http_client() -> SharedHttpClient {
    SharedHttpClient::new(SdkHttps::default())
}

/// The reqwest clients made for the SDK, one per connect timeout it asked for.
#[derive(Debug, Default, Clone)]
struct SdkHttps {
    clients: Arc<Mutex<Vec<(ConnectTimeout, Built)>>>,
}

type ConnectTimeout = Option<Duration>;

/// A client, or why none could be built (said by every call through it).
type Built = Result<reqwest::Client, &'static str>;

impl SdkHttps {
    fn client_for(&self, connect: ConnectTimeout) -> Built {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, built)) = clients.iter().find(|(c, _)| *c == connect) {
            return built.clone();
        }
        let built = build_client(connect);
        clients.push((connect, built.clone()));
        built
    }
}

fn build_client(connect: ConnectTimeout) -> Built {
    let tls =
        crate::tls::client_config().map_err(|_| "the TLS configuration could not be built")?;
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some(connect) = connect {
        builder = builder.connect_timeout(connect);
    }
    builder
        .build()
        .map_err(|_| "the HTTP client could not be built")
}

impl HttpClient for SdkHttps {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            client: self.client_for(settings.connect_timeout()),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    client: Built,
    /// How long the answer's head may take once the request is sent.
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let client = client.map_err(|why| ConnectorError::other(why.into(), None))?;
            let sent = client.execute(to_reqwest(request)?);
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, sent)
                    .await
                    .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?,
                None => sent.await,
            };
            to_sdk(response.map_err(classify)?)
        })
    }
}

/// The SDK's request as reqwest sends it: the same method, URI, headers and body. The body
/// is handed over, never copied (a `BatchWriteItem` of an invoice's files is 3.8 MB): the
/// SDK keeps its own handle for a retry.
fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    let body = reqwest::Body::wrap(body);
    reqwest::Request::try_from(http::Request::from_parts(parts, body))
        .map_err(|e| ConnectorError::user(e.into()))
}

/// reqwest's response as the SDK reads it, its body streamed as it comes.
fn to_sdk(response: reqwest::Response) -> Result<HttpResponse, ConnectorError> {
    let (parts, body) = http::Response::from(response).into_parts();
    let response = http::Response::from_parts(parts, SdkBody::from_body_1_x(body));
    HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
}

/// A reqwest failure as the SDK's retry strategy reads it.
fn classify(error: reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        ConnectorError::timeout(error.into())
    } else if error.is_connect() || error.is_request() {
        ConnectorError::io(error.into())
    } else if error.is_builder() {
        ConnectorError::user(error.into())
    } else {
        ConnectorError::other(error.into(), None)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::thread::JoinHandle;

    use aws_smithy_types::byte_stream::ByteStream;

    use super::*;

    /// A server of one connection: reads one request, answers the parts of `reply` with
    /// 400 ms between them, and gives back the request as it came (head and body). No part:
    /// it never answers.
    fn serve_once(reply: &'static [&'static str]) -> (SocketAddr, JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let address = listener.local_addr().expect("its address");
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("a connection");
            let mut reader = BufReader::new(stream.try_clone().expect("the stream"));
            let mut head = String::new();
            while !head.ends_with("\r\n\r\n") {
                reader.read_line(&mut head).expect("the request's head");
            }
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, value)| {
                    value.trim().parse::<usize>().expect("a length")
                });
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("the request's body");
            for (k, part) in reply.iter().enumerate() {
                if k > 0 {
                    std::thread::sleep(Duration::from_millis(400));
                }
                (&stream).write_all(part.as_bytes()).expect("the answer");
            }
            if reply.is_empty() {
                std::thread::sleep(Duration::from_secs(2));
            }
            head + &String::from_utf8(body).expect("a text body")
        });
        (address, server)
    }

    fn request(address: SocketAddr, body: SdkBody) -> HttpRequest {
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://{address}/a/path?x=1"))
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-length", "7")
            .body(body)
            .expect("a request");
        HttpRequest::try_from(request).expect("the SDK's request")
    }

    fn connector(read_timeout: Option<Duration>) -> Connector {
        Connector {
            client: build_client(Some(Duration::from_secs(2))),
            read_timeout,
        }
    }

    /// `POST …` with the body `payload`, through a connector of this read timeout.
    async fn send(
        address: SocketAddr,
        read_timeout: Option<Duration>,
    ) -> Result<HttpResponse, ConnectorError> {
        let sent = connector(read_timeout).call(request(address, SdkBody::from("payload")));
        sent.await
    }

    async fn body_of(response: HttpResponse) -> Vec<u8> {
        let body = ByteStream::new(response.into_body()).collect().await;
        body.expect("the whole body").to_vec()
    }

    #[tokio::test]
    async fn a_request_goes_as_the_sdk_made_it_and_its_answer_comes_back_whole() {
        let (address, server) =
            serve_once(&["HTTP/1.1 201 Created\r\nx-amz-crc32: 42\r\ncontent-length: 2\r\n\r\nok"]);
        let response = send(address, None).await.expect("an answer");
        let seen = server.join().expect("the server");

        assert!(seen.starts_with("POST /a/path?x=1 HTTP/1.1\r\n"), "{seen}");
        assert!(
            seen.contains("x-amz-target: DynamoDB_20120810.GetItem\r\n"),
            "{seen}"
        );
        assert_eq!(
            seen.to_lowercase().matches("content-length").count(),
            1,
            "{seen}"
        );
        assert!(seen.ends_with("\r\n\r\npayload"), "{seen}");
        assert_eq!(response.status().as_u16(), 201);
        assert_eq!(response.headers().get("x-amz-crc32"), Some("42"));
        assert_eq!(body_of(response).await, b"ok");
    }

    #[tokio::test]
    async fn a_streamed_body_is_sent_as_it_comes() {
        let (address, server) = serve_once(&["HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"]);
        let streamed = SdkBody::from_body_1_x(String::from("payload"));
        assert!(streamed.bytes().is_none(), "not a streamed body");
        connector(None)
            .call(request(address, streamed))
            .await
            .expect("an answer");
        assert!(
            server
                .join()
                .expect("the server")
                .ends_with("\r\n\r\npayload")
        );
    }

    #[tokio::test]
    async fn a_redirect_is_handed_to_the_sdk_not_followed() {
        let (address, server) = serve_once(&[
            "HTTP/1.1 301 Moved Permanently\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n",
        ]);
        let response = send(address, None).await.expect("an answer");
        server.join().expect("the server");
        assert_eq!(response.status().as_u16(), 301);
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_which_the_sdk_retries() {
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|closed| closed.local_addr())
            .expect("a port no one listens on");
        let error = send(address, None).await.expect_err("no server");
        assert!(error.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn a_server_that_does_not_answer_in_the_read_timeout_is_a_timeout() {
        let (address, _server) = serve_once(&[]);
        let read_timeout = Some(Duration::from_millis(200));
        let error = send(address, read_timeout).await.expect_err("no answer");
        assert!(error.is_timeout(), "{error:?}");
    }

    #[tokio::test]
    async fn an_answer_whose_body_comes_slowly_is_not_cut_by_the_read_timeout() {
        let (address, server) =
            serve_once(&["HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nso", "me"]);
        let read_timeout = Some(Duration::from_millis(200));
        let response = send(address, read_timeout)
            .await
            .expect("an answer in time");
        assert_eq!(
            body_of(response).await,
            b"some",
            "the whole body, 400 ms later"
        );
        server.join().expect("the server");
    }

    #[test]
    fn one_client_is_built_for_each_connect_timeout_and_then_reused() {
        let https = SdkHttps::default();
        let short = Some(Duration::from_secs(1));
        https.client_for(short).expect("a client");
        https.client_for(short).expect("the same");
        assert_eq!(https.clients.lock().expect("the clients").len(), 1);
        https
            .client_for(Some(Duration::from_secs(5)))
            .expect("another");
        assert_eq!(https.clients.lock().expect("the clients").len(), 2);
    }
}
