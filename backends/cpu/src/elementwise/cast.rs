//! Cast, CastLike and BitCast.

use num_traits::AsPrimitive;
use xnpu_core::narrow::{self, RoundMode};
use xnpu_core::{with_int_type, with_numeric_type, DType, Error, Result, Tensor};

use xnpu_core::Num;
use xnpu_linalg::buf::{collected, try_collected};

/// What a cast's output is called when it cannot be allocated.
const WHAT: &str = "a cast's output";

/// Every element of `x` converted to `to` with Cast's defaults (saturating, rounding up to
/// E8M0).
pub fn cast(x: &Tensor, to: DType) -> Result<Tensor> {
    cast_with(x, to, true, RoundMode::Up)
}

/// Every element of `x` converted to `to` (see [`xnpu_ops::elementwise::Cast`] for the
/// rules); `saturate` and `mode` concern the narrow float targets.
pub fn cast_with(x: &Tensor, to: DType, saturate: bool, mode: RoundMode) -> Result<Tensor> {
    let from = x.dtype();
    let shape = x.shape().to_vec();
    if from == to {
        return Ok(x.clone());
    }
    if to.is_narrow() {
        // Text reads as f64 first; every other type is narrowed from its exact value.
        if from == DType::String {
            let wide = from_strings(x.strings()?, shape, DType::F64)?;
            return narrow::narrow(&wide, to, saturate, mode);
        }
        return narrow::narrow(x, to, saturate, mode);
    }
    if from.is_narrow() {
        return cast_with(&narrow::widen(x)?, to, saturate, mode);
    }
    match (from, to) {
        (DType::String, _) => from_strings(x.strings()?, shape, to),
        (_, DType::String) => Tensor::from_strings(shape, to_strings(x)?),
        (DType::Bool, _) => {
            let v = x.as_slice::<bool>()?;
            with_numeric_type!(to, D => {
                Tensor::from_vec(shape, collected(v.iter().map(|&b| AsPrimitive::<D>::as_(b as u8)), WHAT)?)
            }, _ => Err(not_castable(from, to)))
        }
        (_, DType::Bool) => with_numeric_type!(from, S => {
            let v = x.as_slice::<S>()?;
            Tensor::from_vec(shape, collected(v.iter().map(|&s| s.to_f64() != 0.0), WHAT)?)
        }, _ => Err(not_castable(from, to))),
        _ => with_numeric_type!(from, S => {
            let v = x.as_slice::<S>()?;
            with_numeric_type!(to, D => {
                Tensor::from_vec(shape, collected(v.iter().map(|&s| AsPrimitive::<D>::as_(s)), WHAT)?)
            }, _ => Err(not_castable(from, to)))
        }, _ => Err(not_castable(from, to))),
    }
}

fn not_castable(from: DType, to: DType) -> Error {
    Error::unsupported(format!("cannot cast {from} to {to}"))
}

/// The elements of a non-string tensor as text.
fn to_strings(x: &Tensor) -> Result<Vec<String>> {
    let d = x.dtype();
    if d == DType::Bool {
        return collected(
            x.as_slice::<bool>()?
                .iter()
                .map(|&b| if b { "True" } else { "False" }.to_string()),
            WHAT,
        );
    }
    if d.is_int() {
        return with_int_type!(d, T => {
            collected(x.as_slice::<T>()?.iter().map(|v| v.to_string()), WHAT)
        }, _ => Err(not_castable(d, DType::String)));
    }
    match d {
        DType::F64 => collected(
            x.as_slice::<f64>()?
                .iter()
                .map(|v| float_text(format!("{v:e}"))),
            WHAT,
        ),
        // f32 (and the half types, whose shortest text is taken at f32 precision) read back
        // to the same f32.
        _ => with_numeric_type!(d, T => {
            collected(x.as_slice::<T>()?.iter().map(|&v| {
                let v: f32 = v.as_();
                float_text(format!("{v:e}"))
            }), WHAT)
        }, _ => Err(not_castable(d, DType::String))),
    }
}

