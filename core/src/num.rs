//! The one numeric element trait, [`Num`], and what is built on it.
//!
//! An element type has two sides: how it is stored ([`Elem`]: its dtype, viewing and copying
//! bytes; `bool` too) and how it computes ([`Num`], every numeric `Elem`: the 8 integers, f32,
//! f64, f16 and bf16). Every kernel computes through `Num`, so each rule is written once:
//! - conversions as Rust's `as`: [`Num::from_f64`] rounds to nearest for floats, truncates
//!   toward zero and saturates for integers (NaN gives 0);
//! - integers wrap on overflow (like numpy) and report division by zero;
//! - floats are IEEE: f32 and f64 compute natively, f16 and bf16 in f64 and round once (which
//!   gives the correctly rounded result of + - * /, as does f32 arithmetic of f16 values);
//! - max and min propagate NaN.
//!
//! Integer bit operations are a small extension, [`Bits`], implemented by the integers only:
//! and/or/xor/not/shifts on a float would act on its bit pattern, which no operator asks for.
//! A float "compute precision" (f32 for f32, f16 and bf16 tensors, f64 for f64) is not a
//! trait: [`load_floats`] and [`store_floats`] are generic over `Num + num_traits::Float`.
//! [`total_order`] orders any `PartialOrd` element with NaN last.

use std::cmp::Ordering;

use num_traits::Float;

use crate::{bf16, f16, with_float_type, DType, Elem, Error, Result, Tensor};

/// A numeric element type: arithmetic with the rules of the module doc.
///
/// The names avoid those of `num_traits::Float` (`abs`, `max`, …), so that a kernel bounded
/// by both calls either without ambiguity; `is_nan` is the one shared name (same meaning).
pub trait Num: Elem + PartialOrd {
    const ZERO: Self;
    const ONE: Self;
    /// The value as f64 (exact for every type but i64 and u64 beyond 2^53, which round).
    fn to_f64(self) -> f64;
    /// Converts like Rust's `as`: floats round to nearest, float to integer truncates toward
    /// zero and saturates (NaN gives 0).
    fn from_f64(v: f64) -> Self;
    fn plus(self, o: Self) -> Self;
    fn minus(self, o: Self) -> Self;
    fn times(self, o: Self) -> Self;
    /// Integers truncate toward zero; an integer division by zero is an error.
    fn divide(self, o: Self) -> Result<Self>;
    /// `self - floor(self / o) * o` (sign of `o`), or with `trunc` `self - trunc(self / o) * o`
    /// (sign of `self`). Integer modulo by zero is an error.
    fn modulo(self, o: Self, trunc: bool) -> Result<Self>;
    fn negate(self) -> Self;
    fn absolute(self) -> Self;
    /// -1, 0 or 1 (NaN stays NaN, a float zero keeps its sign).
    fn sign(self) -> Self;
    /// NaN is the only value not equal to itself.
    #[inline]
    fn is_nan(self) -> bool {
        self.partial_cmp(&self).is_none()
    }
    /// The larger of the two; NaN when either is NaN.
    #[inline]
    fn max_nan(self, o: Self) -> Self {
        if self.is_nan() || o.is_nan() {
            if self.is_nan() {
                self
            } else {
                o
            }
        } else if o > self {
            o
        } else {
            self
        }
    }
    /// The smaller of the two; NaN when either is NaN.
    #[inline]
    fn min_nan(self, o: Self) -> Self {
        if self.is_nan() || o.is_nan() {
            if self.is_nan() {
                self
            } else {
                o
            }
        } else if o < self {
            o
        } else {
            self
        }
    }
}

fn division_by_zero() -> Error {
    Error::compute("integer division by zero")
}

