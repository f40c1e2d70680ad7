//! The request's headers: fetched from Envoy in one host call and read
//! where they lie.
//!
//! The SDK's `get_map_bytes` copies every name and value into an
//! allocation of its own (two per header, about 40 for a browser's
//! request) and panics on a host status it does not expect. Here the
//! host's serialised map stays one buffer, and the policy reads `&str`s
//! into it.

use proxy_wasm::types::{MapType, Status};

extern "C" {
    // The host call behind the SDK's `get_map_bytes` (proxy-wasm ABI
    // 0.2.1), imported here so that its buffer can be kept as it is.
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

/// A header map as the host serialises it: the number of headers (`u32`,
/// little-endian), each header's name and value lengths (`u32` each),
/// then each name and each value, every one followed by a NUL.
pub struct RawHeaders(Vec<u8>);

impl RawHeaders {
    /// The request's headers (none if the host has none to give).
    pub fn fetch() -> RawHeaders {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: on success the host hands over a buffer of `size` bytes
        // that it allocated through this module's `proxy_on_memory_allocate`
        // (the SDK's: an exact-size boxed slice from the global allocator),
        // so it is ours to own and free, exactly as the SDK's own
        // `get_map_bytes` takes it.
        let status = unsafe {
            proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size)
        };
        if status != Status::Ok || data.is_null() {
            return RawHeaders(Vec::new());
        }
        // SAFETY: as above.
        RawHeaders(unsafe { Vec::from_raw_parts(data, size, size) })
    }

    /// Each header's name and value bytes, in order. A malformed map (a
    /// host bug) ends the list where it stops making sense.
    fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let bytes = self.0.as_slice();
        let count = read_u32(bytes, 0).unwrap_or(0);
        let lengths = count
            .checked_mul(8)
            .and_then(|n| bytes.get(4..n.checked_add(4)?))
            .unwrap_or_default();
        let mut at = 4 + lengths.len();
        lengths.chunks_exact(8).map_while(move |pair| {
            let name_len = read_u32(pair, 0)?;
            let value_len = read_u32(pair, 4)?;
            let name = bytes.get(at..at.checked_add(name_len)?)?;
            at += name_len + 1;
            let value = bytes.get(at..at.checked_add(value_len)?)?;
            at += value_len + 1;
            Some((name, value))
        })
    }

    /// The headers as text, borrowed from the buffer; `None` if a name or
    /// value is not UTF-8 (then [`RawHeaders::lossy`]).
    pub fn text(&self) -> Option<Vec<(&str, &str)>> {
        self.fields()
            .map(|(name, value)| {
                Some((
                    std::str::from_utf8(name).ok()?,
                    std::str::from_utf8(value).ok()?,
                ))
            })
            .collect()
    }

    /// The headers as text, bytes that are not UTF-8 replaced rather than
    /// trusted.
    pub fn lossy(&self) -> Vec<(String, String)> {
        self.fields()
            .map(|(name, value)| {
                (
                    String::from_utf8_lossy(name).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                )
            })
            .collect()
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    let word = <[u8; 4]>::try_from(word).ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}
