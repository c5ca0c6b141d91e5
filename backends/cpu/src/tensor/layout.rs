//! Kernels that rearrange elements: concat, split, transpose, slice, broadcast, tile, pad,
//! block moves and sequence reversal. Each maps an output position to an input position.

use xnpu_core::broadcast::{broadcast_shapes, BroadcastIndex};
use xnpu_core::shape::checked_numel;
use xnpu_core::shape::normalize_axis;
use xnpu_core::{DType, Error, Result, Tensor, Value};
use xnpu_ops::tensor::{
    CenterCropPad, Concat, DepthMode, DepthSpace, Expand, EyeLike, Pad, PadMode, ReverseSequence,
    Slice, Split, Tile, Transpose, Trilu, Upsample,
};

use super::elems::{gather_by, scalar_int, scalar_of, strides, zero_of, Elems, Src};
use crate::args::{opt_tensor, tensor};

pub(crate) fn concat(op: &Concat, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let ts: Vec<&Tensor> = (0..inputs.len())
        .filter(|&i| inputs[i].is_some())
        .map(|i| tensor(inputs, i))
        .collect::<Result<_>>()?;
    let first = ts
        .first()
        .ok_or_else(|| Error::compute("Concat needs at least one input"))?;
    let rank = first.rank();
    let a = normalize_axis(op.axis, rank)?;
    let mut dims = first.shape().to_vec();
    dims[a] = 0;
    for t in &ts {
        let ok = t.rank() == rank
            && t.shape()
                .iter()
                .zip(first.shape())
                .enumerate()
                .all(|(i, (x, y))| i == a || x == y);
        if !ok {
            return Err(Error::compute(format!(
                "Concat: input dims {:?} and {:?} differ off the axis {a}",
                first.shape(),
                t.shape()
            )));
        }
        dims[a] = dims[a]
            .checked_add(t.shape()[a])
            .ok_or_else(|| Error::compute("Concat: the output dim overflows"))?;
    }
    let n = checked_numel(&dims)?;
    // An empty output has nothing to copy (and its other dims may multiply past usize).
    let (outer, inner) = if n == 0 {
        (0, 0)
    } else {
        (dims[..a].iter().product(), dims[a + 1..].iter().product())
    };
    let srcs: Vec<Src<'_>> = ts.iter().map(|t| Src::new(t)).collect::<Result<_>>()?;
    let mut out = Elems::new(first.dtype(), n)?;
    for o in 0..outer {
        for (t, s) in ts.iter().zip(&srcs) {
            let chunk = t.shape()[a] * inner;
            out.extend(s, o * chunk, chunk)?;
        }
    }
    out.finish(dims)
}

pub(crate) fn split(op: &Split, inputs: &[Option<&Value>], n_outputs: usize) -> Result<Vec<Value>> {
    let x = tensor(inputs, 0)?;
    let a = normalize_axis(op.axis, x.rank())?;
    let given = opt_tensor(inputs, 1)?.map(|t| t.to_i64_vec()).transpose()?;
    let sizes = op.sizes(x.shape()[a], given.as_deref(), n_outputs)?;
    let d = x.shape()[a];
    // An empty input splits into empty outputs (whose other dims may multiply past usize).
    let (outer, inner) = if x.is_empty() {
        (0, 0)
    } else {
        (
            x.shape()[..a].iter().product(),
            x.shape()[a + 1..].iter().product(),
        )
    };
    let s = Src::new(x)?;
    let mut outs = Vec::with_capacity(sizes.len());
    let mut off = 0;
    for &len in &sizes {
        let mut dims = x.shape().to_vec();
        dims[a] = len;
        let mut e = Elems::new(x.dtype(), outer * len * inner)?;
        for o in 0..outer {
            e.extend(&s, (o * d + off) * inner, len * inner)?;
        }
        outs.push(Value::Tensor(e.finish(dims)?));
        off += len;
    }
    Ok(outs)
}

/// A strided view: element `o` of the output is input element
/// `offset + Σ o[k] · step[k]` (steps may be 0 or negative).
fn strided(x: &Tensor, out_dims: &[usize], offset: i64, step: &[i64]) -> Result<Tensor> {
    gather_by(x, out_dims, None, |o| {
        let i = o
            .iter()
            .zip(step)
            .fold(offset, |acc, (&k, &s)| acc + k as i64 * s);
        usize::try_from(i)
            .map(Some)
            .map_err(|_| Error::compute(format!("position {i} is outside the input")))
    })
}

