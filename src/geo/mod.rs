//! Where a client comes from: country, continent, AS number and AS
//! organisation of an address, and whether it is a hosting network.
//!
//! The data is `datasets/geo/geo.bin`, built by
//! `datasets/scripts/build-geo.py` from npm packages (sources and licences
//! in `datasets/geo/README.md`). It is one table of address segments, each
//! pointing at a (country, AS) record, searched like the CIDR lists of
//! [`crate::net`] (the same `/16` index and predecessor search), but read
//! in place from the embedded bytes: nothing is copied but the 256 KiB
//! index. Native builds carry the file (the operating system pages in only
//! what is read, so a policy without geo conditions costs nothing). The
//! Envoy filter does not: a policy's geo conditions reach it already
//! resolved into address ranges (`resolved_ranges`, written by `palisade
//! policy-json`; see `policy::origin`), so its VMs hold only the ranges the
//! policy uses.
//!
//! Country codes are checked against `datasets/geo/countries.txt`, which is
//! small and always built in, so a policy's typo is an error in the filter
//! too.

mod countries;
mod hosting;
#[cfg(not(target_arch = "wasm32"))]
mod table;

pub use countries::{continent_of, is_continent, is_country, CONTINENTS};
pub use hosting::parse_asn;
#[cfg(not(target_arch = "wasm32"))]
pub use hosting::{hosting_asns, hosting_set, HOSTING_LISTS};
#[cfg(not(target_arch = "wasm32"))]
pub use table::{GeoError, GeoTable, Place};

#[cfg(not(target_arch = "wasm32"))]
use std::sync::OnceLock;

/// The embedded table, checked and indexed on first use and then shared by
/// every policy of the process (a reload does not rebuild it).
#[cfg(not(target_arch = "wasm32"))]
pub fn table() -> Result<&'static GeoTable, GeoError> {
    static TABLE: OnceLock<Result<GeoTable, GeoError>> = OnceLock::new();
    TABLE
        .get_or_init(|| GeoTable::parse(embedded()))
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(not(target_arch = "wasm32"))]
fn embedded() -> &'static [u8] {
    include_bytes!("../../datasets/geo/geo.bin")
}
