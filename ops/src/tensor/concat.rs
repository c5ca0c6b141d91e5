use xnpu_core::shape::normalize_axis;
use xnpu_core::{Dim, Error, Result, Shape, ValueType};

use super::util::{out, unknown};
use crate::infer::input;
use crate::{InferInput, OpDef};

/// Concat (ONNX opsets 1, 4, 11, 13): joins the inputs along `axis` (negative counts from
/// the rank; opset 1 defaults it to 1). All inputs have the same dtype and rank and equal
/// dims off the axis.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Concat {
    pub axis: i64,
}

impl OpDef for Concat {
    const NAMES: &'static [&'static str] = &["Concat"];

    fn infer(
        &self,
        inputs: &[Option<InferInput<'_>>],
        _n_outputs: usize,
    ) -> Result<Vec<ValueType>> {
        let present: Vec<_> = (0..inputs.len()).filter_map(|i| input(inputs, i)).collect();
        let dtype = present.iter().find_map(|x| x.dtype());
        let shapes: Option<Vec<&Shape>> = present.iter().map(|x| x.shape()).collect();
        let Some(shapes) = shapes.filter(|s| !s.is_empty()) else {
            let rank = present.iter().find_map(|x| x.rank());
            let dims = rank
                .map(|r| super::util::unknown_dims("Concat", r))
                .transpose()?;
            return Ok(vec![out(dtype, dims)]);
        };
        let rank = shapes[0].rank();
        if let Some(s) = shapes.iter().find(|s| s.rank() != rank) {
            return Err(Error::model(format!(
                "Concat: inputs have different ranks ({} and {})",
                shapes[0], s
            )));
        }
        let a = normalize_axis(self.axis, rank)?;
        let mut dims = Vec::with_capacity(rank);
        for i in 0..rank {
            if i == a {
                let parts: Vec<&Dim> = shapes.iter().map(|s| &s.0[i]).collect();
                let sum: Option<usize> = parts
                    .iter()
                    .map(|d| d.known())
                    .try_fold(0usize, |acc, d| d.and_then(|d| acc.checked_add(d)));
                dims.push(match sum {
                    Some(n) => Dim::Known(n),
                    None => {
                        let names: Vec<String> = parts
                            .iter()
                            .filter(|d| **d != &Dim::Known(0))
                            .map(|d| d.to_string())
                            .collect();
                        unknown(format!("({})", names.join("+")))
                    }
                });
            } else {
                let known: Vec<usize> = shapes.iter().filter_map(|s| s.0[i].known()).collect();
                if let Some(&k) = known.first() {
                    if let Some(&other) = known.iter().find(|&&d| d != k) {
                        return Err(Error::model(format!(
                            "Concat: dim {i} differs between inputs ({k} and {other}) off the axis {a}"
                        )));
                    }
                    dims.push(Dim::Known(k));
                } else {
                    dims.push(shapes[0].0[i].clone());
                }
            }
        }
        Ok(vec![out(dtype, Some(Shape(dims)))])
    }
}
