//! Det: LU decomposition with partial pivoting, in f64.

use xnpu_core::num::store_floats;
use xnpu_core::Num;
use xnpu_core::{Error, Result, Value};

use super::num::{numel, with_real};
use crate::args::tensor;

/// The determinant of the row-major `n x n` matrix `a` (consumed as scratch).
fn det(mut a: Vec<f64>, n: usize) -> f64 {
    let mut d = 1.0;
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i * n + col].abs().total_cmp(&a[j * n + col].abs()))
            .unwrap_or(col);
        if a[pivot * n + col] == 0.0 {
            return 0.0;
        }
        if pivot != col {
            for k in 0..n {
                a.swap(col * n + k, pivot * n + k);
            }
            d = -d;
        }
        let p = a[col * n + col];
        d *= p;
        for r in col + 1..n {
            let f = a[r * n + col] / p;
            if f != 0.0 {
                for k in col..n {
                    a[r * n + k] -= f * a[col * n + k];
                }
            }
        }
    }
    d
}

pub fn run(inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let s = x.shape();
    if s.len() < 2 || s[s.len() - 1] != s[s.len() - 2] {
        return Err(Error::compute(format!(
            "Det needs square matrices [*, M, M], got shape {s:?}"
        )));
    }
    let n = s[s.len() - 1];
    let batch = &s[..s.len() - 2];
    let count = numel(batch)?;
    let dtype = x.dtype();
    let out = with_real!(dtype, R => {
        let v = x.to_f64_vec()?;
        // An empty matrix's determinant is 1: a batch of them is an output from no input.
        let dets = xnpu_linalg::buf::collected(
            (0..count).map(|b| R::from_f64(det(v[b * n * n..(b + 1) * n * n].to_vec(), n))),
            "Det's output",
        )?;
        store_floats(dtype, batch.to_vec(), dets)?
    }, _ => return Err(Error::compute(format!("Det does not support {dtype}"))));
    Ok(vec![out.into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pivoting_keeps_the_sign() {
        assert_eq!(det(vec![0.0, 1.0, 1.0, 0.0], 2), -1.0);
        assert!((det(vec![2.0, 1.0, 0.0, 1.0, 3.0, 1.0, 0.0, 1.0, 4.0], 3) - 18.0).abs() < 1e-12);
        assert_eq!(det(vec![], 0), 1.0);
    }
}
