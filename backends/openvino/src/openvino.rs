//! An OpenVINO core: the opened library and one `ov_core_t`, through which devices are
//! listed and models compiled (`devices`, `compile`); and the cores models are imported
//! through, one per device and set of compile properties.

use std::path::Path;
use std::sync::{Arc, Mutex};

use xnpu_core::Result;

use crate::ffi::{cstring, property_strings, Api, P};
use crate::library::find_library;

/// An OpenVINO core: the opened library and one `ov_core_t`.
pub struct OpenVino {
    pub(crate) api: Arc<Api>,
    pub(crate) core: P,
    /// The import cores made so far (see [`ImportCore`]).
    import_cores: Mutex<Vec<Arc<ImportCore>>>,
}

// SAFETY: ov_core_t is thread-safe for reading models, compiling and queries (OpenVINO's
// documented threading model); the pointer is owned here and freed once.
unsafe impl Send for OpenVino {}
// SAFETY: as above.
unsafe impl Sync for OpenVino {}

impl Drop for OpenVino {
    fn drop(&mut self) {
        let (api, core) = (&self.api, self.core);
        // SAFETY: created by ov_core_create, freed once (serialised: it clears the message).
        api.serial(|| unsafe { (api.ov_core_free)(core) });
    }
}

impl OpenVino {
    /// Opens the library found by [`find_library`] and creates a core.
    pub fn open() -> Result<OpenVino> {
        OpenVino::open_at(&find_library()?)
    }

    /// Opens the library at `path` (refused when it is not OpenVINO 2025.1 or later).
    pub fn open_at(path: &Path) -> Result<OpenVino> {
        let api = Arc::new(Api::open(path)?);
        let mut core: P = std::ptr::null_mut();
        // SAFETY: a valid out-pointer.
        api.call(
            || "ov_core_create".into(),
            || unsafe { (api.ov_core_create)(&mut core) },
        )?;
        Ok(OpenVino {
            api,
            core,
            import_cores: Mutex::new(Vec::new()),
        })
    }

    pub fn library(&self) -> &Path {
        &self.api.path
    }

    /// OpenVINO's build number (`2026.4.1-22982-...`).
    pub fn version(&self) -> &str {
        &self.api.version
    }
}

/// A core of its own whose device properties were set, once, to those of one compile.
/// `ov_core_import_model` takes no properties, and a model imported through a core without
/// them runs with the device's defaults, not its compile's: tinycnn compiled for CPU with
/// f32, LATENCY and 1 thread, imported into a bare core, gave outputs 0.5% apart from the
/// compiled model's (the CPU device's bf16 default, OpenVINO 2026.4.1 on an AMD EPYC with
/// AVX-512 BF16); through this core they are bit-identical (tests/compile_cache.rs). Its
/// properties never change after it is made, so imports on many threads share it.
pub(crate) struct ImportCore {
    api: Arc<Api>,
    pub(crate) core: P,
    device: String,
    properties: Vec<(String, String)>,
}

// SAFETY: as for `OpenVino`: an ov_core_t is thread-safe, owned here and freed once.
unsafe impl Send for ImportCore {}
// SAFETY: as above.
unsafe impl Sync for ImportCore {}

impl Drop for ImportCore {
    fn drop(&mut self) {
        let (api, core) = (&self.api, self.core);
        // SAFETY: created by ov_core_create, freed once (serialised: it clears the message).
        api.serial(|| unsafe { (api.ov_core_free)(core) });
    }
}

impl OpenVino {
    /// The core to import models compiled for `device` with `properties` through (made on
    /// first use; an error when OpenVINO refuses one of the properties as a device setting).
    pub(crate) fn import_core(
        &self,
        device: &str,
        properties: &[(String, String)],
    ) -> Result<Arc<ImportCore>> {
        let mut cores = self.import_cores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cores
            .iter()
            .find(|c| c.device == device && c.properties == properties)
        {
            return Ok(c.clone());
        }
        let api = &self.api;
        let dev = cstring(device, "device name")?;
        let strings = property_strings(properties)?;
        let mut core: P = std::ptr::null_mut();
        // SAFETY: a valid out-pointer.
        api.call(
            || "ov_core_create".into(),
            || unsafe { (api.ov_core_create)(&mut core) },
        )?;
        // Owned (and freed on error) from here.
        let made = ImportCore {
            api: api.clone(),
            core,
            device: device.to_string(),
            properties: properties.to_vec(),
        };
        for (k, v) in &strings {
            // SAFETY: a live core; NUL-terminated strings alive for the call; the variadic
            // part is the one key/value pair of C strings the function reads.
            api.call(
                || {
                    format!(
                        "setting {}={} on {device} for importing",
                        k.to_string_lossy(),
                        v.to_string_lossy()
                    )
                },
                || unsafe {
                    (api.ov_core_set_property)(core, dev.as_ptr(), k.as_ptr(), v.as_ptr())
                },
            )?;
        }
        let made = Arc::new(made);
        cores.push(made.clone());
        Ok(made)
    }
}
