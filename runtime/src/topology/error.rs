//! Errors of topology discovery.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why a topology could not be read or built.
///
/// The message names the file or setting at fault.
#[derive(Debug)]
pub struct TopologyError {
    path: Option<PathBuf>,
    message: String,
    source: Option<io::Error>,
}

impl TopologyError {
    /// An error about the file at `path`.
    pub(crate) fn file(path: &Path, message: impl Into<String>) -> TopologyError {
        TopologyError {
            path: Some(path.to_owned()),
            message: message.into(),
            source: None,
        }
    }

    /// An I/O error while reading `path`.
    pub(crate) fn io(path: &Path, err: io::Error) -> TopologyError {
        TopologyError {
            path: Some(path.to_owned()),
            message: err.to_string(),
            source: Some(err),
        }
    }

    /// An error about a setting, not a file.
    pub(crate) fn config(message: impl Into<String>) -> TopologyError {
        TopologyError {
            path: None,
            message: message.into(),
            source: None,
        }
    }

    /// The file the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}: {}", path.display(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for TopologyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}
