//! Export of the `tensor` family: attributes that became inputs are written in the form of
//! the exported opset.

use xnpu_core::{DType, Error, Tensor};
use xnpu_ops::tensor::{self as t, CumKind, DepthMode, PadMode, Reduction};

use super::{
    a_bool, a_float, a_floats, a_int, a_ints, a_str, a_tensor, scalar_of, Emit, OnnxExport, R,
};

fn reduction_name(r: Reduction) -> &'static str {
    match r {
        Reduction::None => "none",
        Reduction::Add => "add",
        Reduction::Mul => "mul",
        Reduction::Max => "max",
        Reduction::Min => "min",
    }
}

fn reduction_since(r: Reduction) -> i64 {
    match r {
        Reduction::None => 11,
        Reduction::Add | Reduction::Mul => 16,
        Reduction::Max | Reduction::Min => 18,
    }
}

/// Own inputs, padded with "" to at least `n`.
fn ins_padded(e: &Emit<'_>, n: usize) -> Vec<String> {
    let mut v = e.ins.clone();
    while v.len() < n {
        v.push(String::new());
    }
    v
}

/// Writes the node with input `pos` set to a new constant.
fn with_const_input(
    e: &mut Emit<'_>,
    op_type: &str,
    pos: usize,
    hint: &str,
    t: &Tensor,
    attrs: Vec<super::AttributeProto>,
) -> R {
    let name = e.constant(hint, t)?;
    let mut ins = ins_padded(e, pos + 1);
    ins[pos] = name;
    let outs = e.outs.clone();
    e.add(op_type, "", ins, outs, attrs)
}

fn i64s(v: &[i64]) -> R<Tensor> {
    Ok(Tensor::from_vec(vec![v.len()], v.to_vec())?)
}

impl OnnxExport for t::Identity {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Identity", vec![])
    }
}

impl OnnxExport for t::Constant {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let a = a_tensor("value", &self.value)?;
        e.simple("Constant", vec![a])
    }
}

impl OnnxExport for t::ConstantOfShape {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let a = a_tensor("value", &self.value)?;
        e.simple("ConstantOfShape", vec![a])
    }
}

impl OnnxExport for t::ShapeOf {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![];
        if self.start != 0 {
            e.need(15)?;
            attrs.push(a_int("start", self.start));
        }
        if let Some(end) = self.end {
            e.need(15)?;
            attrs.push(a_int("end", end));
        }
        e.simple("Shape", attrs)
    }
}

impl OnnxExport for t::Size {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Size", vec![])
    }
}

impl OnnxExport for t::Reshape {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        let mut attrs = vec![];
        if self.allowzero {
            e.need(14)?;
            attrs.push(a_int("allowzero", 1));
        }
        match &self.shape {
            Some(shape) if o < 5 => {
                attrs.push(a_ints("shape", shape));
                e.simple("Reshape", attrs)
            }
            Some(shape) => {
                let t = i64s(shape)?;
                with_const_input(e, "Reshape", 1, "shape", &t, attrs)
            }
            None => {
                e.need(5)?;
                e.simple("Reshape", attrs)
            }
        }
    }
}

impl OnnxExport for t::Flatten {
    fn export(&self, e: &mut Emit<'_>) -> R {
        if self.axis < 0 {
            e.need(11)?;
        }
        e.simple("Flatten", vec![a_int("axis", self.axis)])
    }
}

impl OnnxExport for t::Squeeze {
    fn export(&self, e: &mut Emit<'_>) -> R {
        axes_op(e, "Squeeze", self.axes.as_deref(), false)
    }
}

impl OnnxExport for t::Unsqueeze {
    fn export(&self, e: &mut Emit<'_>) -> R {
        axes_op(e, "Unsqueeze", self.axes.as_deref(), true)
    }
}

impl OnnxExport for t::Concat {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Concat", vec![a_int("axis", self.axis)])
    }
}

impl OnnxExport for t::Split {
    fn export(&self, e: &mut Emit<'_>) -> R {
        split(self, e)
    }
}

impl OnnxExport for t::Transpose {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let attrs = self.perm.iter().map(|p| a_ints("perm", p)).collect();
        e.simple("Transpose", attrs)
    }
}

impl OnnxExport for t::Slice {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        match &self.attrs {
            Some(a) if o < 10 => {
                let mut attrs = vec![a_ints("starts", &a.starts), a_ints("ends", &a.ends)];
                if let Some(axes) = &a.axes {
                    attrs.push(a_ints("axes", axes));
                }
                e.simple("Slice", attrs)
            }
            Some(a) => {
                let mut ins = vec![e.input(0)];
                ins.push(e.const_i64s("starts", &a.starts)?);
                ins.push(e.const_i64s("ends", &a.ends)?);
                if let Some(axes) = &a.axes {
                    ins.push(e.const_i64s("axes", axes)?);
                }
                let outs = e.outs.clone();
                e.add("Slice", "", ins, outs, vec![])
            }
            None => {
                e.need(10)?;
                e.simple("Slice", vec![])
            }
        }
    }
}

