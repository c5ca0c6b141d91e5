//! Col2Im and ConvTranspose: a matrix product into columns, then columns scattered (added)
//! into the image.

use num_traits::Float;
use xnpu_core::num::{load_floats, store_floats};
use xnpu_core::Num;
use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_linalg::buf;
use xnpu_ops::nn::{Col2Im, ConvTranspose};

use super::num::{matmul_acc, numel, with_real};
use crate::args::{opt_tensor, tensor};

/// Where blocks of a col2im sit: the image, the kernel and the grid of block positions.
pub struct Fold<'a> {
    pub image: &'a [usize],
    pub kernel: &'a [usize],
    pub grid: &'a [usize],
    pub strides: &'a [usize],
    pub dilations: &'a [usize],
    pub pads_begin: &'a [i64],
}

/// Adds `col` (`[channels * prod(kernel), prod(grid)]`) into `image` (`[channels,
/// prod(image)]`): the value for channel c, kernel position r and block position p goes to
/// `p * stride + r * dilation - pad_begin`, dropped when outside the image.
pub fn col2im_add<T: Num>(f: &Fold<'_>, channels: usize, col: &[T], image: &mut [T]) -> Result<()> {
    let nd = f.image.len();
    let kprod = numel(f.kernel)?;
    let l = numel(f.grid)?;
    let sp = numel(f.image)?;
    let fits = |n: &[usize], len: usize| buf::count(n, "col2im").ok() == Some(len);
    if !fits(&[channels, kprod, l], col.len()) || !fits(&[channels, sp], image.len()) {
        return Err(Error::compute(format!(
            "col2im: {} columns for {channels} channels x {kprod} kernel positions x {l} blocks",
            col.len()
        )));
    }
    // Positions in i128: a block's start is its index (a usize) times a stride (a usize)
    // less a pad, which an i64 does not always hold; every term here is below 2^64.
    let mut base = buf::zeroed::<i128>(
        buf::count(&[l, nd], "the block positions")?,
        "the block positions",
    )?;
    for p in 0..l {
        let mut rem = p;
        for d in (0..nd).rev() {
            base[p * nd + d] =
                (rem % f.grid[d]) as i128 * f.strides[d] as i128 - i128::from(f.pads_begin[d]);
            rem /= f.grid[d];
        }
    }
    let mut koff = vec![0i128; nd];
    for c in 0..channels {
        let img = &mut image[c * sp..][..sp];
        for r in 0..kprod {
            let mut rem = r;
            for d in (0..nd).rev() {
                koff[d] = (rem % f.kernel[d]) as i128 * f.dilations[d] as i128;
                rem /= f.kernel[d];
            }
            let crow = &col[(c * kprod + r) * l..][..l];
            for (p, &v) in crow.iter().enumerate() {
                let mut idx = 0usize;
                let mut inside = true;
                for d in 0..nd {
                    let pos = base[p * nd + d] + koff[d];
                    if pos < 0 || pos >= f.image[d] as i128 {
                        inside = false;
                        break;
                    }
                    idx = idx * f.image[d] + pos as usize;
                }
                if inside {
                    img[idx] = img[idx].plus(v);
                }
            }
        }
    }
    Ok(())
}

