//! HTTP/1.1 exchanges of the test helpers over plain TCP or over TLS trusting a test CA
//! (`pki::TestCa`), so that the Elasticsearch test server and InfluxDB can be inspected from
//! the tests when they serve HTTPS. Blocking rustls; no HTTP client library.

use crate::connect_timeout;
use anyhow::Context;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A TLS client configuration trusting one CA.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
}

impl TlsClient {
    /// Trusts the certificates in the PEM file `ca_file` (and nothing else).
    pub fn trusting(ca_file: &Path) -> anyhow::Result<TlsClient> {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca_file)
            .with_context(|| format!("reading {}", ca_file.display()))?
        {
            roots.add(cert.with_context(|| format!("parsing {}", ca_file.display()))?)?;
        }
        // The provider named, not taken from the process default: nothing here installs one.
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClient { config: Arc::new(config) })
    }
}

/// A request's stream: TCP, or TLS over it.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// Sends `request` (head and body) to `addr` (`127.0.0.1:PORT`) over TLS when `tls` is given
/// (verifying the server as `localhost`), and reads the answer until the server closes the
/// connection. Bounded: 5 s to connect, `timeout` per read and write. A server that answers
/// and closes before reading the whole request is fine: the sending error matters only when
/// nothing came back.
pub fn exchange(addr: &str, tls: Option<&TlsClient>, request: &[u8], timeout: Duration) -> anyhow::Result<Vec<u8>> {
    let tcp = connect_timeout(addr, timeout.min(Duration::from_secs(5)))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let mut stream: Box<dyn Stream> = match tls {
        None => Box::new(tcp),
        Some(client) => {
            let name = rustls_pki_types::ServerName::try_from("localhost")?;
            let connection = rustls::ClientConnection::new(client.config.clone(), name)?;
            Box::new(rustls::StreamOwned::new(connection, tcp))
        }
    };
    let sent = stream.write_all(request).and_then(|()| stream.flush());
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    // Servers that close without a TLS close_notify (Python's, Go's on some paths) end the
    // read with UnexpectedEof after a complete answer.
    let read = match read {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => Ok(raw.len()),
        other => other,
    };
    if raw.is_empty() {
        sent.with_context(|| format!("{addr}: sending the request"))?;
        read.with_context(|| format!("{addr}: reading the answer"))?;
        anyhow::bail!("{addr}: the connection closed without an answer");
    }
    read.with_context(|| format!("{addr}: reading the answer"))?;
    Ok(raw)
}
