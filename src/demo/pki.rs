//! The throw-away PKI of `millrace demo --secure`: a certificate authority made for one demo
//! directory, the certificates it signs, and random passwords.
//!
//! The CA's private key is never written anywhere: it signs what the demo needs at start-up and
//! is dropped with the [`Authority`], so no one who later reads the demo directory can mint a
//! certificate the brokers would trust. Private keys and passwords are created mode 0600 in
//! directories of mode 0700 (the default demo directory is in a shared temporary directory).

use anyhow::Context;
use chrono::Datelike;
use millrace_broker::security::scram::{OsRandom, RandomSource};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How long the certificates are valid: the demo's lifetime, with room for a kept directory to
/// be looked at later. Backdated a day so that a clock a little behind still accepts them.
const VALID_DAYS: i64 = 30;

/// Random bytes in a generated password (hex-encoded: 48 characters, 192 bits).
const PASSWORD_BYTES: usize = 24;

/// A certificate and its private key, as PEM files.
#[derive(Clone, Debug)]
pub struct KeyedCert {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
}

/// What a signed certificate is used for, which decides its extended key usages and names.
pub enum Use<'a> {
    /// A TLS server that also connects out with the same certificate (the brokers' listeners and
    /// their replica fetches; the controller listeners): reachable as `names` (DNS names or IP
    /// addresses).
    ServerAndClient(&'a [&'a str]),
    /// A TLS client only (the operator's certificate).
    Client,
}

/// The demo's certificate authority; signs certificates into its directory.
pub struct Authority {
    dir: PathBuf,
    /// `ca.pem`: what every client and broker trusts.
    pub ca_file: PathBuf,
    issuer: rcgen::Certificate,
    issuer_key: KeyPair,
}

/// Creates `dir` with mode 0700 (and its parents as usual); fine if it exists.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Writes `text` to a new file `path` readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// A password of [`PASSWORD_BYTES`] random bytes from the operating system, in hex (nothing a
/// properties file or a shell would need to quote).
pub fn random_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; PASSWORD_BYTES];
    OsRandom.fill(&mut bytes).map_err(|e| anyhow::anyhow!("generating a password: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Sets the validity window of `params` from today's date (UTC).
fn set_validity(params: &mut CertificateParams) {
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(1);
    let until = today + chrono::Duration::days(VALID_DAYS);
    // Dates chrono produced are valid calendar dates, which is all `date_time_ymd` asks.
    let day = |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    params.not_before = day(from);
    params.not_after = day(until);
}

/// A distinguished name holding only a common name.
fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

impl Authority {
    /// A new CA named `label`, its certificate written to `dir/ca.pem` (`dir` made private).
    pub fn create(dir: &Path, label: &str) -> anyhow::Result<Authority> {
        private_dir(dir)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(label);
        // It signs leaf certificates only.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        set_validity(&mut params);
        let issuer_key = KeyPair::generate().context("generating the CA key")?;
        let issuer = params.self_signed(&issuer_key).context("signing the CA certificate")?;
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, issuer.pem()).with_context(|| format!("writing {}", ca_file.display()))?;
        Ok(Authority { dir: dir.to_path_buf(), ca_file, issuer, issuer_key })
    }

    /// Signs a certificate for subject `CN=<subject>` with a fresh key, written as
    /// `<stem>.pem` and `<stem>.key` beside the CA.
    pub fn sign(&self, stem: &str, subject: &str, purpose: Use<'_>) -> anyhow::Result<KeyedCert> {
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(subject);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params);
        match purpose {
            Use::ServerAndClient(names) => {
                params.extended_key_usages =
                    vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
                for name in names {
                    let san = match name.parse::<std::net::IpAddr>() {
                        Ok(ip) => SanType::IpAddress(ip),
                        Err(_) => SanType::DnsName(
                            (*name).try_into().with_context(|| format!("`{name}` as a certificate name"))?,
                        ),
                    };
                    params.subject_alt_names.push(san);
                }
            }
            Use::Client => params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth],
        }
        let key = KeyPair::generate().with_context(|| format!("generating the key of {subject}"))?;
        let cert = params
            .signed_by(&key, &self.issuer, &self.issuer_key)
            .with_context(|| format!("signing the certificate of {subject}"))?;
        let files = KeyedCert { cert: self.dir.join(format!("{stem}.pem")), key: self.dir.join(format!("{stem}.key")) };
        write_private(&files.key, &key.serialize_pem())?;
        std::fs::write(&files.cert, cert.pem()).with_context(|| format!("writing {}", files.cert.display()))?;
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use millrace_protocol::tls::{certificate_common_name, load_certs};
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn signs_named_certificates_with_private_keys() {
        let dir = std::env::temp_dir().join(format!("millrace-demo-pki-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ca = Authority::create(&dir.join("pki"), "test CA").unwrap();
        let server = ca.sign("server", "broker", Use::ServerAndClient(&["localhost", "127.0.0.1"])).unwrap();
        let client = ca.sign("client", "operator", Use::Client).unwrap();
        let server_cert = load_certs(&server.cert).unwrap();
        let client_cert = load_certs(&client.cert).unwrap();
        let modes = (mode(&dir.join("pki")), mode(&server.key), mode(&client.key));
        let again = write_private(&server.key, "x").is_err();
        let (first, second) = (random_password().unwrap(), random_password().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(certificate_common_name(&server_cert[0]).as_deref(), Some("broker"));
        assert_eq!(certificate_common_name(&client_cert[0]).as_deref(), Some("operator"));
        assert_eq!(modes, (0o700, 0o600, 0o600));
        assert!(again, "a private file is never overwritten");
        assert_eq!(first.len(), 2 * PASSWORD_BYTES);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(first, second);
    }
}
