//! A compiled partition ready to run: its infer request and which partition input feeds each
//! compiled input. A run binds the inputs as host-pointer tensors (again only when their bytes
//! moved), lets OpenVINO write fixed-shape outputs into buffers that become xnpu's, infers,
//! and copies the other outputs out.

use std::ffi::c_void;
use std::sync::Mutex;

use xnpu_core::{Bytes, DType, Error, Result, Tensor, Value};
use xnpu_graph::backend::Executable;

use crate::compiled_model::{CompiledModel, OutPort};
use crate::ffi::{OvShape, P};
use crate::tensor::{ov_type, read_output, tensor_data, Aligned, OvTensor};

/// A compiled partition and its infer request.
pub struct OvExecutable {
    /// One infer request, used under the mutex (requests are not shared between threads).
    request: Mutex<Request>,
    /// How many inputs the partition passes.
    n_given: usize,
    /// For each input of the compiled model, the partition input it reads.
    input_map: Vec<usize>,
    outputs: Vec<OutPort>,
    loaded_from_cache: bool,
    compiled: CompiledModel,
    /// The temporary folder of a partition read from a file (its weights may be mapped).
    _folder: Option<tempfile::TempDir>,
}

// SAFETY: the compiled model is thread-safe; the request is only used under the mutex.
unsafe impl Send for OvExecutable {}
// SAFETY: as above.
unsafe impl Sync for OvExecutable {}

impl Drop for OvExecutable {
    fn drop(&mut self) {
        let api = &self.compiled.ov.api;
        if let Ok(r) = self.request.get_mut() {
            if !r.ptr.is_null() {
                // SAFETY: created by create_infer_request, freed once (before the model).
                unsafe { (api.ov_infer_request_free)(r.ptr) };
            }
        }
    }
}

/// An infer request and what each of its inputs is bound to.
struct Request {
    ptr: P,
    /// Per input: the host pointer, shape and element type it was last set to. A run whose
    /// input has the same three skips re-creating and re-setting the tensor (most of the
    /// per-run cost inside OpenVINO's CPU plugin).
    bound: Vec<Option<(usize, Vec<i64>, i32)>>,
    /// Per output: `Some(false)` where OpenVINO would not write into a buffer set for it
    /// (the output is an input passed through); such outputs are copied out instead.
    in_place_ok: Vec<Option<bool>>,
}

impl OvExecutable {
    pub(crate) fn new(
        compiled: CompiledModel,
        folder: Option<tempfile::TempDir>,
        partition_inputs: Vec<String>,
    ) -> Result<OvExecutable> {
        let api = &compiled.ov.api;
        let outputs = compiled.outputs()?;
        // A compiled input is the partition input of its name; OpenVINO may drop inputs it
        // folds away, keeping the others in order, and an input passed straight through to
        // an output may answer with the output's name: such an input is the next one in
        // order.
        let mut input_map: Vec<usize> = Vec::new();
        let mut next = 0usize;
        for name in compiled.input_names()? {
            let at = match partition_inputs.iter().position(|n| *n == name) {
                Some(p) if p >= next => p,
                _ if next < partition_inputs.len() => next,
                _ => {
                    return Err(Error::compute(format!(
                        "OpenVINO's compiled model has an input \"{name}\" that matches none \
                         of the partition's (inputs: {})",
                        partition_inputs.join(", ")
                    )))
                }
            };
            input_map.push(at);
            next = at + 1;
        }
        let n_inputs = input_map.len();
        let mut req: P = std::ptr::null_mut();
        // SAFETY: a live compiled model and a valid out-pointer.
        api.call(
            || "creating an infer request".into(),
            || unsafe { (api.ov_compiled_model_create_infer_request)(compiled.ptr, &mut req) },
        )?;
        // An output that is one of the inputs (OpenVINO passes it through) shares the
        // input's memory and is never written into a buffer set for it: copied out instead.
        let mut in_place_ok = vec![None; outputs.len()];
        let mut input_data = Vec::with_capacity(n_inputs);
        for i in 0..n_inputs {
            input_data.push(tensor_data(api, req, i, true)?);
        }
        for (i, o) in outputs.iter().enumerate() {
            if o.shape.is_some() {
                let d = tensor_data(api, req, i, false)?;
                if !d.is_null() && input_data.contains(&d) {
                    in_place_ok[i] = Some(false);
                }
            }
        }
        Ok(OvExecutable {
            request: Mutex::new(Request {
                ptr: req,
                bound: vec![None; n_inputs],
                in_place_ok,
            }),
            n_given: partition_inputs.len(),
            input_map,
            outputs,
            loaded_from_cache: compiled.loaded_from_cache(),
            compiled,
            _folder: folder,
        })
    }

    /// Whether OpenVINO took the compiled model from its cache.
    pub fn loaded_from_cache(&self) -> bool {
        self.loaded_from_cache
    }

    pub fn compiled(&self) -> &CompiledModel {
        &self.compiled
    }

    /// How many outputs are written in place (their shapes were fixed at compile time).
    pub fn outputs_in_place(&self) -> usize {
        self.outputs
            .iter()
            .filter(|o| o.shape.is_some() && o.dtype.is_some())
            .count()
    }
}

