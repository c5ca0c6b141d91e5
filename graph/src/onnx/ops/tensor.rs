//! Import of the `tensor` family. Opset differences (attributes that became inputs, changed
//! defaults) are settled here so that each IR op has one meaning.

use xnpu_core::{DType, Error, Result, Tensor};
use xnpu_ops::tensor::{
    self as t, CenterCropPad, Compress, Concat, Constant, ConstantOfShape, CumKind, Cumulative,
    DepthMode, DepthSpace, Dropout, EyeLike, Flatten, Gather, GatherElements, GatherNd, Identity,
    NonZero, OneHot, Pad, PadMode, Range, Reduction, Reshape, ReverseSequence, ScatterElements,
    ScatterNd, ShapeOf, Size, Slice, SliceAttrs, Split, Squeeze, TensorScatter, Tile, TopK,
    Transpose, Trilu, Unique, Unsqueeze, Upsample,
};

use super::{image, NodeCtx, OnnxImport, Registry};
use crate::ir::Op;

impl OnnxImport for xnpu_ops::tensor::Identity {
    fn register(r: &mut Registry) {
        r.add("", "Identity", 1, identity);
    }
}

impl OnnxImport for xnpu_ops::tensor::Constant {
    fn register(r: &mut Registry) {
        r.add("", "Constant", 1, constant);
    }
}

impl OnnxImport for xnpu_ops::tensor::ConstantOfShape {
    fn register(r: &mut Registry) {
        r.add("", "ConstantOfShape", 9, constant_of_shape);
    }
}

impl OnnxImport for xnpu_ops::tensor::ShapeOf {
    fn register(r: &mut Registry) {
        r.add("", "Shape", 1, shape);
    }
}

impl OnnxImport for xnpu_ops::tensor::Size {
    fn register(r: &mut Registry) {
        r.add("", "Size", 1, size);
    }
}

impl OnnxImport for xnpu_ops::tensor::Reshape {
    fn register(r: &mut Registry) {
        r.add("", "Reshape", 1, reshape);
    }
}

impl OnnxImport for xnpu_ops::tensor::Flatten {
    fn register(r: &mut Registry) {
        r.add("", "Flatten", 1, flatten);
    }
}

impl OnnxImport for xnpu_ops::tensor::Squeeze {
    fn register(r: &mut Registry) {
        r.add("", "Squeeze", 1, squeeze);
    }
}

impl OnnxImport for xnpu_ops::tensor::Unsqueeze {
    fn register(r: &mut Registry) {
        r.add("", "Unsqueeze", 1, unsqueeze);
    }
}

impl OnnxImport for xnpu_ops::tensor::Concat {
    fn register(r: &mut Registry) {
        r.add("", "Concat", 1, concat);
    }
}

impl OnnxImport for xnpu_ops::tensor::Split {
    fn register(r: &mut Registry) {
        r.add("", "Split", 1, split);
    }
}

impl OnnxImport for xnpu_ops::tensor::Transpose {
    fn register(r: &mut Registry) {
        r.add("", "Transpose", 1, transpose);
    }
}

impl OnnxImport for xnpu_ops::tensor::Slice {
    fn register(r: &mut Registry) {
        r.add("", "Slice", 1, slice);
    }
}

impl OnnxImport for xnpu_ops::tensor::Gather {
    fn register(r: &mut Registry) {
        r.add("", "Gather", 1, gather);
    }
}

impl OnnxImport for xnpu_ops::tensor::GatherElements {
    fn register(r: &mut Registry) {
        r.add("", "GatherElements", 11, gather_elements);
    }
}

impl OnnxImport for xnpu_ops::tensor::GatherNd {
    fn register(r: &mut Registry) {
        r.add("", "GatherND", 11, gather_nd);
    }
}

impl OnnxImport for xnpu_ops::tensor::ScatterElements {
    fn register(r: &mut Registry) {
        r.add("", "Scatter", 9, scatter);
        r.add("", "ScatterElements", 11, scatter_elements);
    }
}

impl OnnxImport for xnpu_ops::tensor::ScatterNd {
    fn register(r: &mut Registry) {
        r.add("", "ScatterND", 11, scatter_nd);
    }
}

impl OnnxImport for xnpu_ops::tensor::TensorScatter {
    fn register(r: &mut Registry) {
        r.add("", "TensorScatter", 24, tensor_scatter);
    }
}

