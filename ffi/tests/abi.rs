//! The C ABI called as C calls it, from Rust: what the C examples do not show (threads,
//! a caller built against a newer, larger struct, the words of the messages).

mod status;

use status::{ok, take};

use std::ffi::{c_char, CStr, CString};
use std::mem::size_of;
use std::path::Path;
use std::ptr;

use xnpu_ffi::run::{
    xnpu_run_options_create, xnpu_run_options_free, xnpu_run_options_reset,
    xnpu_run_options_set_timeout, xnpu_run_options_terminate, xnpu_session_run,
    xnpu_session_run_into, xnpu_session_run_with,
};
use xnpu_ffi::session::{
    xnpu_session_create, xnpu_session_create_from_bytes, xnpu_session_free, xnpu_session_input_info,
};
use xnpu_ffi::tensor::{xnpu_tensor_byte_len, xnpu_tensor_data, xnpu_tensor_free};
use xnpu_ffi::{
    XnpuCode, XnpuInput, XnpuIoInfo, XnpuOutputBuffer, XnpuRunOptions, XnpuSession,
    XnpuSessionOptions,
};

fn model_path() -> CString {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tinycnn.onnx");
    CString::new(p.to_str().expect("a UTF-8 path")).expect("no NUL")
}

fn cpu_options() -> XnpuSessionOptions {
    XnpuSessionOptions {
        struct_size: size_of::<XnpuSessionOptions>(),
        devices: c"cpu".as_ptr(),
        level: ptr::null(),
        precision: ptr::null(),
        performance: ptr::null(),
        cache_dir: ptr::null(),
        threads: 0,
        no_cache: 0,
        max_memory: 0,
    }
}

/// A session on the CPU, freed on drop.
struct Session(*mut XnpuSession);

// SAFETY: the C ABI lets one session be run from several threads at once (XnpuSession is
// Send + Sync, asserted in the crate).
unsafe impl Send for Session {}
// SAFETY: as above.
unsafe impl Sync for Session {}

impl Session {
    fn load() -> Session {
        Session::load_with(&cpu_options())
    }

    fn load_with(options: &XnpuSessionOptions) -> Session {
        let mut s = ptr::null_mut();
        let path = model_path();
        // SAFETY: a path, options and an out pointer that live for the call.
        ok(unsafe { xnpu_session_create(path.as_ptr(), options, &mut s) });
        Session(s)
    }

    fn input_info(&self) -> XnpuIoInfo {
        // SAFETY: all-zero bytes are a valid XnpuIoInfo (pointers NULL, numbers 0).
        let mut info: XnpuIoInfo = unsafe { std::mem::zeroed() };
        info.struct_size = size_of::<XnpuIoInfo>();
        // SAFETY: a live session and a writable info.
        ok(unsafe { xnpu_session_input_info(self.0, 0, &mut info) });
        info
    }

    /// Runs one image and returns the probabilities.
    fn run(&self, pixels: &[f32]) -> Result<Vec<f32>, (XnpuCode, String)> {
        self.run_shaped(pixels, [1, 3, 32, 32])
    }

    fn run_shaped(&self, pixels: &[f32], shape: [i64; 4]) -> Result<Vec<f32>, (XnpuCode, String)> {
        self.run_with(ptr::null(), pixels, shape)
    }