fn conv_transpose_typed<R: Num + Float>(
    op: &ConvTranspose,
    x: &[R],
    xsh: &[usize],
    w: &[R],
    wsh: &[usize],
    b: Option<&[R]>,
) -> Result<(Vec<R>, Vec<usize>)> {
    if xsh.len() < 3 || wsh.len() != xsh.len() {
        return Err(Error::compute(format!(
            "ConvTranspose needs X [N, C, spatial...] and W [C, M/group, kernel...] of the same rank, got {xsh:?} and {wsh:?}"
        )));
    }
    let group = op.group;
    let (n, c) = (xsh[0], xsh[1]);
    if wsh[0] != c || c % group != 0 {
        return Err(Error::compute(format!(
            "X has {c} channels, W {wsh:?} must have as many in dim 0, a multiple of group {group}"
        )));
    }
    let (cg, mg) = (c / group, wsh[1]);
    let m = mg.checked_mul(group).ok_or_else(|| {
        Error::compute(format!(
            "W {wsh:?} with group {group} has more output channels than a usize counts"
        ))
    })?;
    let g = op.geometry(&xsh[2..], &wsh[2..])?;
    let kprod = numel(&g.kernel)?;
    let sp_in = numel(&xsh[2..])?;
    let sp_out = numel(&g.out)?;
    let mut out_shape = vec![n, m];
    out_shape.extend(&g.out);
    let mut out = buf::filled(numel(&out_shape)?, R::default(), "ConvTranspose's output")?;
    // The weight holds `C * rows` values: no overflow.
    let rows = mg * kprod;
    let fold = Fold {
        image: &g.out,
        kernel: &g.kernel,
        grid: &xsh[2..],
        strides: &g.strides,
        dilations: &g.dilations,
        pads_begin: &g.pads_begin,
    };
    let mut col = buf::filled(
        buf::count(&[rows, sp_in], "ConvTranspose's columns")?,
        R::default(),
        "ConvTranspose's columns",
    )?;
    for ni in 0..n {
        for gi in 0..group {
            // col[(m', r), p] = sum_c w[gi * cg + c, (m', r)] * x[ni, gi * cg + c, p]
            col.iter_mut().for_each(|v| *v = R::default());
            let wg = &w[gi * cg * rows..][..cg * rows];
            let xg = &x[(ni * c + gi * cg) * sp_in..][..cg * sp_in];
            let wt = super::num::transpose(wg, cg, rows)?;
            matmul_acc(&wt, xg, &mut col, rows, cg, sp_in);
            let img = &mut out[(ni * m + gi * mg) * sp_out..][..mg * sp_out];
            col2im_add(&fold, mg, &col, img)?;
        }
    }
    if let Some(b) = b {
        if b.len() != m {
            return Err(Error::compute(format!(
                "the bias has {} values, expected {m}",
                b.len()
            )));
        }
        if sp_out > 0 {
            for (i, chunk) in out.chunks_exact_mut(sp_out).enumerate() {
                let bv = b[i % m];
                chunk.iter_mut().for_each(|v| *v = v.plus(bv));
            }
        }
    }
    Ok((out, out_shape))
}

pub fn conv_transpose(op: &ConvTranspose, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let w = tensor(inputs, 1)?;
    let b = opt_tensor(inputs, 2)?;
    let dtype = x.dtype();
    let out = with_real!(dtype, R => {
        let bv = b.map(load_floats::<R>).transpose()?;
        let (v, shape) = conv_transpose_typed::<R>(op, &load_floats::<R>(x)?, x.shape(), &load_floats::<R>(w)?, w.shape(), bv.as_deref())?;
        store_floats(dtype, shape, v)?
    }, _ => return Err(Error::compute(format!("ConvTranspose does not support {dtype}"))));
    Ok(vec![out.into()])
}

fn dims_of(t: &Tensor, what: &str) -> Result<Vec<usize>> {
    t.to_i64_vec()?
        .iter()
        .map(|&d| {
            usize::try_from(d)
                .map_err(|_| Error::compute(format!("{what} must not be negative, got {d}")))
        })
        .collect()
}

fn per_dim(v: &[usize], n: usize, default: usize, what: &str) -> Result<Vec<usize>> {
    match v.len() {
        0 => Ok(vec![default; n]),
        l if l == n => Ok(v.to_vec()),
        l => Err(Error::compute(format!(
            "{what} has {l} values, expected {n}"
        ))),
    }
}