impl OnnxImport for xnpu_ops::tensor::Expand {
    fn register(r: &mut Registry) {
        r.add("", "Expand", 8, expand);
    }
}

impl OnnxImport for xnpu_ops::tensor::Tile {
    fn register(r: &mut Registry) {
        r.add("", "Tile", 1, tile);
    }
}

impl OnnxImport for xnpu_ops::tensor::Pad {
    fn register(r: &mut Registry) {
        r.add("", "Pad", 1, pad);
    }
}

impl OnnxImport for xnpu_ops::tensor::CenterCropPad {
    fn register(r: &mut Registry) {
        r.add("", "CenterCropPad", 18, center_crop_pad);
    }
}

impl OnnxImport for xnpu_ops::tensor::Range {
    fn register(r: &mut Registry) {
        r.add("", "Range", 11, range);
    }
}

impl OnnxImport for xnpu_ops::tensor::Trilu {
    fn register(r: &mut Registry) {
        r.add("", "Trilu", 14, trilu);
    }
}

impl OnnxImport for xnpu_ops::tensor::EyeLike {
    fn register(r: &mut Registry) {
        r.add("", "EyeLike", 9, eye_like);
    }
}

impl OnnxImport for xnpu_ops::tensor::Dropout {
    fn register(r: &mut Registry) {
        r.add("", "Dropout", 1, dropout);
    }
}

impl OnnxImport for xnpu_ops::tensor::TopK {
    fn register(r: &mut Registry) {
        r.add("", "TopK", 1, top_k);
    }
}

impl OnnxImport for xnpu_ops::tensor::Unique {
    fn register(r: &mut Registry) {
        r.add("", "Unique", 11, unique);
    }
}

impl OnnxImport for xnpu_ops::tensor::Cumulative {
    fn register(r: &mut Registry) {
        r.add("", "CumSum", 11, cum_sum);
        r.add("", "CumProd", 26, cum_prod);
    }
}

impl OnnxImport for xnpu_ops::tensor::OneHot {
    fn register(r: &mut Registry) {
        r.add("", "OneHot", 9, one_hot);
    }
}

impl OnnxImport for xnpu_ops::tensor::Compress {
    fn register(r: &mut Registry) {
        r.add("", "Compress", 9, compress);
    }
}

impl OnnxImport for xnpu_ops::tensor::NonZero {
    fn register(r: &mut Registry) {
        r.add("", "NonZero", 9, non_zero);
    }
}

impl OnnxImport for xnpu_ops::tensor::DepthSpace {
    fn register(r: &mut Registry) {
        r.add("", "SpaceToDepth", 1, space_to_depth);
        r.add("", "DepthToSpace", 1, depth_to_space);
    }
}

impl OnnxImport for xnpu_ops::tensor::ReverseSequence {
    fn register(r: &mut Registry) {
        r.add("", "ReverseSequence", 10, reverse_sequence);
    }
}

impl OnnxImport for xnpu_ops::tensor::Upsample {
    fn register(r: &mut Registry) {
        r.add("", "Upsample", 1, image::upsample);
        r.add("", "Upsample", 7, upsample);
    }
}

fn op(o: t::Op) -> Op {
    Op::Tensor(o)
}

fn identity(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::Identity(Identity)))
}

