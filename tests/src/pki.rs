//! A throw-away certificate authority for the TLS tests: a CA, server certificates for loopback,
//! and client certificates with a chosen common name, written as PEM files into a directory.

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use std::path::{Path, PathBuf};

/// PEM files of one certificate and its key.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key (PKCS#8).
    pub key: PathBuf,
}

/// A CA that signs certificates into `dir`.
pub struct TestCa {
    dir: PathBuf,
    /// The CA certificate (PEM), what clients and servers trust.
    pub ca_cert: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to `dir/ca.pem`.
    pub fn new(dir: &Path, name: &str) -> anyhow::Result<TestCa> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let ca_cert = dir.join("ca.pem");
        std::fs::write(&ca_cert, cert.pem()).with_context(|| format!("writing {}", ca_cert.display()))?;
        Ok(TestCa { dir: dir.to_path_buf(), ca_cert, cert, key })
    }

    /// A certificate with common name `common_name` for `dns_names` and IP addresses (as
    /// strings), usable by servers and clients alike, written to `dir/<file>.pem` and
    /// `dir/<file>.key`.
    pub fn issue(&self, file: &str, common_name: &str, names: &[&str]) -> anyhow::Result<CertFiles> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        for name in names {
            let san = match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into()?),
            };
            params.subject_alt_names.push(san);
        }
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        let files = CertFiles { cert: self.dir.join(format!("{file}.pem")), key: self.dir.join(format!("{file}.key")) };
        std::fs::write(&files.cert, cert.pem()).with_context(|| format!("writing {}", files.cert.display()))?;
        std::fs::write(&files.key, key.serialize_pem()).with_context(|| format!("writing {}", files.key.display()))?;
        Ok(files)
    }

    /// A server certificate for loopback (`localhost`, `127.0.0.1`, `::1`).
    pub fn localhost(&self, file: &str) -> anyhow::Result<CertFiles> {
        self.issue(file, "localhost", &["localhost", "127.0.0.1", "::1"])
    }
}
