//! Two-input kernels with numpy-style broadcasting: arithmetic, Pow, Mod, bit and logic ops,
//! comparisons.

use xnpu_core::{
    with_int_type, with_numeric_type, with_pod_type, DType, Elem, Error, Result, Tensor,
};
use xnpu_ops::elementwise::{Binary, BinaryKind as B};

use super::broadcast::zip2;
use super::unary::not_defined;
use xnpu_core::num::{Bits, Num};

/// `f` over the elements of `a` (type `S`) and `b` (type `T`), broadcast against each other.
pub fn zip_tensors<S: Elem, T: Elem, O: Elem>(
    a: &Tensor,
    b: &Tensor,
    mut f: impl FnMut(S, T) -> Result<O>,
) -> Result<Tensor> {
    let (av, bv) = (a.as_slice::<S>()?, b.as_slice::<T>()?);
    let (shape, v) = zip2((a.shape(), &av), (b.shape(), &bv), |x, y| f(*x, *y))?;
    Tensor::from_vec(shape, v)
}

/// `b` reshaped for the opset 1–6 `broadcast=1, axis` form: its dims placed at `a`'s dims
/// `axis..axis+rank(b)`, ones elsewhere.
fn legacy_align(a: &Tensor, b: &Tensor, axis: i64) -> Result<Tensor> {
    let (ra, rb) = (a.rank() as i64, b.rank() as i64);
    let start = if axis < 0 { axis + ra } else { axis };
    if start < 0 || start.saturating_add(rb) > ra {
        return Err(Error::compute(format!(
            "legacy broadcast: B of shape {:?} does not fit A of shape {:?} at axis {axis}",
            b.shape(),
            a.shape()
        )));
    }
    let mut shape = vec![1; start as usize];
    shape.extend_from_slice(b.shape());
    shape.resize(ra as usize, 1);
    b.reshape(shape)
}

pub fn binary(op: &Binary, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let kind = op.kind;
    let name = kind.name();
    let aligned;
    let b = match op.legacy_axis {
        Some(axis) => {
            aligned = legacy_align(a, b, axis)?;
            &aligned
        }
        None => b,
    };
    let d = a.dtype();
    if kind != B::Pow && b.dtype() != d {
        return Err(Error::compute(format!(
            "{name} needs inputs of the same dtype, got {d} and {}",
            b.dtype()
        )));
    }
    let out = match kind {
        B::Pow => pow(a, b),
        B::Add => {
            with_numeric_type!(d, T => zip_tensors(a, b, |x: T, y: T| Ok(x.plus(y))), _ => Err(not_defined(name, d)))
        }
        B::Sub => {
            with_numeric_type!(d, T => zip_tensors(a, b, |x: T, y: T| Ok(x.minus(y))), _ => Err(not_defined(name, d)))
        }
        B::Mul => {
            with_numeric_type!(d, T => zip_tensors(a, b, |x: T, y: T| Ok(x.times(y))), _ => Err(not_defined(name, d)))
        }
        B::Div => {
            with_numeric_type!(d, T => zip_tensors(a, b, |x: T, y: T| x.divide(y)), _ => Err(not_defined(name, d)))
        }
        B::Mod { fmod } => {
            with_numeric_type!(d, T => zip_tensors(a, b, |x: T, y: T| x.modulo(y, fmod)), _ => Err(not_defined(name, d)))
        }
        B::BitShift { left } => {
            with_int_type!(d, T => zip_tensors(a, b, |x: T, y: T| Ok(x.shift(y, left))), _ => Err(not_defined(name, d)))
        }
        B::BitwiseAnd => {
            with_int_type!(d, T => zip_tensors(a, b, |x: T, y: T| Ok(x.and(y))), _ => Err(not_defined(name, d)))
        }
        B::BitwiseOr => {
            with_int_type!(d, T => zip_tensors(a, b, |x: T, y: T| Ok(x.or(y))), _ => Err(not_defined(name, d)))
        }
        B::BitwiseXor => {
            with_int_type!(d, T => zip_tensors(a, b, |x: T, y: T| Ok(x.xor(y))), _ => Err(not_defined(name, d)))
        }
        B::And | B::Or | B::Xor => {
            if d != DType::Bool {
                return Err(not_defined(name, d));
            }
            zip_tensors(a, b, |x: bool, y: bool| {
                Ok(match kind {
                    B::And => x && y,
                    B::Or => x || y,
                    _ => x != y,
                })
            })
        }
        B::Equal => with_pod_type!(d, T => zip_tensors(a, b, |x: T, y: T| Ok(x == y)), _ => {
            let (av, bv) = (a.strings()?, b.strings()?);
            let (shape, v) = zip2((a.shape(), av), (b.shape(), bv), |x, y| Ok(x == y))?;
            Tensor::from_vec(shape, v)
        }),
        B::Less | B::Greater | B::LessOrEqual | B::GreaterOrEqual => with_numeric_type!(d, T => {
            zip_tensors(a, b, |x: T, y: T| Ok(match kind {
                B::Less => x < y,
                B::Greater => x > y,
                B::LessOrEqual => x <= y,
                _ => x >= y,
            }))
        }, _ => Err(not_defined(name, d))),
    }?;
    if op.legacy_axis.is_some() && out.shape() != a.shape() {
        return Err(Error::compute(format!(
            "legacy broadcast: B of shape {:?} does not broadcast to A of shape {:?}",
            b.shape(),
            a.shape()
        )));
    }
    Ok(out)
}

