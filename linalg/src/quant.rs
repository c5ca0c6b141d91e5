//! Per-tensor linear quantisation of fp32 activations (QDQ models' QuantizeLinear and
//! DequantizeLinear between layers), with the reference kernels' rounding: `x / scale`
//! rounded half to even in f32, plus the zero point, saturated to the integer type.

use crate::math::vectorised_fn;

/// An 8-bit integer type a tensor is quantised to.
pub trait Int8: Copy + Send + Sync {
    const MIN: f32;
    const MAX: f32;
    /// `v`, already rounded and inside [MIN, MAX] (NaN: 0).
    fn from_f32(v: f32) -> Self;
    fn to_f32(self) -> f32;
}

/// `v`, an integer in i32's range whose magnitude is below 2^22, or NaN (0), as an i32: read
/// from the mantissa of `v + 1.5 * 2^23` (a bit cast the compiler vectorises, where Rust's
/// saturating float-to-int conversion is done one value at a time).
#[inline(always)]
fn integer(v: f32) -> i32 {
    const ROUNDER: f32 = 12_582_912.0;
    let v = if v.is_nan() { 0.0 } else { v };
    ((v + ROUNDER).to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32)
}

impl Int8 for i8 {
    const MIN: f32 = -128.0;
    const MAX: f32 = 127.0;
    #[inline(always)]
    fn from_f32(v: f32) -> i8 {
        integer(v) as i8
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
}

impl Int8 for u8 {
    const MIN: f32 = 0.0;
    const MAX: f32 = 255.0;
    #[inline(always)]
    fn from_f32(v: f32) -> u8 {
        integer(v) as u8
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self as f32
    }
}

vectorised_fn! {
    /// `y = saturate(round_half_even(x / scale) + zero_point)`.
    pub fn quantize<T: Int8>(x: &[f32], scale: f32, zero_point: f32, y: &mut [T]) {
        for (o, &v) in y.iter_mut().zip(x) {
            let q = (v / scale).round_ties_even() + zero_point;
            *o = T::from_f32(q.clamp(T::MIN, T::MAX));
        }
    }
}

vectorised_fn! {
    /// `y = (x - zero_point) * scale`.
    pub fn dequantize<T: Int8>(x: &[T], scale: f32, zero_point: f32, y: &mut [f32]) {
        for (o, &v) in y.iter_mut().zip(x) {
            *o = (v.to_f32() - zero_point) * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_to_even_and_saturates() {
        let x = [0.5f32, 1.5, 2.5, -0.5, -1.5, 300.0, -300.0, f32::NAN, 0.26];
        let mut q = [0i8; 9];
        quantize(&x, 1.0, 0.0, &mut q);
        assert_eq!(q, [0, 2, 2, 0, -2, 127, -128, 0, 0]);
        let mut u = [0u8; 9];
        quantize(&x, 0.5, 10.0, &mut u);
        assert_eq!(u, [11, 13, 15, 9, 7, 255, 0, 0, 11]);
        let mut y = [0f32; 3];
        dequantize(&[-128i8, 0, 127], 0.5, -2.0, &mut y);
        assert_eq!(y, [-63.0, 1.0, 64.5]);
    }
}
