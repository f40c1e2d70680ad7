//! Client identity: which address a request came from, and the network
//! it is grouped under for rate limits and token binding.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::cidr::{normalise, Cidr};

/// Maps IPv4-mapped IPv6 addresses to IPv4; other addresses unchanged.
///
/// Dual-stack listeners report IPv4 peers as `::ffff:a.b.c.d`; without this
/// the same client would be two different clients (and miss IPv4 rules).
/// The deprecated IPv4-compatible form `::a.b.c.d` is left alone.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// The client address: the connection address, or with `trusted_hops > 0`
/// the `trusted_hops`-th entry from the right of `X-Forwarded-For`
/// (entries left of it were written by the client and are never trusted).
/// Falls back to the connection address when the header has fewer entries
/// than trusted hops or the chosen entry is not an IP address.
///
/// Each trusted proxy appends the address it saw, so with `n` trusted
/// proxies the `n`-th entry from the right was written by the outermost
/// one and is the client's address; anything further left is whatever the
/// client sent. Entries are trimmed; `[v6]:port`, `[v6]` and `v4:port`
/// forms are accepted. The result is canonical (see [`canonical`]).
pub fn client_ip(
    connection: Option<IpAddr>,
    xff: Option<&str>,
    trusted_hops: u8,
) -> Option<IpAddr> {
    forwarded_client_ip(xff, trusted_hops).or_else(|| connection.map(canonical))
}

/// The client address the trusted proxies wrote into `X-Forwarded-For`
/// (see [`client_ip`]), canonical; `None` when no proxy is trusted, the
/// header has fewer entries than trusted hops, or the chosen entry is not
/// an IP address: then the connection address is the client's.
pub fn forwarded_client_ip(xff: Option<&str>, trusted_hops: u8) -> Option<IpAddr> {
    // `skip` is None exactly when no proxy is trusted.
    let skip = usize::from(trusted_hops).checked_sub(1)?;
    let entry = xff?.rsplit(',').nth(skip)?;
    parse_forwarded_addr(entry.trim()).map(canonical)
}

/// The scheme the client used, from `X-Forwarded-Proto`, read like
/// [`client_ip`] reads `X-Forwarded-For`: with `trusted_hops > 0`, the
/// `trusted_hops`-th entry from the right. Proxies usually set the header
/// rather than append to it, so with fewer entries than hops the leftmost
/// (the outermost proxy's) is taken. `None` when no proxy is trusted or
/// the header is absent or empty.
pub fn forwarded_scheme(xfp: Option<&str>, trusted_hops: u8) -> Option<&str> {
    let skip = usize::from(trusted_hops).checked_sub(1)?;
    let header = xfp?;
    let entry = header
        .rsplit(',')
        .nth(skip)
        .or_else(|| header.split(',').next())?
        .trim();
    (!entry.is_empty()).then_some(entry)
}

/// Whether a host name (without a port) is one browsers treat as a
/// potentially trustworthy origin over plain http: `localhost` and
/// `*.localhost`, `127.0.0.0/8` and `[::1]`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost")
        || host
            .len()
            .checked_sub(".localhost".len())
            .and_then(|at| host.get(at..))
            .is_some_and(|tail| tail.eq_ignore_ascii_case(".localhost"))
    {
        return true;
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// One `X-Forwarded-For` entry: a bare address, `[v6]`, `[v6]:port` or
/// `v4:port`. A bare IPv6 address is not split on `:`.
fn parse_forwarded_addr(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let v6 = inside.parse::<Ipv6Addr>().ok()?;
        return match after {
            "" => Some(IpAddr::V6(v6)),
            _ => after
                .strip_prefix(':')
                .filter(|p| is_port(p))
                .map(|_| IpAddr::V6(v6)),
        };
    }
    let (host, port) = entry.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u16>().is_ok()
}

