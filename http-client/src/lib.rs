//! The HTTP client of the sinks' Elasticsearch and InfluxDB destinations and of the agent's
//! Prometheus scrapes: reqwest over rustls, built from a [`ClientTls`] table — the system's
//! trusted roots plus `ca_file`, a client certificate, and `insecure_skip_verify` — and
//! [`describe`], which turns a reqwest error into its whole cause chain with any password in a
//! URL redacted, so errors can be logged as they are.

use millrace_config::http_client::ClientTls;
use millrace_config::secret::redact_urls;
use std::path::PathBuf;

/// A client's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A PEM file could not be read (or holds no PEM block of the kind wanted).
    #[error("tls: {0}")]
    File(String),
    /// `ca_file` holds something that is not a certificate.
    #[error("tls.ca_file `{}`: {}", path.display(), describe(source))]
    Ca {
        /// The file.
        path: PathBuf,
        /// reqwest's error.
        source: reqwest::Error,
    },
    /// `cert_file` and `key_file` are not a certificate and its key.
    #[error("tls.cert_file `{}` / tls.key_file `{}`: {}", cert.display(), key.display(), describe(source))]
    Identity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// reqwest's error.
        source: reqwest::Error,
    },
}

/// A client builder trusting the system's roots plus `tls.ca_file`, presenting `tls.cert_file`
/// when the server asks for a client certificate, and checking nothing when
/// `tls.insecure_skip_verify` (the caller warns about that at start-up). The caller adds its
/// timeouts and builds it.
pub fn builder(tls: &ClientTls) -> Result<reqwest::ClientBuilder, ClientError> {
    let files = tls.read_files().map_err(ClientError::File)?;
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let (Some(pem), Some(path)) = (&files.ca_pem, &tls.ca_file) {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|source| ClientError::Ca { path: path.clone(), source })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let (Some(pem), Some(cert), Some(key)) = (&files.identity_pem, &tls.cert_file, &tls.key_file) {
        let identity = reqwest::Identity::from_pem(pem).map_err(|source| ClientError::Identity {
            cert: cert.clone(),
            key: key.clone(),
            source,
        })?;
        builder = builder.identity(identity);
    }
    if tls.insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    Ok(builder)
}

/// `error` with its cause chain (reqwest's top level alone says little: "error sending
/// request"; the cause says "invalid peer certificate: UnknownIssuer"), passwords in URLs
/// replaced by `***`.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // hyper repeats its cause's text in its own; say it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    redact_urls(&text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn errors_name_their_cause_without_the_password() {
        // Nothing listens on port 9 of loopback (discard): the connection is refused.
        let client = builder(&ClientTls::default()).unwrap().build().unwrap();
        let error = client.get("http://elastic:s3cret@127.0.0.1:9/_bulk").send().await.unwrap_err();
        let text = describe(&error);
        assert!(!text.contains("s3cret") && text.contains("Connection refused"), "{text}");
        // reqwest moves the credentials into a header before sending; an error naming a URL with
        // them (a redirect's target, a builder error) still shows none.
        let url = reqwest::Url::parse("https://elastic:s3cret@es.example:9200/_bulk").unwrap();
        let text = describe(&error.with_url(url));
        assert!(!text.contains("s3cret") && text.contains("https://elastic:***@es.example:9200/_bulk"), "{text}");
    }

    #[test]
    fn unusable_tls_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n").unwrap();
        let tls = ClientTls { ca_file: Some(ca.clone()), ..ClientTls::default() };
        let error = builder(&tls).and_then(|b| b.build().map_err(|e| ClientError::File(describe(&e))));
        let text = error.map(drop).unwrap_err().to_string();
        assert!(text.contains("ca.pem") || text.contains("certificate"), "{text}");
        let tls = ClientTls { ca_file: Some(dir.path().join("missing.pem")), ..ClientTls::default() };
        let text = builder(&tls).map(drop).unwrap_err().to_string();
        assert!(text.starts_with("tls: cannot read") && text.contains("missing.pem"), "{text}");
    }
}