pub fn col2im(op: &Col2Im, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let image = dims_of(tensor(inputs, 1)?, "image_shape")?;
    let block = dims_of(tensor(inputs, 2)?, "block_shape")?;
    let nd = image.len();
    if block.len() != nd || nd == 0 {
        return Err(Error::compute(format!(
            "image_shape {image:?} and block_shape {block:?} must have the same non-zero length"
        )));
    }
    if block.contains(&0) {
        return Err(Error::compute(format!(
            "block_shape must be positive, got {block:?}"
        )));
    }
    let strides = per_dim(&op.strides, nd, 1, "strides")?;
    let dilations = per_dim(&op.dilations, nd, 1, "dilations")?;
    let pads = per_dim(&op.pads, 2 * nd, 0, "pads")?;
    let xs = x.shape();
    if xs.len() != 3 {
        return Err(Error::compute(format!(
            "Col2Im input must be [N, C * prod(block_shape), L], got shape {xs:?}"
        )));
    }
    let kprod = numel(&block)?;
    if xs[1] % kprod != 0 {
        return Err(Error::compute(format!(
            "Col2Im input dim 1 ({}) is not a multiple of prod(block_shape) = {kprod}",
            xs[1]
        )));
    }
    let c = xs[1] / kprod;
    let mut grid = Vec::with_capacity(nd);
    for d in 0..nd {
        let overflow = || {
            Error::compute(format!(
                "dim {d}: an image of {} with pads {} and {}, block {} and dilation {} overflows",
                image[d],
                pads[d],
                pads[nd + d],
                block[d],
                dilations[d]
            ))
        };
        let ext = (block[d] - 1)
            .checked_mul(dilations[d])
            .and_then(|e| e.checked_add(1))
            .ok_or_else(overflow)?;
        let padded = image[d]
            .checked_add(pads[d])
            .and_then(|p| p.checked_add(pads[nd + d]))
            .ok_or_else(overflow)?;
        if padded < ext {
            return Err(Error::compute(format!(
                "dim {d}: the padded image size {padded} is smaller than the dilated block size {ext}"
            )));
        }
        grid.push((padded - ext) / strides[d] + 1);
    }
    if numel(&grid)? != xs[2] {
        return Err(Error::compute(format!(
            "Col2Im input has {} blocks, the image and block shapes give {grid:?}",
            xs[2]
        )));
    }
    let pads_begin = pads[..nd]
        .iter()
        .map(|&p| {
            i64::try_from(p)
                .map_err(|_| Error::compute(format!("pads {pads:?} hold a pad past i64::MAX")))
        })
        .collect::<Result<Vec<i64>>>()?;
    let fold = Fold {
        image: &image,
        kernel: &block,
        grid: &grid,
        strides: &strides,
        dilations: &dilations,
        pads_begin: &pads_begin,
    };
    let mut out_shape = vec![xs[0], c];
    out_shape.extend(&image);
    let sp = numel(&image)?;
    let per_n_in = xs[1] * xs[2];
    let per_n_out = buf::count(&[c, sp], "Col2Im's output")?;
    let dtype = x.dtype();
    let out = with_real!(dtype, R => {
        let v = fold_batches(&fold, c, &load_floats::<R>(x)?, per_n_in, per_n_out, numel(&out_shape)?)?;
        store_floats(dtype, out_shape, v)?
    }, _ => xnpu_core::with_int_type!(dtype, T => {
        let v = fold_batches(&fold, c, &x.as_slice::<T>()?, per_n_in, per_n_out, numel(&out_shape)?)?;
        Tensor::from_vec(out_shape, v)?
    }, _ => return Err(Error::compute(format!("Col2Im does not support {dtype}")))));
    Ok(vec![out.into()])
}

/// [`col2im_add`] for each batch item: `per_in` input and `per_out` output values each.
fn fold_batches<T: Num>(
    f: &Fold<'_>,
    c: usize,
    x: &[T],
    per_in: usize,
    per_out: usize,
    total: usize,
) -> Result<Vec<T>> {
    let mut out = buf::filled(total, T::default(), "Col2Im's output")?;
    if per_in > 0 && per_out > 0 {
        for (xn, on) in x.chunks_exact(per_in).zip(out.chunks_exact_mut(per_out)) {
            col2im_add(f, c, xn, on)?;
        }
    }
    Ok(out)
}
