//! TLS for `rediss://` upstreams, with rustls and its ring provider (no OpenSSL, and the same
//! choice as the `hotkey` CLI). Roots come from the system's store (`rustls-native-certs`,
//! where operators install their own CA) or from a CA file of the deployment's own: Redis
//! servers rarely carry certificates of a public CA, so `webpki-roots` alone would not do.

use std::fmt;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::UpstreamError;

/// How a TLS upstream's certificate is checked.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
}

/// A TLS setup that cannot be built (no usable root, a bad PEM file).
#[derive(Clone, Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(String);

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// Trust the system's root certificates.
    pub fn native_roots() -> Result<Tls, TlsError> {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err(TlsError(format!(
                "no usable root certificate in the system's store ({} errors: {:?})",
                found.errors.len(),
                found.errors.first().map(ToString::to_string)
            )));
        }
        Tls::with_roots(roots)
    }

    /// Trust only the CA certificates of `pem` (the contents of Redis's `tls-ca-cert-file`).
    pub fn ca_pem(pem: &[u8]) -> Result<Tls, TlsError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| TlsError(format!("a CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| TlsError(format!("a CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(TlsError("no certificate in the CA PEM".into()));
        }
        Tls::with_roots(roots)
    }

    fn with_roots(roots: RootCertStore) -> Result<Tls, TlsError> {
        // The provider is named, not looked up: a process-wide default is ambiguous when
        // another crate in the build enables a second provider.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Tls {
            config: Arc::new(config),
        })
    }

    /// The TLS handshake over `tcp`, checking the certificate against `host`.
    pub(super) async fn connect(
        &self,
        host: &str,
        addr: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, UpstreamError> {
        let failed = |detail: String| UpstreamError::Tls {
            addr: addr.to_string(),
            detail,
        };
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| failed(format!("{host} is not a server name: {e}")))?;
        TlsConnector::from(self.config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| failed(e.to_string()))
    }
}
