//! The narrow dtypes' values: float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, E8M0), float4
//! (E2M1) and the sub-byte integers (INT4, UINT4, INT2, UINT2), in ONNX's byte layout.
//!
//! A narrow tensor is stored as ONNX stores it: one byte per float8 element (its bit
//! pattern), and two (4-bit) or four (2-bit) elements per byte for the packed types, the
//! first element in the low bits. Kernels do not compute with these types; they are read
//! into a wide type ([`widen`]: the integers to i8/u8, the floats to f32, both exact) and
//! written from one ([`float_code`], [`int_code_wrapping`], [`int_code_from_float`],
//! [`pack`]).
//!
//! Conversions to the narrow floats follow ONNX's `Cast` (opset 19/24) and its reference
//! (ml_dtypes): round to nearest even; with `saturate`, values beyond the largest finite
//! value (±inf included) become it, without it they become ±inf (E5M2) or NaN (the others);
//! NaN stays NaN. Float4 E2M1 has neither inf nor NaN: it always saturates and NaN becomes
//! +0 (ONNX leaves it undefined). E8M0 (powers of two, for microscaling) has its own rounding
//! modes ([`RoundMode`]), on the f32 value as ONNX's reference does.

use crate::{DType, Error, Result, Tensor};

/// How a value is rounded to FLOAT8E8M0 (Cast's `round_mode`, opset 24).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RoundMode {
    /// Up to the next power of two unless exact (ONNX's default, what CUDA does).
    #[default]
    Up,
    /// Down to the power of two at or below (the exponent kept).
    Down,
    /// To the nearest power of two (ties and the reference's guard bit rule).
    Nearest,
}

impl RoundMode {
    /// Parses ONNX's spelling (`up`, `down`, `nearest`).
    pub fn parse(s: &str) -> Option<RoundMode> {
        match s {
            "up" => Some(RoundMode::Up),
            "down" => Some(RoundMode::Down),
            "nearest" => Some(RoundMode::Nearest),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RoundMode::Up => "up",
            RoundMode::Down => "down",
            RoundMode::Nearest => "nearest",
        }
    }
}

/// Where a mini float keeps its NaN (and inf).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Special {
    /// IEEE style: the top exponent is ±inf (mantissa 0) and NaN (otherwise).
    Ieee,
    /// No inf; NaN is every bit but the sign set (`S.1111.111`).
    AllOnes,
    /// No inf, no negative zero: NaN is the negative zero pattern (`0x80`).
    NegZero,
    /// Neither inf nor NaN (float4).
    None,
}

/// A float format of at most 8 bits: sign, `exp` exponent bits, `man` mantissa bits.
#[derive(Clone, Copy, Debug)]
struct MiniFloat {
    exp: u32,
    man: u32,
    bias: i32,
    special: Special,
    /// The largest finite value.
    max: f64,
}

impl MiniFloat {
    fn of(dtype: DType) -> Option<MiniFloat> {
        let (exp, man, bias, special, max) = match dtype {
            DType::F8e4m3fn => (4, 3, 7, Special::AllOnes, 448.0),
            DType::F8e4m3fnuz => (4, 3, 8, Special::NegZero, 240.0),
            DType::F8e5m2 => (5, 2, 15, Special::Ieee, 57344.0),
            DType::F8e5m2fnuz => (5, 2, 16, Special::NegZero, 57344.0),
            DType::F4e2m1 => (2, 1, 1, Special::None, 6.0),
            _ => return None,
        };
        Some(MiniFloat {
            exp,
            man,
            bias,
            special,
            max,
        })
    }

    fn sign_bit(&self) -> u8 {
        1 << (self.exp + self.man)
    }

    fn top_exp(&self) -> u32 {
        (1 << self.exp) - 1
    }

