//! CIDR prefixes: Palisade's parsing rules and error messages around
//! [`ipnet`]'s network type.
//!
//! `ipnet` does the arithmetic (host-bit truncation, containment, the
//! first and last address); what is kept here is what the policy format
//! adds: bare addresses as host prefixes, IPv4-mapped IPv6 read as IPv4,
//! and errors that say which part of an entry is wrong.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::client::canonical;

/// A network prefix such as `10.0.0.0/8` or `2001:db8::/32`, normalised:
/// host bits are cleared (`10.0.0.1/8` is `10.0.0.0/8`), and IPv4-mapped
/// IPv6 prefixes of `/96` or longer are IPv4 (`::ffff:1.2.3.0/120` is
/// `1.2.3.0/24`). A bare address parses as a host prefix (`/32`, `/128`).
/// Every constructor normalises, so two equal networks compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

/// Why a CIDR string did not parse; the Display text is a complete reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CidrError(pub String);

/// Inputs are echoed in error messages; a list line can be arbitrarily long,
/// so the echo is cut to keep log lines readable.
const ECHO_MAX_CHARS: usize = 80;

fn echo(s: &str) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(ECHO_MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}

/// The address range a prefix covers, per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bounds {
    V4(u32, u32),
    V6(u128, u128),
}

/// The longest prefix length of the address's family.
fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// Canonicalises and clears host bits; `len` is at most the family's
/// maximum (callers check it first).
pub(super) fn normalise(addr: IpAddr, len: u8) -> Cidr {
    let net = match addr {
        // A mapped prefix of /96 or longer lies inside ::ffff:0:0/96, so it
        // is exactly an IPv4 network.
        IpAddr::V6(a) if len >= 96 => match a.to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), len - 96),
            None => IpNet::new(addr, len),
        },
        _ => IpNet::new(addr, len),
    };
    // Only an over-long length fails, and callers rule that out; the
    // family's own host prefix is the nearest sensible value regardless.
    Cidr(net.map_or_else(|_| IpNet::from(addr), |n| n.trunc()))
}

