//! A compiled partition ready to run: its infer request and which partition input feeds each
//! compiled input. A run binds the inputs as host-pointer tensors (again only when their bytes
//! moved), lets OpenVINO write fixed-shape outputs into buffers that become xnpu's, infers,
//! and copies the other outputs out.

use std::ffi::c_void;
use std::sync::Mutex;

use xnpu_core::{Bytes, DType, Error, Result, Tensor, Value};
use xnpu_graph::backend::Executable;

use crate::cache::CacheUse;
use crate::compiled_model::{CompiledModel, OutPort};
use crate::ffi::{Api, P};
use crate::tensor::{host_tensor, ov_type, read_output, tensor_data, Aligned, OvTensor};

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
    cache_use: CacheUse,
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

/// What one run keeps alive until infer returns: the tensors it set on the request, then the
/// aligned copies of misaligned inputs they point into (dropped in that order).
struct Held<'a> {
    tensors: Vec<OvTensor<'a>>,
    copies: Vec<Aligned>,
}

/// An output OpenVINO writes straight into a buffer that becomes the output's bytes.
struct InPlace {
    dtype: DType,
    shape: Vec<usize>,
    buf: Aligned,
}

impl OvExecutable {
    pub(crate) fn new(
        compiled: CompiledModel,
        cache_use: CacheUse,
        folder: Option<tempfile::TempDir>,
        partition_inputs: Vec<String>,
    ) -> Result<OvExecutable> {
        let api = &compiled.ov.api;
        let outputs = compiled.outputs()?;
        let input_map = match_inputs(&compiled.input_names()?, &partition_inputs)?;
        let n_inputs = input_map.len();
        let mut req: P = std::ptr::null_mut();
        // SAFETY: a live compiled model and a valid out-pointer.
        api.call(
            || "creating an infer request".into(),
            || unsafe { (api.ov_compiled_model_create_infer_request)(compiled.ptr, &mut req) },
        )?;
        let in_place_ok = passed_through(api, req, n_inputs, &outputs)?;
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
            cache_use,
            compiled,
            _folder: folder,
        })
    }

    /// Whether the compiled model came from a cache (xnpu's, or OpenVINO's where the
    /// user's config sets `CACHE_DIR`) instead of being compiled.
    pub fn loaded_from_cache(&self) -> bool {
        self.loaded_from_cache
    }

    /// How the compile went through xnpu's cache of compiled models.
    pub fn cache_use(&self) -> &CacheUse {
        &self.cache_use
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

    /// Binds each compiled input to the bytes of the partition input it reads.
    fn bind_inputs<'s>(
        &'s self,
        request: &mut Request,
        inputs: &[Value],
        held: &mut Held<'s>,
    ) -> Result<()> {
        let api = &self.compiled.ov.api;
        for (i, &from) in self.input_map.iter().enumerate() {
            let t = inputs[from].as_tensor()?;
            if t.shape().contains(&0) {
                // The capability table refuses dims known to be 0; one that is 0 only at run
                // time must not reach OpenVINO either.
                return Err(Error::unsupported(format!(
                    "input {i} has dims {:?}: OpenVINO 2026.4.1 stops the process on tensors \
                     with a dim of 0",
                    t.shape()
                )));
            }
            bind_input(api, request, i, t, held)?;
        }
        Ok(())
    }

    /// Binds each output of fixed shape (and not passed through from an input) to a buffer
    /// OpenVINO writes into; `None` for the outputs copied out after the run.
    fn bind_outputs<'s>(
        &'s self,
        request: &Request,
        held: &mut Held<'s>,
    ) -> Result<Vec<Option<InPlace>>> {
        let api = &self.compiled.ov.api;
        let mut placed = Vec::with_capacity(self.outputs.len());
        for (i, o) in self.outputs.iter().enumerate() {
            let (Some(dtype), Some(shape), true) =
                (o.dtype, &o.shape, request.in_place_ok[i] != Some(false))
            else {
                placed.push(None);
                continue;
            };
            placed.push(Some(bind_output(api, request.ptr, i, dtype, shape, held)?));
        }
        Ok(placed)
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
        let mut held = Held {
            tensors: Vec::with_capacity(inputs.len() + self.outputs.len()),
            copies: Vec::new(),
        };
        self.bind_inputs(&mut request, inputs, &mut held)?;
        let placed = self.bind_outputs(&request, &mut held)?;
        // SAFETY: a live request whose inputs (and fixed outputs) are set.
        api.call(
            || "inference".into(),
            || unsafe { (api.ov_infer_request_infer)(request.ptr) },
        )?;
        let outs = collect_outputs(api, request.ptr, placed)?;
        drop(held);
        Ok(outs)
    }
}

/// For each input of the compiled model (named `compiled`, in its order), the partition input
/// it reads: the one of its name. OpenVINO may drop inputs it folds away, keeping the others
/// in order, and an input passed straight through to an output may answer with the output's
/// name: such an input is the next one in order.
fn match_inputs(compiled: &[String], partition: &[String]) -> Result<Vec<usize>> {
    let mut input_map: Vec<usize> = Vec::new();
    let mut next = 0usize;
    for name in compiled {
        let at = match partition.iter().position(|n| n == name) {
            Some(p) if p >= next => p,
            _ if next < partition.len() => next,
            _ => {
                return Err(Error::compute(format!(
                    "OpenVINO's compiled model has an input \"{name}\" that matches none \
                     of the partition's (inputs: {})",
                    partition.join(", ")
                )))
            }
        };
        input_map.push(at);
        next = at + 1;
    }
    Ok(input_map)
}