pub(crate) fn transpose(op: &Transpose, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let p = op.perm(x.rank())?;
    let st = strides(x.shape());
    let dims: Vec<usize> = p.iter().map(|&i| x.shape()[i]).collect();
    let step: Vec<i64> = p.iter().map(|&i| st[i] as i64).collect();
    strided(x, &dims, 0, &step)
}

pub(crate) fn slice(op: &Slice, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let ints = |i: usize| -> Result<Option<Vec<i64>>> {
        opt_tensor(inputs, i)?.map(|t| t.to_i64_vec()).transpose()
    };
    let plan = match &op.attrs {
        Some(a) => Slice::plan(x.shape(), &a.starts, &a.ends, a.axes.as_deref(), None)?,
        None => {
            let starts = tensor(inputs, 1)?.to_i64_vec()?;
            let ends = tensor(inputs, 2)?.to_i64_vec()?;
            Slice::plan(
                x.shape(),
                &starts,
                &ends,
                ints(3)?.as_deref(),
                ints(4)?.as_deref(),
            )?
        }
    };
    let dims: Vec<usize> = plan.iter().map(|p| p.len).collect();
    if checked_numel(&dims)? == 0 {
        // Nothing to read (and the strides of an empty input may not fit an i64).
        return gather_by(x, &dims, None, |_| Ok(None));
    }
    // Every slice is non-empty, so the input is: its strides and offsets fit an i64.
    let st = strides(x.shape());
    let offset: i64 = plan
        .iter()
        .zip(&st)
        .map(|(p, &s)| p.start as i64 * s as i64)
        .sum();
    let step: Vec<i64> = plan
        .iter()
        .zip(&st)
        .map(|(p, &s)| p.step * s as i64)
        .collect();
    strided(x, &dims, offset, &step)
}

pub(crate) fn expand(inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let target = Expand::dims(&tensor(inputs, 1)?.to_i64_vec()?)?;
    let dims = broadcast_shapes(&[x.shape(), &target])?;
    let idx = BroadcastIndex::new(x.shape(), &dims)?;
    let src = Src::new(x)?;
    let mut out = Elems::new(x.dtype(), idx.len())?;
    for i in idx {
        out.push(&src, i)?;
    }
    out.finish(dims)
}

pub(crate) fn tile(inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let reps = Tile::repeats(&tensor(inputs, 1)?.to_i64_vec()?, x.rank())?;
    let dims = x
        .shape()
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| {
            d.checked_mul(r)
                .ok_or_else(|| Error::compute("Tile: the output dims overflow"))
        })
        .collect::<Result<Vec<_>>>()?;
    let st = strides(x.shape());
    gather_by(x, &dims, None, |o| {
        Ok(Some(
            o.iter()
                .zip(x.shape())
                .zip(&st)
                .map(|((&k, &d), &s)| (k % d) * s)
                .sum(),
        ))
    })
}

/// The input position along one axis for output position `o` of a padded axis, or `None`
/// for the constant.
fn pad_source(mode: PadMode, o: usize, before: i64, dim: usize) -> Result<Option<usize>> {
    let x = o as i128 - i128::from(before);
    let d = dim as i128;
    if (0..d).contains(&x) {
        return Ok(Some(x as usize));
    }
    if mode == PadMode::Constant {
        return Ok(None);
    }
    if dim == 0 {
        return Err(Error::compute(format!(
            "Pad: {mode:?} padding needs a non-empty axis"
        )));
    }
    Ok(Some(match mode {
        PadMode::Constant => unreachable!("handled above"),
        PadMode::Edge => x.clamp(0, d - 1) as usize,
        PadMode::Wrap => x.rem_euclid(d) as usize,
        PadMode::Reflect => {
            if d == 1 {
                0
            } else {
                let period = 2 * (d - 1);
                let m = x.rem_euclid(period);
                (if m >= d { period - m } else { m }) as usize
            }
        }
    }))
}

pub(crate) fn pad(op: &Pad, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let (pads, axes, fill) = match &op.pads {
        Some(p) => (p.clone(), None, scalar_of_or_zero(x.dtype(), op.value)?),
        None => {
            let pads = tensor(inputs, 1)?.to_i64_vec()?;
            let fill = match opt_tensor(inputs, 2)? {
                Some(c) if !c.is_empty() => {
                    if c.dtype() != x.dtype() {
                        return Err(Error::compute(format!(
                            "Pad: constant_value is {}, the data is {}",
                            c.dtype(),
                            x.dtype()
                        )));
                    }
                    c.clone()
                }
                _ => zero_of(x.dtype())?,
            };
            let axes = opt_tensor(inputs, 3)?.map(|t| t.to_i64_vec()).transpose()?;
            (pads, axes, fill)
        }
    };
    let per = Pad::per_axis(&pads, axes.as_deref(), x.rank())?;
    let dims = x
        .shape()
        .iter()
        .zip(&per)
        .map(|(&d, &p)| Pad::padded(d, p))
        .collect::<Result<Vec<_>>>()?;
    let st = strides(x.shape());
    gather_by(x, &dims, Some(&fill), |o| {
        let mut i = 0;
        for k in 0..o.len() {
            match pad_source(op.mode, o[k], per[k].0, x.shape()[k])? {
                Some(j) => i += j * st[k],
                None => return Ok(None),
            }
        }
        Ok(Some(i))
    })
}

