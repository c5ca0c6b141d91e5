//! Activations applied in place to a kernel's output (the epilogue of a fused op), with the
//! formulas of the reference element-wise kernels.

use crate::math;

/// `v[i] = body(v[i])` as a plain loop (a closure called per element is not always inlined,
/// and then the loop is not vectorised).
macro_rules! each {
    ($v:expr, |$x:ident| $body:expr) => {
        for slot in $v.iter_mut() {
            let $x = *slot;
            *slot = $body;
        }
    };
}

/// An activation the fast kernels apply themselves. Others are left to the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    None,
    Relu,
    LeakyRelu {
        alpha: f32,
    },
    Clip {
        min: f32,
        max: f32,
    },
    Sigmoid,
    Tanh,
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    HardSwish,
    /// GELU, exact (erf) or the tanh approximation.
    Gelu {
        tanh: bool,
    },
}

impl Act {
    /// `v[i] = act(v[i] + bias)` for every element.
    pub fn apply(self, v: &mut [f32], bias: f32) {
        apply_all(self, v, bias)
    }

    /// [`Act::apply`] for callers inside a `vectorised_fn!` body.
    #[inline(always)]
    pub fn apply_here(self, v: &mut [f32], bias: f32) {
        match self {
            Act::None => each!(v, |x| x + bias),
            // NaN stays NaN (`f32::max` would turn it into 0), as in the reference.
            Act::Relu => each!(v, |x| {
                let y = x + bias;
                if y < 0.0 {
                    0.0
                } else {
                    y
                }
            }),
            Act::LeakyRelu { alpha } => each!(v, |x| {
                let y = x + bias;
                if y < 0.0 {
                    alpha * y
                } else {
                    y
                }
            }),
            // Max with `min`, then min with `max` (so `max` wins when the bounds cross), NaN
            // kept: the reference Clip's order.
            Act::Clip { min, max } => each!(v, |x| {
                let y = x + bias;
                let y = if y < min { min } else { y };
                if y > max {
                    max
                } else {
                    y
                }
            }),
            Act::Sigmoid => each!(v, |x| math::sigmoid(x + bias)),
            Act::Tanh => each!(v, |x| (x + bias).tanh()),
            Act::HardSigmoid { alpha, beta } => {
                each!(v, |x| (alpha * (x + bias) + beta).clamp(0.0, 1.0))
            }
            Act::HardSwish => each!(v, |x| {
                let y = x + bias;
                y * (y / 6.0 + 0.5).clamp(0.0, 1.0)
            }),
            Act::Gelu { tanh: false } => each!(v, |x| math::gelu(x + bias)),
            Act::Gelu { tanh: true } => each!(v, |x| math::gelu_tanh(x + bias)),
        }
    }
}

crate::math::vectorised_fn! {
    fn apply_all(act: Act, v: &mut [f32], bias: f32) {
        act.apply_here(v, bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_crossed_bounds_follow_the_reference() {
        let mut v = [f32::NAN, -1.0, 2.0];
        Act::Relu.apply(&mut v, 0.0);
        assert!(v[0].is_nan() && v[1] == 0.0 && v[2] == 2.0, "{v:?}");
        let mut v = [1.0, -5.0, 9.0, f32::NAN];
        Act::Clip { min: 6.0, max: 0.0 }.apply(&mut v, 0.0);
        assert_eq!(&v[..3], &[0.0, 0.0, 0.0]);
        assert!(v[3].is_nan());
    }
}
