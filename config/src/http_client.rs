//! Transport and credentials of millrace's HTTP clients — the sinks' Elasticsearch and InfluxDB
//! destinations and the agent's Prometheus scrapes: `http://` or `https://` URLs, the `tls`
//! table of an HTTPS client (names as Kafka, Vector, Beats and Prometheus use them), basic
//! authentication, and the checks and warnings every such client shares.

use crate::error::ConfigError;
use crate::secret::{has_userinfo, redact_url, resolve, Secret};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// TLS settings of an HTTPS client (`tls = { ca_file = "…" }` or a `[….tls]` table). Servers
/// are verified against the system's trusted roots plus `ca_file`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTls {
    /// PEM file of CA certificates trusted in addition to the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with its chain) for servers that ask for one; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate, for any name: anyone on the path can read and change the
    /// traffic, credentials included. For trying things out only; warned about at start-up.
    pub insecure_skip_verify: bool,
}

/// HTTP basic authentication (`basic_auth = { username = "…", password_file = "…" }`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// File holding the password (read at load time, trailing newline dropped).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

impl BasicAuth {
    /// Reads `password_file` (see [`resolve`]); `at` is the table's dotted prefix with its dot.
    pub fn resolve_secrets(&mut self, origin: &str, at: &str) -> Option<ConfigError> {
        resolve(origin, at, "password", &mut self.password, self.password_file.as_ref())
    }

    /// Problems of the table at `at` (with its dot).
    pub fn problems(&self, origin: &str, at: &str) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        if self.username.is_empty() {
            problems.push(ConfigError::invalid(origin, &format!("{at}username"), "is empty", "name the user"));
        }
        if self.password.is_none() && self.password_file.is_none() {
            problems.push(ConfigError::invalid(
                origin,
                &format!("{at}password"),
                "is missing",
                "set password (e.g. \"${SCRAPE_PASSWORD}\") or password_file",
            ));
        }
        problems
    }
}

/// The PEM files of a [`ClientTls`], read.
#[derive(Clone, Default)]
pub struct TlsFiles {
    /// CA certificates to trust in addition to the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// The client certificate followed by its key, as HTTP clients take an identity.
    pub identity_pem: Option<Vec<u8>>,
}

impl ClientTls {
    /// Whether anything is set (a client without TLS settings needs no files).
    pub fn is_default(&self) -> bool {
        *self == ClientTls::default()
    }

    /// Every problem of the table at `at` (`elasticsearch[0].tls.`), each naming the key.
    pub fn problems(&self, origin: &str, at: &str) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, problem: String, fix: &str| {
            problems.push(ConfigError::invalid(origin, &format!("{at}{key}"), problem, fix));
        };
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => bad("key_file", "is missing: cert_file needs its key".into(), "set key_file too"),
            (None, Some(_)) => {
                bad("cert_file", "is missing: key_file needs its certificate".into(), "set cert_file too")
            }
            _ => {}
        }
        let files = [
            ("ca_file", &self.ca_file, "CERTIFICATE"),
            ("cert_file", &self.cert_file, "CERTIFICATE"),
            ("key_file", &self.key_file, "PRIVATE KEY"),
        ];
        for (key, path, label) in files {
            if let Some(path) = path {
                if let Err(problem) = read_pem(path, label) {
                    bad(key, problem, "give a readable PEM file (-----BEGIN …-----)");
                }
            }
        }
        problems
    }

    /// Reads the files (checked by [`ClientTls::problems`] at load time; read again here because
    /// they may have been renewed since).
    pub fn read_files(&self) -> Result<TlsFiles, String> {
        let ca_pem = self.ca_file.as_deref().map(|path| read_pem(path, "CERTIFICATE")).transpose()?;
        let identity_pem = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => {
                let mut pem = read_pem(cert, "CERTIFICATE")?;
                pem.push(b'\n');
                pem.extend(read_pem(key, "PRIVATE KEY")?);
                Some(pem)
            }
            _ => None,
        };
        Ok(TlsFiles { ca_pem, identity_pem })
    }
}

/// The bytes of a PEM file holding at least one `label` block.
fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let found = text.lines().any(|l| l.starts_with("-----BEGIN ") && l.trim_end().ends_with(&format!("{label}-----")));
    if !found {
        return Err(format!("`{}` holds no PEM {label}", path.display()));
    }
    Ok(bytes)
}

/// How a client's requests carry credentials, for the checks of [`transport_problems`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// None configured.
    None,
    /// Some configured (basic auth, a token, an API key).
    Configured,
}

