//! Per-client scoring slots in proxy-wasm shared data, shared by every
//! worker: `palisade.sc.<index>`, `scoring.slots` entries of
//! [`SLOT_BYTES`] ([`crate::scoring::cache`] has the layout and the
//! eviction rule). Like the rate limiter's buckets ([`super::store`]),
//! every entry is created up front and then only ever rewritten with
//! compare-and-swap, so the memory is fixed by configuration.

use super::store::EntryName;
use crate::scoring::cache::{Slot, SlotKey, SLOT_BYTES};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// Conflicts need two workers writing one client's slot in the same
/// instant; after this many the update is dropped (and counted).
const MAX_ATTEMPTS: usize = 8;

fn name(index: usize) -> EntryName {
    EntryName::new("palisade.sc.", index)
}

/// Creates every slot, empty, where none exists yet (see [`super::store::prepare`]).
pub fn prepare(slots: usize) {
    let empty = [0u8; SLOT_BYTES];
    for index in 0..slots {
        let name = name(index);
        if let Ok((None, _)) = hostcalls::get_shared_data(name.as_str()) {
            let _ = hostcalls::set_shared_data(name.as_str(), Some(&empty), None);
        }
    }
}

/// A slot as read, with the token that lets it be written back.
#[derive(Debug, Clone, Copy)]
pub struct Fetched {
    /// The stored slot; `None` when it is empty or unreadable.
    pub stored: Option<Slot>,
    pub cas: Option<u32>,
}

/// Reads the slot at `index`; `None` when the host refuses.
pub fn fetch(index: usize) -> Option<Fetched> {
    let (bytes, cas) = hostcalls::get_shared_data(name(index).as_str()).ok()?;
    Some(Fetched {
        stored: bytes.as_deref().and_then(Slot::from_bytes),
        cas,
    })
}

/// How an [`update`] ended.
#[derive(Debug, Clone, Copy)]
pub enum Updated {
    /// Written; the slot as stored.
    Written(Slot),
    /// Nothing to write: `change` said so, or the slot is another client's
    /// and was not to be taken over.
    Skipped,
    /// The host refused or conflicts went on: the change is lost.
    Degraded,
}

/// Read–modify–write of client `key`'s slot, starting from `first` (a
/// read already made, saving one host call) and re-reading on conflict.
/// `change` gets the client's slot (a fresh one if `take_over` and the
/// slot is another client's) and says whether to write it.
pub fn update(
    key: SlotKey,
    first: Option<Fetched>,
    take_over: bool,
    mut change: impl FnMut(&mut Slot) -> bool,
) -> Updated {
    let mut fetched = first;
    for _ in 0..MAX_ATTEMPTS {
        let Some(current) = fetched.take().or_else(|| fetch(key.index)) else {
            return Updated::Degraded;
        };
        let ours = current.stored.is_some_and(|s| s.state.tag == key.tag);
        if !ours && !take_over {
            return Updated::Skipped;
        }
        let mut slot = Slot::claim(current.stored, key.tag);
        if !change(&mut slot) {
            return Updated::Skipped;
        }
        match hostcalls::set_shared_data(
            name(key.index).as_str(),
            Some(&slot.to_bytes()),
            current.cas,
        ) {
            Ok(()) => return Updated::Written(slot),
            Err(Status::CasMismatch) => continue,
            Err(_) => return Updated::Degraded,
        }
    }
    Updated::Degraded
}
