//! EPContext: a fused group compiled ahead of time into the model ONNX Runtime's compile API
//! writes (`ModelCompiler`), so that loading that model compiles nothing.
//!
//! The node's `ep_cache_context` holds (embed mode 1), or names a file beside the model that
//! holds (embed mode 0):
//!
//! ```text
//! "XNPUCTX1" | u64 length of the graph blob | graph blob | artifacts blob
//! ```
//!
//! Both blobs are sealed with `xnpu::core::blob` (a checksum each; see its docs):
//! - the graph blob (kind `xnpu-epcontext-graph`): the group as ONNX, weights included, from
//!   which the group can always be compiled again;
//! - the artifacts blob (kind `xnpu-epcontext-artifacts`): what the vendor compilers left in
//!   the compile cache (QNN context binaries, OpenVINO's compiled blobs), valid for the xnpu
//!   version, the devices with their library builds and drivers, and the compile options
//!   that made them.
//!
//! On load, the artifacts go back into a cache folder and the group compiles from the graph
//! against it: the vendor libraries find their compiled forms and build nothing (counted: a
//! compile writes new cache files). Artifacts that are stale (another library build, SoC or
//! driver) or corrupt are left out and the group compiles afresh, with a warning; a corrupt
//! graph blob is an error naming the node.

use std::path::{Path, PathBuf};

use xnpu::core::blob::{self, BlobError};

pub const OP: &str = "EPContext";
pub const DOMAIN: &str = "com.microsoft";
const MAGIC: &[u8; 8] = b"XNPUCTX1";
const GRAPH_KIND: &str = "xnpu-epcontext-graph";
const ARTIFACTS_KIND: &str = "xnpu-epcontext-artifacts";
/// The most bytes a cache file packed into an EPContext blob may have, and the most files.
const MAX_FILE: u64 = 4 << 30;
const MAX_FILES: usize = 4096;

/// What the graph blob is valid for: it is ONNX, readable by any xnpu of this format.
fn graph_compat() -> [(&'static str, &'static str); 1] {
    [("format", "onnx")]
}

/// Packs a group: its ONNX bytes, and the cache files its compile wrote, valid for `compat`.
pub fn pack(onnx: &[u8], compat: &[(&str, &str)], files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let graph = blob::seal(GRAPH_KIND, &graph_compat(), onnx);
    let mut listing = Vec::new();
    listing.extend_from_slice(&(files.len() as u32).to_le_bytes());
    for (name, bytes) in files {
        listing.extend_from_slice(&(name.len() as u32).to_le_bytes());
        listing.extend_from_slice(name.as_bytes());
        listing.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        listing.extend_from_slice(bytes);
    }
    let artifacts = blob::seal(ARTIFACTS_KIND, compat, &listing);
    let mut out = Vec::with_capacity(16 + graph.len() + artifacts.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(graph.len() as u64).to_le_bytes());
    out.extend_from_slice(&graph);
    out.extend_from_slice(&artifacts);
    out
}

/// A group's cache files, or why they cannot be used.
pub type Artifacts = Result<Vec<(String, Vec<u8>)>, BlobError>;

/// The group's ONNX bytes, and its cache files where they are whole and made for `compat`.
pub fn unpack<'a>(
    bytes: &'a [u8],
    compat: &[(&str, &str)],
) -> Result<(&'a [u8], Artifacts), String> {
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err("not an xnpu EPContext blob".into());
    }
    let glen = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0; 8]));
    let gend = usize::try_from(glen)
        .ok()
        .and_then(|n| n.checked_add(16))
        .filter(|&e| e <= bytes.len())
        .ok_or("its graph length runs past its end")?;
    let graph = blob::open(GRAPH_KIND, &graph_compat(), &bytes[16..gend])
        .map_err(|e| format!("its graph is {e}"))?;
    let artifacts = blob::open(ARTIFACTS_KIND, compat, &bytes[gend..]).and_then(list_files);
    Ok((graph, artifacts))
}