impl OnnxExport for t::Gather {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Gather", vec![a_int("axis", self.axis)])
    }
}

impl OnnxExport for t::GatherElements {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("GatherElements", vec![a_int("axis", self.axis)])
    }
}

impl OnnxExport for t::GatherNd {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![];
        if self.batch_dims != 0 {
            e.need(12)?;
            attrs.push(a_int("batch_dims", self.batch_dims as i64));
        }
        e.simple("GatherND", attrs)
    }
}

impl OnnxExport for t::ScatterElements {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        if o < 11 {
            if self.reduction != Reduction::None {
                e.need(reduction_since(self.reduction))?;
            }
            e.need(9)?;
            return e.simple("Scatter", vec![a_int("axis", self.axis)]);
        }
        let mut attrs = vec![a_int("axis", self.axis)];
        if self.reduction != Reduction::None {
            e.need(reduction_since(self.reduction))?;
            attrs.push(a_str("reduction", reduction_name(self.reduction)));
        }
        e.simple("ScatterElements", attrs)
    }
}

impl OnnxExport for t::ScatterNd {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![];
        if self.reduction != Reduction::None {
            e.need(reduction_since(self.reduction))?;
            attrs.push(a_str("reduction", reduction_name(self.reduction)));
        }
        e.simple("ScatterND", attrs)
    }
}

impl OnnxExport for t::TensorScatter {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "TensorScatter",
            vec![
                a_int("axis", self.axis),
                a_str("mode", if self.circular { "circular" } else { "linear" }),
            ],
        )
    }
}

impl OnnxExport for t::Expand {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Expand", vec![])
    }
}

impl OnnxExport for t::Tile {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.need(6)?;
        e.simple("Tile", vec![])
    }
}

impl OnnxExport for t::Pad {
    fn export(&self, e: &mut Emit<'_>) -> R {
        pad(self, e)
    }
}

impl OnnxExport for t::CenterCropPad {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let attrs = self.axes.iter().map(|a| a_ints("axes", a)).collect();
        e.simple("CenterCropPad", attrs)
    }
}

impl OnnxExport for t::Range {
    fn export(&self, e: &mut Emit<'_>) -> R {
        // ONNX's Range takes scalars (its shape inference refuses a [1] input, which xnpu
        // and ONNX Runtime's kernel accept): an input not known to be a scalar is reshaped
        // to one (a Range input must hold one element anyway).
        for i in 0..3 {
            if e.in_rank(i) != Some(0) && e.has(i) {
                let shape = e.const_i64s("scalar_shape", &[])?;
                let scalar = e.fresh("scalar");
                let input = e.input(i);
                e.add(
                    "Reshape",
                    "",
                    vec![input, shape],
                    vec![scalar.clone()],
                    vec![],
                )?;
                e.ins[i] = scalar;
            }
        }
        e.simple("Range", vec![])
    }
}

impl OnnxExport for t::Trilu {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("Trilu", vec![a_bool("upper", self.upper)])
    }
}

impl OnnxExport for t::EyeLike {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![a_int("k", self.k)];
        if let Some(d) = self.dtype {
            attrs.push(a_int("dtype", d.onnx_code() as i64));
        }
        e.simple("EyeLike", attrs)
    }
}

impl OnnxExport for t::Dropout {
    fn export(&self, e: &mut Emit<'_>) -> R {
        dropout(self, e)
    }
}

impl OnnxExport for t::TopK {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        let mut attrs = vec![a_int("axis", self.axis)];
        if o >= 11 {
            attrs.push(a_bool("largest", self.largest));
            attrs.push(a_bool("sorted", self.sorted));
        } else if !self.largest || !self.sorted {
            e.need(11)?;
        }
        match self.k {
            Some(kv) if o < 10 => {
                attrs.push(a_int("k", kv));
                e.simple("TopK", attrs)
            }
            Some(kv) => {
                let t = i64s(&[kv])?;
                with_const_input(e, "TopK", 1, "k", &t, attrs)
            }
            None => {
                e.need(10)?;
                e.simple("TopK", attrs)
            }
        }
    }
}

impl OnnxExport for t::Unique {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let mut attrs = vec![a_bool("sorted", self.sorted)];
        if let Some(a) = self.axis {
            attrs.push(a_int("axis", a));
        }
        e.simple("Unique", attrs)
    }
}

