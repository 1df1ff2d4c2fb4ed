//! Whom the alert channels trust: the Mozilla root certificates built in (`webpki-roots`) and,
//! with `[alerts] ca_file`, a site's own certificate authorities, so a mail relay or a webhook
//! receiver on the building's network with a certificate from the site's CA is verified, never
//! accepted blindly. One [`Transport`] holds both clients built on that trust.

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// The certificates of a PEM file; `Err` says why there are none to trust.
pub fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("`{}` cannot be read: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{}` is not a PEM file of certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("`{}` holds no certificate (no \"BEGIN CERTIFICATE\" block)", path.display()));
    }
    let mut roots = rustls::RootCertStore::empty();
    for (i, cert) in certs.iter().enumerate() {
        roots
            .add(cert.clone())
            .map_err(|e| format!("certificate {} of `{}` cannot be a trust anchor: {e}", i + 1, path.display()))?;
    }
    Ok(certs)
}

/// The clients every channel sends with, built on one trust.
#[derive(Debug, Clone)]
pub struct Transport {
    /// TLS for the SMTP client.
    pub tls: Arc<rustls::ClientConfig>,
    /// The webhooks' HTTP client (redirects are not followed: a redirect would send a signed
    /// alarm somewhere the configuration does not name).
    pub http: reqwest::Client,
}

impl Transport {
    /// Trusts the built-in roots and the certificates of `ca_file`.
    pub fn new(ca_file: Option<&Path>) -> Result<Transport, String> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = ca_file {
            for cert in read_ca_file(path)? {
                roots.add(cert).map_err(|e| format!("`{}`: {e}", path.display()))?;
            }
        }
        // ring, as reqwest uses: its provider lacks post-quantum key exchange (hence deprecated
        // in rustls 0.23.48), which aws-lc-rs has at the cost of a large C build.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tls = Arc::new(tls);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("t3000/", env!("CARGO_PKG_VERSION")))
            // The same rustls configuration (reqwest checks it is its own rustls version).
            .use_preconfigured_tls((*tls).clone())
            .build()
            .map_err(|e| format!("the webhook client: {e}"))?;
        Ok(Transport { tls, http })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = read_ca_file(&path).unwrap_err();
        assert!(e.contains("ca.pem") && e.contains("no certificate"), "{e}");
        let e = Transport::new(Some(&dir.path().join("missing.pem"))).unwrap_err();
        assert!(e.contains("missing.pem") && e.contains("cannot be read"), "{e}");
        std::fs::write(&path, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
        let e = read_ca_file(&path).unwrap_err();
        assert!(e.contains("cannot be a trust anchor"), "{e}");
    }
}