macro_rules! int_num {
    ($signed:tt: $($t:ty),*) => {$(
        impl Num for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn plus(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            #[inline(always)]
            fn minus(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            #[inline(always)]
            fn times(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            #[inline]
            fn divide(self, o: Self) -> Result<Self> {
                if o == 0 {
                    return Err(division_by_zero());
                }
                Ok(self.wrapping_div(o))
            }
            #[inline]
            fn modulo(self, o: Self, trunc: bool) -> Result<Self> {
                if o == 0 {
                    return Err(division_by_zero());
                }
                let r = self.wrapping_rem(o);
                Ok(if !trunc && r != 0 && ((r as i128) < 0) != ((o as i128) < 0) {
                    r.wrapping_add(o)
                } else {
                    r
                })
            }
            #[inline]
            fn negate(self) -> Self {
                self.wrapping_neg()
            }
            int_num!(@$signed);
        }
    )*};
    (@signed) => {
        #[inline]
        fn absolute(self) -> Self {
            self.wrapping_abs()
        }
        #[inline]
        fn sign(self) -> Self {
            self.signum()
        }
    };
    (@unsigned) => {
        #[inline]
        fn absolute(self) -> Self {
            self
        }
        #[inline]
        fn sign(self) -> Self {
            (self != 0) as Self
        }
    };
}

int_num!(signed: i8, i16, i32, i64);
int_num!(unsigned: u8, u16, u32, u64);

/// Float `a mod b` with the sign of `b` (Python's `%`), IEEE special cases as numpy.
fn floor_mod(a: f64, b: f64) -> f64 {
    let r = a % b;
    if r == 0.0 {
        0.0f64.copysign(b)
    } else if (r < 0.0) != (b < 0.0) {
        r + b
    } else {
        r
    }
}

/// The float operations every float type computes in f64 and rounds once.
macro_rules! float_via_f64 {
    () => {
        #[inline]
        fn modulo(self, o: Self, trunc: bool) -> Result<Self> {
            let (a, b) = (self.to_f64(), o.to_f64());
            Ok(Self::from_f64(if trunc { a % b } else { floor_mod(a, b) }))
        }
        #[inline]
        fn negate(self) -> Self {
            Self::from_f64(-self.to_f64())
        }
        #[inline]
        fn absolute(self) -> Self {
            Self::from_f64(self.to_f64().abs())
        }
        #[inline]
        fn sign(self) -> Self {
            let x = self.to_f64();
            Self::from_f64(if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                x
            })
        }
    };
}

// f32 and f64: + - * / are native (for f32 bit-identical to computing in f64 and rounding,
// since f64 holds more than twice f32's precision).
macro_rules! native_float_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn plus(self, o: Self) -> Self {
                self + o
            }
            #[inline(always)]
            fn minus(self, o: Self) -> Self {
                self - o
            }
            #[inline(always)]
            fn times(self, o: Self) -> Self {
                self * o
            }
            #[inline(always)]
            fn divide(self, o: Self) -> Result<Self> {
                Ok(self / o)
            }
            float_via_f64!();
        }
    )*};
}

native_float_num!(f32, f64);

// f16 and bf16 compute in f64 and round once.
macro_rules! half_float_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            const ZERO: Self = <$t>::ZERO;
            const ONE: Self = <$t>::ONE;
            #[inline(always)]
            fn to_f64(self) -> f64 {
                <$t>::to_f64(self)
            }
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                <$t>::from_f64(v)
            }
            #[inline]
            fn plus(self, o: Self) -> Self {
                Self::from_f64(self.to_f64() + o.to_f64())
            }
            #[inline]
            fn minus(self, o: Self) -> Self {
                Self::from_f64(self.to_f64() - o.to_f64())
            }
            #[inline]
            fn times(self, o: Self) -> Self {
                Self::from_f64(self.to_f64() * o.to_f64())
            }
            #[inline]
            fn divide(self, o: Self) -> Result<Self> {
                Ok(Self::from_f64(self.to_f64() / o.to_f64()))
            }
            float_via_f64!();
        }
    )*};
}

half_float_num!(f16, bf16);

/// Bit operations, on the integer element types only.
pub trait Bits: Num {
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    fn not(self) -> Self;
    /// Shift by `by` bits; a negative shift, or one by the bit width or more, gives what the
    /// sign extension alone gives (-1 for a right shift of a negative value, else 0).
    fn shift(self, by: Self, left: bool) -> Self;
}

macro_rules! bits {
    ($($t:ty),*) => {$(
        impl Bits for $t {
            #[inline]
            fn and(self, o: Self) -> Self {
                self & o
            }
            #[inline]
            fn or(self, o: Self) -> Self {
                self | o
            }
            #[inline]
            fn xor(self, o: Self) -> Self {
                self ^ o
            }
            #[inline]
            fn not(self) -> Self {
                !self
            }
            #[inline]
            fn shift(self, by: Self, left: bool) -> Self {
                let by = by as i128;
                if by < 0 || by >= <$t>::BITS as i128 {
                    return if !left && (self as i128) < 0 { !0 } else { 0 };
                }
                if left {
                    self << by as u32
                } else {
                    self >> by as u32
                }
            }
        }
    )*};
}

bits!(i8, i16, i32, i64, u8, u16, u32, u64);