impl Executable for OvExecutable {
    fn run(&self, inputs: &[Value]) -> Result<Vec<Value>> {
        let api = &self.compiled.ov.api;
        if inputs.len() != self.n_given {
            return Err(Error::invalid_input(format!(
                "the compiled partition takes {} inputs, {} given",
                self.n_given,
                inputs.len()
            )));
        }
        let mut request = self
            .request
            .lock()
            .map_err(|_| Error::compute("a previous run panicked"))?;
        let req = request.ptr;
        // Inputs: host-pointer tensors over our buffers (no copy), alive until infer returns.
        let mut held = Vec::with_capacity(inputs.len() + self.outputs.len());
        let mut copies: Vec<Aligned> = Vec::new();
        for (i, &from) in self.input_map.iter().enumerate() {
            let t = inputs[from].as_tensor()?;
            let ty = ov_type(t.dtype()).ok_or_else(|| {
                Error::unsupported(format!("OpenVINO takes no {} tensors", t.dtype()))
            })?;
            let mut dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
            let bytes = t.raw_bytes();
            let mut ptr = bytes.as_ptr() as *mut c_void;
            let key = (ptr as usize, dims.clone(), ty);
            if request.bound[i].as_ref() == Some(&key) {
                // Bound to these very bytes already: OpenVINO reads them in place. (Between
                // runs the request keeps a pointer that may dangle; OpenVINO reads it only
                // inside infer, and every run first checks it is the current input's or
                // rebinds it.)
                continue;
            }
            request.bound[i] = None;
            if (ptr as usize) % t.dtype().size().max(1) != 0 {
                // Misaligned (a memory-mapped constant): copy into an aligned buffer.
                let mut buf = Aligned::zeroed(bytes.len());
                bytemuck::cast_slice_mut::<u64, u8>(&mut buf.words)[..bytes.len()]
                    .copy_from_slice(bytes);
                ptr = buf.ptr();
                copies.push(buf);
            }
            let shape = OvShape {
                rank: dims.len() as i64,
                dims: dims.as_mut_ptr(),
            };
            let mut h: P = std::ptr::null_mut();
            // SAFETY: `ptr` points to the tensor's bytes, alive and unmoved until this
            // function returns (after infer); OpenVINO only reads inputs; the shape is copied.
            api.call(
                || format!("creating input tensor {i}"),
                || unsafe { (api.ov_tensor_create_from_host_ptr)(ty, shape, ptr, &mut h) },
            )?;
            let h = OvTensor(api, h);
            // SAFETY: live request and tensor.
            api.call(
                || format!("setting input {i}"),
                || unsafe { (api.ov_infer_request_set_input_tensor_by_index)(req, i, h.1) },
            )?;
            if ptr as usize == key.0 {
                request.bound[i] = Some(key);
            }
            held.push(h);
        }
        // Outputs of fixed shape: OpenVINO writes straight into buffers that become ours.
        let mut in_place: Vec<Option<(DType, Vec<usize>, Aligned)>> = Vec::new();
        for (i, o) in self.outputs.iter().enumerate() {
            let (Some(dtype), Some(shape), true) =
                (o.dtype, &o.shape, request.in_place_ok[i] != Some(false))
            else {
                in_place.push(None);
                continue;
            };
            let n = shape
                .iter()
                .try_fold(dtype.size(), |n, &d| n.checked_mul(d))
                .ok_or_else(|| {
                    Error::compute(format!("output {i}'s shape {shape:?} overflows memory"))
                })?;
            let mut buf = Aligned::zeroed(n);
            let mut dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
            let ovshape = OvShape {
                rank: dims.len() as i64,
                dims: dims.as_mut_ptr(),
            };
            let ty = ov_type(dtype).unwrap_or(0);
            let ptr = buf.ptr();
            let mut h: P = std::ptr::null_mut();
            // SAFETY: `buf` holds `n` writable bytes, alive and unmoved until infer returns.
            api.call(
                || format!("creating output tensor {i}"),
                || unsafe { (api.ov_tensor_create_from_host_ptr)(ty, ovshape, ptr, &mut h) },
            )?;
            let h = OvTensor(api, h);
            // SAFETY: live request and tensor.
            api.call(
                || format!("setting output {i}"),
                || unsafe { (api.ov_infer_request_set_output_tensor_by_index)(req, i, h.1) },
            )?;
            held.push(h);
            in_place.push(Some((dtype, shape.clone(), buf)));
        }
        // SAFETY: a live request whose inputs (and fixed outputs) are set.
        api.call(
            || "inference".into(),
            || unsafe { (api.ov_infer_request_infer)(req) },
        )?;
        let mut outs = Vec::with_capacity(self.outputs.len());
        for (i, placed) in in_place.into_iter().enumerate() {
            if let Some((dtype, shape, buf)) = placed {
                outs.push(Value::Tensor(Tensor::from_bytes(
                    dtype,
                    shape,
                    Bytes::from_owner(buf),
                )?));
                continue;
            }
            outs.push(Value::Tensor(read_output(api, req, i)?));
        }
        drop(held);
        drop(copies);
        Ok(outs)
    }
}
