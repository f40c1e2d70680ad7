//! What `hosting` means: the shipped cloud lists, and the address space of
//! hosting providers' AS numbers (`datasets/geo/hosting-asns.txt`).

/// The built-in network lists (`datasets/networks/`) that are hosting.
#[cfg(not(target_arch = "wasm32"))]
pub const HOSTING_LISTS: [&str; 7] = [
    "aws",
    "azure",
    "gcp",
    "oracle",
    "digitalocean",
    "hetzner",
    "ovh",
];

#[cfg(not(target_arch = "wasm32"))]
const HOSTING_ASNS: &str = include_str!("../../datasets/geo/hosting-asns.txt");

/// The hosting set: the shipped cloud lists and every range the hosting AS
/// numbers announce, in one range table.
#[cfg(not(target_arch = "wasm32"))]
pub fn hosting_set(table: &super::GeoTable) -> Result<crate::net::IpSet, String> {
    let asns = hosting_asns()
        .map_err(|(line, e)| format!("datasets/geo/hosting-asns.txt: line {line}: {e}"))?;
    let mut set = table.networks_where(|p| p.asn.is_some_and(|a| asns.binary_search(&a).is_ok()));
    for name in HOSTING_LISTS {
        let list = crate::crawlers::builtin_network_set(name).map_err(|e| e.to_string())?;
        set = set.union(&list);
    }
    Ok(set)
}

/// The hosting AS numbers, sorted; a bad line is `(line, reason)`.
#[cfg(not(target_arch = "wasm32"))]
pub fn hosting_asns() -> Result<Vec<u32>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in HOSTING_ASNS.lines().enumerate() {
        let text = line.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        out.push(parse_asn(text).map_err(|e| (i + 1, e))?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `AS15169`, `as15169` or `15169`; AS 0 and anything past 32 bits are
/// not AS numbers.
pub fn parse_asn(text: &str) -> Result<u32, String> {
    let digits = text
        .strip_prefix("AS")
        .or_else(|| text.strip_prefix("as"))
        .unwrap_or(text);
    match digits.parse::<u32>() {
        Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "`{text}` is not an AS number (1 to 4294967295, optionally written AS15169)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_list_parses() {
        let asns = hosting_asns().unwrap();
        assert!(asns.len() >= 40);
        assert!(asns.contains(&16509) && asns.contains(&14061));
        assert!(!asns.contains(&15169));
    }

    #[test]
    fn asn_forms() {
        assert_eq!(parse_asn("AS15169"), Ok(15169));
        assert_eq!(parse_asn("as1"), Ok(1));
        assert_eq!(parse_asn("4294967295"), Ok(u32::MAX));
        for bad in ["AS0", "0", "4294967296", "AS-1", "+5", "AS", "15169x", ""] {
            assert!(parse_asn(bad).is_err(), "{bad}");
        }
    }
}