    fn decode(&self, code: u8) -> f32 {
        let sign = code & self.sign_bit() != 0;
        let e = u32::from(code >> self.man) & self.top_exp();
        let m = u32::from(code) & ((1 << self.man) - 1);
        match self.special {
            Special::Ieee if e == self.top_exp() => {
                let v = if m == 0 { f32::INFINITY } else { f32::NAN };
                return if sign { -v } else { v };
            }
            Special::AllOnes if e == self.top_exp() && m == (1 << self.man) - 1 => {
                return if sign { -f32::NAN } else { f32::NAN };
            }
            Special::NegZero if code == self.sign_bit() => return f32::NAN,
            _ => {}
        }
        // Exact in f64 and then in f32 (every mini float value is an f32).
        let v = if e == 0 {
            f64::from(m) * pow2(1 - self.bias - self.man as i32)
        } else {
            f64::from((1 << self.man) | m) * pow2(e as i32 - self.bias - self.man as i32)
        };
        (if sign { -v } else { v }) as f32
    }

    /// The code of the value nearest `x` (ties to even); see the module's rules.
    fn encode(&self, x: f64, saturate: bool) -> u8 {
        let sign = if x.is_sign_negative() {
            self.sign_bit()
        } else {
            0
        };
        let nan = match self.special {
            Special::Ieee => sign | (self.top_exp() << self.man) as u8 | (1 << (self.man - 1)),
            Special::AllOnes => sign | (self.sign_bit() - 1),
            Special::NegZero => self.sign_bit(),
            Special::None => 0,
        };
        if x.is_nan() {
            return nan;
        }
        let saturate = saturate || self.special == Special::None;
        let a = x.abs();
        let overflow = || match self.special {
            Special::Ieee => sign | (self.top_exp() << self.man) as u8,
            _ => nan,
        };
        if a > self.max && saturate {
            return sign | self.finite_code(self.max);
        }
        if a.is_infinite() {
            return overflow();
        }
        // The quantum at a's binade (the subnormal one below the smallest normal), with the
        // exponent unbounded above: a value that rounds past `max` overflows.
        let min_normal_exp = 1 - self.bias;
        let e = if a == 0.0 {
            min_normal_exp
        } else {
            exponent_of(a).max(min_normal_exp)
        };
        let q = pow2(e - self.man as i32);
        let v = (a / q).round_ties_even() * q;
        if v > self.max {
            return overflow();
        }
        if v == 0.0 && self.special == Special::NegZero {
            return 0;
        }
        sign | self.finite_code(v)
    }

    /// The code of a representable finite value `v >= 0`.
    fn finite_code(&self, v: f64) -> u8 {
        let min_normal_exp = 1 - self.bias;
        if v == 0.0 {
            return 0;
        }
        let e = exponent_of(v);
        if e < min_normal_exp {
            let m = v / pow2(min_normal_exp - self.man as i32);
            return m as u8;
        }
        let m = v / pow2(e - self.man as i32) - f64::from(1u32 << self.man);
        (((e + self.bias) as u32) << self.man) as u8 | m as u8
    }
}

