//! Reading the `/proc` files, and why a collector fails: [`HostMetricsError`] and the
//! [`ParseError`] of a file that does not look as `proc(5)` documents it.

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Why a collector was skipped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostMetricsError {
    /// The file (or directory) could not be read.
    #[error("{op} {}: {source}", .path.display())]
    Read {
        /// What was being done ("reading", "listing").
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file does not have the expected format.
    #[error("unexpected format of {}: {source}", .path.display())]
    Parse {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, and where.
        source: ParseError,
    },
}

/// A `/proc` file that does not look as documented in `proc(5)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// 1-based line number; 0 when the problem concerns the whole file (a missing line).
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) reason: &'static str,
}

impl ParseError {
    pub(super) fn at(index: usize, reason: &'static str) -> ParseError {
        ParseError { line: index + 1, reason }
    }

    pub(super) fn whole(reason: &'static str) -> ParseError {
        ParseError { line: 0, reason }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => f.write_str(self.reason),
            line => write!(f, "line {line}: {}", self.reason),
        }
    }
}

impl std::error::Error for ParseError {}

/// Reads all of `path` into `buf` (cleared first), reusing its allocation.
pub(super) fn read_file(path: &Path, buf: &mut Vec<u8>) -> Result<(), HostMetricsError> {
    buf.clear();
    File::open(path).and_then(|mut file| file.read_to_end(buf)).map(drop).map_err(|source| HostMetricsError::Read {
        op: "reading",
        path: path.to_path_buf(),
        source,
    })
}

/// The buffer as text; kernel output is ASCII, so this borrows and never allocates in practice.
pub(super) fn text(buf: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(buf)
}