    /// Runs one input of `shape` with run options (NULL for none).
    fn run_with(
        &self,
        options: *const XnpuRunOptions,
        pixels: &[f32],
        shape: [i64; 4],
    ) -> Result<Vec<f32>, (XnpuCode, String)> {
        let input = XnpuInput {
            struct_size: size_of::<XnpuInput>(),
            name: self.input_info().name,
            shape: shape.as_ptr(),
            data: pixels.as_ptr().cast(),
            byte_len: size_of_val(pixels),
            dtype: 1,
            rank: 4,
        };
        let mut out = ptr::null_mut();
        // SAFETY: a live session, one valid input, one output slot.
        let status = if options.is_null() {
            unsafe { xnpu_session_run(self.0, &input, 1, ptr::null(), &mut out, 1) }
        } else {
            // SAFETY: as above, and live run options.
            unsafe { xnpu_session_run_with(self.0, options, &input, 1, ptr::null(), &mut out, 1) }
        };
        if !status.is_null() {
            return Err(take(status));
        }
        // SAFETY: a tensor the run returned: its data has byte_len bytes of f32.
        unsafe {
            let n = xnpu_tensor_byte_len(out) / 4;
            let probs = std::slice::from_raw_parts(xnpu_tensor_data(out).cast::<f32>(), n).to_vec();
            xnpu_tensor_free(out);
            Ok(probs)
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: a session from `load`, freed once.
        unsafe { xnpu_session_free(self.0) }
    }
}

fn image(seed: usize) -> Vec<f32> {
    (0..3072)
        .map(|i| ((i * 7919 + seed * 104729) % 255) as f32 / 255.0 - 0.5)
        .collect()
}

#[test]
fn one_session_runs_from_four_threads_at_once() {
    let session = Session::load();
    let expected: Vec<Vec<f32>> = (0..4).map(|t| session.run(&image(t)).unwrap()).collect();
    std::thread::scope(|scope| {
        for (t, want) in expected.iter().enumerate() {
            let session = &session;
            scope.spawn(move || {
                for _ in 0..20 {
                    assert_eq!(&session.run(&image(t)).unwrap(), want);
                }
            });
        }
    });
}

#[test]
fn the_batch_dim_reads_as_minus_one_with_its_symbol() {
    let session = Session::load();
    let info = session.input_info();
    assert_eq!((info.rank, info.dtype), (4, 1));
    // SAFETY: rank 4: four dims and four names, owned by the live session.
    let (dims, names) = unsafe {
        (
            std::slice::from_raw_parts(info.dims, 4),
            std::slice::from_raw_parts(info.dim_names, 4),
        )
    };
    let symbols: Vec<Option<String>> = names
        .iter()
        .map(|&p: &*const c_char| {
            // SAFETY: NULL or a C string of the session.
            (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        })
        .collect();
    assert_eq!(dims, [-1, 3, 32, 32]);
    assert_eq!(symbols, [Some("batch".to_string()), None, None, None]);
}

#[test]
fn a_newer_callers_larger_struct_is_written_only_as_far_as_this_library_knows() {
    let session = Session::load();
    #[repr(C)]
    struct Newer {
        info: XnpuIoInfo,
        later_field: [u8; 16],
    }
    // SAFETY: all-zero bytes are valid for both fields.
    let mut newer: Newer = unsafe { std::mem::zeroed() };
    newer.info.struct_size = size_of::<Newer>();
    newer.later_field = [0xAB; 16];
    // SAFETY: a live session; `newer` is writable for the struct_size it declares.
    ok(unsafe { xnpu_session_input_info(session.0, 0, &mut newer.info) });
    assert_eq!(newer.info.struct_size, size_of::<XnpuIoInfo>());
    assert_eq!(newer.later_field, [0xAB; 16]);
    assert!(!newer.info.name.is_null());
}

#[test]
fn a_wrong_shape_names_the_function_the_model_and_the_input() {
    let session = Session::load();
    let (code, message) = session.run_shaped(&image(0), [1, 3, 16, 64]).unwrap_err();
    assert_eq!(code, XnpuCode::InvalidInput, "{message}");
    println!("{message}");
    assert!(
        message.starts_with("xnpu_session_run: tinycnn.onnx: input \""),
        "{message}"
    );
}

#[test]
fn a_model_from_bytes_runs_as_the_same_model_from_its_path() {
    let bytes = std::fs::read(model_path().to_str().unwrap()).unwrap();
    let mut s = ptr::null_mut();
    // SAFETY: bytes, a name, options and an out pointer that live for the call.
    ok(unsafe {
        xnpu_session_create_from_bytes(
            bytes.as_ptr().cast(),
            bytes.len(),
            c"tinycnn.onnx".as_ptr(),
            &cpu_options(),
            &mut s,
        )
    });
    let from_bytes = Session(s);
    let from_path = Session::load();
    assert_eq!(
        from_bytes.run(&image(3)).unwrap(),
        from_path.run(&image(3)).unwrap()
    );
}

#[test]
fn an_output_buffer_too_small_learns_the_size_it_needs_and_is_not_written() {
    let session = Session::load();
    let pixels = image(1);
    let shape = [1i64, 3, 32, 32];
    let input = XnpuInput {
        struct_size: size_of::<XnpuInput>(),
        name: session.input_info().name,
        shape: shape.as_ptr(),
        data: pixels.as_ptr().cast(),
        byte_len: size_of_val(pixels.as_slice()),
        dtype: 1,
        rank: 4,
    };
    let mut data = [7.0f32; 4];
    let mut dims = [0i64; 4];
    let mut out = XnpuOutputBuffer {
        struct_size: size_of::<XnpuOutputBuffer>(),
        name: c"probs".as_ptr(),
        data: data.as_mut_ptr().cast(),
        capacity: size_of_val(&data),
        dims: dims.as_mut_ptr(),
        dims_capacity: 4,
        byte_len: 0,
        dtype: 0,
        rank: 0,
    };
    // SAFETY: a live session, a valid input and buffer.
    let (code, message) = take(unsafe { xnpu_session_run_into(session.0, &input, 1, &mut out, 1) });
    assert_eq!(code, XnpuCode::InvalidArgument);
    assert!(
        message.contains(
            "output \"probs\" (f32[1, 10]) takes 40 bytes, but outputs[0].capacity is 16"
        ),
        "{message}"
    );
    assert_eq!((out.byte_len, out.dtype, out.rank), (40, 1, 2));
    assert_eq!(data, [7.0; 4]);
}

#[test]
fn terminated_run_options_cancel_runs_until_reset() {
    let session = Session::load();
    let mut options = ptr::null_mut();
    // SAFETY: an out pointer that lives for the call.
    ok(unsafe { xnpu_run_options_create(&mut options) });
    // SAFETY: live options from xnpu_run_options_create.
    ok(unsafe { xnpu_run_options_set_timeout(options, 60_000) });
    assert!(session.run_with(options, &image(0), [1, 3, 32, 32]).is_ok());
    // SAFETY: live options.
    ok(unsafe { xnpu_run_options_terminate(options) });
    let (code, message) = session
        .run_with(options, &image(0), [1, 3, 32, 32])
        .unwrap_err();
    assert_eq!(code, XnpuCode::Cancelled, "{message}");
    assert!(message.contains("cancelled"), "{message}");
    // A run without these options is not affected.
    assert!(session.run(&image(0)).is_ok());
    // SAFETY: live options.
    ok(unsafe { xnpu_run_options_reset(options) });
    assert!(session.run_with(options, &image(0), [1, 3, 32, 32]).is_ok());
    // SAFETY: options from xnpu_run_options_create, freed once; NULL is ignored.
    unsafe {
        xnpu_run_options_free(options);
        xnpu_run_options_free(ptr::null_mut());
    }
    // SAFETY: NULL options are refused with a status, not dereferenced.
    let (code, message) = take(unsafe { xnpu_run_options_terminate(ptr::null()) });
    assert_eq!(code, XnpuCode::InvalidArgument, "{message}");
}

#[test]
fn a_session_memory_limit_refuses_a_run_that_would_pass_it() {
    let mut options = cpu_options();
    options.max_memory = 1024;
    let session = Session::load_with(&options);
    let (code, message) = session.run(&image(0)).unwrap_err();
    println!("{message}");
    assert_ne!(code, XnpuCode::Ok);
    assert!(message.contains("memory limit"), "{message}");
    options.max_memory = 0;
    assert!(Session::load_with(&options).run(&image(0)).is_ok());
}