/// How clients are grouped for rate limits and token binding.
///
/// One IPv6 customer usually holds a whole `/64` (or more) and can rotate
/// through it freely, so per-address keys would be trivially evaded; IPv4
/// addresses are scarce, so `/32` is the default there.
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
    ///
    /// The address is canonicalised first, so an IPv4-mapped client gets
    /// the IPv4 prefix length. Lengths beyond the family's maximum are
    /// treated as the maximum (configuration validation should reject them;
    /// this only guarantees no panic).
    pub fn of(&self, ip: IpAddr) -> Cidr {
        let ip = canonical(ip);
        let (len, max) = match ip {
            IpAddr::V4(_) => (self.v4, 32),
            IpAddr::V6(_) => (self.v6, 128),
        };
        normalise(ip, len.min(max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_scheme_trusts_only_the_proxies() {
        assert_eq!(forwarded_scheme(Some("https"), 0), None);
        assert_eq!(forwarded_scheme(Some("https"), 1), Some("https"));
        // The client wrote "https", the trusted proxy appended "http".
        assert_eq!(forwarded_scheme(Some("https, http"), 1), Some("http"));
        assert_eq!(forwarded_scheme(Some("https, http"), 2), Some("https"));
        // Set, not appended, by the outermost of two proxies.
        assert_eq!(forwarded_scheme(Some("https"), 2), Some("https"));
        assert_eq!(forwarded_scheme(Some(" "), 1), None);
        assert_eq!(forwarded_scheme(None, 1), None);
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "app.localhost",
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "example.com",
            "localhost.example.com",
            "notlocalhost",
            "10.0.0.1",
            "[::2]",
            "",
            "[::1",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    const CONN: &str = "203.0.113.9";

    fn client(xff: Option<&str>, hops: u8) -> Option<IpAddr> {
        client_ip(Some(ip(CONN)), xff, hops)
    }

    #[test]
    fn canonical_maps_only_mapped() {
        assert_eq!(canonical(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(canonical(ip("1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(canonical(ip("2001:db8::1")), ip("2001:db8::1"));
        assert_eq!(canonical(ip("::1.2.3.4")), ip("::1.2.3.4"));
        assert_eq!(canonical(ip("::1")), ip("::1"));
    }

    #[test]
    fn zero_hops_ignores_header() {
        assert_eq!(client(Some("1.1.1.1, 2.2.2.2"), 0), Some(ip(CONN)));
        assert_eq!(client(None, 0), Some(ip(CONN)));
        assert_eq!(client_ip(None, Some("1.1.1.1"), 0), None);
    }

    #[test]
    fn zero_hops_canonicalises_connection() {
        assert_eq!(
            client_ip(Some(ip("::ffff:10.0.0.1")), None, 0),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn one_hop_takes_rightmost() {
        assert_eq!(client(Some("1.1.1.1"), 1), Some(ip("1.1.1.1")));
        assert_eq!(
            client(Some("6.6.6.6, 1.1.1.1, 2.2.2.2"), 1),
            Some(ip("2.2.2.2"))
        );
    }

    #[test]
    fn two_hops_takes_second_from_right() {
        assert_eq!(
            client(Some("6.6.6.6, 1.1.1.1, 2.2.2.2"), 2),
            Some(ip("1.1.1.1"))
        );
        assert_eq!(client(Some("1.1.1.1,2.2.2.2"), 2), Some(ip("1.1.1.1")));
    }

    #[test]
    fn spoofed_left_entries_are_ignored() {
        // The client prepended fake entries; only the proxy's is used.
        assert_eq!(
            client(Some("127.0.0.1, 10.0.0.1, 198.51.100.7"), 1),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn too_few_entries_fall_back() {
        assert_eq!(client(Some("1.1.1.1"), 2), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1, 2.2.2.2"), 3), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1"), 255), Some(ip(CONN)));
    }

    #[test]
    fn absent_header_falls_back() {
        assert_eq!(client(None, 1), Some(ip(CONN)));
        assert_eq!(client_ip(None, None, 1), None);
    }

    #[test]
    fn empty_header_falls_back() {
        assert_eq!(client(Some(""), 1), Some(ip(CONN)));
        assert_eq!(client(Some("   "), 1), Some(ip(CONN)));
        assert_eq!(client(Some(","), 1), Some(ip(CONN)));
    }

    #[test]
    fn garbage_entry_falls_back() {
        assert_eq!(client(Some("1.1.1.1, unknown"), 1), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1, 2.2.2"), 1), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1,,2.2.2.2"), 2), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1, 2.2.2.2:http"), 1), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1, 2.2.2.2:99999"), 1), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1, 2.2.2.2:"), 1), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1, [2001:db8::1"), 1), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1, [2001:db8::1]x"), 1), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1, [1.2.3.4]:80"), 1), Some(ip(CONN)));
        assert_eq!(client(Some("1.1.1.1, 2001:db8::1:80x"), 1), Some(ip(CONN)));
        // A garbage entry left of the chosen one does not matter.
        assert_eq!(client(Some("garbage, 2.2.2.2"), 1), Some(ip("2.2.2.2")));
        // Garbage and no connection address: nothing.
        assert_eq!(client_ip(None, Some("junk"), 1), None);
    }

    #[test]
    fn spaces_are_trimmed() {
        assert_eq!(
            client(Some("  1.1.1.1 ,\t2.2.2.2  "), 1),
            Some(ip("2.2.2.2"))
        );
        assert_eq!(
            client(Some("  1.1.1.1 ,\t2.2.2.2  "), 2),
            Some(ip("1.1.1.1"))
        );
    }

    #[test]
    fn ports_are_accepted() {
        assert_eq!(client(Some("1.1.1.1:4711"), 1), Some(ip("1.1.1.1")));
        assert_eq!(
            client(Some("[2001:db8::1]:443"), 1),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(client(Some("[2001:db8::1]"), 1), Some(ip("2001:db8::1")));
        assert_eq!(
            client(Some("[2001:db8::1]:443, 9.9.9.9"), 2),
            Some(ip("2001:db8::1"))
        );
    }

    #[test]
    fn bare_v6_is_not_split_on_colon() {
        assert_eq!(client(Some("2001:db8::80"), 1), Some(ip("2001:db8::80")));
        assert_eq!(client(Some("::1"), 1), Some(ip("::1")));
    }

    #[test]
    fn forwarded_mapped_addresses_are_canonical() {
        assert_eq!(client(Some("::ffff:1.2.3.4"), 1), Some(ip("1.2.3.4")));
        assert_eq!(client(Some("[::ffff:1.2.3.4]:80"), 1), Some(ip("1.2.3.4")));
        assert_eq!(
            client_ip(Some(ip("::ffff:10.0.0.1")), Some("junk"), 1),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn client_prefix_defaults() {
        let p = ClientPrefix::default();
        assert_eq!(p.of(ip("192.0.2.77")).to_string(), "192.0.2.77/32");
        assert_eq!(
            p.of(ip("2001:db8:1:2:3:4:5:6")).to_string(),
            "2001:db8:1:2::/64"
        );
        assert_eq!(p.of(ip("::ffff:192.0.2.77")).to_string(), "192.0.2.77/32");
    }

    #[test]
    fn client_prefix_custom() {
        let p = ClientPrefix { v4: 24, v6: 48 };
        assert_eq!(p.of(ip("192.0.2.77")).to_string(), "192.0.2.0/24");
        assert_eq!(p.of(ip("::ffff:192.0.2.77")).to_string(), "192.0.2.0/24");
        assert_eq!(
            p.of(ip("2001:db8:1:2:3:4:5:6")).to_string(),
            "2001:db8:1::/48"
        );
        let p = ClientPrefix { v4: 0, v6: 0 };
        assert_eq!(p.of(ip("192.0.2.77")).to_string(), "0.0.0.0/0");
        assert_eq!(p.of(ip("2001:db8::1")).to_string(), "::/0");
    }

    #[test]
    fn client_prefix_out_of_range_clamps() {
        let p = ClientPrefix { v4: 99, v6: 200 };
        assert_eq!(p.of(ip("192.0.2.77")).to_string(), "192.0.2.77/32");
        assert_eq!(p.of(ip("2001:db8::1")).to_string(), "2001:db8::1/128");
    }

    #[test]
    fn client_prefix_same_network_same_key() {
        let p = ClientPrefix::default();
        assert_eq!(
            p.of(ip("2001:db8:1:2::1")).to_bytes(),
            p.of(ip("2001:db8:1:2:ffff::9")).to_bytes()
        );
        assert_ne!(
            p.of(ip("2001:db8:1:2::1")).to_bytes(),
            p.of(ip("2001:db8:1:3::1")).to_bytes()
        );
    }
}
