//! xnpu-backend-openvino: Intel AI Boost NPUs, Intel GPUs and OpenVINO's own CPU device,
//! through OpenVINO's C library (`libopenvino_c.so`), opened at run time with `libloading`;
//! OpenVINO is never a build dependency.
//!
//! A partition goes to OpenVINO as ONNX (xnpu's exporter): from memory, or, past
//! [`OpenVinoBackend::inline_limit`] bytes of weights, as a file with external data in a
//! private temporary folder (OpenVINO resolves external data read from memory against the
//! process's working directory). Compiled models are cached on disk by xnpu, never through
//! OpenVINO's `CACHE_DIR`: one sealed file per model, device and compile properties in the
//! backend's folder of the compile cache, exported from OpenVINO, checked and imported back
//! (`cache`). Inputs, and outputs whose shapes are known after compiling, are shared with
//! OpenVINO through host pointers without copies.
//!
//! OpenVINO's C API has no per-op query, so what the backend claims is a capability table
//! kept beside it (`capabilities.json`), proven against OpenVINO by this crate's tests.
//!
//! One concern per module, in the order a partition meets them: `library` finds the C
//! library, `ffi` opens it and declares the C API, `openvino` holds a core and `devices` what
//! it lists, `compile` reads and compiles a model (or imports one) into a `compiled_model`,
//! `cache` keeps compiled models between processes, `executable` runs them, marshalling
//! tensors through `tensor`; `backend` is what xnpu's session sees, claiming ops from
//! `table`.

mod backend;
mod cache;
mod compile;
mod compiled_model;
mod devices;
mod executable;
mod ffi;
mod library;
mod openvino;
mod provider;
mod table;
mod tensor;

pub use backend::{OpenVinoBackend, DEFAULT_INLINE_LIMIT};
pub use cache::{CacheUse, ModelDigest, BLOB_EXTENSION, BLOB_KIND};
pub use compile::Source;
pub use compiled_model::CompiledModel;
pub use devices::OvDevice;
pub use executable::OvExecutable;
pub use library::{candidates, find_library};
pub use openvino::OpenVino;
pub use provider::{OpenVinoProvider, PROVIDER};
pub use table::{capability_table, TABLE_JSON};
