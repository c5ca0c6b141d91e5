//! Obviously-correct implementations of Conv (any rank, group, dilation, stride, pads and
//! automatic pads), MatMul (numpy's rules) and Gemm, in f64, read straight off the ONNX
//! definitions: the reference CPU backend is checked against them on every Conv, MatMul and
//! Gemm problem of the suite.

use crate::problem::{Naive, Problem};

/// A naive result: shape and values.
pub type Out = (Vec<usize>, Vec<f64>);

fn values(p: &Problem, k: usize) -> Option<(Vec<usize>, Vec<f64>)> {
    let t = p.inputs.get(k)?.tensor()?;
    Some((t.shape().to_vec(), t.to_f64_vec().ok()?))
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Every multi-index of `shape`, in row-major order.
fn indices(shape: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = shape.iter().product();
    let mut all = Vec::with_capacity(n);
    let mut idx = vec![0; shape.len()];
    for _ in 0..n {
        all.push(idx.clone());
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    all
}

fn at(v: &[f64], shape: &[usize], idx: &[usize]) -> f64 {
    let s = strides(shape);
    v[idx.iter().zip(&s).map(|(i, s)| i * s).sum::<usize>()]
}

/// The naive result of `p`, when the suite has one for its op.
pub fn evaluate(p: &Problem) -> Option<Out> {
    match p.naive.as_ref()? {
        Naive::Conv => conv(p),
        Naive::MatMul => matmul(p),
        Naive::Gemm => gemm(p),
    }
}

/// Conv as ONNX defines it: `y[n, m, o...] = b[m] + sum over c in m's group and kernel
/// positions k of x[n, c, o*s + k*d - pad_begin] * w[m, c - group_start, k]`, zero outside.
fn conv(p: &Problem) -> Option<Out> {
    let (xs, x) = values(p, 0)?;
    let (ws, w) = values(p, 1)?;
    let bias = values(p, 2).map(|(_, b)| b);
    let nd = xs.len() - 2;
    let group = p.int_attr("group", 1) as usize;
    let kernel = &ws[2..];
    let attr = |name: &str| -> Vec<usize> {
        p.ints_attr(name)
            .map(|v| v.iter().map(|&x| x as usize).collect())
            .unwrap_or_else(|| vec![1; nd])
    };
    let (stride, dil) = (attr("strides"), attr("dilations"));
    let mut pads: Vec<usize> = p
        .ints_attr("pads")
        .map(|v| v.iter().map(|&x| x as usize).collect())
        .unwrap_or_else(|| vec![0; 2 * nd]);
    let auto = p.str_attr("auto_pad").unwrap_or("NOTSET");
    let mut out_sp = Vec::new();
    for i in 0..nd {
        let eff = dil[i] * (kernel[i] - 1) + 1;
        let input = xs[2 + i];
        let o = match auto {
            "SAME_UPPER" | "SAME_LOWER" => {
                let o = input.div_ceil(stride[i]);
                let total = ((o - 1) * stride[i] + eff).saturating_sub(input);
                let small = total / 2;
                let (b, e) = if auto == "SAME_UPPER" {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                pads[i] = b;
                pads[nd + i] = e;
                o
            }
            "VALID" => {
                pads[i] = 0;
                pads[nd + i] = 0;
                (input - eff) / stride[i] + 1
            }
            _ => (input + pads[i] + pads[nd + i] - eff) / stride[i] + 1,
        };
        out_sp.push(o);
    }
    let (n, c, m) = (xs[0], xs[1], ws[0]);
    let (cg, mg) = (c / group, m / group);
    let mut ys = vec![n, m];
    ys.extend(&out_sp);
    let mut y = Vec::new();
    for oi in indices(&ys) {
        let (b, mo) = (oi[0], oi[1]);
        let g = mo / mg;
        let mut acc = bias.as_ref().map_or(0.0, |bv| bv[mo]);
        for ci in 0..cg {
            for ki in indices(kernel) {
                let mut pos = Vec::with_capacity(nd);
                let mut inside = true;
                for d in 0..nd {
                    let q = (oi[2 + d] * stride[d] + ki[d] * dil[d]) as i64 - pads[d] as i64;
                    inside &= q >= 0 && (q as usize) < xs[2 + d];
                    pos.push(q.max(0) as usize);
                }
                if !inside {
                    continue;
                }
                let mut xi = vec![b, g * cg + ci];
                xi.extend(&pos);
                let mut wi = vec![mo, ci];
                wi.extend(&ki);
                acc += at(&x, &xs, &xi) * at(&w, &ws, &wi);
            }
        }
        y.push(acc);
    }
    Some((ys, y))
}

/// numpy.matmul: a 1-D left operand gains a leading 1 and a 1-D right operand a trailing 1
/// (both removed from the result); batch dims broadcast.
fn matmul(p: &Problem) -> Option<Out> {
    let (sa, a) = values(p, 0)?;
    let (sb, b) = values(p, 1)?;
    let a2 = if sa.len() == 1 {
        vec![1, sa[0]]
    } else {
        sa.clone()
    };
    let b2 = if sb.len() == 1 {
        vec![sb[0], 1]
    } else {
        sb.clone()
    };
    let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
    let batch = crate::data::broadcast(&a2[..a2.len() - 2], &b2[..b2.len() - 2]);
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    let mut y = Vec::new();
    for oi in indices(&out_shape) {
        let nb = batch.len();
        // The operand's batch index: its own dims, size-1 dims read at 0.
        let pick = |shape: &[usize], row: usize, col: usize| -> Vec<usize> {
            let own = &shape[..shape.len() - 2];
            let lead = nb - own.len();
            let mut idx: Vec<usize> = own
                .iter()
                .enumerate()
                .map(|(d, &s)| if s == 1 { 0 } else { oi[lead + d] })
                .collect();
            idx.extend([row, col]);
            idx
        };
        let (i, j) = (oi[nb], oi[nb + 1]);
        let mut acc = 0.0;
        for kk in 0..k {
            acc += at(&a, &a2, &pick(&a2, i, kk)) * at(&b, &b2, &pick(&b2, kk, j));
        }
        y.push(acc);
    }
    let mut shape = out_shape;
    if sb.len() == 1 {
        shape.pop();
    }
    if sa.len() == 1 {
        let last = shape.len() - usize::from(sb.len() != 1) - 1;
        shape.remove(last);
    }
    Some((shape, y))
}

/// Gemm: `alpha * A' B' + beta * C`, A' and B' transposed when asked, C broadcast to (M, N).
fn gemm(p: &Problem) -> Option<Out> {
    let (sa, a) = values(p, 0)?;
    let (sb, b) = values(p, 1)?;
    let c = values(p, 2);
    let (ta, tb) = (p.int_attr("transA", 0) == 1, p.int_attr("transB", 0) == 1);
    let (alpha, beta) = (
        p.float_attr("alpha", 1.0) as f64,
        p.float_attr("beta", 1.0) as f64,
    );
    let (m, k) = if ta { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
    let n = if tb { sb[0] } else { sb[1] };
    let a_at = |i: usize, kk: usize| if ta { a[kk * m + i] } else { a[i * k + kk] };
    let b_at = |kk: usize, j: usize| if tb { b[j * k + kk] } else { b[kk * n + j] };
    let mut y = Vec::with_capacity(m * n);
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0;
            for kk in 0..k {
                acc += a_at(i, kk) * b_at(kk, j);
            }
            let mut v = alpha * acc;
            if let Some((sc, cv)) = &c {
                // Right-aligned broadcast of C to (M, N).
                let (ci, cj) = match sc.len() {
                    0 => (0, 0),
                    1 => (0, if sc[0] == 1 { 0 } else { j }),
                    _ => (
                        if sc[0] == 1 { 0 } else { i },
                        if sc[1] == 1 { 0 } else { j },
                    ),
                };
                let cn = sc.last().copied().unwrap_or(1);
                v += beta * cv[ci * if sc.len() == 2 { cn } else { 0 } + cj];
            }
            y.push(v);
        }
    }
    Some((vec![m, n], y))
}
