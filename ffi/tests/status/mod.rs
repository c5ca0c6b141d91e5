//! Statuses in the tests that call the ABI from Rust (`abi.rs`, `log.rs`).

use std::ffi::CStr;

use xnpu_ffi::status::{xnpu_status_code, xnpu_status_free, xnpu_status_message};
use xnpu_ffi::{XnpuCode, XnpuStatus};

/// The code and message of a status, which is freed.
pub fn take(status: *mut XnpuStatus) -> (XnpuCode, String) {
    // SAFETY: NULL or a status from the library, freed once here.
    unsafe {
        let out = (
            xnpu_status_code(status),
            CStr::from_ptr(xnpu_status_message(status))
                .to_string_lossy()
                .into_owned(),
        );
        xnpu_status_free(status);
        out
    }
}

/// Asserts that a status says OK (and frees it).
pub fn ok(status: *mut XnpuStatus) {
    let (code, message) = take(status);
    assert_eq!(code, XnpuCode::Ok, "{message}");
}
