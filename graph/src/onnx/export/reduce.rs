//! Export of the `reduce` family.

use xnpu_ops::reduce::{self as r, ArgKind, LossReduction, ReduceKind};

use super::{a_bool, a_float, a_int, a_ints, a_str, Emit, OnnxExport, R};

fn loss_reduction(l: LossReduction) -> &'static str {
    match l {
        LossReduction::None => "none",
        LossReduction::Sum => "sum",
        LossReduction::Mean => "mean",
    }
}

impl OnnxExport for r::Reduce {
    fn export(&self, e: &mut Emit<'_>) -> R {
        reduce(self, e)
    }
}

impl OnnxExport for r::ArgReduce {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![a_int("axis", self.axis), a_bool("keepdims", self.keepdims)];
        if self.select_last_index {
            e.need(12)?;
            attrs.push(a_int("select_last_index", 1));
        }
        let name = match self.kind {
            ArgKind::Max => "ArgMax",
            ArgKind::Min => "ArgMin",
        };
        e.simple(name, attrs)
    }
}

impl OnnxExport for r::Softmax {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        let name = self.kind.op_name();
        if !self.coerce_2d {
            e.need(13)?;
            return e.simple(name, vec![a_int("axis", self.axis)]);
        }
        if o < 13 {
            return e.simple(name, vec![a_int("axis", self.axis)]);
        }
        if e.exact() {
            return e.xnpu(name, vec![a_int("axis", self.axis), a_int("coerce_2d", 1)]);
        }
        // The 2-D coercion of opsets 1-12 at a later opset: the same as the new form
        // when `axis` is the last axis, else Flatten, the op along axis 1, Reshape back.
        if let Some(rank) = e.in_rank(0) {
            let axis = if self.axis < 0 {
                self.axis + rank as i64
            } else {
                self.axis
            };
            if axis == rank as i64 - 1 {
                return e.simple(name, vec![a_int("axis", -1)]);
            }
        }
        let (x, y) = (e.input(0), e.output(0));
        let (shape, flat, out2d) = (e.fresh("shape"), e.fresh("flat"), e.fresh("2d"));
        e.add("Shape", "", vec![x.clone()], vec![shape.clone()], vec![])?;
        e.add(
            "Flatten",
            "",
            vec![x],
            vec![flat.clone()],
            vec![a_int("axis", self.axis)],
        )?;
        e.add(
            name,
            "",
            vec![flat],
            vec![out2d.clone()],
            vec![a_int("axis", 1)],
        )?;
        e.add("Reshape", "", vec![out2d, shape], vec![y], vec![])
    }
}

impl OnnxExport for r::LayerNormalization {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "LayerNormalization",
            vec![
                a_int("axis", self.axis),
                a_float("epsilon", self.epsilon),
                a_int("stash_type", self.stash_type.onnx_code() as i64),
            ],
        )
    }
}

impl OnnxExport for r::RmsNormalization {
    fn export(&self, e: &mut Emit<'_>) -> R {
        // The inv_std_var output exists only in ONNX Runtime's form.
        if e.outs.len() > 1 && !e.outs[1].is_empty() {
            return e.simple(
                "SimplifiedLayerNormalization",
                vec![
                    a_int("axis", self.axis),
                    a_float("epsilon", self.epsilon),
                    a_int("stash_type", 1),
                ],
            );
        }
        e.simple(
            "RMSNormalization",
            vec![
                a_int("axis", self.axis),
                a_float("epsilon", self.epsilon),
                a_int("stash_type", self.stash_type.onnx_code() as i64),
            ],
        )
    }
}

impl OnnxExport for r::SkipNormalization {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let attrs = vec![a_float("epsilon", self.epsilon)];
        if self.simplified {
            // The IR's inputs (input, skip, gamma, beta, bias); ONNX Runtime's have no beta.
            let ins = vec![e.input(0), e.input(1), e.input(2), e.input(4)];
            let outs = e.outs.clone();
            e.add(self.op_name(), "com.microsoft", ins, outs, attrs)
        } else {
            e.microsoft(self.op_name(), attrs)
        }
    }
}

