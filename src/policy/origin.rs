//! Conditions on where a client comes from (`country`, `continent`, `asn`,
//! `as_org`, `hosting`), compiled into address sets.
//!
//! Each such test stands for a fixed set of addresses: every range of the
//! geo table whose place passes it. So it is compiled, like a named list,
//! into a range set ([`IpSet`]), searched when a rule reaches the test, and
//! the geo table itself is needed only at configuration time. (The sets are
//! not merged into the lists' label table: a country's set is tens of
//! thousands of ranges, and labelling would more than double the memory it
//! costs each VM to save a search of about 50 ns.)
//!
//! That is what keeps the table out of the Envoy filter. Native hosts
//! resolve a test from the embedded table; `palisade policy-json` writes
//! each resolved set into the policy's `resolved_ranges` (keyed by the test,
//! [`GeoTest::key`]; see [`super::resolved`]), so the filter, which carries
//! no table, decides exactly as `explain` does on the same document.

use crate::net::IpSet;

/// One test on where an address is.
#[derive(Debug, Clone)]
pub(super) enum GeoTest {
    /// Upper-case ISO 3166-1 codes, sorted.
    Country(Vec<[u8; 2]>),
    /// Continent codes, sorted.
    Continent(Vec<[u8; 2]>),
    /// AS numbers, sorted.
    Asn(Vec<u32>),
    /// The AS organisation's name matches one of these globs
    /// (case-insensitive; checked, as written).
    AsOrg(Vec<String>),
    /// The shipped cloud lists and the hosting AS numbers.
    Hosting,
}

fn codes_text(codes: &[[u8; 2]]) -> String {
    codes
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(",")
}

impl GeoTest {
    /// The test as a `resolved_ranges` key: `country=DE,US`, `continent=EU`,
    /// `asn=8075,15169`, `as_org=["*google*"]`, `hosting`. Equal tests have
    /// equal keys, so rules sharing a test share its set.
    pub fn key(&self) -> String {
        match self {
            GeoTest::Country(codes) => format!("country={}", codes_text(codes)),
            GeoTest::Continent(codes) => format!("continent={}", codes_text(codes)),
            GeoTest::Asn(asns) => format!(
                "asn={}",
                asns.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            GeoTest::AsOrg(globs) => format!(
                "as_org={}",
                serde_json::to_string(globs).unwrap_or_default()
            ),
            GeoTest::Hosting => "hosting".to_string(),
        }
    }

    /// The addresses passing the test, from the embedded geo table.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn resolve(&self) -> Result<IpSet, String> {
        let table = crate::geo::table().map_err(|e| e.to_string())?;
        Ok(match self {
            GeoTest::Country(codes) => {
                table.networks_where(|p| p.country.is_some_and(|c| codes.contains(&c)))
            }
            GeoTest::Continent(codes) => {
                table.networks_where(|p| p.continent.is_some_and(|c| codes.contains(&c)))
            }
            GeoTest::Asn(asns) => {
                table.networks_where(|p| p.asn.is_some_and(|a| asns.binary_search(&a).is_ok()))
            }
            // An unknown organisation is "": it matches no name.
            GeoTest::AsOrg(globs) => {
                let alternation: Vec<String> =
                    globs.iter().map(|g| crate::glob::to_regex(g)).collect();
                let regex = regex::RegexBuilder::new(&alternation.join("|"))
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| e.to_string())?;
                table.networks_where(|p| !p.org.is_empty() && regex.is_match(p.org))
            }
            GeoTest::Hosting => crate::geo::hosting_set(table)?,
        })
    }

    #[cfg(target_arch = "wasm32")]
    pub fn resolve(&self) -> Result<IpSet, String> {
        Err(super::resolved::missing("geo table", &self.key()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_test() {
        assert_eq!(
            GeoTest::Country(vec![*b"DE", *b"US"]).key(),
            "country=DE,US"
        );
        assert_eq!(GeoTest::Asn(vec![8075, 15169]).key(), "asn=8075,15169");
        let globs = vec!["*google*".to_string()];
        assert_eq!(GeoTest::AsOrg(globs).key(), r#"as_org=["*google*"]"#);
        assert_eq!(GeoTest::Hosting.key(), "hosting");
    }
}
