//! TLS set-up shared by every HTTPS client berth makes, and TLS failures in plain words.
//!
//! berth uses rustls with the `ring` provider (small and quick to build) and the system's
//! root certificates, so corporate roots installed in the container are trusted
//! (`SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured). Slim images often have no
//! certificates at all (no `ca-certificates` package): then the Mozilla roots bundled in
//! berth (`webpki-roots`) are used instead, so that ECR's public endpoints still work; a
//! plain `http://` endpoint needs no roots either way.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How every TLS failure [`explain`] describes starts.
pub const TLS_FAILED: &str = "TLS failed";

/// Where the trusted roots came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The system's store (or `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    System(usize),
    /// The system has none: the roots bundled in berth.
    Bundled,
}

/// Installs `ring` as the process's rustls provider; safe to call any number of times.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The client TLS configuration: the system's roots, else the bundled ones. Loaded once.
pub fn client_config() -> (Arc<rustls::ClientConfig>, Roots) {
    static CONFIG: OnceLock<(Arc<rustls::ClientConfig>, Roots)> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_crypto_provider();
            let mut store = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            let roots = if added > 0 {
                Roots::System(added)
            } else {
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                tracing::info!(
                    "the container has no root certificates; using the ones bundled in berth"
                );
                Roots::Bundled
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(store)
            .with_no_client_auth();
            (Arc::new(config), roots)
        })
        .clone()
}

/// An HTTP client with bounded connect and request times, proxies from the environment,
/// and [`client_config`]'s roots.
pub fn http_client(connect: Duration, request: Duration) -> Result<reqwest::Client, String> {
    let (config, _) = client_config();
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(request)
        .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
        .tls_backend_preconfigured((*config).clone())
        .build()
        .map_err(|e| describe_error(&e))
}

/// A request error in plain words: what failed (timeout, connection, TLS with the
/// certificate problem named), then the chain of causes.
pub fn describe_error(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(tls) = tls_problem(e) {
        return tls;
    }
    let mut msg = match e.downcast_ref::<reqwest::Error>() {
        Some(r) if r.is_timeout() => "timed out".to_string(),
        Some(r) if r.is_connect() => "connection failed".to_string(),
        Some(r) if r.is_builder() => "cannot make the HTTP client".to_string(),
        _ => "request failed".to_string(),
    };
    let mut source = e.source();
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    msg
}

/// The TLS problem somewhere in an error's chain, in plain words.
fn tls_problem(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let found = err.downcast_ref::<rustls::Error>().or_else(|| {
            // An I/O error's source() skips what it wraps: look inside, layer by layer.
            let mut io = err.downcast_ref::<std::io::Error>()?;
            loop {
                let inner = io.get_ref()?;
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return Some(tls);
                }
                io = inner.downcast_ref::<std::io::Error>()?;
            }
        });
        if let Some(tls) = found {
            return Some(explain(tls));
        }
        cur = err.source();
    }
    None
}

/// One rustls error in words, with what to do.
pub fn explain(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "TLS failed: the server's certificate is not signed by an \
                                 authority this container trusts; add that authority's \
                                 certificate to the image's trust store, or point \
                                 SSL_CERT_FILE at it"
                .into(),
            C::Expired | C::ExpiredContext { .. } => {
                "TLS failed: the server's certificate has expired (or this container's clock is wrong)"
                    .into()
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "TLS failed: the server's certificate is not valid yet (is this container's clock right?)"
                    .into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "TLS failed: the server's certificate is for another host name".into()
            }
            C::Revoked => "TLS failed: the server's certificate was revoked".into(),
            C::BadSignature => {
                "TLS failed: the server's certificate has a bad signature".into()
            }
            C::Other(o) if o.to_string().contains("CaUsedAsEndEntity") => {
                "TLS failed: the server's certificate is self-signed (an authority's own \
                 certificate), and no authority this container trusts vouches for it; add it \
                 to the image's trust store, or point SSL_CERT_FILE at it"
                    .into()
            }
            other => format!("TLS failed: the server's certificate was refused ({other:?})"),
        },
        other => format!("TLS failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_problems_are_named() {
        let unknown = explain(&rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert!(unknown.contains("not signed by an authority this container trusts"));
        // As hyper-rustls reports it: an I/O error inside an I/O error.
        let io = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::Expired),
        ));
        assert!(describe_error(&io).contains("has expired"));
    }

    #[test]
    fn roots_exist_with_or_without_the_system_store() {
        let (config, roots) = client_config();
        assert!(Arc::strong_count(&config) >= 1);
        assert!(matches!(roots, Roots::System(n) if n > 0) || roots == Roots::Bundled);
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
    }
}