/// `x ** n` for an integer `x`: exact (wrapping) for `n >= 0`, else `x.powf(n)` truncated.
fn int_pow<T: Num>(x: T, n: i64) -> T {
    if n < 0 {
        return T::from_f64(x.to_f64().powf(n as f64));
    }
    let (mut base, mut n, mut acc) = (x, n as u64, T::ONE);
    while n > 0 {
        if n & 1 == 1 {
            acc = acc.times(base);
        }
        base = base.times(base);
        n >>= 1;
    }
    acc
}

/// Pow: the result has the base's dtype; the exponent may have any numeric dtype.
fn pow(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let d = a.dtype();
    if d.is_int() && b.dtype().is_int() {
        let e = Tensor::from_vec(b.shape().to_vec(), b.to_i64_vec()?)?;
        return with_int_type!(d, T => zip_tensors(a, &e, |x: T, n: i64| Ok(int_pow(x, n))),
            _ => Err(not_defined("Pow", d)));
    }
    if !b.dtype().is_numeric() {
        return Err(not_defined("Pow with an exponent", b.dtype()));
    }
    let e = Tensor::from_vec(b.shape().to_vec(), b.to_f64_vec()?)?;
    with_numeric_type!(d, T => zip_tensors(a, &e, |x: T, y: f64| Ok(T::from_f64(x.to_f64().powf(y)))),
        _ => Err(not_defined("Pow", d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t<T: Elem>(shape: &[usize], v: Vec<T>) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v).unwrap()
    }

    #[test]
    fn integer_division_by_zero_is_an_error() {
        let err = binary(
            &Binary::new(B::Div),
            &t(&[2], vec![1i32, 2]),
            &t(&[2], vec![1i32, 0]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("division by zero"), "{err}");
        let q = binary(
            &Binary::new(B::Div),
            &t(&[2], vec![-7i32, 7]),
            &t(&[], vec![2i32]),
        )
        .unwrap();
        assert_eq!(q.to_vec::<i32>().unwrap(), vec![-3, 3]);
    }

    #[test]
    fn mixed_dtypes_are_refused_except_for_pow() {
        assert!(binary(
            &Binary::new(B::Add),
            &t(&[1], vec![1.0f32]),
            &t(&[1], vec![1i64])
        )
        .is_err());
        let p = binary(
            &Binary::new(B::Pow),
            &t(&[2], vec![2.0f32, 3.0]),
            &t(&[1], vec![3i64]),
        )
        .unwrap();
        assert_eq!(p.to_vec::<f32>().unwrap(), vec![8.0, 27.0]);
        let p = binary(
            &Binary::new(B::Pow),
            &t(&[1], vec![3i64]),
            &t(&[1], vec![40u32]),
        )
        .unwrap();
        assert_eq!(p.to_vec::<i64>().unwrap(), vec![3i64.wrapping_pow(40)]);
    }

    #[test]
    fn legacy_axis_aligns_b_inside_a() {
        let op = Binary {
            kind: B::Add,
            legacy_axis: Some(1),
        };
        let a = t(&[2, 3, 2], vec![0i32; 12]);
        let b = t(&[3], vec![1i32, 2, 3]);
        let r = binary(&op, &a, &b).unwrap();
        assert_eq!(
            r.to_vec::<i32>().unwrap(),
            vec![1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]
        );
        assert!(binary(
            &Binary {
                kind: B::Add,
                legacy_axis: Some(2)
            },
            &a,
            &b
        )
        .is_err());
    }

    #[test]
    fn strings_compare_equal() {
        let a = Tensor::from_strings(vec![2], vec!["a".into(), "b".into()]).unwrap();
        let b = Tensor::from_strings(vec![], vec!["b".into()]).unwrap();
        let r = binary(&Binary::new(B::Equal), &a, &b).unwrap();
        assert_eq!(r.to_vec::<bool>().unwrap(), vec![false, true]);
    }
}
