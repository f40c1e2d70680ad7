//! The geo table, read in place from `geo.bin` (format in
//! `datasets/scripts/build-geo.py`).

use super::countries::continent_of;
use crate::net::{canonical, index, IpSet};
use std::net::IpAddr;

const MAGIC: &[u8; 8] = b"PLSDGEO1";
const HEADER_WORDS: usize = 7;
/// One count per /16 and one past the last.
const INDEX_LEN: usize = 65537;

/// Why the geo data cannot be used; the text is a complete reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GeoError(pub String);

/// What the data says about one address. `country` and `asn` are `None`
/// where the registries say nothing (private and unallocated space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub country: Option<[u8; 2]>,
    pub continent: Option<[u8; 2]>,
    pub asn: Option<u32>,
    /// The AS organisation's name, cut to 40 bytes; `""` when unknown.
    pub org: &'static str,
}

impl Place {
    pub const UNKNOWN: Place = Place {
        country: None,
        continent: None,
        asn: None,
        org: "",
    };

    pub fn country_str(&self) -> Option<&str> {
        self.country
            .as_ref()
            .and_then(|c| std::str::from_utf8(c).ok())
    }

    pub fn continent_str(&self) -> Option<&str> {
        self.continent
            .as_ref()
            .and_then(|c| std::str::from_utf8(c).ok())
    }
}

/// The table: column slices of the embedded file, and its /16 index.
#[derive(Debug)]
pub struct GeoTable {
    v4_index: Vec<u32>,
    v4_low: &'static [u8],
    v4_rec: &'static [u8],
    v6_start: &'static [u8],
    v6_rec: &'static [u8],
    records: &'static [u8],
    asns: &'static [u8],
    /// The AS names, one UTF-8 text (checked once, at parse).
    orgs: &'static str,
    v4_count: usize,
    v6_count: usize,
    record_count: usize,
    asn_count: usize,
}

/// Cuts `len` bytes off the front of `rest`.
fn take(rest: &mut &'static [u8], len: usize, what: &str) -> Result<&'static [u8], GeoError> {
    if rest.len() < len {
        return Err(GeoError(format!(
            "geo data is truncated in its {what} ({} bytes left, {len} needed)",
            rest.len()
        )));
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

fn u16_at(bytes: &[u8], i: usize) -> u16 {
    let at = i.saturating_mul(2);
    bytes
        .get(at..at.saturating_add(2))
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
}

fn u24_at(bytes: &[u8], i: usize) -> u32 {
    let at = i.saturating_mul(3);
    bytes
        .get(at..at.saturating_add(3))
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], 0]))
}

fn u32_at(bytes: &[u8], i: usize) -> u32 {
    let at = i.saturating_mul(4);
    bytes
        .get(at..at.saturating_add(4))
        .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u48_at(bytes: &[u8], i: usize) -> u64 {
    let at = i.saturating_mul(6);
    bytes.get(at..at.saturating_add(6)).map_or(0, |b| {
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], 0, 0])
    })
}

fn size(count: usize, width: usize, what: &str) -> Result<usize, GeoError> {
    count
        .checked_mul(width)
        .ok_or_else(|| GeoError(format!("geo data: {what} count {count} is too large")))
}

impl GeoTable {
    /// Checks the layout and builds the index. Every later read is
    /// bounds-checked as well, so a damaged file gives wrong answers at
    /// worst, never a panic.
    pub fn parse(bytes: &'static [u8]) -> Result<GeoTable, GeoError> {
        let mut rest = bytes;
        if take(&mut rest, 8, "magic")? != MAGIC {
            return Err(GeoError(
                "not a Palisade geo file (expected PLSDGEO1)".into(),
            ));
        }
        let header = take(&mut rest, HEADER_WORDS * 4, "header")?;
        let word = |i| u32_at(header, i) as usize;
        let (v4_count, v6_count, record_count, asn_count, org_bytes) =
            (word(0), word(1), word(2), word(3), word(4));
        let index = take(&mut rest, INDEX_LEN * 4, "v4 index")?;
        let v4_index: Vec<u32> = (0..INDEX_LEN).map(|i| u32_at(index, i)).collect();
        if v4_index.windows(2).any(|w| w[0] > w[1])
            || v4_index.last().map(|&n| n as usize) != Some(v4_count)
        {
            return Err(GeoError("geo data: the v4 index is not sorted".into()));
        }
        let table = GeoTable {
            v4_index,
            v4_low: take(&mut rest, size(v4_count, 2, "v4")?, "v4 starts")?,
            v4_rec: take(&mut rest, size(v4_count, 3, "v4")?, "v4 records")?,
            v6_start: take(&mut rest, size(v6_count, 6, "v6")?, "v6 starts")?,
            v6_rec: take(&mut rest, size(v6_count, 3, "v6")?, "v6 records")?,
            records: take(&mut rest, size(record_count, 5, "record")?, "records")?,
            asns: take(&mut rest, size(asn_count, 8, "AS")?, "AS numbers")?,
            orgs: std::str::from_utf8(take(&mut rest, org_bytes, "AS names")?)
                .map_err(|e| GeoError(format!("geo data: the AS names are not UTF-8: {e}")))?,
            v4_count,
            v6_count,
            record_count,
            asn_count,
        };
        if !rest.is_empty() {
            return Err(GeoError(format!(
                "geo data: {} bytes past the end of the table",
                rest.len()
            )));
        }
        if v4_count == 0 || v6_count == 0 {
            return Err(GeoError("geo data: a family has no segments".into()));
        }
        Ok(table)
    }

