//! TLS served by the binary itself (`POAM_TLS_CERT`, `POAM_TLS_KEY`): rustls with the ring
//! provider, TLS 1.3 and 1.2 only. The certificate and key are read again on SIGHUP and swapped
//! in for new handshakes without touching the listener; a new pair that does not load (missing,
//! unparsable, a key that does not match, a key file others may read) is logged and the one in
//! service kept.
//!
//! Mutual TLS (`POAM_TLS_CLIENT_CA`): client certificates are verified against the configured
//! CAs (chain, validity, clientAuth usage). A certificate is optional: a client that presents one
//! from another CA (or an expired one) is refused at the handshake; a client that presents none
//! authenticates with a bearer token as without mutual TLS. A verified certificate's subject is
//! left in the connection's data as [`ClientCertificate`] claims (`cert.cn`, `cert.ou`…), which
//! the claims map (`POAM_CLAIMS_MAP`) maps to a principal when a request has no bearer token.

use crate::config::TlsSettings;
use poam_http::auth::ClientCertificate;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The provider of every TLS primitive the server uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's configuration and the certificate store it resolves from (kept to reload it).
pub struct Tls {
    pub config: ServerConfig,
    pub certs: Arc<CertStore>,
}

/// The certificate in service, swapped by [`CertStore::reload`].
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

// By hand: the paths only, never the key.
impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertStore")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(current.clone())
    }
}

impl CertStore {
    /// Reads the certificate and key files again and serves them from the next handshake on;
    /// on an error the certificate in service stays. A description of the new certificate.
    pub fn reload(&self) -> Result<String, String> {
        let loaded = load_pair(&self.cert, &self.key, &self.provider)?;
        let described = describe(&loaded);
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = Arc::new(loaded);
        Ok(described)
    }

    /// The certificate in service, described (subject, serial, expiry).
    pub fn describe(&self) -> String {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        describe(&current)
    }
}

/// The certificate chain and key of `POAM_TLS_CERT` / `POAM_TLS_KEY`, checked to belong
/// together. The key file must be private (as every secret file); errors never quote it.
fn load_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("POAM_TLS_CERT {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "POAM_TLS_CERT {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            cert.display()
        ));
    }
    for (n, der) in chain.iter().enumerate() {
        use x509_parser::prelude::FromDer as _;
        x509_parser::certificate::X509Certificate::from_der(der).map_err(|e| {
            format!(
                "POAM_TLS_CERT {}: certificate {} of the chain does not parse: {e}",
                cert.display(),
                n + 1
            )
        })?;
    }
    crate::keys::check_private(key, "POAM_TLS_KEY: the TLS private key file")?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "POAM_TLS_KEY {}: no PEM private key (PKCS#8, PKCS#1 or SEC1) could be read: {e}",
            key.display()
        )
    })?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| format!("POAM_TLS_KEY {}: unusable key: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(e) => Err(format!(
            "POAM_TLS_KEY {} does not belong to the certificate of POAM_TLS_CERT {}: {e}",
            key.display(),
            cert.display()
        )),
    }
}

/// `CN=…, serial …, valid until …` of the end-entity certificate.
fn describe(certified: &CertifiedKey) -> String {
    use x509_parser::prelude::FromDer as _;
    let Some(der) = certified.cert.first() else {
        return "no certificate".into();
    };
    match x509_parser::certificate::X509Certificate::from_der(der) {
        Ok((_, cert)) => {
            let until = chrono::DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            format!(
                "{} (serial {}, valid until {until})",
                cert.subject(),
                serial_hex(cert.raw_serial())
            )
        }
        Err(e) => format!("an unparsable certificate ({e})"),
    }
}

/// A serial number as `openssl x509 -serial` prints it: upper-case hex without the sign byte.
fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    raw[start..].iter().map(|b| format!("{b:02X}")).collect()
}

