//! (stub until helper-c's module lands)
#[derive(Debug, thiserror::Error)]
pub enum StoreError { #[error("{store} is unavailable: {reason}")] Unavailable { store: &'static str, reason: String }, #[error("{store}: {reason}")] Failed { store: &'static str, reason: String } }
pub trait Store: Send + Sync {
    fn name(&self) -> &'static str;
    fn put(&self, id: &str, context: &[u8], expires_at: u64) -> Result<(), StoreError>;
    fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn claim(&self, id: &str, expires_at: u64) -> Result<bool, StoreError>;
    fn add_failure(&self, client: &str, now: u64, window_s: u64) -> Result<u32, StoreError>;
    fn lock_out(&self, client: &str, until: u64) -> Result<(), StoreError>;
    fn locked_until(&self, client: &str, now: u64) -> Result<Option<u64>, StoreError>;
    fn sweep(&self, now: u64) -> Result<u64, StoreError>;
    fn ping(&self) -> Result<(), StoreError>;
}
pub fn open(_config: &crate::config::CompanionConfig) -> Result<Box<dyn Store>, StoreError> { Err(StoreError::Unavailable { store: "stub", reason: "stub".into() }) }