/// Problems with the URLs of a client at `at` (`elasticsearch[0].`) under `key` (`endpoints`):
/// each must be `http://` or `https://`, and none may carry credentials (they would be written
/// into every log line that names the URL; `fix_credentials` says where they go instead).
pub fn transport_problems(
    origin: &str,
    at: &str,
    key: &str,
    urls: &[String],
    fix_credentials: &str,
) -> Vec<ConfigError> {
    let mut problems = Vec::new();
    for url in urls {
        let shown = redact_url(url);
        let scheme_ok =
            ["http://", "https://"].iter().any(|s| url.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
        if !scheme_ok {
            problems.push(ConfigError::invalid(
                origin,
                &format!("{at}{key}"),
                format!("`{shown}` is not an http:// or https:// URL"),
                "e.g. \"https://10.0.0.5:9200\"",
            ));
        } else if has_userinfo(url) {
            problems.push(ConfigError::invalid(
                origin,
                &format!("{at}{key}"),
                format!("`{shown}` holds credentials, which would show wherever the URL is logged"),
                fix_credentials,
            ));
        }
    }
    problems
}

/// What is risky but allowed about a client's transport, for a warning at start-up: credentials
/// sent over plain `http://`, certificate checks turned off, TLS settings no URL uses. `table`
/// names the client (`elasticsearch[0]`).
pub fn transport_warnings(table: &str, urls: &[String], credentials: Credentials, tls: &ClientTls) -> Vec<String> {
    let https = |u: &&String| u.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://"));
    let plain: Vec<&String> = urls.iter().filter(|u| !https(u)).collect();
    let mut warnings = Vec::new();
    if credentials == Credentials::Configured && !plain.is_empty() {
        warnings.push(format!(
            "{table}: credentials are sent in clear over {}; anyone on the network path can read them (use https://)",
            plain.iter().map(|u| redact_url(u)).collect::<Vec<_>>().join(", ")
        ));
    }
    if tls.insecure_skip_verify {
        warnings.push(format!(
            "{table}.tls.insecure_skip_verify = true: server certificates are NOT checked; anyone on the network \
             path can pose as the server and read {} (set tls.ca_file instead)",
            if credentials == Credentials::Configured { "the data and the credentials" } else { "the data" }
        ));
    }
    if !tls.is_default() && urls.iter().all(|u| !https(&u)) {
        warnings.push(format!("{table}.tls is set but no URL is https://, so it is not used"));
    }
    warnings
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tls_files_are_checked_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "not a key").unwrap();
        let tls = ClientTls { ca_file: Some(ca.clone()), ..ClientTls::default() };
        assert!(tls.problems("s.toml", "es[0].tls.").is_empty());
        assert!(tls.read_files().unwrap().ca_pem.is_some());

        let tls = ClientTls { cert_file: Some(ca.clone()), key_file: Some(key.clone()), ..ClientTls::default() };
        let problems: Vec<String> = tls.problems("s.toml", "es[0].tls.").iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("s.toml: key `es[0].tls.key_file`: ") && problems[0].contains("no PEM PRIVATE KEY")
        );

        let tls = ClientTls { key_file: Some(dir.path().join("missing")), ..ClientTls::default() };
        let problems: Vec<String> = tls.problems("s.toml", "t.").iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("key `t.cert_file`")));
        assert!(problems.iter().any(|p| p.contains("key `t.key_file`") && p.contains("cannot read")));
    }

    #[test]
    fn urls_are_http_or_https_without_credentials() {
        let urls = ["https://es:9200".to_string(), "HTTP://es2:9200".to_string()];
        assert!(transport_problems("s.toml", "es[0].", "endpoints", &urls, "fix").is_empty());
        let urls = ["ftp://x".to_string(), "https://elastic:s3cret@es:9200".to_string()];
        let problems: Vec<String> = transport_problems("s.toml", "es[0].", "endpoints", &urls, "set username")
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[1].contains("https://elastic:***@es:9200") && !problems[1].contains("s3cret"), "{problems:?}");
    }

    #[test]
    fn risky_transports_are_warned_about() {
        let plain = ["http://es:9200".to_string()];
        let tls = ClientTls::default();
        assert!(transport_warnings("es[0]", &plain, Credentials::None, &tls).is_empty());
        let warnings = transport_warnings("es[0]", &plain, Credentials::Configured, &tls);
        assert!(warnings.len() == 1 && warnings[0].contains("in clear"), "{warnings:?}");
        let secure = ["https://es:9200".to_string()];
        let insecure = ClientTls { insecure_skip_verify: true, ..ClientTls::default() };
        let warnings = transport_warnings("es[0]", &secure, Credentials::Configured, &insecure);
        assert!(warnings.len() == 1 && warnings[0].contains("NOT checked"), "{warnings:?}");
        let warnings = transport_warnings("es[0]", &plain, Credentials::None, &insecure);
        assert!(warnings.iter().any(|w| w.contains("not used")), "{warnings:?}");
    }
}
