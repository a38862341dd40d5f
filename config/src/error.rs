//! Configuration errors: every message names the file, the key and how to fix it.

use std::path::PathBuf;

/// An error loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has a value of the wrong type or an unknown key.
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or "command line".
        origin: String,
        /// The parser's message, which includes the key and the line.
        message: String,
    },
    /// A value parsed but is not acceptable.
    #[error("{origin}: key `{key}`: {problem}; fix: {fix}")]
    Invalid {
        /// The file, or "command line" for overrides, or "topic config" for Kafka topic settings.
        origin: String,
        /// The offending key, dotted for nested tables (`log.segment_bytes`).
        key: String,
        /// What is wrong with it.
        problem: String,
        /// What to write instead.
        fix: String,
    },
}

impl ConfigError {
    /// Shorthand for an [`ConfigError::Invalid`].
    pub fn invalid(origin: &str, key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}
