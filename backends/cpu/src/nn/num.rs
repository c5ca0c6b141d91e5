//! What the kernels of this family share beyond `xnpu_core::num`: the choice of a float
//! compute precision (`with_real!`), the matrix product loops, and integer tensor helpers.

use xnpu_core::{DType, Error, Num, Result, Tensor};

/// Runs `$body` with `$R` bound to the compute precision of float dtype `$dtype` (f64 for
/// f64, f32 for the others: see `xnpu_core::num::load_floats` and `store_floats`);
/// evaluates `$other` for non-float dtypes.
macro_rules! with_real {
    ($dtype:expr, $R:ident => $body:expr, _ => $other:expr) => {
        match $dtype {
            xnpu_core::DType::F64 => {
                type $R = f64;
                $body
            }
            xnpu_core::DType::F32 | xnpu_core::DType::F16 | xnpu_core::DType::Bf16 => {
                type $R = f32;
                $body
            }
            _ => $other,
        }
    };
}
pub(crate) use with_real;

/// `c[m, n] += sum_k a[m, k] * b[k, n]` for row-major `a` `[m, k]`, `b` `[k, n]` and `c`
/// `[m, n]`, in i-k-j order so that the inner loop runs along contiguous rows.
pub fn matmul_acc<T: Num>(a: &[T], b: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    debug_assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    if n == 0 {
        return;
    }
    for (i, c_row) in c.chunks_exact_mut(n).take(m).enumerate() {
        let a_row = &a[i * k..(i + 1) * k];
        for (&aik, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
            for (cj, &bj) in c_row.iter_mut().zip(b_row) {
                *cj = cj.plus(aik.times(bj));
            }
        }
    }
}

/// `c[m, n] = sum_k a[m, k] * bt[n, k]` for row-major `a` `[m, k]` and `bt` `[n, k]` (B given
/// transposed): a dot product of contiguous rows per output element.
pub fn matmul_bt<T: Num>(a: &[T], bt: &[T], c: &mut [T], m: usize, k: usize, n: usize) {
    debug_assert!(a.len() >= m * k && bt.len() >= k * n && c.len() >= m * n);
    for i in 0..m {
        let a_row = &a[i * k..(i + 1) * k];
        for j in 0..n {
            c[i * n + j] = dot(a_row, &bt[j * k..(j + 1) * k]);
        }
    }
}

/// The dot product of two equal-length slices, summed in 8 interleaved lanes (so that it
/// vectorizes).
pub fn dot<T: Num>(a: &[T], b: &[T]) -> T {
    const L: usize = 8;
    let mut lanes = [T::default(); L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..L {
            lanes[l] = lanes[l].plus(x[l].times(y[l]));
        }
    }
    let mut s = T::default();
    for v in lanes {
        s = s.plus(v);
    }
    for (x, y) in ra.iter().zip(rb) {
        s = s.plus(x.times(*y));
    }
    s
}

/// The row-major transpose of a `[rows, cols]` matrix.
pub fn transpose<T: Copy>(a: &[T], rows: usize, cols: usize) -> Result<Vec<T>> {
    let n = xnpu_linalg::buf::count(&[rows, cols], "a transposed matrix")?;
    let mut out = xnpu_linalg::buf::reserved(n, "a transposed matrix")?;
    for j in 0..cols {
        for i in 0..rows {
            out.push(a[i * cols + j]);
        }
    }
    Ok(out)
}

/// The values of an integer tensor as i32 (u8, i8, u16, i16, i32).
pub fn ints_i32(t: &Tensor) -> Result<Vec<i32>> {
    use xnpu_linalg::buf::collected;
    const WHAT: &str = "integers widened to i32";
    Ok(match t.dtype() {
        DType::U8 => collected(t.as_slice::<u8>()?.iter().map(|&v| v as i32), WHAT)?,
        DType::I8 => collected(t.as_slice::<i8>()?.iter().map(|&v| v as i32), WHAT)?,
        DType::U16 => collected(t.as_slice::<u16>()?.iter().map(|&v| v as i32), WHAT)?,
        DType::I16 => collected(t.as_slice::<i16>()?.iter().map(|&v| v as i32), WHAT)?,
        DType::I32 => t.to_vec::<i32>()?,
        d if xnpu_core::narrow::is_narrow_int(d) => ints_i32(&xnpu_core::narrow::widen(t)?)?,
        d => {
            return Err(Error::compute(format!(
                "expected a 2, 4, 8, 16 or 32-bit integer tensor, got {d}"
            )))
        }
    })
}

/// The representable range of an integer dtype, as f64.
pub fn int_range(d: DType) -> Result<(f64, f64)> {
    Ok(match d {
        DType::U8 => (0.0, 255.0),
        DType::I8 => (-128.0, 127.0),
        DType::U16 => (0.0, 65535.0),
        DType::I16 => (-32768.0, 32767.0),
        DType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DType::U32 => (0.0, u32::MAX as f64),
        d if xnpu_core::narrow::is_narrow_int(d) => {
            let (lo, hi) = xnpu_core::narrow::int_range(d).unwrap_or_default();
            (lo as f64, hi as f64)
        }
        d => {
            return Err(Error::unsupported(format!(
                "quantized type {d} is not supported"
            )))
        }
    })
}

/// A tensor of integer dtype `d` from f64 values that are already integral and in range.
pub fn ints_from_f64(d: DType, shape: Vec<usize>, v: &[f64]) -> Result<Tensor> {
    if xnpu_core::narrow::is_narrow_int(d) {
        return xnpu_core::narrow::from_codes(d, shape, |i| {
            xnpu_core::narrow::int_code_wrapping(d, v[i] as i64)
        });
    }
    xnpu_core::with_int_type!(d, T => {
        Tensor::from_vec(shape, xnpu_linalg::buf::collected(v.iter().map(|&x| T::from_f64(x)), "an integer output")?)
    }, _ => Err(Error::compute(format!("expected an integer dtype, got {d}"))))
}

/// Checks that the product of `dims` does not overflow and returns it.
pub fn numel(dims: &[usize]) -> Result<usize> {
    xnpu_core::shape::checked_numel(dims).map_err(|e| Error::compute(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_acc_accumulates_into_c() {
        let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]; // [2, 3]
        let b = [1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0]; // [3, 2]
        let mut c = [1.0f32; 4];
        matmul_acc(&a, &b, &mut c, 2, 3, 2);
        assert_eq!(c, [5.0, 6.0, 11.0, 12.0]);
    }

    #[test]
    fn transposed_b_gives_the_same_product() {
        let a: Vec<f64> = (0..2 * 19).map(|v| v as f64).collect();
        let b: Vec<f64> = (0..19 * 3).map(|v| (v % 7) as f64).collect();
        let mut c1 = vec![0.0; 6];
        matmul_acc(&a, &b, &mut c1, 2, 19, 3);
        let mut c2 = vec![0.0; 6];
        matmul_bt(&a, &transpose(&b, 19, 3).unwrap(), &mut c2, 2, 19, 3);
        assert_eq!(c1, c2);
    }

    #[test]
    fn integer_products_wrap() {
        let mut c = [0i8];
        matmul_acc(&[100i8], &[3i8], &mut c, 1, 1, 1);
        assert_eq!(c[0], 100i8.wrapping_mul(3));
    }
}
