//! xnpu's cache of OpenVINO compiled models, one sealed file per model, device and set of
//! compile properties. After a compile the model is exported
//! (`ov_compiled_model_export_model`), sealed with `xnpu_core::blob` (a SHA-256 checksum,
//! and what it is valid for: the xnpu version, OpenVINO's build, the device and the builds
//! of the plugins serving it, the compile properties) and renamed into place; the next
//! compile of the same model reads it whole into memory, checks it, and imports it
//! (`ov_core_import_model`). A blob that is damaged, stale or refused by OpenVINO is
//! warned about, compiled again and replaced.
//!
//! OpenVINO's own `CACHE_DIR` is not used: it maps a blob that another process may still be
//! writing, and 8 processes sharing a fresh folder died of SIGBUS in 8 of 160 runs. Here a
//! reader only ever opens a whole file (each writer writes a name of its own and renames it
//! over the blob), and what it reads is its own copy.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use xnpu_core::blob::{self, BlobError};
use xnpu_core::{Error, Result};

use crate::compiled_model::CompiledModel;
use crate::tensor::Aligned;
use crate::{OpenVino, Source};

/// The `kind` of xnpu's sealed OpenVINO blobs.
pub const BLOB_KIND: &str = "openvino-compiled-model";
/// The file name extension of a sealed blob in a cache folder.
pub const BLOB_EXTENSION: &str = "ovblob";
/// The largest blob read back (a larger file is compiled again, not read).
const MAX_BLOB: u64 = 16 << 30;

/// How a compile went through the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheUse {
    /// No cache folder (or the user's config names OpenVINO's own `CACHE_DIR`): compiled.
    Off,
    /// No blob for this model yet: compiled, and the blob written.
    Compiled,
    /// Imported from its blob: nothing compiled.
    Imported,
    /// A blob was there but unusable (why: damaged, stale, refused by OpenVINO): compiled
    /// again and the blob replaced.
    Recompiled(String),
    /// Models compiled with these properties cannot be imported (why; OpenVINO refused one
    /// as a device setting): compiled, no blob written.
    Uncacheable(String),
}

/// What identifies a model's bytes, for a blob's name: the SHA-256 of the ONNX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelDigest([u8; 32]);

impl ModelDigest {
    /// The digest of ONNX bytes.
    pub fn of_bytes(onnx: &[u8]) -> ModelDigest {
        ModelDigest(Sha256::digest(onnx).into())
    }

    /// The digest of every regular file in `dir` (an ONNX file and its external data, in a
    /// folder of their own), by name and contents in name order; files are streamed, never
    /// held whole.
    pub fn of_folder(dir: &Path) -> std::io::Result<ModelDigest> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        files.sort();
        let mut h = Sha256::new();
        for f in files {
            if !std::fs::symlink_metadata(&f)?.is_file() {
                continue;
            }
            let name = f.file_name().map(|n| n.as_encoded_bytes()).unwrap_or(b"");
            h.update((name.len() as u64).to_le_bytes());
            h.update(name);
            let mut file = std::fs::File::open(&f)?;
            h.update(file.metadata()?.len().to_le_bytes());
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        Ok(ModelDigest(h.finalize().into()))
    }
}

/// One model's place in a cache folder, with what its blob must say to be used here.
pub(crate) struct Entry {
    /// `<dir>/<key>.ovblob`.
    pub(crate) path: PathBuf,
    compat: Vec<(&'static str, String)>,
}

/// What reading an entry found.
enum Found {
    Imported(CompiledModel),
    Missing,
    /// A blob that cannot be used, and why.
    Unusable(String),
}

impl Entry {
    /// The entry of the model `model` compiled for `device` with `properties`, in `dir`.
    pub(crate) fn new(
        ov: &OpenVino,
        dir: &Path,
        model: &ModelDigest,
        device: &str,
        properties: &[(String, String)],
    ) -> Entry {
        let props = properties
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        // The name: the model, the device and the properties. What else the blob must
        // match (builds, the device's identity) is in its header, so that a blob from
        // another build is found, reported stale and replaced rather than left beside.
        let mut h = Sha256::new();
        for part in [BLOB_KIND.as_bytes(), device.as_bytes(), props.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(model.0);
        let key: String = h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let read = |k: &str| ov.property(device, k).unwrap_or_default();
        let compat = vec![
            ("xnpu", env!("CARGO_PKG_VERSION").to_string()),
            ("openvino", ov.version().to_string()),
            ("device", device.to_string()),
            ("device_name", read("FULL_DEVICE_NAME")),
            ("device_architecture", read("DEVICE_ARCHITECTURE")),
            ("device_capabilities", read("OPTIMIZATION_CAPABILITIES")),
            (
                "driver",
                if device.starts_with("NPU") {
                    read("NPU_DRIVER_VERSION")
                } else {
                    String::new()
                },
            ),
            ("plugins", ov.plugin_versions(device).unwrap_or_default()),
            ("properties", props),
        ];
        Entry {
            path: dir.join(format!("{key}.{BLOB_EXTENSION}")),
            compat,
        }
    }

    fn compat(&self) -> Vec<(&str, &str)> {
        self.compat.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }

    /// Reads, checks and imports the blob, if there is one.
    fn load(&self, ov: &Arc<OpenVino>, device: &str, properties: &[(String, String)]) -> Found {
        let bytes = match blob::read_file(&self.path, MAX_BLOB) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Missing,
            Err(e) => return Found::Unusable(format!("unreadable ({e})")),
        };
        let exported = match blob::open(BLOB_KIND, &self.compat(), &bytes) {
            Ok(payload) => Aligned::try_copy_of(payload),
            Err(e @ (BlobError::Corrupt(_) | BlobError::Stale(_))) => {
                return Found::Unusable(e.to_string())
            }
        };
        drop(bytes);
        match exported.and_then(|x| ov.import(x, device, properties)) {
            Ok(m) => Found::Imported(m),
            Err(e) => Found::Unusable(format!("not imported ({e})")),
        }
    }

