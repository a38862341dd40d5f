//! TLS pieces both ends share: reading PEM certificates and keys, and the client configuration
//! of millrace's own Kafka connections (trust a CA file or the system's roots, present a client
//! certificate, optionally skip the host-name check as librdkafka's
//! `ssl.endpoint.identification.algorithm=none` does). Always the ring provider, named
//! explicitly, so a second provider linked by another crate never makes rustls guess.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A TLS set-up problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the material (e.g. a key that does not match the certificate).
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The crypto provider every millrace TLS configuration uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file, in order (a chain: leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file = |reason: String| TlsError::File { path: path.to_path_buf(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file(format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file(format!("malformed PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(file("holds no -----BEGIN CERTIFICATE----- block".into()));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| TlsError::File { path: path.to_path_buf(), reason: format!("no usable private key: {e}") })
}

/// A root store of the CA certificates in `ca_file`.
pub fn load_roots(ca_file: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca_file)? {
        roots.add(cert).map_err(|e| TlsError::File {
            path: ca_file.to_path_buf(),
            reason: format!("unusable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// What a client trusts and presents.
#[derive(Clone, Debug, Default)]
pub struct ClientTlsFiles {
    /// CA certificates the server's chain must end in; the system's roots when absent.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and key, for listeners that ask for one.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// Check that the certificate names the host connected to (on unless turned off).
    pub verify_hostname: bool,
}

/// A rustls client configuration from `files`.
pub fn client_config(files: &ClientTlsFiles) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match &files.ca_file {
        Some(ca) => load_roots(ca)?,
        None => {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(TlsError::Config("no CA file given and no system root certificates found".into()));
            }
            roots
        }
    };
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = if files.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
    };
    let config = match &files.identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(|e| TlsError::Config(format!("client certificate {}: {e}", cert.display())))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// What a TLS server asks of its clients' certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientCertificates {
    /// None asked for.
    Ignored,
    /// Asked for; a client without one is still served, one with a bad one is not.
    Requested,
    /// Required, signed by the CA.
    Required,
}

/// A rustls server configuration presenting `chain` and `key`; clients' certificates are
/// checked against `client_roots` as `clients` says (a CA is needed unless they are ignored).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
    client_roots: Option<Arc<RootCertStore>>,
    clients: ClientCertificates,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match (clients, client_roots) {
        (ClientCertificates::Ignored, _) => builder.with_no_client_auth(),
        (_, None) => return Err(TlsError::Config("checking client certificates needs a CA file".into())),
        (optional, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let verifier =
                if optional == ClientCertificates::Requested { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| TlsError::Config(e.to_string()))?)
        }
    };
    builder.with_single_cert(chain, key.clone_key()).map(Arc::new).map_err(|e| TlsError::Config(e.to_string()))
}

/// Verifies the chain and signatures but accepts a certificate for any host name.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A certificate's subject distinguished name in RFC 2253 form (`CN=alice,OU=ops,O=example`):
/// what Kafka's default `ssl.principal.mapping.rules` make the principal's name.
pub fn certificate_subject(certificate: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let mut parts = Vec::new();
    // RFC 2253 lists the most specific RDN first: the reverse of the encoded order.
    for rdn in cert.subject().iter().collect::<Vec<_>>().into_iter().rev() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let oid = attribute.attr_type();
            let name = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
                .map(str::to_string)
                .unwrap_or_else(|_| oid.to_id_string());
            let value = attribute.as_str().ok()?;
            attributes.push(format!("{name}={}", escape_rfc2253(value)));
        }
        parts.push(attributes.join("+"));
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join(","))
}

/// The subject common name of a certificate (the first, if it has several).
pub fn certificate_common_name(certificate: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?.to_string();
    Some(name)
}

fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i == last && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
