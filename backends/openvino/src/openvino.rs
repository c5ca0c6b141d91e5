//! An OpenVINO core: the opened library and one `ov_core_t`, through which devices are
//! listed and models compiled (`devices`, `compile`).

use std::path::Path;
use std::sync::Arc;

use xnpu_core::Result;

use crate::ffi::{Api, P};
use crate::library::find_library;

/// An OpenVINO core: the opened library and one `ov_core_t`.
pub struct OpenVino {
    pub(crate) api: Arc<Api>,
    pub(crate) core: P,
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
        Ok(OpenVino { api, core })
    }

    pub fn library(&self) -> &Path {
        &self.api.path
    }

    /// OpenVINO's build number (`2026.4.1-22982-...`).
    pub fn version(&self) -> &str {
        &self.api.version
    }
}