/// `2^e` for the small exponents of these formats (exact).
fn pow2(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// `floor(log2(a))` of a positive normal f64 (every value here is one).
fn exponent_of(a: f64) -> i32 {
    ((a.to_bits() >> 52) & 0x7ff) as i32 - 1023
}

/// The f32 value of an E8M0 code: `2^(code - 127)`; 255 is NaN.
fn e8m0_decode(code: u8) -> f32 {
    if code == 0xff {
        return f32::NAN;
    }
    // 2^-127 is an f32 subnormal: exact.
    pow2(i32::from(code) - 127) as f32
}

/// The E8M0 code of `x` (its sign ignored), on its f32 bits as ONNX's reference does: NaN
/// and ±inf are 255 (NaN); `Up` takes the next power unless exact, `Nearest` looks at the
/// guard, round and sticky bits; with `saturate` rounding stops at the largest (254).
fn e8m0_encode(x: f32, saturate: bool, mode: RoundMode) -> u8 {
    let bits = x.to_bits();
    let exp = (bits >> 23) & 0xff;
    if exp == 0xff {
        return 0xff;
    }
    let up = match mode {
        RoundMode::Down => false,
        RoundMode::Up => bits & 0x7f_ffff != 0,
        RoundMode::Nearest => {
            let g = bits & 0x40_0000 != 0;
            let r = bits & 0x20_0000 != 0;
            let s = bits & 0x1f_ffff != 0;
            g && (r || s || exp > 0)
        }
    };
    let up = up && !(saturate && exp == 0xfe);
    (exp + u32::from(up)) as u8
}

/// Elements of a packed dtype per byte (1 for the byte-wide narrow types).
fn per_byte(dtype: DType) -> usize {
    8 / dtype.bits().max(1)
}

/// The code (bit pattern, in the low bits) of element `i` of narrow `bytes`.
pub fn code_at(dtype: DType, bytes: &[u8], i: usize) -> u8 {
    let k = per_byte(dtype);
    let bits = dtype.bits();
    if k == 1 {
        return bytes[i];
    }
    (bytes[i / k] >> ((i % k) * bits)) & ((1u16 << bits) - 1) as u8
}

/// Packs `n` element codes (each in the low bits) into ONNX's layout for `dtype`; the
/// unused high bits of a last partial byte are zero. Fallible: `n` may come from a model.
pub fn pack(dtype: DType, n: usize, code: impl Fn(usize) -> u8) -> Result<Vec<u8>> {
    let len = dtype
        .byte_len(n)
        .ok_or_else(|| Error::compute(format!("{n} elements of {dtype} overflow")))?;
    let mut out = Vec::new();
    out.try_reserve_exact(len)
        .map_err(|_| Error::compute(format!("cannot allocate {len} bytes of {dtype}")))?;
    let k = per_byte(dtype);
    if k == 1 {
        out.extend((0..n).map(code));
        return Ok(out);
    }
    let bits = dtype.bits();
    let mask = ((1u16 << bits) - 1) as u8;
    out.resize(len, 0);
    for i in 0..n {
        out[i / k] |= (code(i) & mask) << ((i % k) * bits);
    }
    Ok(out)
}

/// The value of a sub-byte integer code, sign-extended for the signed types.
fn int_value(dtype: DType, code: u8) -> i8 {
    let bits = dtype.bits() as u32;
    match dtype {
        DType::I4 | DType::I2 => ((code << (8 - bits)) as i8) >> (8 - bits),
        _ => code as i8,
    }
}

/// The range of a sub-byte integer dtype.
pub fn int_range(dtype: DType) -> Option<(i64, i64)> {
    match dtype {
        DType::I4 => Some((-8, 7)),
        DType::U4 => Some((0, 15)),
        DType::I2 => Some((-2, 1)),
        DType::U2 => Some((0, 3)),
        _ => None,
    }
}

/// Whether `dtype` is one of the sub-byte integers.
pub fn is_narrow_int(dtype: DType) -> bool {
    int_range(dtype).is_some()
}

/// Whether `dtype` is one of the narrow floats (float8, float4, E8M0).
pub fn is_narrow_float(dtype: DType) -> bool {
    dtype.is_narrow() && !is_narrow_int(dtype)
}

/// The code of integer `v` in a sub-byte integer dtype: its low bits (two's complement
/// wrap-around, as ONNX casts between integers).
pub fn int_code_wrapping(dtype: DType, v: i64) -> u8 {
    (v as u8) & ((1u16 << dtype.bits()) - 1) as u8
}

/// The code of float `x` in a sub-byte integer dtype, as ONNX's reference casts it:
/// truncated toward zero, and 0 where that is out of range (NaN and ±inf included; ONNX
/// leaves out-of-range float-to-integer casts undefined).
pub fn int_code_from_float(dtype: DType, x: f64) -> u8 {
    let (lo, hi) = int_range(dtype).unwrap_or((0, 0));
    let t = x.trunc();
    if t.is_nan() || t < lo as f64 || t > hi as f64 {
        return 0;
    }
    int_code_wrapping(dtype, t as i64)
}

/// The code of `x` in a narrow float dtype (float8, float4, E8M0); `saturate` and `mode` as
/// ONNX's Cast takes them (see the module). Returns `None` for a dtype that is not one.
pub fn float_code(dtype: DType, x: f64, saturate: bool, mode: RoundMode) -> Option<u8> {
    if dtype == DType::F8e8m0 {
        return Some(e8m0_encode(x as f32, saturate, mode));
    }
    MiniFloat::of(dtype).map(|f| f.encode(x, saturate))
}

/// The f32 value of a narrow code (exact for every narrow dtype).
pub fn value_of(dtype: DType, code: u8) -> f32 {
    if let Some(f) = MiniFloat::of(dtype) {
        return f.decode(code);
    }
    if dtype == DType::F8e8m0 {
        return e8m0_decode(code);
    }
    f32::from(int_value(dtype, code))
}

/// The wide dtype a narrow one reads into exactly: i8 for INT4/INT2, u8 for UINT4/UINT2,
/// f32 for the floats. `None` for a dtype that is not narrow.
pub fn wide_dtype(dtype: DType) -> Option<DType> {
    match dtype {
        DType::I4 | DType::I2 => Some(DType::I8),
        DType::U4 | DType::U2 => Some(DType::U8),
        d if d.is_narrow() => Some(DType::F32),
        _ => None,
    }
}

/// A narrow tensor's values in its wide dtype ([`wide_dtype`]); any other tensor as it is.
pub fn widen(t: &Tensor) -> Result<Tensor> {
    let dtype = t.dtype();
    let Some(wide) = wide_dtype(dtype) else {
        return Ok(t.clone());
    };
    let bytes = t.raw_bytes();
    let code = |i| code_at(dtype, bytes, i);
    match wide {
        DType::F32 => elements(t, |i| value_of(dtype, code(i))),
        DType::I8 => elements(t, |i| int_value(dtype, code(i))),
        _ => elements(t, code),
    }
}

/// A tensor of `t`'s shape whose element `i` is `f(i)` (allocated fallibly).
fn elements<T: crate::Elem>(t: &Tensor, f: impl Fn(usize) -> T) -> Result<Tensor> {
    let n = t.len();
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        Error::compute(format!("cannot allocate {n} values to widen {}", t.dtype()))
    })?;
    v.extend((0..n).map(f));
    Tensor::from_vec(t.shape().to_vec(), v)
}

