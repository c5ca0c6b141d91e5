//! Element arithmetic with the family's rules, one implementation per Rust element type:
//! integers wrap on overflow (like numpy) and report division by zero; floats compute in f64
//! and round back (exact for + - * / and correctly rounded for f32, f16 and bf16).

use num_traits::AsPrimitive;
use xnpu_core::{bf16, f16, Elem, Error, Result};

/// A numeric element type.
pub trait Num: Elem + PartialOrd + AsPrimitive<f64> {
    fn zero() -> Self;
    /// Converts like Rust's `as`: floats round to nearest, float to integer truncates and
    /// saturates (NaN gives 0).
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64 {
        self.as_()
    }
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
    /// -1, 0 or 1 (NaN stays NaN).
    fn sign(self) -> Self;
    fn is_nan(self) -> bool {
        self.partial_cmp(&self).is_none()
    }
    /// The larger of the two; NaN when either is NaN.
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
            fn zero() -> Self {
                0
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn plus(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn minus(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn times(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            fn divide(self, o: Self) -> Result<Self> {
                if o == 0 {
                    return Err(division_by_zero());
                }
                Ok(self.wrapping_div(o))
            }
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
            fn negate(self) -> Self {
                self.wrapping_neg()
            }
            int_num!(@$signed);
        }
    )*};
    (@signed) => {
        fn absolute(self) -> Self {
            self.wrapping_abs()
        }
        fn sign(self) -> Self {
            self.signum()
        }
    };
    (@unsigned) => {
        fn absolute(self) -> Self {
            self
        }
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

macro_rules! float_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn zero() -> Self {
                Self::from_f64(0.0)
            }
            fn from_f64(v: f64) -> Self {
                v.as_()
            }
            fn plus(self, o: Self) -> Self {
                Self::from_f64(self.to_f64() + o.to_f64())
            }
            fn minus(self, o: Self) -> Self {
                Self::from_f64(self.to_f64() - o.to_f64())
            }
            fn times(self, o: Self) -> Self {
                Self::from_f64(self.to_f64() * o.to_f64())
            }
            fn divide(self, o: Self) -> Result<Self> {
                Ok(Self::from_f64(self.to_f64() / o.to_f64()))
            }
            fn modulo(self, o: Self, trunc: bool) -> Result<Self> {
                let (a, b) = (self.to_f64(), o.to_f64());
                Ok(Self::from_f64(if trunc { a % b } else { floor_mod(a, b) }))
            }
            fn negate(self) -> Self {
                Self::from_f64(-self.to_f64())
            }
            fn absolute(self) -> Self {
                Self::from_f64(self.to_f64().abs())
            }
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
        }
    )*};
}

float_num!(f32, f64, f16, bf16);

/// Bit operations on integer element types.
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
            fn and(self, o: Self) -> Self {
                self & o
            }
            fn or(self, o: Self) -> Self {
                self | o
            }
            fn xor(self, o: Self) -> Self {
                self ^ o
            }
            fn not(self) -> Self {
                !self
            }
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

/// The Gauss error function, to about 1e-14 relative accuracy: its Maclaurin series for
/// `|x| < 2.5`, a continued fraction of `erfc` beyond.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a < 2.5 {
        // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
        let x2 = x * x;
        let mut term = x; // (-1)^n x^(2n+1) / n!
        let mut sum = x;
        for n in 1..200 {
            term *= -x2 / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        return sum * std::f64::consts::FRAC_2_SQRT_PI;
    }
    if a > 6.0 {
        return 1.0f64.copysign(x);
    }
    // erfc(a) = exp(-a^2)/sqrt(pi) * 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + 2/(a + ...)))))
    let mut f = a;
    for k in (1..=80).rev() {
        f = a + (k as f64 / 2.0) / f;
    }
    let erfc = (-a * a).exp() / std::f64::consts::PI.sqrt() / f;
    (1.0 - erfc).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        let cases = [
            (0.0, 0.0),
            (1e-4, 1.128_379_163_334_248_8e-4),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (-2.0, -0.995_322_265_018_952_7),
            (2.5, 0.999_593_047_982_555),
            (3.0, 0.999_977_909_503_001_4),
            (4.5, 0.999_999_999_803_383),
        ];
        for (x, want) in cases {
            let got = erf(x);
            assert!(
                (got - want).abs() <= 1e-13 * want.abs().max(1e-300),
                "erf({x}) = {got}, expected {want}"
            );
        }
    }

    #[test]
    fn integer_arithmetic_wraps_and_refuses_division_by_zero() {
        assert_eq!(100i8.plus(100), -56);
        assert_eq!(i32::MIN.negate(), i32::MIN);
        assert_eq!((-7i32).divide(2).unwrap(), -3);
        assert!(5u8.divide(0).is_err());
        assert!(5i64.modulo(0, false).is_err());
    }

    #[test]
    fn modulo_follows_python_or_c_signs() {
        assert_eq!((-7i32).modulo(3, false).unwrap(), 2);
        assert_eq!(7i32.modulo(-3, false).unwrap(), -2);
        assert_eq!((-7i32).modulo(3, true).unwrap(), -1);
        assert_eq!((-7.5f64).modulo(2.0, false).unwrap(), 0.5);
        assert_eq!(
            1.0f64.modulo(f64::NEG_INFINITY, false).unwrap(),
            f64::NEG_INFINITY
        );
        assert!((1.0f32).modulo(0.0, false).unwrap().is_nan());
        let z = (-0.0f64).modulo(3.0, false).unwrap();
        assert!(z == 0.0 && z.is_sign_positive());
    }

    #[test]
    fn shifts_out_of_range_give_the_sign_fill() {
        assert_eq!((-8i8).shift(1, false), -4);
        assert_eq!((-8i8).shift(8, false), -1);
        assert_eq!(8i8.shift(-1, false), 0);
        assert_eq!(64i8.shift(1, true), -128);
        assert_eq!(1u8.shift(8, true), 0);
    }

    #[test]
    fn max_and_min_propagate_nan() {
        assert!(1.0f32.max_nan(f32::NAN).is_nan());
        assert!(f32::NAN.min_nan(1.0).is_nan());
        assert_eq!(3u8.max_nan(7), 7);
    }
}
