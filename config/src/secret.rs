//! Secrets in configuration files.
//!
//! - [`Secret`]: a password, token or API key. Its `Debug`, `Display` and serialized forms are
//!   `***`, so a config printed with `{:?}` or logged never shows it; [`Secret::expose`] is the
//!   one way to the value, called where a request is built.
//! - `*_file` keys (`password_file`, `token_file`, `api_key_file`, `bearer_token_file`) are read
//!   at load time by [`resolve`]: the file's text, without its trailing newline, becomes the
//!   secret, so a secret can come from a file only root and the service user can read (Docker
//!   and Kubernetes secrets mount them that way).
//! - [`redact_url`] and [`redact_urls`]: the password of any `scheme://user:password@host` in a
//!   text is replaced by `***` before the text is shown.

use crate::error::ConfigError;
use serde::{Deserialize, Serialize, Serializer};
use std::path::{Path, PathBuf};

/// What a secret is shown as.
pub const REDACTED: &str = "***";

/// A secret string: never shown by `Debug`, `Display` or serialization.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for building a request. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{REDACTED}\"")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Serialized as `***`: a configuration written back out must not carry the secret along.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Reads a secret from `path`: its text without the trailing line break(s) editors and `echo`
/// add. An empty secret is refused: it is almost always a file written wrong.
pub fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let value = text.trim_end_matches(['\n', '\r']);
    if value.is_empty() {
        return Err(format!("`{}` is empty", path.display()));
    }
    Ok(Secret::new(value))
}

/// Settles a secret given either inline (`key`) or in a file (`key_file`): the file is read into
/// `value`. `at` is the dotted prefix of the table (`elasticsearch[0].`), `key` the inline key's
/// name. Returns the problem, naming the key and the fix, when both are given or the file
/// cannot be read.
pub fn resolve(
    origin: &str,
    at: &str,
    key: &str,
    value: &mut Option<Secret>,
    file: Option<&PathBuf>,
) -> Option<ConfigError> {
    let file = file?;
    let file_key = format!("{at}{key}_file");
    if value.is_some() {
        return Some(ConfigError::invalid(
            origin,
            &file_key,
            format!("both `{key}` and `{key}_file` are set"),
            format!("keep one of them: `{key}_file` to read the secret from a file"),
        ));
    }
    match read_secret_file(file) {
        Ok(secret) => {
            *value = Some(secret);
            None
        }
        Err(problem) => Some(ConfigError::invalid(
            origin,
            &file_key,
            problem,
            format!("write the secret into the file (readable by the millrace user), or set `{key}` instead"),
        )),
    }
}

/// `url` with the password of its user information (`scheme://user:password@host`) replaced by
/// `***`; anything else is left as it is. Works on text, so a URL too broken to parse is still
/// redacted.
pub fn redact_url(url: &str) -> String {
    redact_urls(url)
}

/// `text` with the password of every `scheme://user:password@host` in it replaced by `***`:
/// for error messages that quote URLs (reqwest's errors name the URL they were sending to).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        // The authority ends at the path, query, fragment, or whatever cannot be in a URL.
        let end = after
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '(' | ')' | ',') || c.is_whitespace()
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        // The last `@`: a password written without percent-encoding may hold one.
        match authority.rfind('@').map(|at| &authority[..at]) {
            Some(userinfo) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or_default();
                out.push_str(user);
                out.push(':');
                out.push_str(REDACTED);
                out.push_str(&authority[userinfo.len()..]);
            }
            _ => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Whether `url` carries user information (`scheme://user[:password]@host`).
pub fn has_userinfo(url: &str) -> bool {
    url.split_once("://").is_some_and(|(_, after)| {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        after[..end].contains('@')
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_secret_never_shows_its_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "\"***\"");
        assert_eq!(secret.to_string(), "***");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(\"***\")");
        assert_eq!(
            toml::to_string(&std::collections::BTreeMap::from([("p", secret.clone())])).unwrap(),
            "p = \"***\"\n"
        );
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn urls_lose_their_passwords_wherever_they_are() {
        assert_eq!(redact_url("https://elastic:changeme@es:9200/_bulk"), "https://elastic:***@es:9200/_bulk");
        assert_eq!(redact_url("https://es:9200"), "https://es:9200");
        assert_eq!(redact_url("http://user@h/p"), "http://user@h/p", "no password, nothing to hide");
        assert_eq!(redact_url("http://u:p@ss@h"), "http://u:***@h", "an unencoded @ in the password");
        assert_eq!(redact_url("http://u:p%40ss@[::1]:8086?db=x"), "http://u:***@[::1]:8086?db=x");
        let error = "error sending request for url (https://elastic:s3cret@10.0.0.5:9200/_bulk): connection refused; \
                     also http://a:b@c,d";
        let shown = redact_urls(error);
        assert!(!shown.contains("s3cret") && !shown.contains(":b@"), "{shown}");
        assert_eq!(
            shown,
            "error sending request for url (https://elastic:***@10.0.0.5:9200/_bulk): connection refused; \
             also http://a:***@c,d"
        );
        assert_eq!(redact_urls("no url here: a:b@c"), "no url here: a:b@c");
        assert!(has_userinfo("https://u:p@h/x") && has_userinfo("https://u@h") && !has_userinfo("https://h/a@b"));
    }

    #[test]
    fn secret_files_are_read_without_their_newline_and_mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\r\n\n").unwrap();
        let mut value = None;
        assert!(resolve("s.toml", "influxdb[0].", "password", &mut value, Some(&path)).is_none());
        assert_eq!(value.as_ref().map(Secret::expose), Some("s3cret"));

        // Both given: the file key is named.
        let error = resolve("s.toml", "influxdb[0].", "password", &mut value, Some(&path)).unwrap().to_string();
        assert!(
            error.starts_with("s.toml: key `influxdb[0].password_file`: both") && error.contains("fix:"),
            "{error}"
        );

        let missing = dir.path().join("missing");
        let error = resolve("s.toml", "x.", "token", &mut None, Some(&missing)).unwrap().to_string();
        assert!(error.contains("key `x.token_file`") && error.contains(&missing.display().to_string()), "{error}");
        std::fs::write(&path, "\n").unwrap();
        let error = resolve("s.toml", "x.", "token", &mut None, Some(&path)).unwrap().to_string();
        assert!(error.contains("is empty"), "{error}");
        assert!(resolve("s.toml", "x.", "token", &mut None, None).is_none());
    }
}
