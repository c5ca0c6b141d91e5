//! Max, Min, Sum, Mean over any number of broadcast inputs.

use xnpu_core::broadcast::{broadcast_shapes, BroadcastIndex};
use xnpu_core::{with_numeric_type, Elem, Error, Result, Tensor};
use xnpu_linalg::buf;
use xnpu_ops::elementwise::VariadicKind as V;

use super::unary::not_defined;
use xnpu_core::Num;

/// Folds the inputs with `f`, all broadcast at once to the output shape. The output is
/// allocated once, fallibly: folding pairwise would make intermediate results that can be
/// far larger than the output (`[N, 1, 1]`, `[1, N, 1]`, `[1, 1, 0]` make `N^2` values on
/// the way to none).
fn fold<T: Elem>(
    inputs: &[&Tensor],
    name: &str,
    f: impl Fn(T, T) -> T,
) -> Result<(Vec<usize>, Vec<T>)> {
    let (first, rest) = inputs
        .split_first()
        .ok_or_else(|| Error::compute("at least one input is required"))?;
    let shapes: Vec<&[usize]> = inputs.iter().map(|t| t.shape()).collect();
    let shape = broadcast_shapes(&shapes)?;
    let v = first.as_slice::<T>()?;
    let mut acc = buf::collected(
        BroadcastIndex::new(first.shape(), &shape)?.map(|i| v[i]),
        &format!("{name}'s output"),
    )?;
    for t in rest {
        let v = t.as_slice::<T>()?;
        for (a, i) in acc.iter_mut().zip(BroadcastIndex::new(t.shape(), &shape)?) {
            *a = f(*a, v[i]);
        }
    }
    Ok((shape, acc))
}

pub fn variadic(kind: V, inputs: &[&Tensor]) -> Result<Tensor> {
    let d = inputs
        .first()
        .ok_or_else(|| Error::compute(format!("{} needs at least one input", kind.name())))?
        .dtype();
    if let Some(t) = inputs.iter().find(|t| t.dtype() != d) {
        return Err(Error::compute(format!(
            "{} needs inputs of the same dtype, got {d} and {}",
            kind.name(),
            t.dtype()
        )));
    }
    with_numeric_type!(d, T => {
        let (shape, v) = match kind {
            V::Max => fold(inputs, kind.name(), T::max_nan)?,
            V::Min => fold(inputs, kind.name(), T::min_nan)?,
            V::Sum => fold(inputs, kind.name(), T::plus)?,
            V::Mean => {
                let (shape, sum) = fold(inputs, kind.name(), T::plus)?;
                let n = T::from_f64(inputs.len() as f64);
                let mut mean = sum;
                for s in &mut mean {
                    *s = s.divide(n)?;
                }
                (shape, mean)
            }
        };
        Tensor::from_vec(shape, v)
    }, _ => Err(not_defined(kind.name(), d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_broadcast_together() {
        let a = Tensor::from_vec(vec![2, 1], vec![1.0f32, 5.0]).unwrap();
        let b = Tensor::from_vec(vec![3], vec![2.0f32, 3.0, 4.0]).unwrap();
        let c = Tensor::scalar(3.0f32);
        let m = variadic(V::Max, &[&a, &b, &c]).unwrap();
        assert_eq!(m.shape(), &[2, 3]);
        assert_eq!(
            m.to_vec::<f32>().unwrap(),
            vec![3.0, 3.0, 4.0, 5.0, 5.0, 5.0]
        );
        let mean = variadic(V::Mean, &[&a, &b]).unwrap();
        assert_eq!(
            mean.to_vec::<f32>().unwrap(),
            vec![1.5, 2.0, 2.5, 3.5, 4.0, 4.5]
        );
    }

    #[test]
    fn dtypes_must_agree() {
        let a = Tensor::scalar(1.0f32);
        let b = Tensor::scalar(1i32);
        assert!(variadic(V::Sum, &[&a, &b]).is_err());
        assert!(variadic(V::Sum, &[]).is_err());
    }
}