fn list_files(listing: &[u8]) -> Result<Vec<(String, Vec<u8>)>, BlobError> {
    let bad = |why: &str| BlobError::Corrupt(why.to_string());
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], BlobError> {
        let end = at
            .checked_add(n)
            .filter(|&e| e <= listing.len())
            .ok_or_else(|| bad("file list truncated"))?;
        let s = &listing[at..end];
        at = end;
        Ok(s)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().unwrap_or([0; 4])) as usize;
    if count > MAX_FILES {
        return Err(bad("too many files"));
    }
    let mut files = Vec::with_capacity(count);
    for _ in 0..count {
        let nlen = u32::from_le_bytes(take(4)?.try_into().unwrap_or([0; 4])) as usize;
        let name = std::str::from_utf8(take(nlen)?).map_err(|_| bad("a file name is not UTF-8"))?;
        if !safe_name(name) {
            return Err(bad("a file name leaves its folder"));
        }
        let flen = u64::from_le_bytes(take(8)?.try_into().unwrap_or([0; 8]));
        let flen = usize::try_from(flen).map_err(|_| bad("a file is too large"))?;
        files.push((name.to_string(), take(flen)?.to_vec()));
    }
    Ok(files)
}

/// A relative path of plain components (no `..`, no root, no empty part).
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Every regular file below `dir` (relative names), bounded in size and count.
pub fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() && out.len() < MAX_FILES {
                let (Ok(rel), Ok(bytes)) = (p.strip_prefix(dir), blob::read_file(&p, MAX_FILE))
                else {
                    continue;
                };
                if let Some(name) = rel.to_str().filter(|n| safe_name(n)) {
                    out.push((name.to_string(), bytes));
                }
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Writes `files` below `dir` (atomically each; a file already there with the same bytes is
/// left alone).
pub fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
    for (name, bytes) in files {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|b| b == *bytes) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        blob::write_atomically(&path, bytes)?;
    }
    Ok(())
}

/// A hex digest of `bytes` (a folder name for a group's unpacked artifacts).
pub fn digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPAT: [(&str, &str); 2] = [("xnpu", "0.1.0"), ("devices", "qnn:htp-sim")];

    fn packed() -> Vec<u8> {
        pack(
            b"onnx bytes",
            &COMPAT,
            &[
                ("qnn/abc.bin".into(), vec![1, 2, 3]),
                ("ov/x.blob".into(), vec![]),
            ],
        )
    }

    #[test]
    fn a_packed_group_unpacks_with_its_files() {
        let b = packed();
        let (g, files) = unpack(&b, &COMPAT).unwrap();
        assert_eq!(g, b"onnx bytes");
        let files = files.unwrap();
        assert_eq!(files[0], ("qnn/abc.bin".to_string(), vec![1, 2, 3]));
        assert_eq!(files.len(), 2);
    }

    #[test]
    fn stale_or_altered_artifacts_leave_the_graph_usable() {
        let b = packed();
        let other = [("xnpu", "0.1.0"), ("devices", "openvino:npu")];
        let (g, files) = unpack(&b, &other).unwrap();
        assert_eq!(g, b"onnx bytes");
        assert!(matches!(files, Err(BlobError::Stale(_))));
        let mut t = b.clone();
        let last = t.len() - 40;
        t[last] ^= 1;
        let (_, files) = unpack(&t, &COMPAT).unwrap();
        assert!(matches!(files, Err(BlobError::Corrupt(_))));
        // An altered graph cannot be compiled from: an error.
        let mut t = b.clone();
        t[30] ^= 1;
        assert!(unpack(&t, &COMPAT).unwrap_err().contains("corrupt"));
        assert!(unpack(b"XNPUCTX1\xff\xff\xff\xff\xff\xff\xff\xff", &COMPAT).is_err());
        assert!(unpack(b"", &COMPAT).is_err());
    }

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../b", ""] {
            assert!(!safe_name(bad), "{bad}");
        }
        assert!(safe_name("qnn/abc.bin"));
        let b = pack(b"g", &COMPAT, &[("../evil".into(), vec![0])]);
        assert!(matches!(
            unpack(&b, &COMPAT).unwrap().1,
            Err(BlobError::Corrupt(_))
        ));
    }
}
