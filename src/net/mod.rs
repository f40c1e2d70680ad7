//! IP networks: CIDR parsing, the compiled range table, and client identity.
//!
//! STUB: interface only; being implemented.

use std::net::IpAddr;
use std::str::FromStr;

/// A network prefix such as `10.0.0.0/8` or `2001:db8::/32`.
/// Host bits are cleared on parse (`10.0.0.1/8` becomes `10.0.0.0/8`).
/// A bare address parses as a host prefix (`/32` or `/128`).
/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are treated as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// Why a CIDR string did not parse; the Display text is a complete reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CidrError(pub String);

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(_s: &str) -> Result<Self, Self::Err> {
        todo!()
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl Cidr {
    /// Stable bytes for hashing (family tag + 16 address bytes + prefix length).
    pub fn to_bytes(&self) -> [u8; 18] {
        todo!()
    }
}

/// Parses a list file: one CIDR per line, `#` comments and blank lines ignored.
/// On error returns the 1-based line number and the reason.
pub fn parse_cidr_list(_text: &str) -> Result<Vec<Cidr>, (usize, CidrError)> {
    todo!()
}

/// A compiled set of networks: sorted, merged, non-overlapping ranges for
/// v4 and v6, searched by binary search.
#[derive(Debug, Clone, Default)]
pub struct IpSet {}

impl IpSet {
    pub fn from_cidrs<I: IntoIterator<Item = Cidr>>(_cidrs: I) -> IpSet {
        todo!()
    }
    pub fn contains(&self, _ip: IpAddr) -> bool {
        todo!()
    }
    /// Number of merged ranges (v4 + v6).
    pub fn range_count(&self) -> usize {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.range_count() == 0
    }
}

/// Maps IPv4-mapped IPv6 addresses to IPv4; other addresses unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip
}

/// The client address: the connection address, or with `trusted_hops > 0`
/// the `trusted_hops`-th entry from the right of `X-Forwarded-For`
/// (entries left of it were written by the client and are never trusted).
/// Falls back to the connection address when the header has fewer entries
/// than trusted hops or the chosen entry is not an IP address.
pub fn client_ip(_connection: Option<IpAddr>, _xff: Option<&str>, _trusted_hops: u8) -> Option<IpAddr> {
    todo!()
}

/// How clients are grouped for rate limits and token binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPrefix {
    pub v4: u8,
    pub v6: u8,
}

impl Default for ClientPrefix {
    fn default() -> Self {
        ClientPrefix { v4: 32, v6: 64 }
    }
}

impl ClientPrefix {
    /// The network a client address belongs to, e.g. `2001:db8:1:2::/64`.
    pub fn of(&self, _ip: IpAddr) -> Cidr {
        todo!()
    }
}
