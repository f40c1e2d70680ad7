//! Address sets resolved from data that only native hosts carry (the geo
//! table, the reputation lists' files), and carried to the Envoy filter in
//! the policy itself.
//!
//! Compiling a policy natively resolves each such set from the data;
//! `palisade policy-json` writes every one into the document's
//! `resolved_ranges`, keyed by what it stands for (`country=US`,
//! `builtin=tor`). A host compiling a document that has a key takes the set
//! from there, whatever its own data says, so every host given the same
//! document decides alike, and the filter needs neither the geo table nor
//! the lists built in (nor a rebuild when `datasets refresh` gets newer
//! lists: rerunning `policy-json` carries them).

use crate::config::{ConfigError, EncodedRanges};
use crate::net::IpSet;
use base64::Engine;
use std::collections::BTreeMap;

/// The sets of a policy being compiled, each resolved once.
pub(super) struct Resolver<'c> {
    /// `resolved_ranges` as the document gives it.
    given: &'c BTreeMap<String, EncodedRanges>,
    /// `(key, set)` in the order first asked for.
    sets: Vec<(String, IpSet)>,
}

impl<'c> Resolver<'c> {
    pub fn new(given: &'c BTreeMap<String, EncodedRanges>) -> Resolver<'c> {
        Resolver {
            given,
            sets: Vec::new(),
        }
    }

    /// The position of the set called `key`, resolved on first use: from
    /// `resolved_ranges` when the document has it, else by `resolve` (from
    /// the host's own data). `at` is where the policy asks for it.
    pub fn position(
        &mut self,
        key: String,
        at: &str,
        resolve: impl FnOnce() -> Result<IpSet, String>,
    ) -> Result<usize, ConfigError> {
        if let Some(i) = self.sets.iter().position(|(k, _)| *k == key) {
            return Ok(i);
        }
        let set = match self.given.get(&key) {
            Some(ranges) => decode(ranges).map_err(|e| ConfigError::new(key_at(&key), e))?,
            None => resolve().map_err(|e| ConfigError::new(at, e))?,
        };
        self.sets.push((key, set));
        Ok(self.sets.len() - 1)
    }

    pub fn get(&self, position: usize) -> Option<&IpSet> {
        self.sets.get(position).map(|(_, set)| set)
    }

    /// The sets, once the policy is compiled. An entry nothing asks for is
    /// an error: it would be silently ignored, and it means the document
    /// was edited after `policy-json` wrote it.
    pub fn finish(self) -> Result<Vec<(String, IpSet)>, ConfigError> {
        if let Some(key) = self
            .given
            .keys()
            .find(|k| !self.sets.iter().any(|(used, _)| used == *k))
        {
            return Err(ConfigError::new(
                key_at(key),
                "nothing in the policy uses this set: the entry is stale (run `palisade \
                 policy-json` on the policy again)",
            ));
        }
        Ok(self.sets)
    }
}

fn key_at(key: &str) -> String {
    format!("resolved_ranges.\"{key}\"")
}

/// Why a host without `what` cannot resolve `key`, and the fix.
#[cfg(target_arch = "wasm32")]
pub fn missing(what: &str, key: &str) -> String {
    format!(
        "the Envoy filter carries no {what}, and the policy's `resolved_ranges` has no \
         `{key}`: give the filter the policy as `palisade policy-json` prints it, which \
         resolves it into its address ranges"
    )
}

/// A set as `resolved_ranges` carries it, compactly, since the whole policy
/// travels in Envoy's configuration (and under Istio in a `WasmPlugin`
/// resource, which Kubernetes caps near 1.5 MB): per family, base64 of a
/// shift byte and then, per range, two LEB128 numbers: the gap from the
/// end of the previous range and the range's length less one, both in
/// units of `2^shift` (the largest power of two that every boundary is a
/// multiple of: `/48`s for the geo table's IPv6).
pub fn encode(set: &IpSet) -> EncodedRanges {
    let v4: Vec<(u128, u128)> = set
        .v4_ranges()
        .iter()
        .map(|&(s, e)| (u128::from(s), u128::from(e)))
        .collect();
    EncodedRanges {
        v4: encode_family(&v4, 32),
        v6: encode_family(set.v6_ranges(), 128),
    }
}

fn decode(ranges: &EncodedRanges) -> Result<IpSet, String> {
    let mut v4 = Vec::new();
    // In range: decode_family checks every value against the width.
    decode_family(&ranges.v4, 32, |s, e| v4.push((s as u32, e as u32)))
        .map_err(|e| format!("v4: {e}"))?;
    let mut v6 = Vec::new();
    decode_family(&ranges.v6, 128, |s, e| v6.push((s, e))).map_err(|e| format!("v6: {e}"))?;
    Ok(IpSet::from_ranges(v4, v6))
}

/// The largest value of a `bits`-wide address.
fn top(bits: u32) -> u128 {
    u128::MAX >> (128 - bits)
}

/// `ranges` are sorted, disjoint and non-touching (an [`IpSet`]'s).
fn encode_family(ranges: &[(u128, u128)], bits: u32) -> String {
    // A range ending at the top ends on every boundary.
    let boundary_zeros = |e: u128| {
        if e == top(bits) {
            bits
        } else {
            (e + 1).trailing_zeros()
        }
    };
    let shift = ranges
        .iter()
        .map(|&(s, e)| s.trailing_zeros().min(boundary_zeros(e)))
        .min()
        .unwrap_or(0)
        .min(bits - 1);
    let mut out = vec![shift as u8];
    let mut next = 0u128;
    for &(s, e) in ranges {
        let (a, b) = (s >> shift, e >> shift);
        leb128(&mut out, a - next);
        leb128(&mut out, b - a);
        next = b.saturating_add(1);
    }
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// Decodes one family, passing each range to `push` (so IPv4 ranges are
/// never held wider than they are).
fn decode_family(text: &str, bits: u32, mut push: impl FnMut(u128, u128)) -> Result<(), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("not base64: {e}"))?;
    let Some((&shift, mut rest)) = bytes.split_first() else {
        return Ok(());
    };
    let shift = u32::from(shift);
    if shift >= bits {
        return Err(format!("shift {shift} is not below {bits}"));
    }
    let units = top(bits) >> shift;
    let mut next = 0u128;
    while !rest.is_empty() {
        let a = next.checked_add(read_leb128(&mut rest)?);
        let b = a.and_then(|a| a.checked_add(read_leb128(&mut rest).ok()?));
        let (Some(a), Some(b)) = (a, b) else {
            return Err("a range is cut short or past the end of the address space".into());
        };
        if b > units {
            return Err("a range is past the end of the address space".into());
        }
        let low_ones = (1u128 << shift) - 1;
        push(a << shift, (b << shift) | low_ones);
        next = b.saturating_add(1);
    }
    Ok(())
}