impl OnnxExport for r::BatchNormalization {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        let mut attrs = vec![
            a_float("epsilon", self.epsilon),
            a_float("momentum", self.momentum),
        ];
        if o >= 14 {
            if self.training_mode {
                attrs.push(a_int("training_mode", 1));
            }
        } else {
            let has_stats = (1..e.outs.len()).any(|i| !e.outs[i].is_empty());
            if has_stats != self.training_mode {
                e.need(14)?;
            }
        }
        // Opsets 1-13 have 1 or 5 outputs (the first three mean the same as the 3 of
        // opset 14 on), opset 14 on 1 or 3.
        let mut outs = e.outs.clone();
        while outs.len() > 1 && outs.last().is_some_and(|s| s.is_empty()) {
            outs.pop();
        }
        if outs.len() > 1 {
            if o < 14 {
                outs.resize(5, String::new());
            } else if outs.len() > 3 {
                e.need(14)?;
                return Err(xnpu_core::Error::unsupported(
                    "BatchNormalization's saved mean and variance outputs (opsets 1-13) \
                     cannot be written from opset 14",
                )
                .into());
            }
        }
        let ins = e.ins.clone();
        e.add("BatchNormalization", "", ins, outs, attrs)
    }
}

impl OnnxExport for r::InstanceNormalization {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "InstanceNormalization",
            vec![a_float("epsilon", self.epsilon)],
        )
    }
}

impl OnnxExport for r::GroupNormalization {
    fn export(&self, e: &mut Emit<'_>) -> R {
        if self.scale_per_group {
            e.at_most(20, "GroupNormalization with per-group scale (opset 18)")?;
        } else {
            e.need(21)?;
        }
        e.simple(
            "GroupNormalization",
            vec![
                a_int("num_groups", self.num_groups),
                a_float("epsilon", self.epsilon),
            ],
        )
    }
}

impl OnnxExport for r::LpNormalization {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "LpNormalization",
            vec![a_int("axis", self.axis), a_int("p", self.p)],
        )
    }
}

impl OnnxExport for r::Lrn {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "LRN",
            vec![
                a_float("alpha", self.alpha),
                a_float("beta", self.beta),
                a_float("bias", self.bias),
                a_int("size", self.size as i64),
            ],
        )
    }
}

impl OnnxExport for r::MeanVarianceNormalization {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "MeanVarianceNormalization",
            vec![a_ints("axes", &self.axes)],
        )
    }
}

impl OnnxExport for r::NegativeLogLikelihoodLoss {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![a_str("reduction", loss_reduction(self.reduction))];
        if let Some(i) = self.ignore_index {
            attrs.push(a_int("ignore_index", i));
        }
        e.simple("NegativeLogLikelihoodLoss", attrs)
    }
}

impl OnnxExport for r::SoftmaxCrossEntropyLoss {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![a_str("reduction", loss_reduction(self.reduction))];
        if let Some(i) = self.ignore_index {
            attrs.push(a_int("ignore_index", i));
        }
        e.simple("SoftmaxCrossEntropyLoss", attrs)
    }
}

/// The opset from which a reduction takes its axes as input 1.
fn axes_input_since(kind: ReduceKind) -> i64 {
    match kind {
        ReduceKind::Sum => 13,
        _ => 18,
    }
}

fn reduce(x: &r::Reduce, e: &mut Emit<'_>) -> R {
    let since = axes_input_since(x.kind);
    let name = x.kind.op_name();
    let mut attrs = vec![a_bool("keepdims", x.keepdims)];
    if e.opset() >= since {
        if x.noop_with_empty_axes {
            attrs.push(a_int("noop_with_empty_axes", 1));
        }
        match &x.axes {
            Some(a) if !a.is_empty() => {
                let ins = vec![e.input(0), e.const_i64s("axes", a)?];
                let outs = e.outs.clone();
                e.add(name, "", ins, outs, attrs)
            }
            Some(_) => {
                let ins = vec![e.input(0)];
                let outs = e.outs.clone();
                e.add(name, "", ins, outs, attrs)
            }
            None => e.simple(name, attrs),
        }
    } else {
        match &x.axes {
            Some(a) => {
                if !a.is_empty() {
                    attrs.push(a_ints("axes", a));
                }
                let ins = vec![e.input(0)];
                let outs = e.outs.clone();
                e.add(name, "", ins, outs, attrs)
            }
            None => {
                if e.has(1) || x.noop_with_empty_axes {
                    e.need(since)?;
                }
                e.simple(name, attrs)
            }
        }
    }
}
