//! xnpu as an ONNX Runtime plugin execution provider (`libxnpu_onnxruntime_ep.so`).
//!
//! An application registers the library with its stock ONNX Runtime and reaches every
//! device xnpu reaches:
//!
//! ```python
//! import onnxruntime as ort, xnpu
//! ort.register_execution_provider_library("xnpu", xnpu.get_ep_library_path())
//! devs = [d for d in ort.get_ep_devices() if d.ep_name == "XnpuExecutionProvider"]
//! so = ort.SessionOptions()
//! so.add_provider_for_devices(devs[:1], {"level": "all"})
//! sess = ort.InferenceSession("model.onnx", so)
//! ```
//!
//! - The factory offers one `OrtEpDevice` per available xnpu device (metadata
//!   `xnpu.device`, `xnpu.vendor`, `xnpu.kind`, `simulated`); simulators are CPU devices.
//! - `GetCapability` reads the graph ONNX Runtime hands over, imports it with xnpu's importer
//!   and asks the session's devices about every node (the same answers `xnpu partition
//!   --explain` gives), groups the nodes they take into convex groups and claims those; every
//!   refusal goes to ONNX Runtime's log and, with the `explain_json` option, to a file in the
//!   explanation's schema (`docs/explain.md`).
//! - `Compile` turns each fused group into an xnpu `Session`; `Compute` runs it on ONNX
//!   Runtime's tensors in place and copies the results into ONNX Runtime's outputs.
//! - xnpu's own warnings (a partition that fell back to the CPU, a plugin skipped, a compile
//!   cache that cannot be written) go to ONNX Runtime's default logger (`log`).
//!
//! The library exports exactly `CreateEpFactories` and `ReleaseEpFactory` and links no
//! ONNX Runtime: every call goes through the `OrtApiBase` ONNX Runtime passes in. See
//! `docs/onnxruntime-ep.md`.

mod context;
mod ep;
mod graph;
mod log;
mod ort;

use std::ffi::c_char;

use ort::{Api, OrtApiBase, OrtEpFactory, OrtLogger, OrtStatusPtr};

pub use ep::{EP_NAME, OPTIONS};

/// ONNX Runtime's entry point: one factory.
///
/// # Safety
/// Called by ONNX Runtime with its `OrtApiBase` and an array of `max_factories` slots.
#[no_mangle]
pub unsafe extern "C" fn CreateEpFactories(
    _registered_name: *const c_char,
    ort_api_base: *const OrtApiBase,
    default_logger: *const OrtLogger,
    factories: *mut *mut OrtEpFactory,
    max_factories: usize,
    num_factories: *mut usize,
) -> OrtStatusPtr {
    // SAFETY: ONNX Runtime's OrtApiBase.
    let api = match unsafe { Api::from_base(ort_api_base) } {
        Ok(api) => api,
        Err(status) => return status,
    };
    ort::guarded(&api, "CreateEpFactories", || {
        if factories.is_null() || num_factories.is_null() || max_factories < 1 {
            return Err(ort::Fail::invalid(
                "CreateEpFactories: no room for a factory",
            ));
        }
        let factory = ep::Factory::new(api).into_raw();
        // xnpu's warnings (a fallback to the CPU, a plugin skipped) go to ONNX Runtime's log
        // while the factory lives.
        log::attach(api, factory, default_logger);
        // SAFETY: ONNX Runtime's arrays, with room for at least one factory.
        unsafe {
            *factories = factory;
            *num_factories = 1;
        }
        Ok(())
    })
}

/// Releases the factory `CreateEpFactories` made.
///
/// # Safety
/// `factory` came from `CreateEpFactories` and is released once.
#[no_mangle]
pub unsafe extern "C" fn ReleaseEpFactory(factory: *mut OrtEpFactory) -> OrtStatusPtr {
    if !factory.is_null() {
        // A panic here could only come from a poisoned lock, which `release` tolerates; the
        // catch keeps any from unwinding into ONNX Runtime all the same.
        let _ = std::panic::catch_unwind(|| {
            log::detach(factory);
            // SAFETY: the contract.
            unsafe { ep::Factory::release(factory) }
        });
    }
    OrtStatusPtr(std::ptr::null_mut())
}
