//! `check-config --no-secrets`: compiling a policy where its secrets are
//! absent (a CI job linting policies holds no production keys).
//!
//! Every environment variable the policy reads is recorded. One that is set
//! is used, so its format is still checked; one that is not gets a stand-in
//! that passes every check a secret has (a valid token key spec is also a
//! non-empty provider secret), and is reported as needed at load time.

use palisade::policy::{CompileEnv, ProcessEnv};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A random-looking but fixed 32-byte key: only ever used to compile.
const STAND_IN: &str = "0:base64:c3RhbmQtaW4ga2V5OiBuZXZlciB1c2VkIHRvIHNpZ24h";

/// The process environment, with stand-ins for unset variables.
#[derive(Default)]
pub struct WithoutSecrets {
    /// Each variable read, and whether the environment had it.
    read: RefCell<BTreeMap<String, bool>>,
}

impl WithoutSecrets {
    /// The variables the policy reads at load time, `(name, was set)`.
    pub fn needed(&self) -> Vec<(String, bool)> {
        self.read
            .borrow()
            .iter()
            .map(|(name, set)| (name.clone(), *set))
            .collect()
    }
}

impl CompileEnv for WithoutSecrets {
    fn var(&self, name: &str) -> Option<String> {
        let value = ProcessEnv.var(name).filter(|v| !v.trim().is_empty());
        self.read
            .borrow_mut()
            .insert(name.to_string(), value.is_some());
        Some(value.unwrap_or_else(|| STAND_IN.to_string()))
    }

    fn read_file(&self, path: &str) -> Result<String, String> {
        ProcessEnv.read_file(path)
    }
}
