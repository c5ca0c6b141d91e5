//! Einsum: one loop over every combination of label values, adding each product of input
//! elements into its output element.

use xnpu_core::num::{load_floats, store_floats};
use xnpu_core::Num;
use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::nn::{Einsum, EinsumPlan};

use super::num::{numel, with_real};
use crate::args::tensor;

/// Label sizes (numpy broadcasting of size-1 dims) and, per input, the element stride each
/// label steps by (summed over repeated labels: the diagonal; 0 for a broadcast dim).
fn layout(plan: &EinsumPlan, shapes: &[&[usize]]) -> Result<(Vec<usize>, Vec<Vec<usize>>)> {
    let mut size = vec![1usize; plan.n_labels];
    let mut seen = vec![false; plan.n_labels];
    for (k, (axes, shape)) in plan.inputs.iter().zip(shapes).enumerate() {
        for (&l, &d) in axes.iter().zip(shape.iter()) {
            if !seen[l] || size[l] == 1 {
                size[l] = d;
                seen[l] = true;
            } else if d != size[l] && d != 1 {
                return Err(Error::compute(format!(
                    "einsum input {k} (shape {shape:?}) has a dim of size {d} where the same subscript has size {}",
                    size[l]
                )));
            }
        }
    }
    let mut strides = Vec::with_capacity(shapes.len());
    for (axes, shape) in plan.inputs.iter().zip(shapes) {
        let mut st = vec![0usize; plan.n_labels];
        let mut s = 1usize;
        for (&l, &d) in axes.iter().zip(shape.iter()).rev() {
            if d != 1 {
                st[l] += s;
            }
            s *= d;
        }
        strides.push(st);
    }
    Ok((size, strides))
}

fn einsum_typed<T: Num>(
    plan: &EinsumPlan,
    xs: &[Vec<T>],
    shapes: &[&[usize]],
) -> Result<(Vec<T>, Vec<usize>)> {
    let (size, strides) = layout(plan, shapes)?;
    let out_shape: Vec<usize> = plan.output.iter().map(|&l| size[l]).collect();
    // Checked first: the strides below are partial products of it.
    let mut out = buf::filled(numel(&out_shape)?, T::default(), "Einsum's output")?;
    let mut ostride = vec![0usize; plan.n_labels];
    let mut s = 1;
    for (&l, &d) in plan.output.iter().zip(&out_shape).rev() {
        ostride[l] = s;
        s *= d;
    }
    let total = numel(&size)?;
    if total == 0 {
        return Ok((out, out_shape));
    }
    let nl = plan.n_labels;
    let mut idx = vec![0usize; nl];
    let mut offs = vec![0usize; xs.len()];
    let mut ooff = 0usize;
    for _ in 0..total {
        let mut p = xs[0][offs[0]];
        for (x, &o) in xs.iter().zip(&offs).skip(1) {
            p = p.times(x[o]);
        }
        out[ooff] = out[ooff].plus(p);
        // Next combination: the last label moves fastest.
        for l in (0..nl).rev() {
            idx[l] += 1;
            if idx[l] < size[l] {
                for (o, st) in offs.iter_mut().zip(&strides) {
                    *o += st[l];
                }
                ooff += ostride[l];
                break;
            }
            idx[l] = 0;
            for (o, st) in offs.iter_mut().zip(&strides) {
                *o -= st[l] * (size[l] - 1);
            }
            ooff -= ostride[l] * (size[l] - 1);
        }
    }
    Ok((out, out_shape))
}

pub fn einsum(op: &Einsum, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let ts: Vec<&Tensor> = (0..inputs.len())
        .map(|i| tensor(inputs, i))
        .collect::<Result<_>>()?;
    if ts.is_empty() {
        return Err(Error::compute("Einsum needs at least one input"));
    }
    let dtype = ts[0].dtype();
    if let Some(t) = ts.iter().find(|t| t.dtype() != dtype) {
        return Err(Error::compute(format!(
            "Einsum inputs must have one dtype, got {dtype} and {}",
            t.dtype()
        )));
    }
    let shapes: Vec<&[usize]> = ts.iter().map(|t| t.shape()).collect();
    let ranks: Vec<usize> = shapes.iter().map(|s| s.len()).collect();
    let plan = op.plan(&ranks)?;
    let out = with_real!(dtype, R => {
        let xs: Vec<Vec<R>> = ts.iter().map(|t| load_floats::<R>(t)).collect::<Result<_>>()?;
        let (v, shape) = einsum_typed(&plan, &xs, &shapes)?;
        store_floats(dtype, shape, v)?
    }, _ => xnpu_core::with_int_type!(dtype, T => {
        let xs: Vec<Vec<T>> = ts.iter().map(|t| t.to_vec::<T>()).collect::<Result<_>>()?;
        let (v, shape) = einsum_typed(&plan, &xs, &shapes)?;
        Tensor::from_vec(shape, v)?
    }, _ => return Err(Error::compute(format!("Einsum does not support {dtype}")))));
    Ok(vec![out.into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(eq: &str, xs: &[(Vec<f64>, Vec<usize>)]) -> (Vec<f64>, Vec<usize>) {
        let op = Einsum::parse(eq).unwrap();
        let ranks: Vec<usize> = xs.iter().map(|x| x.1.len()).collect();
        let plan = op.plan(&ranks).unwrap();
        let vals: Vec<Vec<f64>> = xs.iter().map(|x| x.0.clone()).collect();
        let shapes: Vec<&[usize]> = xs.iter().map(|x| x.1.as_slice()).collect();
        einsum_typed(&plan, &vals, &shapes).unwrap()
    }

    #[test]
    fn matmul_trace_and_diagonal() {
        let a = (vec![1.0, 2.0, 3.0, 4.0], vec![2, 2]);
        let b = (vec![5.0, 6.0, 7.0, 8.0], vec![2, 2]);
        assert_eq!(
            run("ij,jk->ik", &[a.clone(), b]),
            (vec![19.0, 22.0, 43.0, 50.0], vec![2, 2])
        );
        assert_eq!(run("ii", std::slice::from_ref(&a)), (vec![5.0], vec![]));
        assert_eq!(run("ii->i", &[a]), (vec![1.0, 4.0], vec![2]));
    }

    #[test]
    fn size_one_dims_broadcast() {
        let a = (vec![1.0, 2.0], vec![2, 1]);
        let b = (vec![10.0, 20.0, 30.0], vec![1, 3]);
        let (v, s) = run("...,...", &[a, b]);
        assert_eq!(s, vec![2, 3]);
        assert_eq!(v, vec![10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
    }

    #[test]
    fn mismatched_sizes_are_an_error() {
        let op = Einsum::parse("i,i").unwrap();
        let plan = op.plan(&[1, 1]).unwrap();
        let xs = vec![vec![1.0f64; 2], vec![1.0f64; 3]];
        assert!(einsum_typed(&plan, &xs, &[&[2], &[3]]).is_err());
    }
}
