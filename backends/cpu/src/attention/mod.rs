//! Reference kernels of the `attention` family.

pub(crate) mod flex;
pub(crate) mod gqa;
mod linear_attention;
mod rotary;
mod sdpa;

use xnpu_core::num::store_floats;
use xnpu_core::{DType, Result, Tensor};
use xnpu_ops::attention::*;

kernel!(Attention, |o, inputs, n_outputs| sdpa::run(
    o, inputs, n_outputs
));
kernel!(RotaryEmbedding, |o, inputs, _| rotary::run(o, inputs));
kernel!(GroupQueryAttention, |o, inputs, _| {
    gqa::group_query_attention(o, inputs)
});
kernel!(LinearAttention, |o, inputs, _| linear_attention::run(
    o, inputs
));
kernel!(
    MultiHeadAttention,
    |o, inputs, _| gqa::multi_head_attention(o, inputs)
);

/// f64 values rounded to the float dtype `dtype`.
fn store(dtype: DType, shape: Vec<usize>, v: &[f64]) -> Result<Tensor> {
    store_floats(dtype, shape, xnpu_linalg::buf::copied(v, "an output")?)
}

/// Hostile sizes (issue 21): each is an answer or an error that says what is wrong, never a
/// panic, an abort or a loop over rows of nothing. An empty tensor's other dims may be
/// anything, and head counts are attributes.
#[cfg(test)]
mod hostile {
    use super::*;
    use crate::Kernel;
    use xnpu_core::Value;

    fn run(op: &impl Kernel, inputs: Vec<Option<Tensor>>) -> Result<Vec<Tensor>> {
        let vals: Vec<Option<Value>> = inputs.into_iter().map(|t| t.map(Value::Tensor)).collect();
        let refs: Vec<Option<&Value>> = vals.iter().map(Option::as_ref).collect();
        let outs = op.run(&refs, 3)?;
        Ok(outs
            .into_iter()
            .map(|v| v.as_tensor().unwrap().clone())
            .collect())
    }

    fn f32s(shape: Vec<usize>) -> Option<Tensor> {
        let n = shape.iter().product();
        Some(Tensor::from_vec(shape, vec![0.5f32; n]).unwrap())
    }

    fn empty(shape: Vec<usize>) -> Option<Tensor> {
        Some(Tensor::from_vec(shape, Vec::<f32>::new()).unwrap())
    }

    fn i32s(v: Vec<i32>) -> Option<Tensor> {
        Some(Tensor::from_vec(vec![v.len()], v).unwrap())
    }

    fn i64s(v: Vec<i64>) -> Option<Tensor> {
        Some(Tensor::from_vec(vec![v.len()], v).unwrap())
    }

    fn gqa(num_heads: usize, kv_num_heads: usize) -> GroupQueryAttention {
        GroupQueryAttention {
            num_heads,
            kv_num_heads,
            scale: 0.0,
            softcap: 0.0,
            local_window_size: -1,
            do_rotary: false,
            rotary_interleaved: false,
            smooth_softmax: false,
            causal: true,
        }
    }

    #[test]
    fn gqa_with_a_head_size_of_0_answers_empty_outputs() {
        // A packed query of 2^62 rows of nothing (total_sequence_length 2^62): each present
        // buffer is [1, 1, 2^62, 0].
        let big = 1usize << 62;
        let outs = run(
            &gqa(1 << 40, 1),
            vec![
                empty(vec![1, big, 0]),
                None,
                None,
                None,
                None,
                i32s(vec![i32::MAX]),
                i64s(vec![big as i64]),
            ],
        )
        .unwrap();
        assert_eq!(outs[0].shape(), &[1, big, 0]);
        assert_eq!(outs[1].shape(), &[1, 1, big, 0]);
        // 2^40 key/value heads of nothing, with a past: no walk over the (batch, head) pairs.
        let heads = 1usize << 40;
        let outs = run(
            &gqa(heads, heads),
            vec![
                empty(vec![1, 1, 0]),
                empty(vec![1, 1, 0]),
                empty(vec![1, 1, 0]),
                empty(vec![1, heads, 4, 0]),
                empty(vec![1, heads, 4, 0]),
                i32s(vec![4]),
                i64s(vec![5]),
            ],
        )
        .unwrap();
        assert_eq!(outs[2].shape(), &[1, heads, 5, 0]);
    }

    #[test]
    fn gqa_total_sequence_length_past_memory_is_an_error() {
        let e = run(
            &gqa(1, 1),
            vec![
                f32s(vec![1, 1, 3]),
                None,
                None,
                None,
                None,
                i32s(vec![0]),
                i64s(vec![1 << 62]),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cannot allocate 4611686018427387904 values"),
            "{e}"
        );
        assert!(e.contains("present key buffer"), "{e}");
    }

    #[test]
    fn mha_with_empty_keys_of_2_62_rows_answers_and_checks_its_bias() {
        let op = MultiHeadAttention {
            num_heads: 1,
            scale: 0.0,
            mask_filter_value: -10000.0,
            unidirectional: false,
        };
        let big = 1usize << 62;
        let outs = run(
            &op,
            vec![
                empty(vec![1, 1, 0]),
                empty(vec![1, big, 0]),
                empty(vec![1, big, 0]),
            ],
        )
        .unwrap();
        assert_eq!(outs[0].shape(), &[1, 1, 0]);
        assert_eq!(outs[1].shape(), &[1, 1, big, 0]);
        // A key wider than the query reads past the key's share of the projection bias.
        let e = run(
            &op,
            vec![
                f32s(vec![1, 1, 2]),
                f32s(vec![1, 1, 4]),
                f32s(vec![1, 1, 2]),
                f32s(vec![6]),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("projection bias"), "{e}");
    }

    #[test]
    fn attention_with_no_heads_or_huge_empty_dims_is_answered_or_refused() {
        let op = |heads: Option<usize>| Attention {
            is_causal: false,
            q_num_heads: heads,
            kv_num_heads: heads,
            scale: None,
            softcap: 0.0,
            qk_matmul_output_mode: 0,
            left_window_size: -1,
            right_window_size: -1,
        };
        let qkv = |s: Vec<usize>| vec![f32s(s.clone()), f32s(s.clone()), f32s(s)];
        let e = run(&op(Some(0)), qkv(vec![1, 1, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not divisible by 0 heads"), "{e}");
        // Head size 0: no values in, 2^60 scores out.
        let s = vec![1 << 20, 1 << 20, 0];
        let qkv = vec![empty(s.clone()), empty(s.clone()), empty(s)];
        let e = run(&op(Some(1)), qkv).unwrap_err().to_string();
        assert!(e.contains("Attention's QK output"), "{e}");
        // No keys and no values: nothing to compute for 2^60 query rows.
        let q = empty(vec![1 << 30, 1, 1 << 30, 0]);
        let kv = empty(vec![1 << 30, 1, 0, 0]);
        let outs = run(&op(None), vec![q, kv.clone(), kv]).unwrap();
        assert_eq!(outs[0].shape(), &[1 << 30, 1, 1 << 30, 0]);
    }

    #[test]
    fn rotary_caches_of_2_63_half_rows_are_an_error() {
        let op = RotaryEmbedding {
            interleaved: false,
            rotary_embedding_dim: 0,
            num_heads: 0,
        };
        let cache = empty(vec![0, 1 << 63]);
        let e = run(&op, vec![f32s(vec![1, 1, 4]), cache.clone(), cache])
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs num_heads dividing it"), "{e}");
    }
}
