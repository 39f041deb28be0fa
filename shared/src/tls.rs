//! TLS for every HTTPS call a function makes (issue 18): Mozilla's root certificates
//! compiled in (`webpki-roots`, the list of Mozilla's root program as published through the
//! CCADB), with ring. The Chorus Pro client and the AWS SDK's (`shared::aws::https`) are
//! both built on it, so each binary links one TLS stack and one crypto library.
//!
//! Built this way, nothing is read or parsed when a client is made: reqwest's default
//! (rustls-platform-verifier) and the SDK's own HTTPS client each read and parsed the whole
//! system bundle, once per process. Amazon Linux's bundle, what Lambda's `provided.al2023`
//! runtime would give, is itself Mozilla's list. AWS endpoints chain to Amazon Trust
//! Services' roots, members of Mozilla's program (docs/architecture.md, "TLS"); that the
//! PISTE hosts chain to one of its roots is checked by `make qualify` against the real
//! platform (docs/chorus-pro.md, "Unconfirmed").

use std::sync::Arc;

/// The rustls configuration of the functions' HTTPS clients, as reqwest built it before but
/// for the roots: TLS 1.2 and 1.3, SNI, ALPN `http/1.1` (the clients speak HTTP/1.1 only).
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

    /// AWS endpoints chain to Amazon Trust Services; its repository asks a custom trust store
    /// for all five of its roots.
    #[test]
    fn the_roots_of_aws_endpoints_are_among_them() {
        let subjects: Vec<String> = webpki_roots::TLS_SERVER_ROOTS
            .iter()
            .map(|root| String::from_utf8_lossy(root.subject.as_ref()).into_owned())
            .collect();
        for root in [
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ] {
            assert!(subjects.iter().any(|s| s.contains(root)), "{root} missing");
        }
    }
}