fn scalar_of_or_zero(dtype: DType, v: f32) -> Result<Tensor> {
    if dtype == DType::String {
        zero_of(dtype)
    } else {
        scalar_of(dtype, f64::from(v))
    }
}

pub(crate) fn center_crop_pad(op: &CenterCropPad, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let dims = op.target(x.shape(), &tensor(inputs, 1)?.to_i64_vec()?)?;
    // Output position o along an axis reads input position o + shift.
    let shift: Vec<i64> = x
        .shape()
        .iter()
        .zip(&dims)
        .map(|(&d, &t)| {
            if d >= t {
                ((d - t) / 2) as i64
            } else {
                -(((t - d) / 2) as i64)
            }
        })
        .collect();
    let st = strides(x.shape());
    let zero = zero_of(x.dtype())?;
    gather_by(x, &dims, Some(&zero), |o| {
        let mut i = 0;
        for k in 0..o.len() {
            let j = o[k] as i64 + shift[k];
            if j < 0 || j >= x.shape()[k] as i64 {
                return Ok(None);
            }
            i += j as usize * st[k];
        }
        Ok(Some(i))
    })
}

pub(crate) fn depth_space(op: &DepthSpace, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let out = op.output_dims(x.shape())?;
    let b = op.blocksize;
    let st = strides(x.shape());
    gather_by(x, &out, None, |o| {
        let (n, c, h, w) = (o[0], o[1], o[2], o[3]);
        let (ic, ih, iw) = if op.to_depth {
            let c_in = x.shape()[1];
            let (blk, ci) = match op.mode {
                DepthMode::Dcr => (c / c_in, c % c_in),
                DepthMode::Crd => (c % (b * b), c / (b * b)),
            };
            (ci, h * b + blk / b, w * b + blk % b)
        } else {
            let c_out = out[1];
            let (by, bx) = (h % b, w % b);
            let ci = match op.mode {
                DepthMode::Dcr => (by * b + bx) * c_out + c,
                DepthMode::Crd => c * b * b + by * b + bx,
            };
            (ci, h / b, w / b)
        };
        Ok(Some(n * st[0] + ic * st[1] + ih * st[2] + iw * st[3]))
    })
}

