//! One-input kernels: math functions, activations, IsNaN / IsInf.

use xnpu_core::{
    with_float_type, with_int_type, with_numeric_type, DType, Elem, Error, Result, Tensor,
};
use xnpu_ops::elementwise::{ActivationKind as A, UnaryKind as U};

use super::erf::erf;
use xnpu_core::num::{Bits, Num};

/// `f` applied to every element of `x`, which must have element type `S`.
pub fn map<S: Elem, D: Elem>(x: &Tensor, f: impl Fn(S) -> D) -> Result<Tensor> {
    let v = x.as_slice::<S>()?;
    let out = xnpu_linalg::buf::collected(v.iter().map(|&s| f(s)), "an element-wise output")?;
    Tensor::from_vec(x.shape().to_vec(), out)
}

pub fn not_defined(op: &str, d: DType) -> Error {
    Error::unsupported(format!("{op} is not defined for {d} tensors"))
}

/// A float function computed in f64 and rounded back to `x`'s float dtype.
fn map_float(op: &str, x: &Tensor, f: impl Fn(f64) -> f64) -> Result<Tensor> {
    with_float_type!(x.dtype(), T => map(x, |v: T| T::from_f64(f(v.to_f64()))),
        _ => Err(not_defined(op, x.dtype())))
}

pub fn unary(kind: U, x: &Tensor) -> Result<Tensor> {
    let d = x.dtype();
    let name = kind.name();
    match kind {
        U::Not => {
            if d != DType::Bool {
                return Err(not_defined(name, d));
            }
            map(x, |b: bool| !b)
        }
        U::BitwiseNot => {
            with_int_type!(d, T => map(x, |v: T| v.not()), _ => Err(not_defined(name, d)))
        }
        U::Neg => {
            with_numeric_type!(d, T => map(x, |v: T| v.negate()), _ => Err(not_defined(name, d)))
        }
        U::Abs => {
            with_numeric_type!(d, T => map(x, |v: T| v.absolute()), _ => Err(not_defined(name, d)))
        }
        U::Sign => {
            with_numeric_type!(d, T => map(x, |v: T| v.sign()), _ => Err(not_defined(name, d)))
        }
        U::Reciprocal => map_float(name, x, |v| 1.0 / v),
        U::Sqrt => map_float(name, x, f64::sqrt),
        U::Exp => map_float(name, x, f64::exp),
        U::Log => map_float(name, x, f64::ln),
        U::Ceil => map_float(name, x, f64::ceil),
        U::Floor => map_float(name, x, f64::floor),
        U::Round => map_float(name, x, f64::round_ties_even),
        U::Erf => map_float(name, x, erf),
        U::Sin => map_float(name, x, f64::sin),
        U::Cos => map_float(name, x, f64::cos),
        U::Tan => map_float(name, x, f64::tan),
        U::Asin => map_float(name, x, f64::asin),
        U::Acos => map_float(name, x, f64::acos),
        U::Atan => map_float(name, x, f64::atan),
        U::Sinh => map_float(name, x, f64::sinh),
        U::Cosh => map_float(name, x, f64::cosh),
        U::Asinh => map_float(name, x, f64::asinh),
        U::Acosh => map_float(name, x, f64::acosh),
        U::Atanh => map_float(name, x, f64::atanh),
        U::Tanh => map_float(name, x, f64::tanh),
    }
}

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `ln(1 + exp(x))` without overflow for large `x`.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