impl OnnxExport for t::Cumulative {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let name = match self.kind {
            CumKind::Sum => "CumSum",
            CumKind::Prod => "CumProd",
        };
        e.simple(
            name,
            vec![
                a_bool("exclusive", self.exclusive),
                a_bool("reverse", self.reverse),
            ],
        )
    }
}

impl OnnxExport for t::OneHot {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("OneHot", vec![a_int("axis", self.axis)])
    }
}

impl OnnxExport for t::Compress {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let attrs = self.axis.iter().map(|&a| a_int("axis", a)).collect();
        e.simple("Compress", attrs)
    }
}

impl OnnxExport for t::NonZero {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple("NonZero", vec![])
    }
}

impl OnnxExport for t::DepthSpace {
    fn export(&self, e: &mut Emit<'_>) -> R {
        let o = e.opset();
        let mut attrs = vec![a_int("blocksize", self.blocksize as i64)];
        let mode = match self.mode {
            DepthMode::Dcr => "DCR",
            DepthMode::Crd => "CRD",
        };
        let mode_since = if self.to_depth { 28 } else { 11 };
        if self.mode == DepthMode::Crd {
            e.need(mode_since)?;
        }
        if o >= mode_since {
            attrs.push(a_str("mode", mode));
        }
        let name = if self.to_depth {
            "SpaceToDepth"
        } else {
            "DepthToSpace"
        };
        e.simple(name, attrs)
    }
}

impl OnnxExport for t::ReverseSequence {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.simple(
            "ReverseSequence",
            vec![
                a_int("batch_axis", self.batch_axis as i64),
                a_int("time_axis", self.time_axis as i64),
            ],
        )
    }
}

impl OnnxExport for t::Upsample {
    fn export(&self, e: &mut Emit<'_>) -> R {
        if e.exact() && e.opset() >= 10 {
            // From opset 10 it is written as a Resize, which reads back as another op.
            return Err(xnpu_core::Error::unsupported(
                "Upsample has no exact form after opset 9 (it is written as Resize)",
            )
            .into());
        }
        upsample_nearest(e, self.scales.as_deref())
    }
}

/// Squeeze / Unsqueeze: axes attribute before opset 13, input from 13.
fn axes_op(e: &mut Emit<'_>, name: &str, axes: Option<&[i64]>, required: bool) -> R {
    match axes {
        Some(a) if e.opset() < 13 => e.simple(name, vec![a_ints("axes", a)]),
        Some(a) if a.is_empty() && !required => {
            let ins = vec![e.input(0)];
            let outs = e.outs.clone();
            e.add(name, "", ins, outs, vec![])
        }
        Some(a) => {
            let t = i64s(a)?;
            with_const_input(e, name, 1, "axes", &t, vec![])
        }
        None => {
            if e.has(1) || required {
                e.need(13)?;
            }
            e.simple(name, vec![])
        }
    }
}

fn split(s: &t::Split, e: &mut Emit<'_>) -> R {
    let o = e.opset();
    let mut attrs = vec![a_int("axis", s.axis)];
    if let Some(k) = s.num_outputs {
        e.need(18)?;
        attrs.push(a_int("num_outputs", k as i64));
        let ins = vec![e.input(0)];
        let outs = e.outs.clone();
        return e.add("Split", "", ins, outs, attrs);
    }
    match &s.split {
        Some(sp) if o < 13 => {
            attrs.push(a_ints("split", sp));
            let ins = vec![e.input(0)];
            let outs = e.outs.clone();
            e.add("Split", "", ins, outs, attrs)
        }
        Some(sp) => {
            let t = i64s(sp)?;
            with_const_input(e, "Split", 1, "split", &t, attrs)
        }
        None => {
            if e.has(1) {
                if o < 2 {
                    return e.simple("Split", attrs);
                }
                e.need(13)?;
            } else if o >= 18 {
                attrs.push(a_int("num_outputs", e.outs.len() as i64));
            }
            e.simple("Split", attrs)
        }
    }
}