fn constant(n: &mut NodeCtx<'_>) -> Result<Op> {
    let mut found: Vec<(&str, Tensor)> = Vec::new();
    if let Some(v) = n.tensor("value")? {
        found.push(("value", v));
    }
    if let Some(v) = n.sparse_tensor("sparse_value")? {
        found.push(("sparse_value", v));
    }
    if let Some(v) = n.opt_float("value_float")? {
        found.push(("value_float", Tensor::scalar(v)));
    }
    if let Some(v) = n.floats("value_floats")? {
        found.push(("value_floats", Tensor::from_vec(vec![v.len()], v)?));
    }
    if let Some(v) = n.opt_int("value_int")? {
        found.push(("value_int", Tensor::scalar(v)));
    }
    if let Some(v) = n.ints("value_ints")? {
        found.push(("value_ints", Tensor::from_vec(vec![v.len()], v)?));
    }
    if let Some(v) = n.opt_string("value_string")? {
        found.push(("value_string", Tensor::from_strings(vec![], vec![v])?));
    }
    if let Some(v) = n.strings("value_strings")? {
        found.push(("value_strings", Tensor::from_strings(vec![v.len()], v)?));
    }
    match found.len() {
        1 => {
            let (_, value) = found.remove(0);
            Ok(op(t::Op::Constant(Constant { value })))
        }
        0 => Err(Error::model(
            "Constant needs one of the attributes value, sparse_value, value_float(s), \
             value_int(s), value_string(s); none is given",
        )),
        _ => Err(Error::model(format!(
            "Constant needs exactly one value attribute, got {}",
            found.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn constant_of_shape(n: &mut NodeCtx<'_>) -> Result<Op> {
    let value = match n.tensor("value")? {
        Some(v) if v.len() == 1 => v,
        Some(v) => {
            return Err(Error::model(format!(
                "attribute \"value\" must hold one element, got dims {:?}",
                v.shape()
            )))
        }
        None => Tensor::from_vec(vec![1], vec![0f32])?,
    };
    Ok(op(t::Op::ConstantOfShape(ConstantOfShape { value })))
}

fn shape(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::ShapeOf(ShapeOf {
        start: n.int("start", 0)?,
        end: n.opt_int("end")?,
    })))
}

fn size(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::Size(Size)))
}

fn bool_attr(n: &NodeCtx<'_>, name: &str, default: bool) -> Result<bool> {
    match n.int(name, default as i64)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Error::model(format!(
            "attribute \"{name}\" must be 0 or 1, got {v}"
        ))),
    }
}

fn reshape(n: &mut NodeCtx<'_>) -> Result<Op> {
    let shape = if n.opset() < 5 {
        Some(
            n.ints("shape")?
                .ok_or_else(|| Error::model("required attribute \"shape\" is missing"))?,
        )
    } else {
        None
    };
    Ok(op(t::Op::Reshape(Reshape {
        allowzero: bool_attr(n, "allowzero", false)?,
        shape,
    })))
}

fn flatten(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::Flatten(Flatten {
        axis: n.int("axis", 1)?,
    })))
}

fn squeeze(n: &mut NodeCtx<'_>) -> Result<Op> {
    let axes = if n.opset() < 13 {
        n.ints("axes")?
    } else {
        None
    };
    Ok(op(t::Op::Squeeze(Squeeze { axes })))
}

fn unsqueeze(n: &mut NodeCtx<'_>) -> Result<Op> {
    let axes = if n.opset() < 13 {
        Some(
            n.ints("axes")?
                .ok_or_else(|| Error::model("required attribute \"axes\" is missing"))?,
        )
    } else {
        if !n.has_input(1) {
            return Err(Error::model("Unsqueeze needs the axes input (input 1)"));
        }
        None
    };
    Ok(op(t::Op::Unsqueeze(Unsqueeze { axes })))
}

fn concat(n: &mut NodeCtx<'_>) -> Result<Op> {
    let axis = if n.opset() < 4 {
        n.int("axis", 1)?
    } else {
        n.req_int("axis")?
    };
    Ok(op(t::Op::Concat(Concat { axis })))
}

fn split(n: &mut NodeCtx<'_>) -> Result<Op> {
    let split = if n.opset() < 13 {
        n.ints("split")?
    } else {
        None
    };
    let num_outputs = if n.opset() >= 18 {
        match n.opt_int("num_outputs")? {
            Some(k) if k >= 1 => Some(k as usize),
            Some(k) => {
                return Err(Error::model(format!(
                    "attribute \"num_outputs\" must be at least 1, got {k}"
                )))
            }
            None => None,
        }
    } else {
        None
    };
    if num_outputs.is_some() && n.has_input(1) {
        return Err(Error::model(
            "Split takes either the split input or the num_outputs attribute, not both",
        ));
    }
    if let Some(k) = num_outputs {
        if k != n.n_outputs() {
            return Err(Error::model(format!(
                "attribute \"num_outputs\" is {k} but the node has {} outputs",
                n.n_outputs()
            )));
        }
    }
    Ok(op(t::Op::Split(Split {
        axis: n.int("axis", 0)?,
        split,
        num_outputs,
    })))
}

fn transpose(n: &mut NodeCtx<'_>) -> Result<Op> {
    let perm = n.ints("perm")?;
    if let Some(p) = &perm {
        // Checked against the rank at inference and run time; a repeat is wrong at any rank.
        Transpose {
            perm: Some(p.clone()),
        }
        .perm(p.len())
        .map_err(|e| Error::model(e.to_string()))?;
    }
    Ok(op(t::Op::Transpose(Transpose { perm })))
}