pub fn activation(kind: A, x: &Tensor) -> Result<Tensor> {
    let d = x.dtype();
    let name = kind.name();
    match kind {
        A::Relu => {
            with_numeric_type!(d, T => map(x, |v: T| v.max_nan(T::ZERO)),
            _ => Err(not_defined(name, d)))
        }
        A::Shrink { bias, lambd } => {
            let (bias, lambd) = (bias as f64, lambd as f64);
            with_numeric_type!(d, T => map(x, |v: T| {
                let v = v.to_f64();
                T::from_f64(if v < -lambd { v + bias } else if v > lambd { v - bias } else { 0.0 })
            }), _ => Err(not_defined(name, d)))
        }
        A::Sigmoid => map_float(name, x, sigmoid),
        A::LeakyRelu { alpha } => {
            map_float(name, x, |v| if v >= 0.0 { v } else { alpha as f64 * v })
        }
        A::Elu { alpha } => map_float(name, x, |v| {
            if v > 0.0 {
                v
            } else {
                alpha as f64 * v.exp_m1()
            }
        }),
        A::Selu { alpha, gamma } => map_float(name, x, |v| {
            gamma as f64
                * if v > 0.0 {
                    v
                } else {
                    alpha as f64 * v.exp_m1()
                }
        }),
        A::Celu { alpha } => {
            let a = alpha as f64;
            map_float(name, x, |v| v.max(0.0) + (a * (v / a).exp_m1()).min(0.0))
        }
        A::ThresholdedRelu { alpha } => {
            map_float(name, x, |v| if v > alpha as f64 { v } else { 0.0 })
        }
        A::HardSigmoid { alpha, beta } => map_float(name, x, |v| {
            (alpha as f64 * v + beta as f64).clamp(0.0, 1.0)
        }),
        A::HardSwish => map_float(name, x, |v| v * (v / 6.0 + 0.5).clamp(0.0, 1.0)),
        A::Softplus => map_float(name, x, softplus),
        A::Softsign => map_float(name, x, |v| v / (1.0 + v.abs())),
        A::Mish => map_float(name, x, |v| v * softplus(v).tanh()),
        A::Gelu { tanh: false } => map_float(name, x, |v| {
            0.5 * v * (1.0 + erf(v * std::f64::consts::FRAC_1_SQRT_2))
        }),
        A::Gelu { tanh: true } => {
            let k = (2.0 / std::f64::consts::PI).sqrt();
            map_float(name, x, |v| {
                0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())
            })
        }
        A::Swish { alpha } => map_float(name, x, |v| v * sigmoid(alpha as f64 * v)),
    }
}

/// IsNaN (`inf` is `None`) or IsInf (`inf` says which signs count).
pub fn classify(x: &Tensor, inf: Option<(bool, bool)>) -> Result<Tensor> {
    let d = x.dtype();
    let name = if inf.is_some() { "IsInf" } else { "IsNaN" };
    with_float_type!(d, T => map(x, |v: T| {
        let v = v.to_f64();
        match inf {
            None => v.is_nan(),
            Some((pos, neg)) => (pos && v == f64::INFINITY) || (neg && v == f64::NEG_INFINITY),
        }
    }), _ => Err(not_defined(name, d)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xnpu_core::f16;

    #[test]
    fn round_goes_half_to_even() {
        let t = Tensor::from_vec(vec![5], vec![0.5f32, 1.5, 2.5, -4.5, 2.3]).unwrap();
        let r = unary(U::Round, &t).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(r, vec![0.0, 2.0, 2.0, -4.0, 2.0]);
    }

    #[test]
    fn half_floats_compute_through_f64() {
        let t = Tensor::from_vec(vec![1], vec![f16::from_f32(4.0)]).unwrap();
        let r = unary(U::Sqrt, &t).unwrap();
        assert_eq!(r.to_vec::<f16>().unwrap(), vec![f16::from_f32(2.0)]);
    }

    #[test]
    fn float_functions_refuse_integers() {
        let t = Tensor::from_vec(vec![1], vec![4i32]).unwrap();
        let err = unary(U::Sqrt, &t).unwrap_err().to_string();
        assert!(err.contains("Sqrt") && err.contains("i32"), "{err}");
        assert_eq!(
            unary(U::Abs, &Tensor::from_vec(vec![1], vec![i8::MIN]).unwrap())
                .unwrap()
                .to_vec::<i8>()
                .unwrap(),
            vec![i8::MIN]
        );
    }

    #[test]
    fn softplus_does_not_overflow() {
        let t = Tensor::from_vec(vec![2], vec![1000.0f64, -1000.0]).unwrap();
        let r = activation(A::Softplus, &t)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        assert_eq!(r[0], 1000.0);
        assert!(r[1] >= 0.0 && r[1] < 1e-300);
    }
}
