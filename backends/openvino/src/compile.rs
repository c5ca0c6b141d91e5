//! Reading a model into OpenVINO (ONNX from memory or from a file) and compiling it for a
//! device with properties: through `ov_core_compile_model_props` where the library has it
//! (2026.4 and later), through the variadic `ov_core_compile_model` otherwise; and importing
//! a model exported earlier (`ov_core_import_model`).

use std::ffi::{c_char, CStr};
use std::path::Path;
use std::sync::Arc;

use xnpu_core::Result;

use crate::compiled_model::{CompiledModel, Imported};
use crate::ffi::{self, cstring, property_strings, Api, OvProperty, P};
use crate::tensor::Aligned;
use crate::OpenVino;

/// Where OpenVINO reads a model from.
pub enum Source<'a> {
    /// ONNX bytes in memory (copied by OpenVINO while reading).
    Onnx(&'a [u8]),
    /// An ONNX file; its external data is found beside it.
    File(&'a Path),
}

impl OpenVino {
    /// Reads a model and compiles it for `device` with `properties` (key/value pairs as
    /// OpenVINO spells them). Every error carries OpenVINO's own message.
    pub fn compile(
        self: &Arc<Self>,
        source: Source<'_>,
        device: &str,
        properties: &[(String, String)],
    ) -> Result<CompiledModel> {
        let model = self.read_model(source)?;
        let compiled = self.compile_model(model, device, properties);
        // SAFETY: the model is not needed once compiled (or when compiling failed).
        unsafe { (self.api.ov_model_free)(model) };
        Ok(CompiledModel {
            ov: self.clone(),
            ptr: compiled?,
            imported: None,
        })
    }

    /// Imports a model that `ov_compiled_model_export_model` wrote for `device`, through the
    /// core whose device settings are `properties`, those it was compiled with (see
    /// [`ImportCore`](crate::openvino::ImportCore)). The bytes stay with the model.
    pub(crate) fn import(
        self: &Arc<Self>,
        exported: Aligned,
        device: &str,
        properties: &[(String, String)],
    ) -> Result<CompiledModel> {
        let core = self.import_core(device, properties)?;
        let dev = cstring(device, "device name")?;
        let api = &self.api;
        let bytes = exported.as_ref();
        let mut cm: P = std::ptr::null_mut();
        // SAFETY: a live core; `bytes.len()` readable bytes at `bytes` (kept, unmoved, with
        // the model this returns); a NUL-terminated device name; a valid out-pointer.
        api.call(
            || format!("importing a compiled model for {device}"),
            || unsafe {
                (api.ov_core_import_model)(
                    core.core,
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    dev.as_ptr(),
                    &mut cm,
                )
            },
        )?;
        Ok(CompiledModel {
            ov: self.clone(),
            ptr: cm,
            imported: Some(Imported {
                _core: core,
                _bytes: exported,
            }),
        })
    }

    /// Reads `source` into a new `ov_model_t`, which the caller frees.
    fn read_model(&self, source: Source<'_>) -> Result<P> {
        let api = &self.api;
        let mut model: P = std::ptr::null_mut();
        match source {
            Source::Onnx(bytes) => {
                // SAFETY: a live core; the ONNX bytes are copied by OpenVINO during the call;
                // no weights tensor (ONNX carries its own).
                api.call(
                    || "reading the model".into(),
                    || unsafe {
                        (api.ov_core_read_model_from_memory_buffer)(
                            self.core,
                            bytes.as_ptr().cast(),
                            bytes.len(),
                            std::ptr::null_mut(),
                            &mut model,
                        )
                    },
                )?
            }
            Source::File(path) => {
                let p = cstring(&path.to_string_lossy(), "model path")?;
                // SAFETY: a live core, a NUL-terminated path, no separate weights path.
                api.call(
                    || format!("reading {}", path.display()),
                    || unsafe {
                        (api.ov_core_read_model)(
                            self.core,
                            p.as_ptr(),
                            std::ptr::null(),
                            &mut model,
                        )
                    },
                )?
            }
        }
        Ok(model)
    }

    /// Compiles a read model for `device` with `properties` into a new
    /// `ov_compiled_model_t`; the model stays the caller's.
    fn compile_model(&self, model: P, device: &str, properties: &[(String, String)]) -> Result<P> {
        let api = &self.api;
        let dev = cstring(device, "device name")?;
        let strings = property_strings(properties)?;
        let mut cm: P = std::ptr::null_mut();
        let what = || format!("compiling for {device}");
        match api.compile_props {
            Some(compile_props) => {
                let props: Vec<OvProperty> = strings
                    .iter()
                    .map(|(k, v)| OvProperty {
                        key: k.as_ptr(),
                        value: v.as_ptr(),
                    })
                    .collect();
                // SAFETY: live core and model; `props` and the strings it points to outlive
                // the call.
                api.call(what, || unsafe {
                    compile_props(
                        self.core,
                        model,
                        dev.as_ptr(),
                        props.len(),
                        props.as_ptr(),
                        &mut cm,
                    )
                })?
            }
            None => {
                let kv: Vec<*const c_char> = strings
                    .iter()
                    .flat_map(|(k, v)| [k.as_ptr(), v.as_ptr()])
                    .collect();
                // SAFETY: live core and model; NUL-terminated strings alive for the call.
                api.call(what, || unsafe {
                    compile_variadic(api, self.core, model, &dev, &kv, &mut cm)
                })?
            }
        }
        Ok(cm)
    }
}

/// `ov_core_compile_model`'s variadic form (OpenVINO before 2026.4), for up to 8 pairs.
///
/// # Safety
/// `core` and `model` are live; `kv` holds NUL-terminated key/value strings in pairs.
unsafe fn compile_variadic(
    api: &Api,
    core: P,
    model: P,
    dev: &CStr,
    kv: &[*const c_char],
    out: *mut P,
) -> ffi::Status {
    let f = api.ov_core_compile_model;
    let d = dev.as_ptr();
    let n = kv.len();
    // SAFETY: the variadic arguments are `n` C strings, as `property_args_size` says.
    unsafe {
        match *kv {
            [] => f(core, model, d, 0, out),
            [a, b] => f(core, model, d, n, out, a, b),
            [a, b, c, e] => f(core, model, d, n, out, a, b, c, e),
            [a, b, c, e, g, h] => f(core, model, d, n, out, a, b, c, e, g, h),
            [a, b, c, e, g, h, i, j] => f(core, model, d, n, out, a, b, c, e, g, h, i, j),
            [a, b, c, e, g, h, i, j, k, l] => {
                f(core, model, d, n, out, a, b, c, e, g, h, i, j, k, l)
            }
            [a, b, c, e, g, h, i, j, k, l, m, o] => {
                f(core, model, d, n, out, a, b, c, e, g, h, i, j, k, l, m, o)
            }
            [a, b, c, e, g, h, i, j, k, l, m, o, p, q] => f(
                core, model, d, n, out, a, b, c, e, g, h, i, j, k, l, m, o, p, q,
            ),
            [a, b, c, e, g, h, i, j, k, l, m, o, p, q, r, s] => f(
                core, model, d, n, out, a, b, c, e, g, h, i, j, k, l, m, o, p, q, r, s,
            ),
            // INVALID_C_PARAM: more properties than this OpenVINO's variadic call is given.
            _ => -14,
        }
    }
}