    /// Country, continent, AS number and organisation of `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Place {
        self.place(self.record_of(ip))
    }

    /// The AS number of `ip` alone (0 when unknown): for hot conditions.
    pub fn asn_of(&self, ip: IpAddr) -> u32 {
        self.asn_at(self.asn_index(self.record_of(ip)))
    }

    /// Sizes for reports: segments (v4, v6), records, AS numbers, and the
    /// bytes the table reads from (the file plus the index).
    pub fn stats(&self) -> (usize, usize, usize, usize, usize) {
        let bytes = self.v4_index.len() * 4
            + self.v4_low.len()
            + self.v4_rec.len()
            + self.v6_start.len()
            + self.v6_rec.len()
            + self.records.len()
            + self.asns.len()
            + self.orgs.len();
        (
            self.v4_count,
            self.v6_count,
            self.record_count,
            self.asn_count,
            bytes,
        )
    }

    fn record_of(&self, ip: IpAddr) -> usize {
        let segment = match canonical(ip) {
            IpAddr::V4(a) => {
                let x = u32::from(a);
                let high = x & 0xffff_0000;
                // Inside the index's bounds every start shares x's /16.
                let n = index::count_at_or_below(
                    &self.v4_index,
                    |i| high | u32::from(u16_at(self.v4_low, i)),
                    self.v4_count,
                    x,
                );
                n.checked_sub(1).map(|i| u24_at(self.v4_rec, i))
            }
            IpAddr::V6(a) => {
                let x = (u128::from(a) >> 80) as u64;
                let n = index::count_in(0, self.v6_count, |i| u48_at(self.v6_start, i), x);
                n.checked_sub(1).map(|i| u24_at(self.v6_rec, i))
            }
        };
        segment.map_or(0, |r| r as usize)
    }

    fn asn_index(&self, record: usize) -> usize {
        let at = record.saturating_mul(5).saturating_add(2);
        self.records
            .get(at..at.saturating_add(3))
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], 0]) as usize)
    }

    fn asn_at(&self, asn_index: usize) -> u32 {
        u32_at(self.asns, asn_index.saturating_mul(2))
    }

    fn org_at(&self, asn_index: usize) -> &'static str {
        let end = u32_at(self.asns, asn_index.saturating_mul(2).saturating_add(1)) as usize;
        let start = match asn_index.checked_sub(1) {
            Some(prev) => u32_at(self.asns, prev.saturating_mul(2).saturating_add(1)) as usize,
            None => 0,
        };
        self.orgs.get(start..end).unwrap_or("")
    }

    fn place(&self, record: usize) -> Place {
        let at = record.saturating_mul(5);
        let country = self
            .records
            .get(at..at.saturating_add(2))
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .filter(|c| c != b"--");
        let asn_index = self.asn_index(record);
        let asn = self.asn_at(asn_index);
        Place {
            country,
            continent: country.and_then(continent_of),
            asn: (asn != 0).then_some(asn),
            org: if asn == 0 { "" } else { self.org_at(asn_index) },
        }
    }

    /// Every address range whose place satisfies `wanted`, compiled into a
    /// range table: what a geo condition stands for (v6 at the table's /48
    /// granularity). `wanted` is asked once per record, not per segment.
    pub fn networks_where(&self, wanted: impl Fn(&Place) -> bool) -> IpSet {
        let hits: Vec<bool> = (0..self.record_count)
            .map(|r| wanted(&self.place(r)))
            .collect();
        let hit = |record: u32| hits.get(record as usize).copied().unwrap_or(false);
        let mut v4 = Vec::new();
        let mut starts = self.v4_starts().enumerate().peekable();
        while let Some((i, start)) = starts.next() {
            if hit(u24_at(self.v4_rec, i)) {
                let end = starts
                    .peek()
                    .map_or(u32::MAX, |&(_, next)| next.saturating_sub(1));
                v4.push((start, end));
            }
        }
        let mut v6 = Vec::new();
        for i in 0..self.v6_count {
            if hit(u24_at(self.v6_rec, i)) {
                let start = u128::from(u48_at(self.v6_start, i)) << 80;
                let end = match i.checked_add(1).filter(|&n| n < self.v6_count) {
                    Some(next) => (u128::from(u48_at(self.v6_start, next)) << 80).saturating_sub(1),
                    None => u128::MAX,
                };
                v6.push((start, end));
            }
        }
        IpSet::from_ranges(v4, v6)
    }

    /// The full start of every v4 segment, in order: one pass along the
    /// /16 index (a search of it per segment took most of a policy's
    /// compile time with geo conditions in it).
    fn v4_starts(&self) -> impl Iterator<Item = u32> + '_ {
        // The /16 of segment i is the last index entry at or below i.
        let mut high = 0;
        (0..self.v4_count).map(move |i| {
            while self
                .v4_index
                .get(high + 1)
                .is_some_and(|&n| n as usize <= i)
            {
                high += 1;
            }
            ((high as u32) << 16) | u32::from(u16_at(self.v4_low, i))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> &'static GeoTable {
        super::super::table().expect("the native build embeds the geo data")
    }

    fn at(ip: &str) -> Place {
        table().lookup(ip.parse().unwrap())
    }

    #[test]
    fn known_addresses() {
        let google = at("8.8.8.8");
        assert_eq!(google.country_str(), Some("US"));
        assert_eq!(google.continent_str(), Some("NA"));
        assert_eq!(google.asn, Some(15169));
        assert!(google.org.contains("Google"), "{google:?}");
        let cloudflare = at("1.1.1.1");
        assert_eq!(cloudflare.asn, Some(13335));
        let v6 = at("2001:4860:4860::8888");
        assert_eq!(v6.asn, Some(15169));
        assert_eq!(v6.country_str(), Some("US"));
        assert_eq!(at("::ffff:8.8.8.8"), google);
    }

    #[test]
    fn unknown_space_is_unknown() {
        for ip in ["10.1.2.3", "192.168.0.1", "127.0.0.1", "::1", "fc00::1"] {
            let p = at(ip);
            assert_eq!(p.asn, None, "{ip}: {p:?}");
            assert_eq!(p.country, None, "{ip}: {p:?}");
        }
        assert_eq!(at("0.0.0.0"), Place::UNKNOWN);
        assert_eq!(at("255.255.255.255").asn, None);
    }

    #[test]
    fn segment_starts_round_trip() {
        let t = table();
        let starts: Vec<u32> = t.v4_starts().collect();
        assert_eq!(starts.len(), t.v4_count);
        assert!(starts.windows(2).all(|w| w[0] < w[1]));
        for i in [0, 1, 1000, t.v4_count / 2, t.v4_count - 1] {
            assert_eq!(
                t.record_of(IpAddr::V4(starts[i].into())),
                u24_at(t.v4_rec, i) as usize
            );
        }
    }

    #[test]
    fn ranges_of_an_asn_hold_its_addresses() {
        let google = table().networks_where(|p| p.asn == Some(15169));
        assert!(google.contains("8.8.8.8".parse().unwrap()));
        assert!(google.contains("2001:4860:4860::8888".parse().unwrap()));
        assert!(!google.contains("1.1.1.1".parse().unwrap()));
        assert!(!google.v6_ranges().is_empty());
    }

    #[test]
    fn damaged_files_are_refused() {
        assert!(GeoTable::parse(b"nope").is_err());
        assert!(GeoTable::parse(b"PLSDGEO2").is_err());
        let real = super::super::embedded();
        let cut: &'static [u8] = &real[..real.len() - 1];
        assert!(GeoTable::parse(cut).unwrap_err().0.contains("truncated"));
    }
}
