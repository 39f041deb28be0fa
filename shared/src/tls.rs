//! TLS for the Chorus Pro client (issue 18): Mozilla's root certificates compiled in
//! (`webpki-roots`, the list of Mozilla's root program as published through the CCADB),
//! with ring, the crypto provider the AWS SDK's HTTPS client uses too (`shared::aws`), so
//! that each binary links one crypto library.
//!
//! Built this way, nothing is read or parsed when the client is made: the system's roots
//! are read once per process, by the AWS SDK's HTTPS client when the first SDK client is
//! initialised (`validate_base_client_config` in aws-smithy-http-client), instead of once
//! more by reqwest (rustls-platform-verifier reads and parses the whole system bundle).
//! Amazon Linux's bundle, what Lambda's `provided.al2023` runtime would give, is itself
//! Mozilla's list; that the PISTE hosts chain to one of its roots is checked by
//! `make qualify` against the real platform (docs/chorus-pro.md, "Unconfirmed").

use std::sync::Arc;

/// The rustls configuration of the Chorus Pro client, as reqwest built it before but for
/// the roots: TLS 1.2 and 1.3, SNI, ALPN `http/1.1` (the client speaks HTTP/1.1 only).
pub fn client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    #[test]
    fn mozilla_roots_are_compiled_in() {
        let config = super::client_config().expect("TLS configuration");
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        assert_eq!(
            config.alpn_protocols,
            [b"http/1.1".to_vec()],
            "HTTP/1.1, as before"
        );
        assert!(config.enable_sni);
    }
}