fn slice(n: &mut NodeCtx<'_>) -> Result<Op> {
    let attrs = if n.opset() < 10 {
        let req = |name: &str| -> Result<Vec<i64>> {
            n.ints(name)?
                .ok_or_else(|| Error::model(format!("required attribute \"{name}\" is missing")))
        };
        let starts = req("starts")?;
        let ends = req("ends")?;
        let axes = n.ints("axes")?;
        if ends.len() != starts.len() || axes.as_ref().is_some_and(|a| a.len() != starts.len()) {
            return Err(Error::model(format!(
                "attributes starts {starts:?}, ends {ends:?} and axes {axes:?} must have the same length"
            )));
        }
        Some(SliceAttrs { starts, ends, axes })
    } else {
        None
    };
    Ok(op(t::Op::Slice(Slice { attrs })))
}

fn gather(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::Gather(Gather {
        axis: n.int("axis", 0)?,
    })))
}

fn gather_elements(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::GatherElements(GatherElements {
        axis: n.int("axis", 0)?,
    })))
}

fn gather_nd(n: &mut NodeCtx<'_>) -> Result<Op> {
    let b = n.int("batch_dims", 0)?;
    let batch_dims = usize::try_from(b).map_err(|_| {
        Error::model(format!(
            "attribute \"batch_dims\" must not be negative, got {b}"
        ))
    })?;
    Ok(op(t::Op::GatherNd(GatherNd { batch_dims })))
}

fn reduction(n: &NodeCtx<'_>) -> Result<Reduction> {
    let s = n.string("reduction", "none")?;
    let r = Reduction::parse(&s).ok_or_else(|| {
        Error::model(format!(
            "attribute \"reduction\" must be none, add, mul, max or min, got \"{s}\""
        ))
    })?;
    let since = match r {
        Reduction::None => 11,
        Reduction::Add | Reduction::Mul => 16,
        Reduction::Max | Reduction::Min => 18,
    };
    if n.opset() < since {
        return Err(Error::model(format!(
            "reduction \"{s}\" exists from opset {since}, the model uses opset {}",
            n.opset()
        )));
    }
    Ok(r)
}

fn scatter(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::ScatterElements(ScatterElements {
        axis: n.int("axis", 0)?,
        reduction: Reduction::None,
    })))
}

fn scatter_elements(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::ScatterElements(ScatterElements {
        axis: n.int("axis", 0)?,
        reduction: reduction(n)?,
    })))
}

fn scatter_nd(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::ScatterNd(ScatterNd {
        reduction: reduction(n)?,
    })))
}

fn tensor_scatter(n: &mut NodeCtx<'_>) -> Result<Op> {
    let mode = n.string("mode", "linear")?;
    let circular = match mode.as_str() {
        "linear" => false,
        "circular" => true,
        m => {
            return Err(Error::model(format!(
                "attribute \"mode\" must be linear or circular, got \"{m}\""
            )))
        }
    };
    Ok(op(t::Op::TensorScatter(TensorScatter {
        axis: n.int("axis", -2)?,
        circular,
    })))
}

fn expand(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::Expand(t::Expand)))
}

fn tile(n: &mut NodeCtx<'_>) -> Result<Op> {
    if n.opset() < 6 {
        return Err(Error::unsupported(format!(
            "Tile of opset {} (tiles and axis inputs) is not supported; opset 6 and later are",
            n.opset()
        )));
    }
    Ok(op(t::Op::Tile(Tile)))
}

fn pad(n: &mut NodeCtx<'_>) -> Result<Op> {
    let m = n.string("mode", "constant")?;
    let mode = match m.as_str() {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" if n.opset() >= 19 => PadMode::Wrap,
        _ => {
            return Err(Error::model(format!(
                "attribute \"mode\" must be constant, reflect, edge{}, got \"{m}\"",
                if n.opset() >= 19 { " or wrap" } else { "" }
            )))
        }
    };
    let (pads, value) = if n.opset() < 11 {
        let name = if n.opset() < 2 { "paddings" } else { "pads" };
        let pads = n
            .ints(name)?
            .ok_or_else(|| Error::model(format!("required attribute \"{name}\" is missing")))?;
        (Some(pads), n.float("value", 0.0)?)
    } else {
        if !n.has_input(1) {
            return Err(Error::model("Pad needs the pads input (input 1)"));
        }
        (None, 0.0)
    };
    Ok(op(t::Op::Pad(Pad { mode, pads, value })))
}