/// A tensor of narrow dtype `to` from element codes.
pub fn from_codes(to: DType, shape: Vec<usize>, code: impl Fn(usize) -> u8) -> Result<Tensor> {
    let n = crate::shape::checked_numel(&shape)?;
    let bytes = pack(to, n, code)?;
    Tensor::from_bytes(to, shape, bytes.into())
}

/// `x` (any numeric or bool tensor) cast to narrow dtype `to` with ONNX's rules: floats to
/// the narrow floats rounded ([`float_code`]), integers to the sub-byte integers wrapped,
/// floats to them truncated ([`int_code_from_float`]). A narrow `x` is widened first.
pub fn narrow(x: &Tensor, to: DType, saturate: bool, mode: RoundMode) -> Result<Tensor> {
    let x = widen(x)?;
    let from = x.dtype();
    let shape = x.shape().to_vec();
    if is_narrow_int(to) && (from.is_int() || from == DType::Bool) {
        let v = int_values(&x)?;
        return from_codes(to, shape, |i| int_code_wrapping(to, v[i]));
    }
    if !(from.is_float() || from.is_int() || from == DType::Bool) {
        return Err(Error::unsupported(format!("cannot cast {from} to {to}")));
    }
    // Exact: every float type xnpu holds widens to f64 exactly.
    let v = x.to_f64_vec()?;
    if is_narrow_int(to) {
        return from_codes(to, shape, |i| int_code_from_float(to, v[i]));
    }
    if !to.is_narrow() {
        return Err(Error::unsupported(format!("{to} is not a narrow dtype")));
    }
    from_codes(to, shape, |i| {
        float_code(to, v[i], saturate, mode).unwrap_or_default()
    })
}