/// Python's `repr` of a float from Rust's shortest scientific form (`1.5e16`): positional
/// for exponents -4..16 (`0.0001`, `123.0`), else scientific with a signed two-digit exponent
/// (`1e-05`, `1.5e+16`).
fn float_text(sci: String) -> String {
    let Some((mantissa, exp)) = sci.split_once('e') else {
        // inf, -inf, NaN
        return sci.to_ascii_lowercase();
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return sci;
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    if !(-4..16).contains(&exp) {
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{esign}{:02}", exp.abs());
    }
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// A number from text: decimal or scientific notation, or inf / nan in any case.
fn parse_float(s: &str) -> Result<f64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    let negative = lower.starts_with('-');
    let special = match unsigned {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(v) = special {
        return Ok(if negative { -v } else { v });
    }
    t.parse::<f64>()
        .map_err(|_| Error::compute(format!("cannot cast string {s:?} to a number")))
}

fn from_strings(v: &[String], shape: Vec<usize>, to: DType) -> Result<Tensor> {
    if to == DType::Bool {
        let b = try_collected(
            v.len(),
            v.iter()
                .map(|s| match s.trim().to_ascii_lowercase().as_str() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => parse_float(s).map(|x| x != 0.0),
                }),
            WHAT,
        )?;
        return Tensor::from_vec(shape, b);
    }
    if to.is_int() {
        return with_int_type!(to, D => {
            let out = try_collected(v.len(), v.iter().map(|s| match s.trim().parse::<i128>() {
                Ok(i) => Ok(i as D),
                Err(_) => parse_float(s).map(D::from_f64),
            }), WHAT)?;
            Tensor::from_vec(shape, out)
        }, _ => Err(not_castable(DType::String, to)));
    }
    with_numeric_type!(to, D => {
        let out = try_collected(v.len(), v.iter().map(|s| parse_float(s).map(D::from_f64)), WHAT)?;
        Tensor::from_vec(shape, out)
    }, _ => Err(not_castable(DType::String, to)))
}

/// The bytes of `x` read as dtype `to` (of the same size); bytes read as bool are true when
/// nonzero.
pub fn bitcast(x: &Tensor, to: DType) -> Result<Tensor> {
    xnpu_ops::elementwise::check_bitcast(x.dtype(), to)?;
    let bytes = x
        .bytes()
        .ok_or_else(|| Error::compute("BitCast: strings cannot be bit-cast"))?;
    if to == DType::Bool {
        let v = collected(bytes.iter().map(|&b| b != 0), "BitCast's output")?;
        return Tensor::from_vec(x.shape().to_vec(), v);
    }
    Tensor::from_bytes(to, x.shape().to_vec(), bytes.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_python() {
        let t = Tensor::from_vec(
            vec![7],
            vec![1.5f32, 0.1, 1e-5, 1e16, -123.0, f32::NAN, f32::NEG_INFINITY],
        )
        .unwrap();
        let s = cast(&t, DType::String).unwrap();
        assert_eq!(
            s.strings().unwrap(),
            &["1.5", "0.1", "1e-05", "1e+16", "-123.0", "nan", "-inf"].map(String::from)
        );
    }

    #[test]
    fn strings_parse_to_numbers() {
        let t = Tensor::from_strings(
            vec![4],
            ["3.5", "1E2", "-INF", "nan"].map(String::from).to_vec(),
        )
        .unwrap();
        let f = cast(&t, DType::F32).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(&f[..3], &[3.5, 100.0, f32::NEG_INFINITY]);
        assert!(f[3].is_nan());
        let t =
            Tensor::from_strings(vec![2], vec!["9007199254740993".into(), "2.7".into()]).unwrap();
        assert_eq!(
            cast(&t, DType::I64).unwrap().to_vec::<i64>().unwrap(),
            vec![9007199254740993, 2]
        );
        let bad = Tensor::from_strings(vec![1], vec!["hello".into()]).unwrap();
        assert!(cast(&bad, DType::F32).is_err());
    }

    #[test]
    fn integers_wrap_and_bools_are_zero_or_not() {
        let t = Tensor::from_vec(vec![3], vec![200i16, -1, 0]).unwrap();
        assert_eq!(
            cast(&t, DType::I8).unwrap().to_vec::<i8>().unwrap(),
            vec![-56, -1, 0]
        );
        assert_eq!(
            cast(&t, DType::Bool).unwrap().to_vec::<bool>().unwrap(),
            vec![true, true, false]
        );
        let h = cast(&t, DType::F16).unwrap();
        assert_eq!(h.to_f64_vec().unwrap(), vec![200.0, -1.0, 0.0]);
    }

    #[test]
    fn bitcast_keeps_bits_and_checks_sizes() {
        let t = Tensor::from_vec(vec![1], vec![1.0f32]).unwrap();
        assert_eq!(
            bitcast(&t, DType::I32).unwrap().to_vec::<i32>().unwrap(),
            vec![0x3f80_0000]
        );
        assert!(bitcast(&t, DType::I64).is_err());
    }
}
