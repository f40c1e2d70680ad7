//! `lists.NAME.cidrs`, parsed while the document is read.
//!
//! A list may hold hundreds of thousands of entries. Read as `Vec<String>`,
//! each would be an allocation of its own, all alive until the policy is
//! compiled; in the Envoy filter that peak stays for good, because a wasm
//! VM's memory never shrinks. So each entry is parsed into a [`Cidr`] as
//! it arrives and its text is never kept. A bad entry is not a parse error
//! here: its index and reason are kept, and the compiler reports it with
//! its path (`lists.office.cidrs[3]: ...`) among the other checks, in the
//! order it always has.

use crate::net::{Cidr, CidrError};
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use std::fmt;

/// The entries of one list's `cidrs`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrEntries {
    cidrs: Vec<Cidr>,
    /// The first entry that is not a CIDR: its index and why.
    first_error: Option<(usize, CidrError)>,
}

impl CidrEntries {
    /// The parsed entries, or the first one that did not parse.
    pub fn parsed(&self) -> Result<&[Cidr], (usize, &CidrError)> {
        match &self.first_error {
            Some((index, e)) => Err((*index, e)),
            None => Ok(&self.cidrs),
        }
    }
}

impl<'de> Deserialize<'de> for CidrEntries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = CidrEntries;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CidrEntries, A::Error> {
        let mut entries = CidrEntries::default();
        let mut index = 0usize;
        while let Some(Entry(parsed)) = seq.next_element()? {
            match parsed {
                Ok(cidr) => entries.cidrs.push(cidr),
                Err(e) => {
                    entries.first_error.get_or_insert((index, e));
                }
            }
            index = index.saturating_add(1);
        }
        // Kept until the policy is compiled: no spare capacity.
        entries.cidrs.shrink_to_fit();
        Ok(entries)
    }
}

/// One entry: a string, parsed as it is read (no copy of the text).
struct Entry(Result<Cidr, CidrError>);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(EntryVisitor)
    }
}

struct EntryVisitor;

impl Visitor<'_> for EntryVisitor {
    type Value = Entry;

    /// As `String`'s own, so a wrong type reads as it did.
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Entry, E> {
        Ok(Entry(text.parse()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(json: &str) -> Result<CidrEntries, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_each_entry() {
        let e = entries(r#"["10.0.0.1/8", "2001:db8::1"]"#).unwrap();
        let want: Vec<Cidr> = vec![
            "10.0.0.0/8".parse().unwrap(),
            "2001:db8::1/128".parse().unwrap(),
        ];
        assert_eq!(e.parsed(), Ok(&want[..]));
    }

    #[test]
    fn keeps_the_first_bad_entry() {
        let e = entries(r#"["10.0.0.0/8", "nope", "10.0.0.0/33"]"#).unwrap();
        let (index, reason) = e.parsed().unwrap_err();
        assert_eq!(index, 1);
        assert_eq!(reason.to_string(), "`nope`: not an IP address");
    }

    #[test]
    fn wrong_types_read_as_for_strings() {
        assert!(entries("[5]")
            .unwrap_err()
            .starts_with("invalid type: integer `5`, expected a string"));
        assert!(entries(r#""10.0.0.0/8""#)
            .unwrap_err()
            .starts_with("invalid type: string \"10.0.0.0/8\", expected a sequence"));
    }
}