fn leb128(out: &mut Vec<u8>, mut n: u128) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn read_leb128(rest: &mut &[u8]) -> Result<u128, String> {
    let mut n = 0u128;
    for shift in (0..128).step_by(7) {
        let (&byte, tail) = rest.split_first().ok_or("a number is cut short")?;
        *rest = tail;
        let part = u128::from(byte & 0x7f);
        if shift > 0 && part >> (128 - shift) != 0 {
            return Err("a number is too large".into());
        }
        n |= part << shift;
        if byte & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err("a number is too large".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_survive_encoding() {
        let set = IpSet::from_ranges(
            vec![(10, 20), (0xffff_0000, u32::MAX)],
            vec![(1 << 100, (1 << 100) + 5), (u128::MAX - 1, u128::MAX)],
        );
        assert_eq!(decode(&encode(&set)).unwrap(), set);
        assert_eq!(
            decode(&encode(&IpSet::default())).unwrap(),
            IpSet::default()
        );
    }

    #[test]
    fn whole_blocks_encode_small() {
        // Two /48s: the shift makes each range two one-byte numbers.
        let at = |n: u128| n << 80;
        let set = IpSet::from_ranges(vec![], vec![(at(7), at(8) - 1), (at(20), at(22) - 1)]);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encode(&set).v6)
            .unwrap();
        assert_eq!(bytes, [80, 7, 0, 12, 1]);
        assert_eq!(decode(&encode(&set)).unwrap(), set);
        let everything = IpSet::from_ranges(vec![(0, u32::MAX)], vec![(0, u128::MAX)]);
        assert_eq!(decode(&encode(&everything)).unwrap(), everything);
    }

    #[test]
    fn damaged_ranges_are_refused() {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let with_v4 = |v4: String| EncodedRanges {
            v4,
            v6: String::new(),
        };
        let cut = decode(&with_v4(b64(&[0, 0x81]))).unwrap_err();
        assert!(cut.contains("v4: a number is cut short"), "{cut}");
        let past = decode(&with_v4(b64(&[24, 0, 0x80, 0x02]))).unwrap_err();
        assert!(past.contains("past the end"), "{past}");
        let shift = decode(&with_v4(b64(&[32]))).unwrap_err();
        assert!(shift.contains("shift 32"), "{shift}");
        let bad = EncodedRanges {
            v4: String::new(),
            v6: "not base64!".into(),
        };
        assert!(decode(&bad).unwrap_err().starts_with("v6: not base64"));
    }
}