/// A total order of elements where NaN (the only value not equal to itself) is above every
/// number and equal to itself; for any `PartialOrd` element, `bool` included.
pub fn total_order<T: PartialOrd>(a: &T, b: &T) -> Ordering {
    match a.partial_cmp(b) {
        Some(o) => o,
        None => match (a.partial_cmp(a).is_none(), b.partial_cmp(b).is_none()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            _ => Ordering::Less,
        },
    }
}

/// The values of a float tensor (any float dtype) in compute precision `R` (f32 or f64):
/// exact, except f64 values read as f32, which round.
pub fn load_floats<R: Num + Float>(t: &Tensor) -> Result<Vec<R>> {
    let d = t.dtype();
    if d == R::DTYPE {
        return t.to_vec::<R>();
    }
    with_float_type!(d, T => {
        Ok(t.as_slice::<T>()?.iter().map(|&v| R::from_f64(v.to_f64())).collect())
    }, _ => Err(Error::compute(format!("expected a float tensor, got {d}"))))
}

/// A tensor of float dtype `dtype` from values in compute precision `R`, each rounded once.
pub fn store_floats<R: Num + Float>(dtype: DType, shape: Vec<usize>, v: Vec<R>) -> Result<Tensor> {
    if dtype == R::DTYPE {
        return Tensor::from_vec(shape, v);
    }
    with_float_type!(dtype, T => {
        Tensor::from_vec(shape, v.into_iter().map(|x| T::from_f64(x.to_f64())).collect::<Vec<T>>())
    }, _ => Err(Error::compute(format!("expected a float dtype, got {dtype}"))))
}

