//! The one error type for bad configuration: where, and why.

use std::fmt;

/// A configuration error: the path of the offending field
/// (`routes[3].match.path_regex`) and a reason a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn from_parse<E: fmt::Display>(err: serde_path_to_error::Error<E>) -> ConfigError {
        let path = err.path().to_string();
        // serde_path_to_error prints "." for the document root.
        let path = if path == "." { String::new() } else { path };
        ConfigError::new(path, err.inner().to_string())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}
