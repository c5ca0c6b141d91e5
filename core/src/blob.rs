//! Compiled blobs kept between processes (an ONNX Runtime EPContext node's xnpu partition,
//! a QNN context binary, ...): sealed with what they are valid for and a checksum, written
//! atomically, and checked before use. The one place the project reads such bytes back.
//!
//! A sealed blob is:
//!
//! ```text
//! "XNPUBLOB" | u32 format version | u32 header length | header | u64 payload length | payload
//!   | SHA-256 of everything before it (32 bytes)
//! ```
//!
//! (little-endian numbers). The header is UTF-8 lines `key=value`: `kind` first, then the
//! compatibility entries the writer gave (the library build, the device, the driver ...).
//! [`open`] returns the payload only when the checksum holds ([`BlobError::Corrupt`]
//! otherwise: a truncated, altered or foreign file) and every compatibility entry equals the
//! reader's ([`BlobError::Stale`], naming the first that differs): a caller then rebuilds
//! what the blob held, never uses it. Every length read is checked against the bytes there.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"XNPUBLOB";
const FORMAT: u32 = 1;
const DIGEST: usize = 32;

/// Why a sealed blob cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobError {
    /// Not a whole, unaltered blob of this format: a checksum, magic or length that fails.
    Corrupt(String),
    /// A whole blob made for something else: another kind, library build, device or driver.
    Stale(String),
}

impl std::fmt::Display for BlobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlobError::Corrupt(why) => write!(f, "corrupt ({why})"),
            BlobError::Stale(why) => write!(f, "stale ({why})"),
        }
    }
}

/// Seals `payload` as a blob of `kind`, valid where `compat` holds. Keys and values must not
/// hold newlines or `=` in keys (they are replaced by spaces).
pub fn seal(kind: &str, compat: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let clean = |s: &str| s.replace(['\n', '\r'], " ");
    let mut header = format!("kind={}\n", clean(kind));
    for (k, v) in compat {
        header.push_str(&format!("{}={}\n", clean(k).replace('=', " "), clean(v)));
    }
    let mut out = Vec::with_capacity(8 + 4 + 4 + header.len() + 8 + payload.len() + DIGEST);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// A sealed blob's header entries, in order (`kind` first), once its checksum holds.
pub fn header(bytes: &[u8]) -> Result<Vec<(String, String)>, BlobError> {
    parse(bytes).map(|(h, _)| h)
}

fn corrupt(why: &str) -> BlobError {
    BlobError::Corrupt(why.to_string())
}

/// A blob's header entries and its payload.
type Parsed<'a> = (Vec<(String, String)>, &'a [u8]);

fn parse(bytes: &[u8]) -> Result<Parsed<'_>, BlobError> {
    if bytes.len() < 8 + 4 + 4 + 8 + DIGEST || &bytes[..8] != MAGIC {
        return Err(corrupt("not an xnpu blob"));
    }
    let (body, digest) = bytes.split_at(bytes.len() - DIGEST);
    if Sha256::digest(body).as_slice() != digest {
        return Err(corrupt("checksum mismatch"));
    }
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?))
    };
    let format = u32_at(8).ok_or_else(|| corrupt("truncated"))?;
    if format != FORMAT {
        return Err(BlobError::Stale(format!(
            "format {format}, this xnpu reads {FORMAT}"
        )));
    }
    let hlen = u32_at(12).ok_or_else(|| corrupt("truncated"))? as usize;
    let hend = 16usize
        .checked_add(hlen)
        .filter(|&e| e <= body.len())
        .ok_or_else(|| corrupt("header length past the end"))?;
    let text = std::str::from_utf8(&body[16..hend]).map_err(|_| corrupt("header not UTF-8"))?;
    let entries = text
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let plen = body
        .get(hend..hend + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| corrupt("truncated"))?;
    let pstart = hend + 8;
    let pend = usize::try_from(plen)
        .ok()
        .and_then(|n| pstart.checked_add(n))
        .filter(|&e| e == body.len())
        .ok_or_else(|| corrupt("payload length does not match the file"))?;
    Ok((entries, &body[pstart..pend]))
}