fn pad(p: &t::Pad, e: &mut Emit<'_>) -> R {
    let o = e.opset();
    let mode = match p.mode {
        PadMode::Constant => "constant",
        PadMode::Reflect => "reflect",
        PadMode::Edge => "edge",
        PadMode::Wrap => {
            e.need(19)?;
            "wrap"
        }
    };
    let mut attrs = vec![a_str("mode", mode)];
    match &p.pads {
        Some(pads) if o < 11 => {
            attrs.push(a_ints(if o < 2 { "paddings" } else { "pads" }, pads));
            attrs.push(a_float("value", p.value));
            let ins = vec![e.input(0)];
            let outs = e.outs.clone();
            e.add("Pad", "", ins, outs, attrs)
        }
        Some(pads) => {
            let mut ins = vec![e.input(0), e.const_i64s("pads", pads)?];
            if p.value != 0.0 && p.mode == PadMode::Constant {
                let d = e.in_dtype(0).unwrap_or(DType::F32);
                ins.push(e.constant("value", &scalar_of(d, p.value as f64)?)?);
            }
            let outs = e.outs.clone();
            e.add("Pad", "", ins, outs, attrs)
        }
        None => {
            e.need(if e.n_given() > 3 { 18 } else { 11 })?;
            e.simple("Pad", attrs)
        }
    }
}

fn dropout(d: &t::Dropout, e: &mut Emit<'_>) -> R {
    if !e.output(1).is_empty() {
        // The mask is bool from opset 10 (the input's type before).
        e.need(10)?;
    }
    let o = e.opset();
    let mut attrs = vec![];
    if let Some(seed) = d.seed {
        if o >= 12 {
            attrs.push(a_int("seed", seed));
        }
    }
    match d.ratio {
        Some(r) if o < 12 => {
            if e.has(1) || e.has(2) {
                return Err(Error::unsupported(
                    "Dropout with both a ratio attribute and ratio inputs cannot be written",
                )
                .into());
            }
            attrs.push(a_float("ratio", r));
            e.simple("Dropout", attrs)
        }
        Some(r) => {
            let mut ins = vec![e.input(0)];
            if r != 0.5 {
                ins.push(e.constant("ratio", &Tensor::scalar(r))?);
            }
            let outs = e.outs.clone();
            e.add("Dropout", "", ins, outs, attrs)
        }
        None => {
            if e.has(1) || e.has(2) {
                e.need(12)?;
            }
            e.simple("Dropout", attrs)
        }
    }
}

/// Nearest upsampling with floor rounding and asymmetric coordinates: Upsample up to opset 9,
/// the equivalent Resize from 10. `scales` is the attribute form (`None`: input 1).
pub(super) fn upsample_nearest(e: &mut Emit<'_>, scales: Option<&[f32]>) -> R {
    resample(e, scales, true)
}

/// Upsample/Resize of the old forms (`X, scales`) with `nearest` (floor) or `linear` mode and
/// asymmetric coordinates.
pub(super) fn resample(e: &mut Emit<'_>, scales: Option<&[f32]>, nearest: bool) -> R {
    let o = e.opset();
    if !nearest && o < 10 {
        // The importer reads Upsample from opset 7 as nearest only.
        return e.need(10);
    }
    let mode = if nearest { "nearest" } else { "linear" };
    let outs = e.outs.clone();
    if o < 7 {
        let Some(s) = scales else {
            return e.need(9);
        };
        if s.len() != 4 || s[0] != 1.0 || s[1] != 1.0 {
            return e.need(7);
        }
        let attrs = vec![
            a_str("mode", mode),
            a_float("height_scale", s[2]),
            a_float("width_scale", s[3]),
        ];
        let ins = vec![e.input(0)];
        return e.add("Upsample", "", ins, outs, attrs);
    }
    if o < 9 {
        let Some(s) = scales else {
            return e.need(9);
        };
        let attrs = vec![a_str("mode", mode), a_floats("scales", s)];
        let ins = vec![e.input(0)];
        return e.add("Upsample", "", ins, outs, attrs);
    }
    let scales_in = match scales {
        Some(s) => e.constant("scales", &Tensor::from_vec(vec![s.len()], s.to_vec())?)?,
        None => e.input(1),
    };
    let x = e.input(0);
    if o == 9 {
        return e.add(
            "Upsample",
            "",
            vec![x, scales_in],
            outs,
            vec![a_str("mode", mode)],
        );
    }
    if o == 10 {
        return e.add(
            "Resize",
            "",
            vec![x, scales_in],
            outs,
            vec![a_str("mode", mode)],
        );
    }
    let mut attrs = vec![
        a_str("mode", mode),
        a_str("coordinate_transformation_mode", "asymmetric"),
    ];
    if nearest {
        attrs.push(a_str("nearest_mode", "floor"));
    }
    let roi = if o < 13 {
        // Resize-11 wants a roi input; it is ignored outside tf_crop_and_resize.
        e.constant("roi", &Tensor::from_vec(vec![0], Vec::<f32>::new())?)?
    } else {
        String::new()
    };
    e.add("Resize", "", vec![x, roi, scales_in], outs, attrs)
}
