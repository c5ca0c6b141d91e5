//! MatMulNBits' weights moved, once per process, out of the model file's pages into anonymous
//! memory advised for transparent huge pages, where the decode kernel streams them.
//!
//! A token of a language model reads every int4 weight once, 100 MiB and more, as one
//! sequential stream per column tile. From 4 KiB pages of the memory-mapped file that costs a
//! TLB miss every 4 KiB; from 2 MiB pages the same kernel measured 1–16% more tokens/s (5 of 5
//! alternating pairs) on the Phi-3.5-mini-shaped benchmark model, 2 threads. The copy
//! is made at compile time and shared by every executable compiled from the same weights (a
//! session compiles one per input shape: prefill and decode), and the file's pages it was read
//! from are taken out of the resident set again ([`release_mapped_pages`]), so the weights are
//! resident once. Weights in ordinary memory (a model given as bytes) are left where they are:
//! there a copy would hold them twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;
use xnpu_core::Tensor;
use xnpu_graph::ir::{Graph, Op};
use xnpu_graph::onnx::tensor::{in_mapped_file, release_mapped_pages};

/// Tensors smaller than this stay where they are (a huge page is 2 MiB).
pub(crate) const MIN_BYTES: usize = 2 << 20;

/// A copy, shared by the `Bytes` that point into it.
struct Copy(Arc<memmap2::MmapMut>);

