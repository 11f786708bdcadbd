//! The binary encoding of an object file's trailer (format 2, magic `COFFER02`).
//!
//! Format 1 stored the trailer as JSON; every GET parsed it, and that parse was about a
//! twentieth of a small GET's instructions. Format 2 stores the same fields in a fixed order,
//! little-endian, with no field names:
//!
//! ```text
//! str    = len: u32, UTF-8 bytes
//! opt    = 0 | 1 str
//! key: str · etag: str · size: u64 · last_modified: u64 · parts: 0 | 1 u32
//! content_type, content_encoding, content_disposition, content_language,
//!   cache_control, expires: opt each
//! user metadata: count: u32, then count × (name: str, value: str), names in order
//! ```
//!
//! Decoding checks every length against what is left, every string's UTF-8, and that
//! nothing follows the last field; anything else is a corrupt file.

use std::collections::BTreeMap;

use super::object_file::Trailer;
use crate::ObjectMeta;

/// Append `t`, encoded, to `out`.
pub(crate) fn encode(t: &Trailer, out: &mut Vec<u8>) {
    put_str(out, &t.key);
    put_str(out, &t.etag);
    out.extend_from_slice(&t.size.to_le_bytes());
    out.extend_from_slice(&t.last_modified.to_le_bytes());
    match t.parts {
        None => out.push(0),
        Some(n) => {
            out.push(1);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
    let m = &t.meta;
    for field in [
        &m.content_type,
        &m.content_encoding,
        &m.content_disposition,
        &m.content_language,
        &m.cache_control,
        &m.expires,
    ] {
        match field {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_str(out, s);
            }
        }
    }
    let count = u32::try_from(m.user_metadata.len()).expect("fewer than 2^32 metadata entries");
    out.extend_from_slice(&count.to_le_bytes());
    for (name, value) in &m.user_metadata {
        put_str(out, name);
        put_str(out, value);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u32::try_from(s.len()).expect("a trailer string is shorter than 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Decode a whole encoded trailer.
pub(crate) fn decode(bytes: &[u8]) -> Result<Trailer, &'static str> {
    let mut r = Reader(bytes);
    let key = r.string()?;
    let etag = r.string()?;
    let size = r.u64()?;
    let last_modified = r.u64()?;
    let parts = if r.flag()? { Some(r.u32()?) } else { None };
    let mut opt =
        || -> Result<Option<String>, &'static str> { if r.flag()? { r.string().map(Some) } else { Ok(None) } };
    let content_type = opt()?;
    let content_encoding = opt()?;
    let content_disposition = opt()?;
    let content_language = opt()?;
    let cache_control = opt()?;
    let expires = opt()?;
    let count = r.u32()?;
    let mut user_metadata = BTreeMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let value = r.string()?;
        if user_metadata.insert(name, value).is_some() {
            return Err("a metadata name twice");
        }
    }
    if !r.0.is_empty() {
        return Err("bytes after the trailer's last field");
    }
    let meta = ObjectMeta {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        expires,
        user_metadata,
    };
    Ok(Trailer { key, etag, size, last_modified, meta, parts })
}

/// What is left to decode.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or("the trailer ends inside a field")?;
        self.0 = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        self.take::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        self.take::<8>().map(u64::from_le_bytes)
    }

    fn flag(&mut self) -> Result<bool, &'static str> {
        match self.take::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err("a field marker is neither 0 nor 1"),
        }
    }

    fn string(&mut self) -> Result<String, &'static str> {
        let len = self.u32()? as usize;
        if len > self.0.len() {
            return Err("a string runs past the trailer");
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        std::str::from_utf8(s).map(str::to_owned).map_err(|_| "a string is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Trailer {
        let meta = ObjectMeta {
            content_type: Some("text/csv".into()),
            content_encoding: Some("gzip".into()),
            content_disposition: Some("attachment; filename=\"a b.csv\"".into()),
            content_language: Some("fr".into()),
            cache_control: Some("no-cache".into()),
            expires: Some("Thu, 01 Dec 1994 16:00:00 GMT".into()),
            user_metadata: [("a".to_owned(), "1".to_owned()), ("é".to_owned(), String::new())].into(),
        };
        Trailer {
            key: "dir/ключ".into(),
            etag: "0123456789abcdef0123456789abcdef-3".into(),
            size: u64::MAX - 1,
            last_modified: 1_700_000_000_123,
            meta,
            parts: Some(3),
        }
    }

    fn bare() -> Trailer {
        Trailer {
            key: String::new(),
            etag: "e".repeat(32),
            size: 0,
            last_modified: 0,
            meta: ObjectMeta::default(),
            parts: None,
        }
    }

    #[test]
    fn every_field_round_trips() {
        for t in [full(), bare()] {
            let mut out = Vec::new();
            encode(&t, &mut out);
            assert_eq!(decode(&out).unwrap(), t);
        }
    }

    #[test]
    fn every_truncation_and_any_extra_byte_is_refused() {
        let mut out = Vec::new();
        encode(&full(), &mut out);
        for cut in 0..out.len() {
            assert!(decode(&out[..cut]).is_err(), "cut at {cut} of {}", out.len());
        }
        out.push(0);
        assert_eq!(decode(&out).unwrap_err(), "bytes after the trailer's last field");
    }

    #[test]
    fn bad_markers_lengths_and_utf8_are_refused() {
        let mut out = Vec::new();
        encode(&bare(), &mut out);
        // The `parts` marker follows key (4 bytes), etag (4 + 32), size and time (16).
        let parts_at = 4 + 4 + 32 + 16;
        let mut bad = out.clone();
        bad[parts_at] = 2;
        assert_eq!(decode(&bad).unwrap_err(), "a field marker is neither 0 nor 1");
        let mut long = out.clone();
        long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&long).unwrap_err(), "a string runs past the trailer");
        let mut invalid = out.clone();
        invalid[8] = 0xFF;
        assert_eq!(decode(&invalid).unwrap_err(), "a string is not UTF-8");
    }
}
