//! A compiled model (`ov_compiled_model_t`): its properties, its export, and its ports as an
//! executable needs them (the inputs' names; each output's element type and, when compiling
//! fixed it, its shape).

use std::ffi::c_char;
use std::path::Path;
use std::sync::Arc;

use xnpu_core::{DType, Error, Result};

use crate::ffi::{cstring, owned_string, OvShape, P};
use crate::openvino::ImportCore;
use crate::tensor::{from_ov_type, shape_dims, Aligned};
use crate::OpenVino;

/// A compiled model (`ov_compiled_model_t`).
pub struct CompiledModel {
    pub(crate) ov: Arc<OpenVino>,
    pub(crate) ptr: P,
    /// Where the model was imported from xnpu's cache instead of compiled.
    pub(crate) imported: Option<Imported>,
}

/// What an imported model was made from, kept until after it is freed: the core it was
/// imported through, and the exported bytes (OpenVINO reads them through a tensor over
/// them; whether a plugin keeps pointing into it afterwards is the plugin's affair).
pub(crate) struct Imported {
    pub(crate) _core: Arc<ImportCore>,
    pub(crate) _bytes: Aligned,
}

// SAFETY: OpenVINO's compiled models are thread-safe; the pointer is freed once.
unsafe impl Send for CompiledModel {}
// SAFETY: as above.
unsafe impl Sync for CompiledModel {}

impl Drop for CompiledModel {
    fn drop(&mut self) {
        let api = &self.ov.api;
        // SAFETY: created by compile_model, freed once.
        unsafe { (api.ov_compiled_model_free)(self.ptr) };
    }
}

/// An output's element type and, when OpenVINO fixed it at compile time, its shape.
pub(crate) struct OutPort {
    pub(crate) dtype: Option<DType>,
    pub(crate) shape: Option<Vec<usize>>,
}

impl CompiledModel {
    /// A property of the compiled model (`EXECUTION_DEVICES`, `INFERENCE_PRECISION_HINT`,
    /// `LOADED_FROM_CACHE`, ...).
    pub fn property(&self, key: &str) -> Result<String> {
        let k = cstring(key, "property key")?;
        let api = &self.ov.api;
        let mut v: *mut c_char = std::ptr::null_mut();
        // SAFETY: a live compiled model, a NUL-terminated key and a valid out-pointer.
        api.call(
            || format!("reading {key} of a compiled model"),
            || unsafe { (api.ov_compiled_model_get_property)(self.ptr, k.as_ptr(), &mut v) },
        )?;
        // SAFETY: a new[] string from the library.
        Ok(unsafe { owned_string(api, v) })
    }

    /// Whether this model came from a cache instead of being compiled: imported from xnpu's
    /// cache, or (when a user's config sets `CACHE_DIR`) loaded from OpenVINO's own.
    pub fn loaded_from_cache(&self) -> bool {
        self.imported.is_some()
            || self
                .property("LOADED_FROM_CACHE")
                .is_ok_and(|v| v.eq_ignore_ascii_case("yes") || v == "true" || v == "1")
    }

    /// Writes the model in OpenVINO's export format to `path`, which the library opens and
    /// writes itself (`ov_compiled_model_export_model` takes only a path).
    pub(crate) fn export(&self, path: &Path) -> Result<()> {
        let text = path.to_str().ok_or_else(|| {
            Error::invalid_input(format!(
                "{}: not UTF-8, and OpenVINO exports only to UTF-8 paths",
                path.display()
            ))
        })?;
        let p = cstring(text, "export path")?;
        let api = &self.ov.api;
        // SAFETY: a live compiled model and a NUL-terminated path alive for the call.
        api.call(
            || format!("exporting a compiled model to {}", path.display()),
            || unsafe { (api.ov_compiled_model_export_model)(self.ptr, p.as_ptr()) },
        )
    }

    /// The names of the compiled model's inputs, in its order.
    pub(crate) fn input_names(&self) -> Result<Vec<String>> {
        let api = &self.ov.api;
        let mut n = 0usize;
        // SAFETY: a live compiled model and a valid out-pointer.
        api.call(
            || "counting inputs".into(),
            || unsafe { (api.ov_compiled_model_inputs_size)(self.ptr, &mut n) },
        )?;
        let mut names = Vec::with_capacity(n);
        for i in 0..n {
            let mut port: P = std::ptr::null_mut();
            // SAFETY: a live compiled model, an index below the count, a valid out-pointer.
            api.call(
                || format!("reading input port {i}"),
                || unsafe { (api.ov_compiled_model_input_by_index)(self.ptr, i, &mut port) },
            )?;
            let mut name: *mut c_char = std::ptr::null_mut();
            // SAFETY: a live port and a valid out-pointer.
            let r = api.call(
                || format!("input {i}'s name"),
                || unsafe { (api.ov_port_get_any_name)(port, &mut name) },
            );
            // SAFETY: the port came from input_by_index; freed once.
            unsafe { (api.ov_output_const_port_free)(port) };
            r?;
            // SAFETY: a new[] string from the library.
            names.push(unsafe { owned_string(api, name) });
        }
        Ok(names)
    }

    /// Element type and, when fixed after compiling, shape of each output.
    pub(crate) fn outputs(&self) -> Result<Vec<OutPort>> {
        let api = &self.ov.api;
        let mut n = 0usize;
        // SAFETY: a live compiled model and a valid out-pointer.
        api.call(
            || "counting outputs".into(),
            || unsafe { (api.ov_compiled_model_outputs_size)(self.ptr, &mut n) },
        )?;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let mut port: P = std::ptr::null_mut();
            // SAFETY: a live compiled model, an index below the count, a valid out-pointer.
            api.call(
                || format!("reading output port {i}"),
                || unsafe { (api.ov_compiled_model_output_by_index)(self.ptr, i, &mut port) },
            )?;
            let mut ty = 0;
            // SAFETY: a live port and a valid out-pointer.
            let ty_ok = api.call(
                || format!("output {i}'s element type"),
                || unsafe { (api.ov_port_get_element_type)(port, &mut ty) },
            );
            let mut shape = OvShape {
                rank: 0,
                dims: std::ptr::null_mut(),
            };
            // A dynamic output has no static shape: that call fails, and the output is then
            // copied out after each run instead of written in place.
            // SAFETY: a live port and a valid out-struct (freed below when filled).
            let fixed = api
                .call(
                    || format!("output {i}'s shape"),
                    || unsafe { (api.ov_const_port_get_shape)(port, &mut shape) },
                )
                .is_ok();
            let dims = if fixed {
                // SAFETY: filled by ov_const_port_get_shape.
                let d = unsafe { shape_dims(&shape) };
                // SAFETY: as above; freed once.
                unsafe { (api.ov_shape_free)(&mut shape) };
                Some(d)
            } else {
                None
            };
            // SAFETY: the port came from output_by_index; freed once.
            unsafe { (api.ov_output_const_port_free)(port) };
            ty_ok?;
            out.push(OutPort {
                dtype: from_ov_type(ty),
                shape: dims,
            });
        }
        Ok(out)
    }
}