/// Per output of the request: `Some(false)` where a fixed-shape output is one of the inputs
/// (OpenVINO passes it through): it shares the input's memory and is never written into a
/// buffer set for it, so it is copied out instead.
fn passed_through(
    api: &Api,
    req: P,
    n_inputs: usize,
    outputs: &[OutPort],
) -> Result<Vec<Option<bool>>> {
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
    Ok(in_place_ok)
}

/// Sets the request's input `i` to a host-pointer tensor over `t`'s bytes (no copy; an
/// aligned copy in `held` when they are misaligned), unless it is bound to them already.
fn bind_input<'a>(
    api: &'a Api,
    request: &mut Request,
    i: usize,
    t: &Tensor,
    held: &mut Held<'a>,
) -> Result<()> {
    let ty = ov_type(t.dtype())
        .ok_or_else(|| Error::unsupported(format!("OpenVINO takes no {} tensors", t.dtype())))?;
    let mut dims: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
    let bytes = t.raw_bytes();
    let mut ptr = bytes.as_ptr() as *mut c_void;
    let key = (ptr as usize, dims.clone(), ty);
    if request.bound[i].as_ref() == Some(&key) {
        // Bound to these very bytes already: OpenVINO reads them in place. (Between runs the
        // request keeps a pointer that may dangle; OpenVINO reads it only inside infer, and
        // every run first checks it is the current input's or rebinds it.)
        return Ok(());
    }
    request.bound[i] = None;
    if !(ptr as usize).is_multiple_of(t.dtype().elem_bytes().unwrap_or(1).max(1)) {
        // Misaligned (a memory-mapped constant): copy into an aligned buffer.
        let mut buf = Aligned::copy_of(bytes);
        ptr = buf.ptr();
        held.copies.push(buf);
    }
    // SAFETY: `ptr` points to the input's bytes (or their copy in `held`), alive and unmoved
    // until the run returns (after infer); OpenVINO only reads inputs.
    let h = unsafe {
        host_tensor(api, ty, &mut dims, ptr, || {
            format!("creating input tensor {i}")
        })
    }?;
    // SAFETY: live request and tensor.
    api.call(
        || format!("setting input {i}"),
        || unsafe { (api.ov_infer_request_set_input_tensor_by_index)(request.ptr, i, h.1) },
    )?;
    if ptr as usize == key.0 {
        request.bound[i] = Some(key);
    }
    held.tensors.push(h);
    Ok(())
}

/// Sets the request's output `i` to a zeroed aligned buffer of its fixed `shape`, which
/// OpenVINO writes into and which becomes the output's bytes.
fn bind_output<'a>(
    api: &'a Api,
    req: P,
    i: usize,
    dtype: DType,
    shape: &[usize],
    held: &mut Held<'a>,
) -> Result<InPlace> {
    let n = xnpu_core::shape::checked_numel(shape)
        .ok()
        .and_then(|n| dtype.byte_len(n))
        .ok_or_else(|| Error::compute(format!("output {i}'s shape {shape:?} overflows memory")))?;
    let mut buf = Aligned::zeroed(n);
    let mut dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let ty = ov_type(dtype).unwrap_or(0);
    // SAFETY: `buf` holds `n` writable bytes; its storage stays put when `buf` moves into the
    // returned `InPlace`, which the run keeps until infer has returned.
    let h = unsafe {
        host_tensor(api, ty, &mut dims, buf.ptr(), || {
            format!("creating output tensor {i}")
        })
    }?;
    // SAFETY: live request and tensor.
    api.call(
        || format!("setting output {i}"),
        || unsafe { (api.ov_infer_request_set_output_tensor_by_index)(req, i, h.1) },
    )?;
    held.tensors.push(h);
    Ok(InPlace {
        dtype,
        shape: shape.to_vec(),
        buf,
    })
}

/// The run's outputs: the buffers OpenVINO wrote in place, and copies of the others.
fn collect_outputs(api: &Api, req: P, placed: Vec<Option<InPlace>>) -> Result<Vec<Value>> {
    let mut outs = Vec::with_capacity(placed.len());
    for (i, placed) in placed.into_iter().enumerate() {
        let t = match placed {
            Some(InPlace { dtype, shape, buf }) => {
                Tensor::from_bytes(dtype, shape, Bytes::from_owner(buf))?
            }
            None => read_output(api, req, i)?,
        };
        outs.push(Value::Tensor(t));
    }
    Ok(outs)
}

#[cfg(test)]
mod tests {
    use super::match_inputs;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn match_inputs_pairs_inputs_by_name() {
        let m = match_inputs(&names(&["a", "b"]), &names(&["a", "b"])).unwrap();
        assert_eq!(m, [0, 1]);
    }

    #[test]
    fn match_inputs_skips_inputs_openvino_folded_away() {
        let m = match_inputs(&names(&["a", "c"]), &names(&["a", "b", "c"])).unwrap();
        assert_eq!(m, [0, 2]);
    }

    #[test]
    fn match_inputs_takes_the_next_input_for_an_output_name() {
        let m = match_inputs(&names(&["a", "y"]), &names(&["a", "x"])).unwrap();
        assert_eq!(m, [0, 1]);
    }

    #[test]
    fn match_inputs_refuses_an_input_past_the_partitions() {
        let e = match_inputs(&names(&["a", "b", "z"]), &names(&["a", "b"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"z\"") && e.contains("inputs: a, b"), "{e}");
    }
}
