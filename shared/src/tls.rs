//! One TLS crypto provider for the whole process.
//!
//! The AWS SDK's HTTPS client already links rustls on aws-lc. reqwest is
//! built without a provider of its own (it would bring ring, a second
//! crypto library in every binary), so it needs the process-wide default
//! installed before its first client is built; [`http_client`] does that.

use std::sync::Once;

static INSTALL: Once = Once::new();

/// Installs aws-lc-rs as the process's default rustls provider, once.
/// If something else installed a provider first, that one is kept: any
/// provider serves reqwest equally.
pub fn install_crypto_provider() {
    INSTALL.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// A reqwest client builder that is safe to `build()`.
pub fn http_client() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_build_without_a_second_crypto_library() {
        let client = http_client().build();
        assert!(client.is_ok(), "{:?}", client.err());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        // A second call must neither panic nor replace the provider.
        assert!(http_client().build().is_ok());
    }
}