/// The CAs of `POAM_TLS_CLIENT_CA`.
fn client_roots(path: &Path) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("POAM_TLS_CLIENT_CA {}: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            format!(
                "POAM_TLS_CLIENT_CA {}: not a usable CA certificate: {e}",
                path.display()
            )
        })?;
    }
    if roots.is_empty() {
        return Err(format!(
            "POAM_TLS_CLIENT_CA {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(roots)
}

/// The server configuration of `settings`: TLS 1.3 and 1.2, the certificate from a store
/// that SIGHUP reloads, client certificates verified when `POAM_TLS_CLIENT_CA` is set.
pub fn server_config(settings: &TlsSettings) -> Result<Tls, String> {
    let provider = provider();
    let pair = load_pair(&settings.cert, &settings.key, &provider)?;
    let certs = Arc::new(CertStore {
        cert: settings.cert.clone(),
        key: settings.key.clone(),
        provider: provider.clone(),
        current: RwLock::new(Arc::new(pair)),
    });
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = match &settings.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let roots = Arc::new(client_roots(path)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider)
                // A certificate is optional: a client without one uses a bearer token.
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("POAM_TLS_CLIENT_CA {}: {e}", path.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_cert_resolver(certs.clone());
    Ok(Tls { config, certs })
}

/// Reads the certificate and key again on every SIGHUP (on this runtime, until it stops).
#[cfg(unix)]
pub fn reload_on_sighup(certs: Arc<CertStore>) -> Result<(), String> {
    use actix_web::rt::signal::unix::{signal, SignalKind};
    let mut hangups =
        signal(SignalKind::hangup()).map_err(|e| format!("cannot watch for SIGHUP: {e}"))?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            let certs = certs.clone();
            match actix_web::rt::task::spawn_blocking(move || certs.reload()).await {
                Ok(Ok(served)) => {
                    tracing::info!(certificate = %served, "SIGHUP: TLS certificate reloaded");
                }
                Ok(Err(error)) => tracing::error!(
                    %error,
                    "SIGHUP: the TLS certificate was not reloaded; the previous one is still served"
                ),
                Err(error) => tracing::error!(%error, "SIGHUP: the TLS reload failed"),
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
pub fn reload_on_sighup(_: Arc<CertStore>) -> Result<(), String> {
    Ok(())
}

/// `HttpServer::on_connect`: a TLS connection's verified client certificate becomes
/// [`ClientCertificate`] claims in the connection's data.
pub fn on_connect(conn: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
    type Stream = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    let Some(stream) = conn.downcast_ref::<Stream>() else {
        return;
    };
    let (_, session) = stream.get_ref();
    let Some(der) = session.peer_certificates().and_then(|c| c.first()) else {
        return;
    };
    match certificate_claims(der) {
        Ok(claims) => {
            data.insert(ClientCertificate { claims });
        }
        // Verified by the handshake, yet unreadable here: the request goes on without it.
        Err(error) => tracing::warn!(%error, "a client certificate's subject could not be read"),
    }
}

/// A certificate's subject as claims: `{"cert": {"cn", "o", "ou", "email", "san_dns",
/// "san_email", "serial"}}` (subject attributes a string, or an array when several; the
/// alternative names arrays).
pub fn certificate_claims(der: &[u8]) -> Result<Value, String> {
    use x509_parser::prelude::{FromDer as _, GeneralName};
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let subject = cert.subject();
    let mut out = Map::new();
    let mut attribute = |name: &str, values: Vec<String>| match values.len() {
        0 => {}
        1 => {
            out.insert(name.into(), Value::from(values.into_iter().next()));
        }
        _ => {
            out.insert(name.into(), json!(values));
        }
    };
    let text =
        |a: &x509_parser::x509::AttributeTypeAndValue<'_>| a.as_str().ok().map(str::to_owned);
    attribute("cn", subject.iter_common_name().filter_map(text).collect());
    attribute("o", subject.iter_organization().filter_map(text).collect());
    attribute(
        "ou",
        subject
            .iter_organizational_unit()
            .filter_map(text)
            .collect(),
    );
    attribute("email", subject.iter_email().filter_map(text).collect());
    let (mut dns, mut email) = (Vec::new(), Vec::new());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => dns.push(n.to_string()),
                GeneralName::RFC822Name(n) => email.push(n.to_string()),
                _ => {}
            }
        }
    }
    out.insert("san_dns".into(), json!(dns));
    out.insert("san_email".into(), json!(email));
    out.insert("serial".into(), json!(serial_hex(cert.raw_serial())));
    Ok(json!({ "cert": out }))
}

/// A TLS client stream to this server for `poam health`: it must present the certificate of
/// `POAM_TLS_CERT` (pinned: the probe dials the bind address, whatever names the certificate
/// holds, and sends nothing secret).
pub fn pinned_stream(
    settings: &TlsSettings,
    tcp: std::net::TcpStream,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>, String> {
    let cert = CertificateDer::pem_file_iter(&settings.cert)
        .map_err(|e| format!("POAM_TLS_CERT {}: {e}", settings.cert.display()))?
        .next()
        .ok_or_else(|| format!("POAM_TLS_CERT {}: no certificate", settings.cert.display()))?
        .map_err(|e| format!("POAM_TLS_CERT {}: {e}", settings.cert.display()))?;
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
        .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from("localhost").map_err(|e| format!("TLS: {e}"))?;
    let conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| format!("TLS: {e}"))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// Accepts exactly one end-entity certificate; signatures are checked as usual.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the served certificate is not the one of POAM_TLS_CERT (replaced without a \
                 SIGHUP?)"
                    .into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::serial_hex;

    #[test]
    fn serials_print_as_openssl_prints_them() {
        assert_eq!(serial_hex(&[0x00, 0x9a, 0x01]), "9A01");
        assert_eq!(serial_hex(&[0x01, 0x00]), "0100");
        assert_eq!(serial_hex(&[0x00]), "00");
    }
}
