//! Where.

use xnpu_core::{with_pod_type, DType, Elem, Error, Result, Tensor};

use super::broadcast::zip3;

fn pick<T: Elem>(c: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let (cv, xv, yv) = (
        c.as_slice::<bool>()?,
        x.as_slice::<T>()?,
        y.as_slice::<T>()?,
    );
    let (shape, v) = zip3(
        (c.shape(), &cv),
        (x.shape(), &xv),
        (y.shape(), &yv),
        |c, x, y| {
            if *c {
                *x
            } else {
                *y
            }
        },
    )?;
    Tensor::from_vec(shape, v)
}

/// `x` where `cond`, else `y`, all three broadcast together.
pub fn select(cond: &Tensor, x: &Tensor, y: &Tensor) -> Result<Tensor> {
    if cond.dtype() != DType::Bool {
        return Err(Error::compute(format!(
            "Where needs a bool condition, got {}",
            cond.dtype()
        )));
    }
    let d = x.dtype();
    if y.dtype() != d {
        return Err(Error::compute(format!(
            "Where needs X and Y of the same dtype, got {d} and {}",
            y.dtype()
        )));
    }
    with_pod_type!(d, T => pick::<T>(cond, x, y), _ => {
        let cv = cond.as_slice::<bool>()?;
        let (shape, v) = zip3(
            (cond.shape(), &cv),
            (x.shape(), x.strings()?),
            (y.shape(), y.strings()?),
            |c, x, y| if *c { x.clone() } else { y.clone() },
        )?;
        Tensor::from_strings(shape, v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_picks_with_broadcast() {
        let c = Tensor::from_vec(vec![2, 1], vec![true, false]).unwrap();
        let x = Tensor::from_vec(vec![2], vec![1i64, 2]).unwrap();
        let y = Tensor::scalar(9i64);
        let r = select(&c, &x, &y).unwrap();
        assert_eq!(r.shape(), &[2, 2]);
        assert_eq!(r.to_vec::<i64>().unwrap(), vec![1, 2, 9, 9]);
        assert!(select(&x, &x, &y).is_err());
    }
}
