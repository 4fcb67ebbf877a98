//! TLS set-up shared by every HTTPS client berth makes.
//!
//! berth uses rustls with the `ring` provider (small and quick to build) and the system's
//! root certificates, so corporate roots installed in the container are trusted.

/// Installs `ring` as the process's rustls provider; safe to call any number of times.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
