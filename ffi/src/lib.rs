//! xnpu's C ABI (`include/xnpu.h`, generated from this crate by cbindgen): sessions from a
//! path or bytes, their inputs and outputs, runs into the caller's buffers or into tensors the
//! library allocates, the device list and the partition explanation. `docs/c-abi.md` is the
//! contract: handles, who frees what, statuses, the `struct_size` rule, threads.
//!
//! The end of the path of a model: it depends on the facade crate `xnpu` alone, and nothing
//! depends on it. Every `extern "C"` function runs its body under `catch_unwind`
//! (`status::guard`), checks every pointer, and reads structs at the size the caller
//! declared (`args`); `unsafe` lives only at that boundary. The first call installs the
//! `tracing` subscriber that sends xnpu's warnings to stderr or to the caller's callback
//! (`log`).

#![deny(unsafe_op_in_unsafe_fn)]

// In the header's order: statuses, logging, sessions, runs, tensors, devices.
pub mod status;

pub mod log;

pub mod options;
pub mod session;

pub mod run;

pub mod tensor;

pub mod devices;

mod args;

use std::ffi::c_char;

pub use devices::{XnpuDeviceInfo, XnpuDeviceList, XnpuDeviceStatus};
pub use log::{XnpuLogCallback, XnpuLogLevel};
pub use options::XnpuSessionOptions;
pub use run::{XnpuInput, XnpuOutputBuffer, XnpuRunOptions};
pub use session::{XnpuIoInfo, XnpuSession, XnpuValueKind};
pub use status::{XnpuCode, XnpuStatus};
pub use tensor::XnpuTensor;

/// xnpu's version (`0.1.0`). Static: never freed.
#[no_mangle]
pub extern "C" fn xnpu_version() -> *const c_char {
    status::quiet(std::ptr::null(), || {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
    })
}