pub(crate) fn reverse_sequence(op: &ReverseSequence, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    if x.rank() < 2 {
        return Err(Error::compute(format!(
            "ReverseSequence: the input must have rank 2 or more, got dims {:?}",
            x.shape()
        )));
    }
    let lens = tensor(inputs, 1)?.to_i64_vec()?;
    if op.batch_axis == op.time_axis || op.batch_axis.max(op.time_axis) >= x.rank() {
        return Err(Error::compute(format!(
            "ReverseSequence: batch_axis {} and time_axis {} must be two different axes of dims {:?}",
            op.batch_axis,
            op.time_axis,
            x.shape()
        )));
    }
    let (batch, time) = (x.shape()[op.batch_axis], x.shape()[op.time_axis]);
    if lens.len() != batch {
        return Err(Error::compute(format!(
            "ReverseSequence: sequence_lens has {} entries for a batch of {batch}",
            lens.len()
        )));
    }
    let lens = lens
        .iter()
        .map(|&l| {
            usize::try_from(l)
                .ok()
                .filter(|&l| l <= time)
                .ok_or_else(|| {
                    Error::compute(format!(
                        "ReverseSequence: sequence length {l} is outside [0, {time}]"
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let st = strides(x.shape());
    gather_by(x, x.shape(), None, |o| {
        let len = lens[o[op.batch_axis]];
        let mut i = 0;
        for k in 0..o.len() {
            let j = if k == op.time_axis && o[k] < len {
                len - 1 - o[k]
            } else {
                o[k]
            };
            i += j * st[k];
        }
        Ok(Some(i))
    })
}

pub(crate) fn upsample(op: &Upsample, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let scales: Vec<f32> = match &op.scales {
        Some(s) => s.clone(),
        None => tensor(inputs, 1)?
            .to_f64_vec()?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
    };
    let dims = Upsample::output_dims(x.shape(), &scales)?;
    checked_numel(&dims)?;
    let st = strides(x.shape());
    gather_by(x, &dims, None, |o| {
        let mut i = 0;
        for k in 0..o.len() {
            let j = ((o[k] as f64) / f64::from(scales[k])).floor() as usize;
            i += j.min(x.shape()[k].saturating_sub(1)) * st[k];
        }
        Ok(Some(i))
    })
}

pub(crate) fn trilu(op: &Trilu, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    let r = x.rank();
    if r < 2 {
        return Err(Error::compute(format!(
            "Trilu: the input must have rank 2 or more, got dims {:?}",
            x.shape()
        )));
    }
    let k = match opt_tensor(inputs, 1)? {
        Some(t) => scalar_int(t, "Trilu: k")?,
        None => 0,
    };
    let zero = zero_of(x.dtype())?;
    let st = strides(x.shape());
    gather_by(x, x.shape(), Some(&zero), |o| {
        if !op.keeps(o[r - 2], o[r - 1], k) {
            return Ok(None);
        }
        Ok(Some(o.iter().zip(&st).map(|(&a, &s)| a * s).sum()))
    })
}

pub(crate) fn eye_like(op: &EyeLike, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let x = tensor(inputs, 0)?;
    if x.rank() != 2 {
        return Err(Error::compute(format!(
            "EyeLike: the input must have rank 2, got dims {:?}",
            x.shape()
        )));
    }
    let dtype = op.dtype.unwrap_or(x.dtype());
    let one = scalar_of(dtype, 1.0)?;
    let zero = zero_of(dtype)?;
    gather_by(&one, x.shape(), Some(&zero), |o| {
        Ok((o[1] as i128 - o[0] as i128 == i128::from(op.k)).then_some(0))
    })
}

#[cfg(test)]
mod tests {
    use super::super::elems::run_test;
    use super::*;
    use xnpu_ops::tensor::{AxisSlice, SliceAttrs};

    fn ints(v: &[i64]) -> Option<Tensor> {
        Some(Tensor::from_vec(vec![v.len()], v.to_vec()).unwrap())
    }

    fn pad1(mode: PadMode, x: &[f32], before: i64, after: i64) -> Vec<f32> {
        let op = Pad {
            mode,
            pads: None,
            value: 0.0,
        };
        let x = Tensor::from_vec(vec![x.len()], x.to_vec()).unwrap();
        run_test(|i| pad(&op, i), vec![Some(x), ints(&[before, after])])
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn pad_modes_follow_numpy() {
        let x = [1.0, 2.0, 3.0];
        assert_eq!(pad1(PadMode::Constant, &x, 1, 2), [0., 1., 2., 3., 0., 0.]);
        assert_eq!(pad1(PadMode::Edge, &x, 2, 1), [1., 1., 1., 2., 3., 3.]);
        assert_eq!(
            pad1(PadMode::Reflect, &x, 2, 2),
            [3., 2., 1., 2., 3., 2., 1.]
        );
        assert_eq!(pad1(PadMode::Wrap, &x, 2, 1), [2., 3., 1., 2., 3., 1.]);
        assert_eq!(pad1(PadMode::Constant, &x, -1, 0), [2., 3.]);
    }

    #[test]
    fn pad_refuses_a_negative_length() {
        let op = Pad::default();
        let x = Tensor::from_vec(vec![2], vec![1i32, 2]).unwrap();
        let err = run_test(|i| pad(&op, i), vec![Some(x), ints(&[-2, -1])]).unwrap_err();
        assert!(err.to_string().contains("length -1"), "{err}");
    }

    #[test]
    fn slice_with_negative_steps_reverses() {
        let x = Tensor::from_vec(vec![2, 3], vec![0i64, 1, 2, 3, 4, 5]).unwrap();
        let op = Slice { attrs: None };
        let y = run_test(
            |i| slice(&op, i),
            vec![
                Some(x),
                ints(&[-1, i64::MAX]),
                ints(&[i64::MIN, i64::MIN]),
                ints(&[1, 0]),
                ints(&[-2, -1]),
            ],
        )
        .unwrap();
        assert_eq!(y.shape(), &[2, 2]);
        assert_eq!(y.to_vec::<i64>().unwrap(), vec![5, 3, 2, 0]);
        assert_eq!(AxisSlice::new(3, -1, i64::MIN, -2).unwrap().len, 2);
    }

    #[test]
    fn attribute_slice_keeps_the_unlisted_axes() {
        let x = Tensor::from_vec(vec![2, 3], vec![0u8, 1, 2, 3, 4, 5]).unwrap();
        let op = Slice {
            attrs: Some(SliceAttrs {
                starts: vec![1],
                ends: vec![10],
                axes: Some(vec![1]),
            }),
        };
        let y = run_test(|i| slice(&op, i), vec![Some(x)]).unwrap();
        assert_eq!(y.to_vec::<u8>().unwrap(), vec![1, 2, 4, 5]);
    }

    #[test]
    fn transpose_and_concat_move_strings() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let x = Tensor::from_strings(vec![2, 2], s(&["a", "b", "c", "d"])).unwrap();
        let t = run_test(
            |i| transpose(&Transpose { perm: None }, i),
            vec![Some(x.clone())],
        )
        .unwrap();
        assert_eq!(t.strings().unwrap(), s(&["a", "c", "b", "d"]).as_slice());
        let c = run_test(|i| concat(&Concat { axis: 1 }, i), vec![Some(x), Some(t)]).unwrap();
        assert_eq!(c.shape(), &[2, 4]);
        assert_eq!(
            c.strings().unwrap(),
            s(&["a", "b", "a", "c", "c", "d", "b", "d"]).as_slice()
        );
    }

    #[test]
    fn expand_and_tile_refuse_overflowing_sizes() {
        let x = Tensor::from_vec(vec![1], vec![true]).unwrap();
        let big = i64::MAX;
        assert!(run_test(expand, vec![Some(x.clone()), ints(&[big, big])]).is_err());
        assert!(run_test(expand, vec![Some(x.clone()), ints(&[-1])]).is_err());
        // Too large to allocate: an error, not an abort.
        assert!(run_test(expand, vec![Some(x.clone()), ints(&[1 << 62])]).is_err());
        let y = run_test(expand, vec![Some(x.clone()), ints(&[2, 3])]).unwrap();
        assert_eq!(y.to_vec::<bool>().unwrap(), vec![true; 6]);
        let x2 = Tensor::from_vec(vec![1, 1], vec![true]).unwrap();
        assert!(run_test(tile, vec![Some(x2), ints(&[big, big])]).is_err());
    }

    #[test]
    fn depth_to_space_inverts_space_to_depth() {
        let x = Tensor::from_vec(vec![1, 2, 4, 6], (0..48).collect::<Vec<i32>>()).unwrap();
        for mode in [DepthMode::Dcr, DepthMode::Crd] {
            let s2d = DepthSpace {
                to_depth: true,
                blocksize: 2,
                mode,
            };
            let d2s = DepthSpace {
                to_depth: false,
                ..s2d.clone()
            };
            let y = run_test(|i| depth_space(&s2d, i), vec![Some(x.clone())]).unwrap();
            assert_eq!(y.shape(), &[1, 8, 2, 3]);
            let z = run_test(|i| depth_space(&d2s, i), vec![Some(y)]).unwrap();
            assert_eq!(z, x);
        }
    }

    #[test]
    fn trilu_keeps_a_band() {
        let x = Tensor::from_vec(vec![3, 3], (1..=9).collect::<Vec<i64>>()).unwrap();
        let k = Some(Tensor::scalar(1i64));
        let up = run_test(
            |i| trilu(&Trilu { upper: true }, i),
            vec![Some(x.clone()), k.clone()],
        );
        assert_eq!(
            up.unwrap().to_vec::<i64>().unwrap(),
            [0, 2, 3, 0, 0, 6, 0, 0, 0]
        );
        let low = run_test(|i| trilu(&Trilu { upper: false }, i), vec![Some(x), k]);
        assert_eq!(
            low.unwrap().to_vec::<i64>().unwrap(),
            [1, 2, 0, 4, 5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn reverse_sequence_checks_lengths() {
        let op = ReverseSequence {
            batch_axis: 1,
            time_axis: 0,
        };
        let x = Tensor::from_vec(vec![3, 2], vec![1u8, 10, 2, 20, 3, 30]).unwrap();
        let y = run_test(
            |i| reverse_sequence(&op, i),
            vec![Some(x.clone()), ints(&[3, 2])],
        );
        assert_eq!(y.unwrap().to_vec::<u8>().unwrap(), [3, 20, 2, 10, 1, 30]);
        assert!(run_test(|i| reverse_sequence(&op, i), vec![Some(x), ints(&[4, 0])]).is_err());
    }
}
