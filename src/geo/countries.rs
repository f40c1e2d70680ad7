//! Country and continent codes: what a policy may name.

/// The continent codes (`AF` Africa, `AN` Antarctica, `AS` Asia, `EU`
/// Europe, `NA` North America, `OC` Oceania, `SA` South America).
pub const CONTINENTS: [&str; 7] = ["AF", "AN", "AS", "EU", "NA", "OC", "SA"];

/// `code continent name` lines, `#` comments.
const COUNTRIES: &str = include_str!("../../datasets/geo/countries.txt");

fn entries() -> impl Iterator<Item = (&'static str, &'static str)> {
    COUNTRIES
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?, parts.next()?))
        })
}

/// Whether `code` (upper case) is a country code the data can return.
pub fn is_country(code: &str) -> bool {
    entries().any(|(c, _)| c == code)
}

pub fn is_continent(code: &str) -> bool {
    CONTINENTS.contains(&code)
}

/// The continent of a country code, if known. A table of every two-letter
/// code, made once, so a request pays an index and not a search.
pub fn continent_of(country: [u8; 2]) -> Option<[u8; 2]> {
    static TABLE: std::sync::OnceLock<Vec<[u8; 2]>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut table = vec![[0u8; 2]; 26 * 26];
        for (code, continent) in entries() {
            if let (Some(slot), Ok(continent)) = (
                slot_of(code.as_bytes()),
                <[u8; 2]>::try_from(continent.as_bytes()),
            ) {
                if let (Some(cell), true) = (
                    table.get_mut(slot),
                    is_continent(std::str::from_utf8(&continent).unwrap_or("")),
                ) {
                    *cell = continent;
                }
            }
        }
        table
    });
    slot_of(&country)
        .and_then(|slot| table.get(slot))
        .copied()
        .filter(|c| c[0] != 0)
}

/// Where a two-letter upper-case code sits in the table.
fn slot_of(code: &[u8]) -> Option<usize> {
    match code {
        [a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => {
            Some(usize::from(a - b'A') * 26 + usize::from(b - b'A'))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_countries_and_continents() {
        assert!(is_country("US") && is_country("DE") && is_country("XK"));
        assert!(!is_country("ZZ") && !is_country("us") && !is_country("--"));
        assert_eq!(continent_of(*b"US"), Some(*b"NA"));
        assert_eq!(continent_of(*b"DE"), Some(*b"EU"));
        assert_eq!(continent_of(*b"JP"), Some(*b"AS"));
        assert_eq!(continent_of(*b"--"), None);
        assert!(is_continent("EU") && !is_continent("XX"));
    }
}