impl Cidr {
    /// Builds a normalised prefix: IPv4-mapped IPv6 becomes IPv4 (for
    /// lengths of 96 or more), host bits are cleared. Fails only when the
    /// length is longer than the family allows.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Cidr, CidrError> {
        let max = max_len(addr);
        if prefix_len > max {
            return Err(CidrError(format!(
                "`{addr}/{prefix_len}`: prefix length {prefix_len} is longer than {max}"
            )));
        }
        Ok(normalise(addr, prefix_len))
    }

    /// The host prefix of one address (`/32` or `/128`), canonicalised.
    pub fn host(addr: IpAddr) -> Cidr {
        let addr = canonical(addr);
        normalise(addr, max_len(addr))
    }

    /// The network address (host bits clear).
    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    /// Whether the (canonicalised) address is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }

    /// The inclusive range this prefix covers.
    pub(crate) fn bounds(&self) -> Bounds {
        match self.0 {
            IpNet::V4(n) => Bounds::V4(n.network().into(), n.broadcast().into()),
            IpNet::V6(n) => Bounds::V6(n.network().into(), n.broadcast().into()),
        }
    }

    /// Stable bytes for hashing (family tag + 16 address bytes + prefix length).
    ///
    /// Layout: byte 0 is `4` or `6`; bytes 1..17 hold the address (an IPv4
    /// address in bytes 1..5, the rest zero); byte 17 is the prefix length.
    /// The bytes are taken as stored, so they are stable across builds and
    /// platforms (they feed token bindings).
    pub fn to_bytes(&self) -> [u8; 18] {
        // Constant ranges of a fixed-size array: checked at compile time.
        let mut out = [0u8; 18];
        match self.addr() {
            IpAddr::V4(a) => {
                out[0] = 4;
                out[1..5].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                out[0] = 6;
                out[1..17].copy_from_slice(&a.octets());
            }
        }
        out[17] = self.prefix_len();
        out
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Parses `addr` or `addr/len`, trimming surrounding whitespace.
    ///
    /// Not through `IpNet`'s parser: it wants the `/len`, and its one error
    /// ("invalid IP address syntax") would not say what to fix.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let input = s.trim();
        if input.is_empty() {
            return Err(CidrError(
                "empty CIDR: expected an address or network such as `10.0.0.0/8` or `2001:db8::/32`"
                    .to_string(),
            ));
        }
        let (addr_text, len_text) = match input.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (input, None),
        };
        let Ok(addr) = addr_text.parse::<IpAddr>() else {
            return Err(CidrError(format!("`{}`: not an IP address", echo(input))));
        };
        let max = max_len(addr);
        let len = match len_text {
            None => return Ok(normalise(addr, max)),
            Some("") => {
                return Err(CidrError(format!(
                    "`{}`: prefix length is missing after `/`",
                    echo(input)
                )))
            }
            Some(t) if !t.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(CidrError(format!(
                    "`{}`: prefix length `{}` is not a number",
                    echo(input),
                    echo(t)
                )))
            }
            Some(t) => t,
        };
        // All digits: only overflow can fail, and that is too long too.
        match len.parse::<u8>() {
            Ok(n) if n <= max => Ok(normalise(addr, n)),
            _ => Err(CidrError(format!(
                "`{}`: prefix length {} is longer than {max}",
                echo(input),
                echo(len)
            ))),
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Parses a list file: one CIDR per line, `#` comments and blank lines ignored.
/// On error returns the 1-based line number and the reason.
///
/// A comment may fill the line or follow an entry (`10.0.0.0/8 # office`).
/// A leading byte-order mark is ignored, as are `\r\n` line endings.
pub fn parse_cidr_list(text: &str) -> Result<Vec<Cidr>, (usize, CidrError)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let content = line.split_once('#').map_or(line, |(before, _)| before);
        let content = content.trim();
        if content.is_empty() {
            continue;
        }
        match content.parse::<Cidr>() {
            Ok(c) => out.push(c),
            Err(e) => return Err((index.saturating_add(1), e)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Cidr {
        match s.parse::<Cidr>() {
            Ok(c) => c,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match s.parse::<Cidr>() {
            Ok(c) => panic!("{s} parsed as {c}"),
            Err(e) => e.to_string(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_v4_prefix() {
        let c = p("10.0.0.0/8");
        assert_eq!(c.addr(), ip("10.0.0.0"));
        assert_eq!(c.prefix_len(), 8);
        assert_eq!(c.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn parses_v6_prefix() {
        let c = p("2001:db8::/32");
        assert_eq!(c.addr(), ip("2001:db8::"));
        assert_eq!(c.prefix_len(), 32);
        assert_eq!(c.to_string(), "2001:db8::/32");
    }

    #[test]
    fn bare_addresses_are_host_prefixes() {
        assert_eq!(p("192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(p("2001:db8::1").to_string(), "2001:db8::1/128");
    }

    #[test]
    fn clears_host_bits() {
        assert_eq!(p("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(p("192.168.1.255/23").to_string(), "192.168.0.0/23");
        assert_eq!(p("2001:db8:ffff::1/32").to_string(), "2001:db8::/32");
        assert_eq!(p("2001:db8::1/127").to_string(), "2001:db8::/127");
    }

    #[test]
    fn zero_and_full_lengths() {
        assert_eq!(p("1.2.3.4/0").to_string(), "0.0.0.0/0");
        assert_eq!(p("1.2.3.4/32").to_string(), "1.2.3.4/32");
        assert_eq!(p("2001:db8::1/0").to_string(), "::/0");
        assert_eq!(p("2001:db8::1/128").to_string(), "2001:db8::1/128");
    }

    #[test]
    fn trims_whitespace() {
        assert_eq!(p("  10.0.0.0/8\t").to_string(), "10.0.0.0/8");
        assert_eq!(p("\n2001:db8::/32 \r").to_string(), "2001:db8::/32");
    }

    #[test]
    fn leading_zero_prefix_length_is_accepted() {
        assert_eq!(p("10.0.0.0/08").prefix_len(), 8);
    }

    #[test]
    fn mapped_addresses_become_v4() {
        assert_eq!(p("::ffff:1.2.3.4"), p("1.2.3.4/32"));
        assert_eq!(p("::ffff:1.2.3.4/128"), p("1.2.3.4/32"));
        assert_eq!(p("::ffff:1.2.3.0/120"), p("1.2.3.0/24"));
        assert_eq!(p("::ffff:1.2.3.4/104"), p("1.0.0.0/8"));
        assert_eq!(p("::ffff:1.2.3.4/96"), p("0.0.0.0/0"));
        assert_eq!(p("::ffff:0102:0304/112"), p("1.2.0.0/16"));
        assert!(p("::ffff:1.2.3.4").addr().is_ipv4());
    }

    #[test]
    fn mapped_prefix_shorter_than_96_stays_v6() {
        let c = p("::ffff:1.2.3.4/95");
        assert!(c.addr().is_ipv6());
        assert_eq!(c.to_string(), "::fffe:0:0/95");
        assert_eq!(p("::ffff:1.2.3.4/64").to_string(), "::/64");
    }

    #[test]
    fn ipv4_compatible_is_not_mapped() {
        // `::1.2.3.4` is the deprecated IPv4-compatible form, not mapped.
        assert!(p("::1.2.3.4").addr().is_ipv6());
    }

    #[test]
    fn error_prefix_too_long_v4() {
        assert_eq!(
            err("10.0.0.0/33"),
            "`10.0.0.0/33`: prefix length 33 is longer than 32"
        );
    }

    #[test]
    fn error_prefix_too_long_v6() {
        assert_eq!(
            err("2001:db8::/129"),
            "`2001:db8::/129`: prefix length 129 is longer than 128"
        );
        assert_eq!(
            err("::ffff:1.2.3.4/129"),
            "`::ffff:1.2.3.4/129`: prefix length 129 is longer than 128"
        );
    }

    #[test]
    fn error_prefix_overflowing_number() {
        assert_eq!(
            err("10.0.0.0/99999999999999999999"),
            "`10.0.0.0/99999999999999999999`: prefix length 99999999999999999999 is longer than 32"
        );
        assert_eq!(
            err("10.0.0.0/256"),
            "`10.0.0.0/256`: prefix length 256 is longer than 32"
        );
    }

    #[test]
    fn error_not_an_address() {
        assert_eq!(err("10.0.0/8"), "`10.0.0/8`: not an IP address");
        assert_eq!(err("example.com"), "`example.com`: not an IP address");
        assert_eq!(err("/8"), "`/8`: not an IP address");
        assert_eq!(err("1.2.3.4 /8"), "`1.2.3.4 /8`: not an IP address");
        assert_eq!(err("fe80::1%eth0"), "`fe80::1%eth0`: not an IP address");
        assert_eq!(err("256.0.0.0/8"), "`256.0.0.0/8`: not an IP address");
    }

    #[test]
    fn error_prefix_not_a_number() {
        assert_eq!(
            err("1.2.3.4/x"),
            "`1.2.3.4/x`: prefix length `x` is not a number"
        );
        assert_eq!(
            err("1.2.3.4/+8"),
            "`1.2.3.4/+8`: prefix length `+8` is not a number"
        );
        assert_eq!(
            err("1.2.3.4/-1"),
            "`1.2.3.4/-1`: prefix length `-1` is not a number"
        );
        assert_eq!(
            err("1.2.3.4/8/9"),
            "`1.2.3.4/8/9`: prefix length `8/9` is not a number"
        );
        assert_eq!(
            err("1.2.3.4/ 8"),
            "`1.2.3.4/ 8`: prefix length ` 8` is not a number"
        );
    }

    #[test]
    fn error_prefix_missing() {
        assert_eq!(
            err("1.2.3.4/"),
            "`1.2.3.4/`: prefix length is missing after `/`"
        );
    }

    #[test]
    fn error_empty() {
        assert!(err("").starts_with("empty CIDR"));
        assert!(err("   ").starts_with("empty CIDR"));
    }

    #[test]
    fn error_echo_is_truncated() {
        let long = "x".repeat(500);
        let e = err(&long);
        assert!(e.len() < 120, "{e}");
        assert!(e.contains("...`: not an IP address"), "{e}");
        // Truncation respects character boundaries.
        let wide = "é".repeat(200);
        assert!(err(&wide).ends_with("...`: not an IP address"));
    }

    #[test]
    fn new_normalises_and_validates() {
        assert_eq!(Cidr::new(ip("10.1.2.3"), 8), Ok(p("10.0.0.0/8")));
        assert_eq!(Cidr::new(ip("::ffff:10.1.2.3"), 104), Ok(p("10.0.0.0/8")));
        assert_eq!(
            Cidr::new(ip("10.0.0.0"), 33).map_err(|e| e.to_string()),
            Err("`10.0.0.0/33`: prefix length 33 is longer than 32".to_string())
        );
        assert!(Cidr::new(ip("::"), 129).is_err());
        assert!(Cidr::new(ip("::"), 128).is_ok());
    }

    #[test]
    fn host_prefix() {
        assert_eq!(Cidr::host(ip("::ffff:9.9.9.9")), p("9.9.9.9/32"));
        assert_eq!(Cidr::host(ip("2001:db8::5")), p("2001:db8::5/128"));
    }

    #[test]
    fn cidr_contains() {
        let c = p("10.0.0.0/8");
        assert!(c.contains(ip("10.255.255.255")));
        assert!(c.contains(ip("::ffff:10.0.0.1")));
        assert!(!c.contains(ip("11.0.0.0")));
        assert!(!c.contains(ip("::a00:1")));
        assert!(p("::/0").contains(ip("2001:db8::1")));
        assert!(!p("::/0").contains(ip("1.2.3.4")));
        assert!(!p("::/0").contains(ip("::ffff:1.2.3.4")));
        assert!(p("0.0.0.0/0").contains(ip("::ffff:1.2.3.4")));
    }

    #[test]
    fn bounds() {
        assert_eq!(
            p("10.1.2.3/8").bounds(),
            Bounds::V4(0x0a00_0000, 0x0aff_ffff)
        );
        assert_eq!(p("10.1.2.3").bounds(), Bounds::V4(0x0a01_0203, 0x0a01_0203));
        assert_eq!(
            p("::ffff:10.1.2.3/104").bounds(),
            Bounds::V4(0x0a00_0000, 0x0aff_ffff)
        );
        assert_eq!(p("::/0").bounds(), Bounds::V6(0, u128::MAX));
        assert_eq!(p("0.0.0.0/0").bounds(), Bounds::V4(0, u32::MAX));
    }

    #[test]
    fn to_bytes_layout() {
        let b = p("10.0.0.0/8").to_bytes();
        assert_eq!(b[0], 4);
        assert_eq!(&b[1..5], &[10, 0, 0, 0]);
        assert!(b[5..17].iter().all(|&x| x == 0));
        assert_eq!(b[17], 8);

        let b = p("2001:db8::/32").to_bytes();
        assert_eq!(b[0], 6);
        assert_eq!(&b[1..5], &[0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(b[17], 32);

        // Same address bits, different family or length: different bytes.
        assert_ne!(p("0.0.0.0/0").to_bytes(), p("::/0").to_bytes());
        assert_ne!(p("10.0.0.0/8").to_bytes(), p("10.0.0.0/9").to_bytes());
    }

    #[test]
    fn list_parses_comments_and_blanks() {
        let text = "\u{feff}# header\n\n10.0.0.0/8\n  192.168.0.0/16  # office\r\n\t\n2001:db8::/32#trailing\n   # indented comment\n";
        let list = parse_cidr_list(text).unwrap();
        assert_eq!(
            list,
            vec![p("10.0.0.0/8"), p("192.168.0.0/16"), p("2001:db8::/32")]
        );
    }

    #[test]
    fn list_empty() {
        assert_eq!(parse_cidr_list(""), Ok(vec![]));
        assert_eq!(parse_cidr_list("# only\n\n"), Ok(vec![]));
    }

    #[test]
    fn list_error_has_line_number() {
        let text = "# header\n10.0.0.0/8\n\n10.0.0.0/33 # bad\n1.2.3.4\n";
        let (line, e) = parse_cidr_list(text).unwrap_err();
        assert_eq!(line, 4);
        assert_eq!(
            e.to_string(),
            "`10.0.0.0/33`: prefix length 33 is longer than 32"
        );
        let (line, e) = parse_cidr_list("nope").unwrap_err();
        assert_eq!(line, 1);
        assert_eq!(e.to_string(), "`nope`: not an IP address");
    }
}
