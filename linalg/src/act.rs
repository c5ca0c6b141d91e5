//! Activations applied in place to a kernel's output (the epilogue of a fused op), with the
//! formulas of the reference element-wise kernels.

/// An activation the fast kernels apply themselves. Others are left to the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    None,
    Relu,
    LeakyRelu { alpha: f32 },
    Clip { min: f32, max: f32 },
    Sigmoid,
    Tanh,
    HardSigmoid { alpha: f32, beta: f32 },
    HardSwish,
}

impl Act {
    /// `v[i] = act(v[i] + bias)` for every element.
    pub fn apply(self, v: &mut [f32], bias: f32) {
        match self {
            Act::None => each(v, |x| x + bias),
            Act::Relu => each(v, |x| (x + bias).max(0.0)),
            Act::LeakyRelu { alpha } => each(v, |x| {
                let y = x + bias;
                if y < 0.0 {
                    alpha * y
                } else {
                    y
                }
            }),
            // NaN stays NaN, as the reference Clip's comparisons leave it.
            Act::Clip { min, max } => each(v, |x| {
                let y = x + bias;
                if y < min {
                    min
                } else if y > max {
                    max
                } else {
                    y
                }
            }),
            Act::Sigmoid => each(v, |x| 1.0 / (1.0 + (-(x + bias)).exp())),
            Act::Tanh => each(v, |x| (x + bias).tanh()),
            Act::HardSigmoid { alpha, beta } => {
                each(v, |x| (alpha * (x + bias) + beta).clamp(0.0, 1.0))
            }
            Act::HardSwish => each(v, |x| {
                let y = x + bias;
                y * (y / 6.0 + 0.5).clamp(0.0, 1.0)
            }),
        }
    }
}

#[inline(always)]
fn each(v: &mut [f32], f: impl Fn(f32) -> f32) {
    for x in v {
        *x = f(*x);
    }
}
