use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use crate::infer::{dtype_of, input, tensor_type};
use crate::{InferInput, OpDef};

/// Gemm (opsets 1, 6, 7, 9, 11, 13): `Y = alpha * A' @ B' + beta * C` where `A'` is A `[M, K]`
/// (transposed from `[K, M]` when `trans_a`), `B'` is B `[K, N]` (transposed from `[N, K]`
/// when `trans_b`), and C (optional since opset 11) broadcasts unidirectionally to `[M, N]`.
/// Float products are accumulated in at least f32; integer products wrap, and integer
/// results are scaled by alpha/beta in f64 and truncated when those are not 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Gemm {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl Default for Gemm {
    fn default() -> Self {
        Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: false,
        }
    }
}

impl OpDef for Gemm {
    const NAMES: &'static [&'static str] = &["Gemm"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let dtype = dtype_of(inputs, 0)?;
        let a = input(inputs, 0).and_then(|x| x.shape());
        let b = input(inputs, 1).and_then(|x| x.shape());
        let shape = match (a, b) {
            (Some(a), Some(b)) => {
                if a.rank() != 2 || b.rank() != 2 {
                    return Err(Error::model(format!(
                        "Gemm needs 2-D A and B, got shapes {a} and {b}"
                    )));
                }
                let (m, ka) = if self.trans_a {
                    (&a.0[1], &a.0[0])
                } else {
                    (&a.0[0], &a.0[1])
                };
                let (kb, n) = if self.trans_b {
                    (&b.0[1], &b.0[0])
                } else {
                    (&b.0[0], &b.0[1])
                };
                if let (Dim::Known(x), Dim::Known(y)) = (ka, kb) {
                    if x != y {
                        return Err(Error::model(format!(
                            "Gemm inner dims differ: A {a} (trans_a={}) and B {b} (trans_b={})",
                            self.trans_a, self.trans_b
                        )));
                    }
                }
                Some(Shape(vec![m.clone(), n.clone()]))
            }
            _ => None,
        };
        Ok(vec![tensor_type(dtype, shape)])
    }
}