/// `v` rounded to float dtype `dtype` and back (the precision numpy computes that dtype's
/// arithmetic in); other dtypes leave it as it is.
pub fn round_to(dtype: DType, v: f64) -> f64 {
    with_float_type!(dtype, T => T::from_f64(v).to_f64(), _ => v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_arithmetic_wraps_and_refuses_division_by_zero() {
        assert_eq!(100i8.plus(100), -56);
        assert_eq!(0u8.minus(1), 255);
        assert_eq!(i32::MIN.negate(), i32::MIN);
        assert_eq!(i8::MIN.absolute(), i8::MIN);
        assert_eq!((-7i32).divide(2).unwrap(), -3);
        assert_eq!(i32::MIN.divide(-1).unwrap(), i32::MIN);
        assert!(5u8.divide(0).is_err());
        assert!(5i64.modulo(0, false).is_err());
        assert_eq!(((-5i16).sign(), 0i16.sign(), 7u32.sign()), (-1, 0, 1));
    }

    #[test]
    fn conversions_follow_as() {
        assert_eq!(i8::from_f64(300.0), 127);
        assert_eq!(u8::from_f64(-3.5), 0);
        assert_eq!(i32::from_f64(-2.9), -2);
        assert_eq!(u64::from_f64(f64::NAN), 0);
        assert_eq!(f32::from_f64(0.1), 0.1f32);
        assert_eq!(f16::from_f64(65520.0), f16::INFINITY);
        assert_eq!(bf16::from_f64(1.0 + 1.0 / 256.0), bf16::ONE);
        assert_eq!(f16::from_f64(0.5).to_f64(), 0.5);
        assert_eq!(u64::MAX.to_f64(), 18446744073709551615.0);
        assert_eq!((f32::ZERO, f16::ONE, i64::ONE), (0.0, f16::ONE, 1));
    }

    #[test]
    fn modulo_follows_python_or_c_signs() {
        assert_eq!((-7i32).modulo(3, false).unwrap(), 2);
        assert_eq!(7i32.modulo(-3, false).unwrap(), -2);
        assert_eq!((-7i32).modulo(3, true).unwrap(), -1);
        assert_eq!(250u8.modulo(7, false).unwrap(), 5);
        assert_eq!((-7.5f64).modulo(2.0, false).unwrap(), 0.5);
        assert_eq!(
            1.0f64.modulo(f64::NEG_INFINITY, false).unwrap(),
            f64::NEG_INFINITY
        );
        assert!((1.0f32).modulo(0.0, false).unwrap().is_nan());
        let z = (-0.0f64).modulo(3.0, false).unwrap();
        assert!(z == 0.0 && z.is_sign_positive());
        assert_eq!(
            f16::from_f64(-7.5)
                .modulo(f16::from_f64(2.0), true)
                .unwrap()
                .to_f64(),
            -1.5
        );
    }

    /// f32 computed natively and f16/bf16 computed in f64 agree bit for bit with computing
    /// in f64 and rounding once (and, for the half types, with computing in f32).
    #[test]
    fn float_arithmetic_rounds_once() {
        let xs = [0.1f64, -3.75, 1e-8, 65504.0, 3.0e38, -0.0, 7.0 / 3.0, 1e-40];
        for &a in &xs {
            for &b in &xs {
                let (x, y) = (a as f32, b as f32);
                let via = |f: fn(f64, f64) -> f64| f(x as f64, y as f64) as f32;
                assert_eq!(x.plus(y).to_bits(), via(|p, q| p + q).to_bits());
                assert_eq!(x.minus(y).to_bits(), via(|p, q| p - q).to_bits());
                assert_eq!(x.times(y).to_bits(), via(|p, q| p * q).to_bits());
                let (d, v) = (x.divide(y).unwrap(), via(|p, q| p / q));
                assert!(d.to_bits() == v.to_bits() || (d.is_nan() && v.is_nan()));
                let (h, k) = (f16::from_f64(a), f16::from_f64(b));
                assert_eq!(h.plus(k).to_bits(), (h + k).to_bits());
                assert_eq!(h.times(k).to_bits(), (h * k).to_bits());
                let (h, k) = (bf16::from_f64(a), bf16::from_f64(b));
                assert_eq!(h.minus(k).to_bits(), (h - k).to_bits());
                assert_eq!(h.times(k).to_bits(), (h * k).to_bits());
            }
        }
        assert!((-0.0f32).sign().is_sign_negative());
        assert!(f32::NAN.sign().is_nan());
        assert_eq!(f16::from_f64(-2.5).absolute(), f16::from_f64(2.5));
    }

    #[test]
    fn shifts_out_of_range_give_the_sign_fill() {
        assert_eq!((-8i8).shift(1, false), -4);
        assert_eq!((-8i8).shift(8, false), -1);
        assert_eq!(8i8.shift(-1, false), 0);
        assert_eq!(64i8.shift(1, true), -128);
        assert_eq!(1u8.shift(8, true), 0);
        assert_eq!(
            (0b1100u8.and(0b1010), 0b1100u8.xor(0b1010)),
            (0b1000, 0b0110)
        );
    }

    #[test]
    fn max_and_min_propagate_nan() {
        assert!(1.0f32.max_nan(f32::NAN).is_nan());
        assert!(f32::NAN.min_nan(1.0).is_nan());
        assert!(bf16::NAN.max_nan(bf16::ONE).is_nan());
        assert_eq!(3u8.max_nan(7), 7);
        assert_eq!((-3i64).min_nan(7), -3);
    }

    #[test]
    fn total_order_puts_nan_last() {
        let mut v = [2.0, f64::NAN, -1.0, f64::NAN, 0.5];
        v.sort_by(total_order);
        assert_eq!(&v[..3], &[-1.0, 0.5, 2.0]);
        assert!(v[3].is_nan() && v[4].is_nan());
        assert_eq!(total_order(&true, &false), Ordering::Greater);
    }

    #[test]
    fn floats_load_and_store_in_a_compute_precision() {
        let h = Tensor::from_vec(vec![2], vec![f16::from_f64(0.5), f16::from_f64(-3.0)]).unwrap();
        assert_eq!(load_floats::<f32>(&h).unwrap(), vec![0.5, -3.0]);
        let d = Tensor::from_vec(vec![1], vec![0.1f64]).unwrap();
        assert_eq!(load_floats::<f32>(&d).unwrap(), vec![0.1f32]);
        assert_eq!(load_floats::<f64>(&d).unwrap(), vec![0.1]);
        let t = store_floats(DType::Bf16, vec![1], vec![1.0f32 + 1.0 / 256.0]).unwrap();
        assert_eq!(t.to_vec::<bf16>().unwrap(), vec![bf16::ONE]);
        let t = store_floats(DType::F32, vec![1], vec![f32::NAN]).unwrap();
        assert!(t.to_vec::<f32>().unwrap()[0].is_nan());
        let i = Tensor::from_vec(vec![1], vec![1i32]).unwrap();
        assert!(load_floats::<f32>(&i).is_err());
        assert!(store_floats(DType::I32, vec![1], vec![1.0f64]).is_err());
        assert_eq!(round_to(DType::F16, 0.1), f16::from_f64(0.1).to_f64());
        assert_eq!(round_to(DType::I32, 0.1), 0.1);
    }
}