impl AsRef<[u8]> for Copy {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Copy {
    /// The last holder of a copy removes its cache entry, and with it the entry's hold on the
    /// source (upgrades happen under the same lock, so none can race this).
    fn drop(&mut self) {
        let removed: Vec<Entry> = {
            let mut cache = cache();
            if Arc::strong_count(&self.0) > 1 {
                return;
            }
            let me = Arc::as_ptr(&self.0);
            let keys: Vec<_> = cache
                .iter()
                .filter(|(_, e)| std::ptr::eq(e.copy.as_ptr(), me))
                .map(|(k, _)| *k)
                .collect();
            keys.iter().filter_map(|k| cache.remove(k)).collect()
        };
        // Sources are dropped outside the lock.
        drop(removed);
    }
}

/// Copies alive, by the address and length of what they copy. The entry holds the source
/// too, so its address cannot be reused by other data while the copy is alive.
struct Entry {
    /// Held, not read: keeps the source's address from being reused.
    _source: Bytes,
    copy: Weak<memmap2::MmapMut>,
}

fn cache() -> std::sync::MutexGuard<'static, HashMap<(usize, usize), Entry>> {
    static CACHE: OnceLock<Mutex<HashMap<(usize, usize), Entry>>> = OnceLock::new();
    CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Replaces the constant B, scales and zero points of every MatMulNBits in `g` (those of
/// [`MIN_BYTES`] or more that lie in a memory-mapped model file) by their huge-page copies.
/// Weights in ordinary memory (a model given as bytes) stay where they are: a copy would
/// hold them twice. Where memory cannot be mapped the constant stays as it is too: this only
/// moves bytes, it never changes them.
pub(crate) fn rehome_nbits_weights(g: &mut Graph) {
    let mut ids: Vec<_> = g
        .nodes
        .iter()
        .filter(|n| matches!(&n.op, Op::Nn(xnpu_ops::nn::Op::MatMulNBits(_))))
        .flat_map(|n| n.inputs.iter().skip(1).take(3).flatten().copied())
        .collect();
    // A weight two nodes share is moved once.
    ids.sort_unstable();
    ids.dedup();
    for v in ids {
        let Some(t) = &g.values[v].constant else {
            continue;
        };
        let bytes = t.raw_bytes();
        if bytes.len() < MIN_BYTES || !in_mapped_file(bytes) {
            continue;
        }
        if let Some(moved) = rehome(t) {
            g.values[v].constant = Some(moved);
        }
    }
}

/// Computes, now, every DequantizeLinear of `g` whose inputs are all constants (a QDQ model's
/// quantised weights and biases), so that the fast kernels see fp32 weights to pack and no
/// run dequantises them again. The generic constant folding leaves these nodes for integer
/// backends; on the CPU they are fp32 weights like any other. A node whose kernel fails is
/// left as it is (its run reports the error).
pub(crate) fn dequantize_weights(g: &mut Graph) {
    let (is_input, is_output) = (g.input_set(), g.output_set());
    let is_const = |g: &Graph, v: &Option<usize>| {
        v.is_none_or(|id| g.values[id].constant.is_some() && !is_input[id])
    };
    let mut computed = Vec::new();
    for (i, node) in g.nodes.iter().enumerate() {
        let single = node.outputs.len() == 1 && node.outputs[0].is_some();
        if !matches!(node.op, Op::Nn(xnpu_ops::nn::Op::DequantizeLinear(_)))
            || !single
            || !node.inputs.iter().all(|v| is_const(g, v))
        {
            continue;
        }
        let args: Vec<Option<xnpu_core::Value>> = node
            .inputs
            .iter()
            .map(|v| v.and_then(|id| g.values[id].constant.clone().map(xnpu_core::Value::Tensor)))
            .collect();
        let refs: Vec<Option<&xnpu_core::Value>> = args.iter().map(Option::as_ref).collect();
        let Ok(mut outs) = crate::exec::run_node(node, &refs) else {
            continue;
        };
        let (Some(out), Some(id)) = (outs.pop(), node.outputs[0]) else {
            continue;
        };
        if let (false, Ok(t)) = (is_output[id], out.into_tensor()) {
            computed.push((i, id, t));
        }
    }
    let mut folded = vec![false; g.nodes.len()];
    for (i, id, t) in computed {
        g.values[id].constant = Some(t);
        folded[i] = true;
    }
    let mut at = 0;
    g.nodes.retain(|_| {
        at += 1;
        !folded[at - 1]
    });
}

/// `t` over a huge-page copy of its bytes (the one already made when there is one).
fn rehome(t: &Tensor) -> Option<Tensor> {
    let source = t.bytes()?.clone();
    let key = (source.as_ptr() as usize, source.len());
    // A dead entry this replaces is dropped after the lock is released (dropping its source
    // must not run under it).
    let (copy, _replaced) = {
        let mut cache = cache();
        match cache.get(&key).and_then(|e| e.copy.upgrade()) {
            Some(c) => (c, None),
            None => {
                let mut m = memmap2::MmapMut::map_anon(source.len()).ok()?;
                #[cfg(target_os = "linux")]
                {
                    // Only advice: where THP is off the copy is ordinary memory.
                    let _ = m.advise(memmap2::Advice::HugePage);
                }
                m.copy_from_slice(&source);
                release_mapped_pages(&source);
                let c = Arc::new(m);
                let entry = Entry {
                    _source: source,
                    copy: Arc::downgrade(&c),
                };
                let replaced = cache.insert(key, entry);
                (c, replaced)
            }
        }
    };
    Tensor::from_bytes(t.dtype(), t.shape().to_vec(), Bytes::from_owner(Copy(copy))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::DType;

    fn big(seed: u8) -> Tensor {
        let data: Vec<u8> = (0..MIN_BYTES + 4096)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect();
        Tensor::from_bytes(DType::U8, vec![data.len()], Bytes::from(data)).unwrap()
    }

    #[test]
    fn a_copy_holds_the_same_bytes_elsewhere_and_is_shared_while_alive() {
        let t = big(7);
        let a = rehome(&t).unwrap();
        assert_eq!(a.raw_bytes(), t.raw_bytes());
        assert_eq!((a.dtype(), a.shape()), (t.dtype(), t.shape()));
        assert_ne!(a.raw_bytes().as_ptr(), t.raw_bytes().as_ptr());
        // A second executable of the same weights shares the copy.
        let b = rehome(&t).unwrap();
        assert_eq!(a.raw_bytes().as_ptr(), b.raw_bytes().as_ptr());
        // Once every copy is dropped, its entry (and its hold on the source) goes.
        drop((a, b));
        let key = (t.raw_bytes().as_ptr() as usize, t.raw_bytes().len());
        assert!(!cache().contains_key(&key));
        let c = rehome(&t).unwrap();
        assert_eq!(c.raw_bytes(), t.raw_bytes());
        // Other weights get their own copy.
        let u = big(9);
        let d = rehome(&u).unwrap();
        assert_eq!(d.raw_bytes(), u.raw_bytes());
        assert_ne!(d.raw_bytes().as_ptr(), c.raw_bytes().as_ptr());
    }
}
