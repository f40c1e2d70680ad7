//! Where a client comes from: country, continent, AS number and AS
//! organisation of an address, and whether it is a hosting network.
//!
//! The data is `datasets/geo/geo.bin`, built by
//! `datasets/scripts/build-geo.py` from npm packages (sources and licences
//! in `datasets/geo/README.md`). It is one table of address segments, each
//! pointing at a (country, AS) record, searched like the CIDR lists of
//! [`crate::net`] (the same `/16` index and predecessor search), but read
//! in place from the embedded bytes: nothing is copied but the 256 KiB
//! index. Native builds always carry the file (the operating system pages
//! in only what is read, so a policy without geo conditions costs
//! nothing); the Envoy filter carries it only when built with the `geo`
//! feature (`scripts/build-wasm.sh --geo` builds `palisade-geo.wasm`), and
//! a policy that uses geo conditions on a filter without it is refused at
//! load time. In wasm the embedded bytes are a data segment, so every VM
//! of `palisade-geo.wasm` holds them whether its policy uses them or not.
//!
//! Country codes are checked against `datasets/geo/countries.txt`, which is
//! small and always built in, so a policy's typo is an error even where the
//! table is absent.

mod countries;
mod hosting;
mod table;

pub use countries::{continent_of, is_continent, is_country, CONTINENTS};
pub use hosting::{hosting_asns, parse_asn, HOSTING_LISTS};
pub use table::{GeoError, GeoTable, Place};

use std::sync::OnceLock;

/// The embedded table, checked and indexed on first use and then shared by
/// every policy of the process (a reload does not rebuild it).
pub fn table() -> Result<&'static GeoTable, GeoError> {
    static TABLE: OnceLock<Result<GeoTable, GeoError>> = OnceLock::new();
    TABLE
        .get_or_init(|| match embedded() {
            Some(bytes) => GeoTable::parse(bytes),
            None => Err(GeoError(
                "this build has no geo data: the Envoy filter carries it only when built with \
                 the `geo` feature (`scripts/build-wasm.sh` makes it as palisade-geo.wasm)"
                    .to_string(),
            )),
        })
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(any(not(target_arch = "wasm32"), feature = "geo"))]
fn embedded() -> Option<&'static [u8]> {
    Some(include_bytes!("../../datasets/geo/geo.bin"))
}

#[cfg(not(any(not(target_arch = "wasm32"), feature = "geo")))]
fn embedded() -> Option<&'static [u8]> {
    None
}
