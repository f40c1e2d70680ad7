//! Reputation lists: Tor exit nodes, commercial VPN ranges, FireHOL level
//! 1 and StopForumSpam's toxic ranges, as named lists for rules
//! (`ip_in: [tor]`).
//!
//! Each list has a file in `datasets/networks/` whose header names its
//! source, licence and date. None of the lists themselves could be
//! obtained where this build was made (no internet; no registry package
//! ships them). `vpn` ships with the closest licence-clean equivalent, the
//! networks VPN operators announce from their own AS numbers (built by
//! `datasets/scripts/build-geo.py` from the geo sources); the others carry
//! only their headers. `palisade datasets refresh` downloads the lists
//! where there is internet ([`refresh`]), validates each and swaps in only
//! a file that parses. Native hosts read the refreshed file from
//! `<companion.datasets>/networks/` when a policy is compiled (so the
//! companion picks it up on its next reload, SIGHUP), else the copy built
//! in; the filter gets each list a policy uses in the policy itself
//! (`resolved_ranges`, written by `palisade policy-json`; see
//! `policy::resolved`), so a refreshed list reaches Envoy without a
//! rebuild.

#[cfg(not(target_arch = "wasm32"))]
pub mod refresh;

/// Where a reputation list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub name: &'static str,
    /// What the list is, for the file header.
    pub title: &'static str,
    pub url: &'static str,
    pub licence: &'static str,
    /// Fewer entries than this is a broken download, not a short list.
    pub minimum: usize,
    /// The copy built into native hosts (the filter takes the list from
    /// the policy's `resolved_ranges`, as `palisade policy-json` writes it).
    #[cfg(not(target_arch = "wasm32"))]
    pub embedded: &'static str,
}

pub static SOURCES: [Source; 4] = [
    Source {
        name: "tor",
        title: "Tor exit nodes (the Tor Project's bulk exit list)",
        url: "https://check.torproject.org/torbulkexitlist",
        licence: "CC0-1.0 (Tor Metrics data)",
        minimum: 300,
        #[cfg(not(target_arch = "wasm32"))]
        embedded: include_str!("../../datasets/networks/tor.txt"),
    },
    Source {
        name: "vpn",
        title: "Commercial VPN providers' ranges (X4BNet lists_vpn, IPv4)",
        url: "https://raw.githubusercontent.com/X4BNet/lists_vpn/main/output/vpn/ipv4.txt",
        licence: "none stated by the lists_vpn repository",
        minimum: 100,
        #[cfg(not(target_arch = "wasm32"))]
        embedded: include_str!("../../datasets/networks/vpn.txt"),
    },
    Source {
        name: "firehol_level1",
        title: "FireHOL level 1 (Spamhaus DROP/EDROP, DShield, Feodo, full bogons)",
        url: "https://raw.githubusercontent.com/firehol/blocklist-ipsets/master/firehol_level1.netset",
        licence: "per source list (DShield's part is CC BY-NC-SA)",
        minimum: 1000,
        #[cfg(not(target_arch = "wasm32"))]
        embedded: include_str!("../../datasets/networks/firehol_level1.txt"),
    },
    Source {
        name: "stopforumspam_toxic",
        title: "StopForumSpam toxic ranges",
        url: "https://www.stopforumspam.com/downloads/toxic_ip_cidr.txt",
        licence: "StopForumSpam's terms of use",
        minimum: 10,
        #[cfg(not(target_arch = "wasm32"))]
        embedded: include_str!("../../datasets/networks/stopforumspam_toxic.txt"),
    },
];

/// The reputation list called `name`.
pub fn source(name: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.name == name)
}

/// Names of the reputation lists.
pub fn names() -> Vec<&'static str> {
    SOURCES.iter().map(|s| s.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::parse_cidr_list;

    #[test]
    fn every_shipped_file_parses_and_names_source_licence_and_date() {
        for s in &SOURCES {
            assert!(parse_cidr_list(s.embedded).is_ok(), "{}", s.name);
            for field in ["# Source: http", "# Licence: ", "# Data as of: "] {
                assert!(
                    s.embedded.lines().any(|l| l.starts_with(field)),
                    "{}: no `{field}` line",
                    s.name
                );
            }
            assert!(
                s.embedded.contains(s.url),
                "{}: the header's source",
                s.name
            );
        }
        assert!(source("tor").is_some() && source("nope").is_none());
    }
}
