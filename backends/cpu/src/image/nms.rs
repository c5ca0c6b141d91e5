//! NonMaxSuppression: greedy per-class box selection.

use xnpu_core::{Error, Result, Tensor, Value};
use xnpu_ops::image::NonMaxSuppression;

use crate::args::{opt_tensor, tensor};

/// The first value of an optional one-element input.
fn first(inputs: &[Option<&Value>], i: usize) -> Result<Option<f64>> {
    match opt_tensor(inputs, i)? {
        None => Ok(None),
        Some(t) => Ok(t.to_f64_vec()?.first().copied()),
    }
}

/// `(min, max)` along one axis of a box, whichever order its corners come in.
fn span(a: f64, b: f64) -> (f64, f64) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// `[y_min, x_min, y_max, x_max]` of a box.
fn corners(b: &[f64], center_point_box: bool) -> [f64; 4] {
    if center_point_box {
        let (hw, hh) = (b[2] / 2.0, b[3] / 2.0);
        [b[1] - hh, b[0] - hw, b[1] + hh, b[0] + hw]
    } else {
        let (y0, y1) = span(b[0], b[2]);
        let (x0, x1) = span(b[1], b[3]);
        [y0, x0, y1, x1]
    }
}

/// Whether box `a` suppresses box `b` (their IoU exceeds `threshold`).
fn suppresses(a: &[f64; 4], b: &[f64; 4], threshold: f64) -> bool {
    let ix = a[3].min(b[3]) - a[1].max(b[1]);
    let iy = a[2].min(b[2]) - a[0].max(b[0]);
    if ix <= 0.0 || iy <= 0.0 {
        return false;
    }
    let inter = ix * iy;
    let area_a = (a[2] - a[0]) * (a[3] - a[1]);
    let area_b = (b[2] - b[0]) * (b[3] - b[1]);
    let union = area_a + area_b - inter;
    if area_a <= 0.0 || area_b <= 0.0 || union <= 0.0 {
        return false;
    }
    inter / union > threshold
}

pub fn run(op: &NonMaxSuppression, inputs: &[Option<&Value>]) -> Result<Tensor> {
    let boxes = tensor(inputs, 0)?;
    let scores = tensor(inputs, 1)?;
    let (bs, ss) = (boxes.shape(), scores.shape());
    if bs.len() != 3 || bs[2] != 4 || ss.len() != 3 || ss[0] != bs[0] || ss[2] != bs[1] {
        return Err(Error::compute(format!(
            "boxes must be [B, N, 4] and scores [B, C, N]; got boxes {bs:?} and scores {ss:?}"
        )));
    }
    let (n_batch, n_class, n_box) = (ss[0], ss[1], ss[2]);
    let max_out = match opt_tensor(inputs, 2)? {
        None => 0,
        Some(t) => t.to_i64_vec()?.first().copied().unwrap_or(0).max(0) as usize,
    };
    let iou_threshold = first(inputs, 3)?.unwrap_or(0.0);
    let score_threshold = first(inputs, 4)?;
    let bv = boxes.to_f64_vec()?;
    let sv = scores.to_f64_vec()?;
    // No boxes, nothing selected (and no loop over the classes of an empty score tensor,
    // whose count may be anything).
    let n_batch = if n_box == 0 { 0 } else { n_batch };

    let mut selected: Vec<i64> = Vec::new();
    for b in 0..n_batch {
        let bx: Vec<[f64; 4]> = (0..n_box)
            .map(|i| {
                corners(
                    &bv[(b * n_box + i) * 4..(b * n_box + i + 1) * 4],
                    op.center_point_box,
                )
            })
            .collect();
        for c in 0..n_class {
            let sc = &sv[(b * n_class + c) * n_box..(b * n_class + c + 1) * n_box];
            let mut order: Vec<usize> = (0..n_box)
                .filter(|&i| match score_threshold {
                    Some(t) => sc[i] > t,
                    None => true,
                })
                .collect();
            // Descending score; ties keep the lower index first.
            order.sort_by(|&i, &j| sc[j].total_cmp(&sc[i]).then(i.cmp(&j)));
            let mut kept: Vec<usize> = Vec::new();
            for i in order {
                if kept.len() >= max_out {
                    break;
                }
                if kept
                    .iter()
                    .all(|&k| !suppresses(&bx[i], &bx[k], iou_threshold))
                {
                    kept.push(i);
                    // Up to 3 values per score: allocated fallibly as it grows.
                    selected.try_reserve(3).map_err(|_| {
                        Error::compute(format!(
                            "cannot allocate {} selected indices",
                            selected.len() + 3
                        ))
                    })?;
                    selected.extend([b as i64, c as i64, i as i64]);
                }
            }
        }
    }
    Tensor::from_vec(vec![selected.len() / 3, 3], selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_box_is_suppressed() {
        let boxes = Tensor::from_vec(
            vec![1, 3, 4],
            vec![
                0.0f32, 0.0, 1.0, 1.0, 0.0, 0.1, 1.0, 1.1, 0.0, 10.0, 1.0, 11.0,
            ],
        )
        .unwrap();
        let scores = Tensor::from_vec(vec![1, 1, 3], vec![0.9f32, 0.95, 0.5]).unwrap();
        let max = Tensor::from_vec(vec![1], vec![3i64]).unwrap();
        let iou = Tensor::from_vec(vec![1], vec![0.5f32]).unwrap();
        let v = [boxes, scores, max, iou].map(Value::Tensor);
        let op = NonMaxSuppression {
            center_point_box: false,
        };
        let out = run(&op, &[Some(&v[0]), Some(&v[1]), Some(&v[2]), Some(&v[3])]).unwrap();
        assert_eq!(out.to_vec::<i64>().unwrap(), vec![0, 0, 1, 0, 0, 2]);
    }

    #[test]
    fn mismatched_scores_are_an_error() {
        let boxes = Value::Tensor(Tensor::zeros(xnpu_core::DType::F32, vec![1, 3, 4]).unwrap());
        let scores = Value::Tensor(Tensor::zeros(xnpu_core::DType::F32, vec![1, 1, 2]).unwrap());
        let op = NonMaxSuppression {
            center_point_box: false,
        };
        assert!(run(&op, &[Some(&boxes), Some(&scores)]).is_err());
    }
}