fn center_crop_pad(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::CenterCropPad(CenterCropPad {
        axes: n.ints("axes")?,
    })))
}

fn range(n: &mut NodeCtx<'_>) -> Result<Op> {
    if n.opset() >= 27 {
        let s = n.int("stash_type", 1)?;
        if s != 1 && s != 11 {
            return Err(Error::model(format!(
                "attribute \"stash_type\" must be 1 (float) or 11 (double), got {s}"
            )));
        }
    }
    Ok(op(t::Op::Range(Range)))
}

fn trilu(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::Trilu(Trilu {
        upper: bool_attr(n, "upper", true)?,
    })))
}

fn eye_like(n: &mut NodeCtx<'_>) -> Result<Op> {
    let dtype = match n.opt_int("dtype")? {
        None => None,
        Some(code) => {
            let d = DType::from_onnx_code(code).map_err(|e| e.context("attribute \"dtype\""))?;
            if d == DType::String {
                return Err(Error::model("EyeLike cannot make a string tensor"));
            }
            Some(d)
        }
    };
    Ok(op(t::Op::EyeLike(EyeLike {
        dtype,
        k: n.int("k", 0)?,
    })))
}

fn dropout(n: &mut NodeCtx<'_>) -> Result<Op> {
    let ratio = if n.opset() < 12 {
        Some(n.float("ratio", 0.5)?)
    } else {
        None
    };
    Ok(op(t::Op::Dropout(Dropout {
        ratio,
        seed: n.opt_int("seed")?,
    })))
}

fn top_k(n: &mut NodeCtx<'_>) -> Result<Op> {
    let k = if n.opset() < 10 {
        let k = n.req_int("k")?;
        if k < 0 {
            return Err(Error::model(format!(
                "attribute \"k\" must not be negative, got {k}"
            )));
        }
        Some(k)
    } else {
        None
    };
    Ok(op(t::Op::TopK(TopK {
        axis: n.int("axis", -1)?,
        largest: bool_attr(n, "largest", true)?,
        sorted: bool_attr(n, "sorted", true)?,
        k,
    })))
}

fn unique(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::Unique(Unique {
        axis: n.opt_int("axis")?,
        sorted: bool_attr(n, "sorted", true)?,
    })))
}

fn cumulative(n: &NodeCtx<'_>, kind: CumKind) -> Result<Op> {
    Ok(op(t::Op::Cumulative(Cumulative {
        kind,
        exclusive: bool_attr(n, "exclusive", false)?,
        reverse: bool_attr(n, "reverse", false)?,
    })))
}

fn cum_sum(n: &mut NodeCtx<'_>) -> Result<Op> {
    cumulative(n, CumKind::Sum)
}

fn cum_prod(n: &mut NodeCtx<'_>) -> Result<Op> {
    cumulative(n, CumKind::Prod)
}

fn one_hot(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::OneHot(OneHot {
        axis: n.int("axis", -1)?,
    })))
}

fn compress(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::Compress(Compress {
        axis: n.opt_int("axis")?,
    })))
}

fn non_zero(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::NonZero(NonZero)))
}

fn depth_space(n: &NodeCtx<'_>, to_depth: bool) -> Result<Op> {
    let b = n.req_int("blocksize")?;
    let blocksize = usize::try_from(b).ok().filter(|&b| b >= 1).ok_or_else(|| {
        Error::model(format!(
            "attribute \"blocksize\" must be at least 1, got {b}"
        ))
    })?;
    let has_mode = !to_depth && n.opset() >= 11 || to_depth && n.opset() >= 28;
    let mode = if has_mode {
        match n.string("mode", "DCR")?.as_str() {
            "DCR" => DepthMode::Dcr,
            "CRD" => DepthMode::Crd,
            m => {
                return Err(Error::model(format!(
                    "attribute \"mode\" must be DCR or CRD, got \"{m}\""
                )))
            }
        }
    } else {
        DepthMode::Dcr
    };
    Ok(op(t::Op::DepthSpace(DepthSpace {
        to_depth,
        blocksize,
        mode,
    })))
}

fn space_to_depth(n: &mut NodeCtx<'_>) -> Result<Op> {
    depth_space(n, true)
}

fn depth_to_space(n: &mut NodeCtx<'_>) -> Result<Op> {
    depth_space(n, false)
}