/// The payload of a sealed blob of `kind` made where `compat` holds (see the module docs).
pub fn open<'a>(
    kind: &str,
    compat: &[(&str, &str)],
    bytes: &'a [u8],
) -> Result<&'a [u8], BlobError> {
    let (entries, payload) = parse(bytes)?;
    let get = |key: &str| {
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    match get("kind") {
        Some(k) if k == kind => {}
        other => {
            return Err(BlobError::Stale(format!(
                "a {} blob, not {kind}",
                other.unwrap_or("kindless")
            )))
        }
    }
    for (key, want) in compat {
        let want = want.replace(['\n', '\r'], " ");
        match get(key) {
            Some(v) if v == want => {}
            Some(v) => {
                return Err(BlobError::Stale(format!(
                    "{key} is \"{v}\" in the blob, \"{want}\" here"
                )))
            }
            None => return Err(BlobError::Stale(format!("the blob does not say its {key}"))),
        }
    }
    Ok(payload)
}

/// Writes `bytes` to `path` through a temporary file in the same folder, synced, then
/// renamed over `path`: a reader sees the old file or the whole new one, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let tmp = dir.join(format!(
        ".{name}.{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Reads a regular file of at most `max` bytes (a cache entry; a larger or special file is
/// refused rather than read).
pub fn read_file(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > max {
        return Err(std::io::Error::other(format!(
            "{} bytes, more than the {max} allowed",
            meta.len()
        )));
    }
    std::fs::read(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPAT: [(&str, &str); 2] = [("library", "libQnnHtp.so 2.51"), ("soc", "0")];

    #[test]
    fn a_sealed_blob_opens_where_it_was_made() {
        let b = seal("qnn-context", &COMPAT, b"payload bytes");
        assert_eq!(open("qnn-context", &COMPAT, &b).unwrap(), b"payload bytes");
        assert_eq!(
            header(&b).unwrap()[0],
            ("kind".into(), "qnn-context".into())
        );
        let empty = seal("k", &[], b"");
        assert_eq!(open("k", &[], &empty).unwrap(), b"");
    }

    #[test]
    fn another_library_build_or_device_is_stale() {
        let b = seal("qnn-context", &COMPAT, b"x");
        let other = [("library", "libQnnHtp.so 2.52"), ("soc", "0")];
        let e = open("qnn-context", &other, &b).unwrap_err();
        assert_eq!(
            e,
            BlobError::Stale(
                "library is \"libQnnHtp.so 2.51\" in the blob, \"libQnnHtp.so 2.52\" here".into()
            )
        );
        assert!(matches!(
            open("openvino", &COMPAT, &b),
            Err(BlobError::Stale(_))
        ));
        let more = [
            ("library", "libQnnHtp.so 2.51"),
            ("soc", "0"),
            ("driver", "1"),
        ];
        assert!(matches!(
            open("qnn-context", &more, &b),
            Err(BlobError::Stale(_))
        ));
    }

    #[test]
    fn every_altered_or_truncated_byte_is_corrupt() {
        let b = seal("k", &COMPAT, b"some payload");
        for i in 0..b.len() {
            let mut t = b.clone();
            t[i] ^= 0x40;
            assert!(
                matches!(open("k", &COMPAT, &t), Err(BlobError::Corrupt(_))),
                "byte {i}"
            );
        }
        for n in 0..b.len() {
            assert!(open("k", &COMPAT, &b[..n]).is_err(), "first {n} bytes");
        }
        assert!(matches!(
            open("k", &COMPAT, b"not a blob at all, but long enough to look"),
            Err(BlobError::Corrupt(_))
        ));
    }

    #[test]
    fn lengths_past_the_end_are_corrupt_even_with_a_valid_checksum() {
        // A well-formed checksum over a header that claims more bytes than there are.
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&FORMAT.to_le_bytes());
        body.extend_from_slice(&u32::MAX.to_le_bytes());
        body.extend_from_slice(&[0u8; 8]);
        let d = Sha256::digest(&body);
        body.extend_from_slice(&d);
        assert!(matches!(open("k", &[], &body), Err(BlobError::Corrupt(_))));
    }

    #[test]
    fn writes_are_atomic_and_reads_bounded() {
        let dir = std::env::temp_dir().join(format!("xnpu-blob-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.blob");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(read_file(&p, 10).unwrap(), b"two");
        assert!(read_file(&p, 2).is_err());
        assert!(read_file(&dir, 1 << 20).is_err());
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).ok();
    }
}