/// The elements of an integer or bool tensor as i64 (u64 wraps: only the low bits matter).
fn int_values(x: &Tensor) -> Result<Vec<i64>> {
    use num_traits::AsPrimitive;
    if x.dtype() == DType::Bool {
        return Ok(x
            .as_slice::<bool>()?
            .iter()
            .map(|&b| i64::from(b))
            .collect());
    }
    crate::with_int_type!(x.dtype(), T => {
        Ok(x.as_slice::<T>()?.iter().map(|&v| AsPrimitive::<i64>::as_(v)).collect())
    }, _ => Err(Error::compute(format!("expected an integer tensor, got {}", x.dtype()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(dtype: DType, xs: &[f32], saturate: bool) -> Vec<u8> {
        xs.iter()
            .map(|&x| float_code(dtype, x.into(), saturate, RoundMode::Up).unwrap())
            .collect()
    }

    #[test]
    fn float8_special_values_follow_the_onnx_tables() {
        let xs = [
            f32::NAN,
            -f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            0.25,
            0.75,
            1e9,
        ];
        // Saturating (ONNX's default); the codes ml_dtypes writes.
        assert_eq!(
            codes(DType::F8e4m3fn, &xs, true),
            [0x7f, 0xff, 0x7e, 0xfe, 0x28, 0x34, 0x7e]
        );
        assert_eq!(
            codes(DType::F8e4m3fn, &xs, false),
            [0x7f, 0xff, 0x7f, 0xff, 0x28, 0x34, 0x7f]
        );
        assert_eq!(
            codes(DType::F8e4m3fnuz, &xs, false),
            [0x80, 0x80, 0x80, 0x80, 0x30, 0x3c, 0x80]
        );
        assert_eq!(
            codes(DType::F8e5m2, &xs, false),
            [0x7e, 0xfe, 0x7c, 0xfc, 0x34, 0x3a, 0x7c]
        );
        assert_eq!(
            codes(DType::F8e5m2fnuz, &xs, false),
            [0x80, 0x80, 0x80, 0x80, 0x38, 0x3e, 0x80]
        );
        // Float4 always saturates; NaN is +0 there.
        assert_eq!(
            codes(DType::F4e2m1, &xs, false),
            [0x0, 0x0, 0x7, 0xf, 0x0, 0x2, 0x7]
        );
    }

    #[test]
    fn rounding_past_the_largest_value_overflows_unless_saturating() {
        // E4M3FN: 464 is halfway between 448 and (the missing) 480: even is 448.
        let xs = [464.0, 465.0, 480.0, -464.1];
        let got: Vec<f32> = codes(DType::F8e4m3fn, &xs, false)
            .into_iter()
            .map(|c| value_of(DType::F8e4m3fn, c))
            .collect();
        assert_eq!(got[0], 448.0);
        assert!(got[1..].iter().all(|v| v.is_nan()));
        // E4M3FNUZ: 247 -> 240, 248 rounds to 256 -> NaN.
        let got = codes(DType::F8e4m3fnuz, &[240.0, 247.0, 248.0], false);
        assert_eq!(value_of(DType::F8e4m3fnuz, got[1]), 240.0);
        assert!(value_of(DType::F8e4m3fnuz, got[2]).is_nan());
        assert_eq!(codes(DType::F8e4m3fnuz, &[248.0], true), [0x7f]);
    }

    #[test]
    fn every_code_decodes_and_encodes_back() {
        for d in [
            DType::F8e4m3fn,
            DType::F8e4m3fnuz,
            DType::F8e5m2,
            DType::F8e5m2fnuz,
            DType::F4e2m1,
            DType::F8e8m0,
        ] {
            for c in 0..(1u16 << d.bits()) {
                let c = c as u8;
                let v = value_of(d, c);
                // Down: E8M0's 2^-127 is an f32 subnormal, whose fraction bits `Up` rounds.
                let back = float_code(d, v.into(), false, RoundMode::Down).unwrap();
                if v.is_nan() {
                    assert!(value_of(d, back).is_nan(), "{d} {c:#x}");
                } else {
                    assert_eq!(back, c, "{d} {c:#x} = {v}");
                }
            }
        }
    }

    #[test]
    fn subnormals_and_negative_zero() {
        // E4M3FN's smallest subnormal is 2^-9.
        assert_eq!(value_of(DType::F8e4m3fn, 0x01), 2f32.powi(-9));
        assert_eq!(codes(DType::F8e4m3fn, &[2f32.powi(-10)], true), [0x00]);
        assert_eq!(
            codes(DType::F8e4m3fn, &[1.5 * 2f32.powi(-10)], true),
            [0x01]
        );
        assert_eq!(codes(DType::F8e4m3fn, &[-1e-7], true), [0x80]);
        assert_eq!(codes(DType::F8e4m3fnuz, &[-1e-7], true), [0x00]);
        assert_eq!(
            codes(DType::F4e2m1, &[0.25, 0.75, -3.5], true),
            [0x0, 0x2, 0xe]
        );
    }

    #[test]
    fn e8m0_rounds_the_way_asked() {
        let x = [0.0f32, 0.124, 0.25, 1.1, 3.0];
        let c = |m, s| -> Vec<u8> { x.iter().map(|&v| e8m0_encode(v, s, m)).collect() };
        assert_eq!(c(RoundMode::Up, true), [0, 124, 125, 128, 129]);
        assert_eq!(c(RoundMode::Down, true), [0, 123, 125, 127, 128]);
        assert_eq!(c(RoundMode::Nearest, true), [0, 124, 125, 127, 129]);
        assert_eq!(e8m0_encode(f32::MAX, true, RoundMode::Up), 0xfe);
        assert_eq!(e8m0_encode(f32::MAX, false, RoundMode::Up), 0xff);
        assert!(e8m0_decode(0xff).is_nan());
        assert_eq!(e8m0_decode(0), 2f32.powi(-127));
    }

    #[test]
    fn sub_byte_integers_pack_low_bits_first() {
        let v = [-8i64, 7, -1, 3, 5];
        let bytes = pack(DType::I4, v.len(), |i| int_code_wrapping(DType::I4, v[i])).unwrap();
        assert_eq!(bytes, [0x78, 0x3f, 0x05]);
        let back: Vec<i8> = (0..5)
            .map(|i| int_value(DType::I4, code_at(DType::I4, &bytes, i)))
            .collect();
        assert_eq!(back, [-8, 7, -1, 3, 5]);
        let u2 = pack(DType::U2, 5, |i| i as u8).unwrap();
        assert_eq!(u2, [0b1110_0100, 0]);
        assert_eq!(int_value(DType::I2, 0b10), -2);
        // Wrapping from integers, truncation (0 when out of range) from floats.
        assert_eq!(int_code_wrapping(DType::I4, -9), 7);
        assert_eq!(int_code_from_float(DType::I4, -8.5), 8);
        assert_eq!(int_code_from_float(DType::I4, 8.0), 0);
        assert_eq!(int_code_from_float(DType::U2, -0.5), 0);
        assert_eq!(int_code_from_float(DType::I2, f64::NAN), 0);
    }

    #[test]
    fn tensors_widen_and_narrow() {
        let x = Tensor::from_vec(vec![5], vec![-9.0f32, -8.0, 1.5, 7.0, 8.0]).unwrap();
        let t = narrow(&x, DType::I4, true, RoundMode::Up).unwrap();
        assert_eq!((t.dtype(), t.raw_bytes().len()), (DType::I4, 3));
        assert_eq!(widen(&t).unwrap().to_vec::<i8>().unwrap(), [0, -8, 1, 7, 0]);
        let y = narrow(&t, DType::F8e5m2, true, RoundMode::Up).unwrap();
        assert_eq!(
            widen(&y).unwrap().to_vec::<f32>().unwrap(),
            [0.0, -8.0, 1.0, 7.0, 0.0]
        );
        let s = Tensor::from_strings(vec![1], vec!["1".into()]).unwrap();
        assert!(narrow(&s, DType::I4, true, RoundMode::Up).is_err());
    }
}