fn reverse_sequence(n: &mut NodeCtx<'_>) -> Result<Op> {
    let batch = n.int("batch_axis", 1)?;
    let time = n.int("time_axis", 0)?;
    match (batch, time) {
        (0, 1) | (1, 0) => Ok(op(t::Op::ReverseSequence(ReverseSequence {
            batch_axis: batch as usize,
            time_axis: time as usize,
        }))),
        _ => Err(Error::model(format!(
            "attributes batch_axis ({batch}) and time_axis ({time}) must be 0 and 1 in some order"
        ))),
    }
}

fn upsample(n: &mut NodeCtx<'_>) -> Result<Op> {
    let mode = n.string("mode", "nearest")?;
    if mode != "nearest" {
        return Err(Error::unsupported(format!(
            "Upsample mode \"{mode}\" is not supported (only nearest); use Resize"
        )));
    }
    let scales = if n.opset() < 9 {
        Some(
            n.floats("scales")?
                .ok_or_else(|| Error::model("required attribute \"scales\" is missing"))?,
        )
    } else {
        None
    };
    Ok(op(t::Op::Upsample(Upsample { scales })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::import_model;
    use crate::onnx::proto::{
        AttributeProto, AttributeType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
        ValueInfoProto,
    };
    use crate::onnx::DataDir;

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: AttributeType::Ints as i32,
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    fn string(name: &str, v: &str) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: AttributeType::String as i32,
            s: v.as_bytes().to_vec().into(),
            ..Default::default()
        }
    }

    /// Imports a one-node model whose inputs are untyped graph inputs.
    fn import(
        opset: i64,
        op_type: &str,
        inputs: &[&str],
        n_out: usize,
        attrs: Vec<AttributeProto>,
    ) -> Result<Op> {
        let outputs: Vec<String> = (0..n_out).map(|i| format!("y{i}")).collect();
        let vi = |n: &str| ValueInfoProto {
            name: n.into(),
            ..Default::default()
        };
        let model = ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: opset,
            }],
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    input: inputs.iter().map(|s| s.to_string()).collect(),
                    output: outputs.clone(),
                    op_type: op_type.into(),
                    attribute: attrs,
                    ..Default::default()
                }],
                input: inputs
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| vi(s))
                    .collect(),
                output: outputs.iter().map(|s| vi(s)).collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let m = import_model(&model, "m", &DataDir::default())?;
        Ok(m.graph.nodes[0].op.clone())
    }

    #[test]
    fn constant_needs_exactly_one_value() {
        let err = import(13, "Constant", &[], 1, vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("none is given"), "{err}");
        let two = vec![ints("value_ints", &[1]), string("value_string", "a")];
        let err = import(13, "Constant", &[], 1, two).unwrap_err().to_string();
        assert!(err.contains("value_ints, value_string"), "{err}");
        let op = import(13, "Constant", &[], 1, vec![ints("value_ints", &[4, 5])]).unwrap();
        let Op::Tensor(t::Op::Constant(c)) = op else {
            panic!("not a Constant: {op:?}")
        };
        assert_eq!(c.value.to_vec::<i64>().unwrap(), vec![4, 5]);
    }

    #[test]
    fn squeeze_axes_move_from_attribute_to_input_at_opset_13() {
        let op = import(11, "Squeeze", &["x"], 1, vec![ints("axes", &[1])]).unwrap();
        assert_eq!(
            op,
            Op::Tensor(t::Op::Squeeze(Squeeze {
                axes: Some(vec![1])
            }))
        );
        let op = import(13, "Squeeze", &["x", "a"], 1, vec![]).unwrap();
        assert_eq!(op, Op::Tensor(t::Op::Squeeze(Squeeze { axes: None })));
    }

    #[test]
    fn invalid_attributes_are_refused_with_the_reason() {
        let err = import(18, "Pad", &["x", "p"], 1, vec![string("mode", "wrap")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("constant, reflect, edge, got \"wrap\""),
            "{err}"
        );
        let n3 = AttributeProto {
            name: "num_outputs".into(),
            r#type: AttributeType::Int as i32,
            i: 3,
            ..Default::default()
        };
        let err = import(18, "Split", &["x"], 2, vec![n3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("node has 2 outputs"), "{err}");
        let err = import(13, "Transpose", &["x"], 1, vec![ints("perm", &[0, 0])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a permutation"), "{err}");
        let err = import(
            18,
            "ScatterND",
            &["x", "i", "u"],
            1,
            vec![string("reduction", "avg")],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("\"avg\""), "{err}");
    }
}