    /// Exports `compiled`, seals it and renames it into place. The export goes to a
    /// temporary file of this process's own in the cache folder (OpenVINO writes only to a
    /// path), removed afterwards.
    fn save(&self, compiled: &CompiledModel) -> Result<()> {
        let io = |what: &str, e: std::io::Error| {
            Error::compute(format!("{what} {}: {e}", self.path.display()))
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let export = tempfile::Builder::new()
            .prefix(".xnpu-export-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| io("a temporary export file beside", e))?;
        compiled.export(export.path())?;
        let payload = blob::read_file(export.path(), MAX_BLOB)
            .map_err(|e| io("reading the export for", e))?;
        drop(export);
        let sealed = blob::seal(BLOB_KIND, &self.compat(), &payload);
        drop(payload);
        blob::write_atomically(&self.path, &sealed).map_err(|e| io("writing", e))
    }
}

impl OpenVino {
    /// Compiles `source` for `device` with `properties`, through xnpu's cache when `cache`
    /// names a folder and the digest of `source`'s bytes (see the module docs): imported
    /// from its blob when the blob is whole and made here, otherwise compiled and the blob
    /// (re)written. A cache that cannot be read or written costs only the compile, with a
    /// warning.
    pub fn compile_cached(
        self: &Arc<Self>,
        source: Source<'_>,
        device: &str,
        properties: &[(String, String)],
        cache: Option<(PathBuf, ModelDigest)>,
    ) -> Result<(CompiledModel, CacheUse)> {
        let Some((dir, model)) = cache else {
            return Ok((self.compile(source, device, properties)?, CacheUse::Off));
        };
        if let Err(e) = self.import_core(device, properties) {
            let why = format!("OpenVINO cannot import with these properties ({e})");
            let compiled = self.compile(source, device, properties)?;
            return Ok((compiled, CacheUse::Uncacheable(why)));
        }
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!(
                "{}: cannot make the cache folder ({e}); compiling without it",
                dir.display()
            );
            return Ok((self.compile(source, device, properties)?, CacheUse::Off));
        }
        let entry = Entry::new(self, &dir, &model, device, properties);
        let use_ = match entry.load(self, device, properties) {
            Found::Imported(m) => return Ok((m, CacheUse::Imported)),
            Found::Missing => CacheUse::Compiled,
            Found::Unusable(why) => {
                tracing::warn!("{}: {why}; compiling the model again", entry.path.display());
                CacheUse::Recompiled(why)
            }
        };
        let compiled = self.compile(source, device, properties)?;
        if let Err(e) = entry.save(&compiled) {
            tracing::warn!("the compiled model is not cached: {e}");
        }
        Ok((compiled, use_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(d.path().join(name), bytes).unwrap();
        }
        d
    }

    #[test]
    fn a_folders_digest_follows_its_files_names_and_bytes_not_its_place() {
        let a = folder(&[("m.onnx", b"graph"), ("m.onnx.data", b"weights")]);
        let b = folder(&[("m.onnx", b"graph"), ("m.onnx.data", b"weights")]);
        let digest = |d: &tempfile::TempDir| ModelDigest::of_folder(d.path()).unwrap();
        assert_eq!(digest(&a), digest(&b));
        for other in [
            folder(&[("m.onnx", b"graph"), ("m.onnx.data", b"weightz")]),
            folder(&[("m.onnx", b"graph"), ("n.onnx.data", b"weights")]),
            folder(&[("m.onnx", b"graphweights")]),
        ] {
            assert_ne!(digest(&a), digest(&other));
        }
        assert_ne!(digest(&a), ModelDigest::of_bytes(b"graph"));
    }
}
