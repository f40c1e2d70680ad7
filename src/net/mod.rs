//! IP networks: CIDR parsing, the compiled range table, and client identity.
//!
//! # Why a range table
//!
//! Network lists (allow/deny lists, crawler operators' published ranges,
//! cloud provider lists) are compiled once, at configuration time, into an
//! [`IpSet`]: two sorted vectors of inclusive address ranges, one per
//! family (`u32` for IPv4, `u128` for IPv6). Before they are stored, the
//! ranges are sorted and every overlapping *or adjacent* pair is merged, so
//! the vectors are strictly increasing and no two ranges touch.
//!
//! That invariant makes a lookup a single predecessor search: find the last
//! range whose start is `<=` the address (`partition_point`, a branch-light
//! binary search) and check its end. Nothing is allocated per request and a
//! million prefixes cost about twenty comparisons. Compared with a radix
//! trie this is smaller (8 or 32 bytes per merged range, no pointers, which
//! matters inside a wasm VM's linear memory), builds in `O(n log n)` with a
//! sort and one merge pass, and has no pathological shapes.
//!
//! Addresses are canonicalised before they are compared: an IPv4-mapped
//! IPv6 address (`::ffff:1.2.3.4`, which dual-stack listeners report for
//! IPv4 peers) is the IPv4 address, both when a list is parsed and when a
//! client is looked up. Consequently an IPv6 rule never matches an IPv4
//! client, even one like `::/0` whose bits cover the mapped block.
//!
//! No function here panics on input data: this code runs inside Envoy,
//! where a panic kills the wasm VM.

mod cidr;
mod client;
pub(crate) mod index;
mod labels;
mod table;

pub use cidr::{parse_cidr_list, Cidr, CidrError};
pub use client::{
    canonical, client_ip, forwarded_client_ip, forwarded_scheme, is_loopback_host, ClientPrefix,
};
pub use labels::{LabelTable, MAX_LABELS};
pub use table::IpSet;
