//! Export of the smaller families: rnn, signal, attention, image, ml, sequence, text.

use xnpu_core::{DType, Error, Tensor};
use xnpu_ops::attention as att;
use xnpu_ops::image::{
    self as im, AspectPolicy, CoordMode, GridMode, GridPadding, NearestMode, PixelFormat,
    ResizeInputs, ResizeMode, RoiPool,
};
use xnpu_ops::ml::{self as m, Aggregate, Branch, NodeMode, PostTransform};
use xnpu_ops::rnn::{self as rn, Activation, Cell, Direction};
use xnpu_ops::sequence as sq;
use xnpu_ops::signal as sg;
use xnpu_ops::text::{self as tx, CaseChange, NgramPool, TfIdfMode};

use super::tensor::resample;
use super::{
    a_bool, a_float, a_floats, a_int, a_ints, a_str, a_strs, a_tensor, a_type, a_usizes,
    AttributeProto, Emit, R,
};

// ---------- rnn ----------

fn rnn_activation(a: &Activation, alphas: &mut Vec<f32>, betas: &mut Vec<f32>) -> &'static str {
    match *a {
        Activation::Relu => "Relu",
        Activation::Tanh => "Tanh",
        Activation::Sigmoid => "Sigmoid",
        Activation::Affine { alpha, beta } => {
            alphas.push(alpha);
            betas.push(beta);
            "Affine"
        }
        Activation::LeakyRelu { alpha } => {
            alphas.push(alpha);
            "LeakyRelu"
        }
        Activation::ThresholdedRelu { alpha } => {
            alphas.push(alpha);
            "ThresholdedRelu"
        }
        Activation::ScaledTanh { alpha, beta } => {
            alphas.push(alpha);
            betas.push(beta);
            "ScaledTanh"
        }
        Activation::HardSigmoid { alpha, beta } => {
            alphas.push(alpha);
            betas.push(beta);
            "HardSigmoid"
        }
        Activation::Elu { alpha } => {
            alphas.push(alpha);
            "Elu"
        }
        Activation::Softsign => "Softsign",
        Activation::Softplus => "Softplus",
    }
}

pub(super) fn rnn(op: &rn::Op, e: &mut Emit<'_>) -> R {
    let rn::Op::Recurrent(r) = op;
    let mut attrs = vec![a_str(
        "direction",
        match r.direction {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
            Direction::Bidirectional => "bidirectional",
        },
    )];
    if let Some(h) = r.hidden_size {
        attrs.push(a_int("hidden_size", h as i64));
    }
    let (mut alphas, mut betas) = (vec![], vec![]);
    let names: Vec<String> = r
        .activations
        .iter()
        .map(|a| rnn_activation(a, &mut alphas, &mut betas).to_string())
        .collect();
    attrs.push(a_strs("activations", &names));
    if !alphas.is_empty() {
        attrs.push(a_floats("activation_alpha", &alphas));
    }
    if !betas.is_empty() {
        attrs.push(a_floats("activation_beta", &betas));
    }
    if let Some(c) = r.clip {
        attrs.push(a_float("clip", c));
    }
    if r.batch_first {
        e.need(14)?;
        attrs.push(a_int("layout", 1));
    }
    match r.cell {
        Cell::Rnn => {}
        Cell::Gru {
            linear_before_reset,
        } => {
            if linear_before_reset {
                e.need(3)?;
                attrs.push(a_int("linear_before_reset", 1));
            }
        }
        Cell::Lstm { input_forget } => {
            if input_forget {
                attrs.push(a_int("input_forget", 1));
            }
        }
    }
    e.simple(r.name(), attrs)
}

// ---------- signal ----------

pub(super) fn signal(op: &sg::Op, e: &mut Emit<'_>) -> R {
    match op {
        sg::Op::Dft(d) => {
            let mut attrs = vec![a_bool("inverse", d.inverse), a_bool("onesided", d.onesided)];
            match d.axis {
                Some(axis) if e.opset() < 20 => {
                    attrs.push(a_int("axis", axis));
                    let mut ins = e.ins.clone();
                    ins.truncate(2);
                    let outs = e.outs.clone();
                    e.add("DFT", "", ins, outs, attrs)
                }
                Some(axis) => {
                    let mut ins = e.ins.clone();
                    ins.truncate(2);
                    while ins.len() < 2 {
                        ins.push(String::new());
                    }
                    if axis != -2 {
                        ins.push(e.constant("axis", &Tensor::scalar(axis))?);
                    }
                    let outs = e.outs.clone();
                    e.add("DFT", "", ins, outs, attrs)
                }
                None => {
                    e.need(20)?;
                    e.simple("DFT", attrs)
                }
            }
        }
        sg::Op::Stft(s) => e.simple("STFT", vec![a_bool("onesided", s.onesided)]),
        sg::Op::Window(w) => e.simple(
            w.name(),
            vec![
                a_bool("periodic", w.periodic),
                a_int("output_datatype", w.dtype.onnx_code() as i64),
            ],
        ),
        sg::Op::MelWeightMatrix(mw) => e.simple(
            "MelWeightMatrix",
            vec![a_int("output_datatype", mw.dtype.onnx_code() as i64)],
        ),
    }
}

// ---------- attention ----------

pub(super) fn attention(op: &att::Op, e: &mut Emit<'_>) -> R {
    match op {
        att::Op::Attention(a) => {
            let mut attrs = vec![];
            if a.is_causal {
                attrs.push(a_int("is_causal", 1));
            }
            if let Some(q) = a.q_num_heads {
                attrs.push(a_int("q_num_heads", q as i64));
            }
            if let Some(k) = a.kv_num_heads {
                attrs.push(a_int("kv_num_heads", k as i64));
            }
            if let Some(s) = a.scale {
                attrs.push(a_float("scale", s));
            }
            if a.softcap != 0.0 {
                attrs.push(a_float("softcap", a.softcap));
            }
            if a.qk_matmul_output_mode != 0 {
                attrs.push(a_int(
                    "qk_matmul_output_mode",
                    a.qk_matmul_output_mode as i64,
                ));
            }
            if a.left_window_size != -1 {
                e.need(25)?;
                attrs.push(a_int("left_window_size", a.left_window_size));
            }
            if a.right_window_size != -1 {
                e.need(25)?;
                attrs.push(a_int("right_window_size", a.right_window_size));
            }
            if e.n_given() > 6 {
                // nonpad_kv_seqlen (input 6) exists from opset 24.
                e.need(24)?;
            }
            e.simple("Attention", attrs)
        }
        att::Op::RotaryEmbedding(r) => {
            let mut attrs = vec![a_bool("interleaved", r.interleaved)];
            if r.rotary_embedding_dim != 0 {
                attrs.push(a_int("rotary_embedding_dim", r.rotary_embedding_dim as i64));
            }
            if r.num_heads != 0 {
                attrs.push(a_int("num_heads", r.num_heads as i64));
            }
            e.simple("RotaryEmbedding", attrs)
        }
        att::Op::GroupQueryAttention(g) => {
            let mut attrs = vec![
                a_int("num_heads", g.num_heads as i64),
                a_int("kv_num_heads", g.kv_num_heads as i64),
                a_int("local_window_size", g.local_window_size),
                a_bool("do_rotary", g.do_rotary),
                a_bool("rotary_interleaved", g.rotary_interleaved),
            ];
            if g.scale != 0.0 {
                attrs.push(a_float("scale", g.scale));
            }
            if g.softcap != 0.0 {
                attrs.push(a_float("softcap", g.softcap));
            }
            if g.smooth_softmax {
                attrs.push(a_int("smooth_softmax", 1));
            }
            if !g.causal {
                attrs.push(a_int("causal", 0));
            }
            e.microsoft("GroupQueryAttention", attrs)
        }
        att::Op::MultiHeadAttention(m) => {
            let mut attrs = vec![
                a_int("num_heads", m.num_heads as i64),
                a_float("mask_filter_value", m.mask_filter_value),
                a_bool("unidirectional", m.unidirectional),
            ];
            if m.scale != 0.0 {
                attrs.push(a_float("scale", m.scale));
            }
            e.microsoft("MultiHeadAttention", attrs)
        }
    }
}

// ---------- image ----------

fn coord_name(c: CoordMode) -> &'static str {
    match c {
        CoordMode::HalfPixel => "half_pixel",
        CoordMode::HalfPixelSymmetric => "half_pixel_symmetric",
        CoordMode::PytorchHalfPixel => "pytorch_half_pixel",
        CoordMode::AlignCorners => "align_corners",
        CoordMode::Asymmetric => "asymmetric",
        CoordMode::TfCropAndResize => "tf_crop_and_resize",
    }
}

fn nearest_name(n: NearestMode) -> &'static str {
    match n {
        NearestMode::RoundPreferFloor => "round_prefer_floor",
        NearestMode::RoundPreferCeil => "round_prefer_ceil",
        NearestMode::Floor => "floor",
        NearestMode::Ceil => "ceil",
    }
}

fn resize(r: &im::Resize, e: &mut Emit<'_>) -> R {
    let plain = r.coord == CoordMode::Asymmetric
        && !r.antialias
        && !r.exclude_outside
        && r.extrapolation_value == 0.0
        && r.axes.is_none()
        && r.keep_aspect_ratio == AspectPolicy::Stretch;
    let nearest = match r.mode {
        ResizeMode::Nearest(NearestMode::Floor) => Some(true),
        ResizeMode::Linear => Some(false),
        _ => None,
    };
    match &r.inputs {
        ResizeInputs::Fixed(scales) if plain && nearest.is_some() => {
            return resample(e, Some(scales), nearest.unwrap_or(true));
        }
        ResizeInputs::Scales if plain && nearest.is_some() => {
            if e.opset() < 9 {
                return e.need(9);
            }
            return resample(e, None, nearest.unwrap_or(true));
        }
        ResizeInputs::RoiScalesSizes => e.need(11)?,
        _ => {
            return Err(Error::unsupported(format!(
                "a Resize with {:?} inputs and these attributes has no ONNX form",
                r.inputs
            ))
            .into())
        }
    }
    let o = e.opset();
    let mut attrs = vec![];
    match r.mode {
        ResizeMode::Nearest(n) => {
            attrs.push(a_str("mode", "nearest"));
            attrs.push(a_str("nearest_mode", nearest_name(n)));
        }
        ResizeMode::Linear => attrs.push(a_str("mode", "linear")),
        ResizeMode::Cubic { a } => {
            attrs.push(a_str("mode", "cubic"));
            attrs.push(a_float("cubic_coeff_a", a));
        }
    }
    if r.coord == CoordMode::HalfPixelSymmetric {
        e.need(19)?;
    }
    attrs.push(a_str("coordinate_transformation_mode", coord_name(r.coord)));
    if r.exclude_outside {
        attrs.push(a_int("exclude_outside", 1));
    }
    if r.extrapolation_value != 0.0 {
        attrs.push(a_float("extrapolation_value", r.extrapolation_value));
    }
    if r.antialias {
        e.need(18)?;
        attrs.push(a_int("antialias", 1));
    }
    if let Some(axes) = &r.axes {
        e.need(18)?;
        attrs.push(a_ints("axes", axes));
    }
    if r.keep_aspect_ratio != AspectPolicy::Stretch {
        e.need(18)?;
        attrs.push(a_str(
            "keep_aspect_ratio_policy",
            match r.keep_aspect_ratio {
                AspectPolicy::NotLarger => "not_larger",
                AspectPolicy::NotSmaller => "not_smaller",
                AspectPolicy::Stretch => "stretch",
            },
        ));
    }
    let mut ins = e.ins.clone();
    if o < 13 && ins.get(1).is_none_or(|s| s.is_empty()) {
        // Resize-11 requires the roi input.
        let roi = e.constant("roi", &Tensor::from_vec(vec![0], Vec::<f32>::new())?)?;
        if ins.len() < 2 {
            ins.resize(2, String::new());
        }
        ins[1] = roi;
    }
    if o < 13 && ins.get(2).is_none_or(|s| s.is_empty()) {
        let scales = e.constant("scales", &Tensor::from_vec(vec![0], Vec::<f32>::new())?)?;
        if ins.len() < 3 {
            ins.resize(3, String::new());
        }
        ins[2] = scales;
    }
    let outs = e.outs.clone();
    e.add("Resize", "", ins, outs, attrs)
}

pub(super) fn image(op: &im::Op, e: &mut Emit<'_>) -> R {
    match op {
        im::Op::Resize(r) => resize(r, e),
        im::Op::GridSample(g) => {
            let old = e.opset() < 20;
            let mode = match (g.mode, old) {
                (GridMode::Nearest, _) => "nearest",
                (GridMode::Linear, true) => "bilinear",
                (GridMode::Linear, false) => "linear",
                (GridMode::Cubic, true) => "bicubic",
                (GridMode::Cubic, false) => "cubic",
            };
            let padding = match g.padding {
                GridPadding::Zeros => "zeros",
                GridPadding::Border => "border",
                GridPadding::Reflection => "reflection",
            };
            e.simple(
                "GridSample",
                vec![
                    a_str("mode", mode),
                    a_str("padding_mode", padding),
                    a_bool("align_corners", g.align_corners),
                ],
            )
        }
        im::Op::AffineGrid(a) => {
            e.simple("AffineGrid", vec![a_bool("align_corners", a.align_corners)])
        }
        im::Op::RoiAlign(r) => {
            let mut attrs = vec![
                a_str(
                    "mode",
                    match r.mode {
                        RoiPool::Avg => "avg",
                        RoiPool::Max => "max",
                    },
                ),
                a_int("output_height", r.output_height as i64),
                a_int("output_width", r.output_width as i64),
                a_int("sampling_ratio", r.sampling_ratio as i64),
                a_float("spatial_scale", r.spatial_scale),
            ];
            if r.half_pixel {
                e.need(16)?;
            }
            if e.opset() >= 16 {
                attrs.push(a_str(
                    "coordinate_transformation_mode",
                    if r.half_pixel {
                        "half_pixel"
                    } else {
                        "output_half_pixel"
                    },
                ));
            }
            e.simple("RoiAlign", attrs)
        }
        im::Op::NonMaxSuppression(n) => e.simple(
            "NonMaxSuppression",
            vec![a_bool("center_point_box", n.center_point_box)],
        ),
        im::Op::ImageDecoder(d) => e.simple(
            "ImageDecoder",
            vec![a_str(
                "pixel_format",
                match d.pixel_format {
                    PixelFormat::Rgb => "RGB",
                    PixelFormat::Bgr => "BGR",
                    PixelFormat::Grayscale => "Grayscale",
                },
            )],
        ),
    }
}

// ---------- ml ----------

const ML: &str = "ai.onnx.ml";
const TRAINING: &str = "ai.onnx.preview.training";

/// A 1-D tensor as the `<prefix>_floats/_int64s/_strings` attribute, or `_tensor` (opset 4).
fn one_of(e: &Emit<'_>, prefix: &str, t: &Tensor) -> R<AttributeProto> {
    Ok(match t.dtype() {
        DType::F32 => a_floats(&format!("{prefix}_floats"), &t.to_vec::<f32>()?),
        DType::I64 => a_ints(&format!("{prefix}_int64s"), &t.to_vec::<i64>()?),
        DType::String => a_strs(&format!("{prefix}_strings"), t.strings()?),
        _ => {
            e.need_domain(ML, 4)?;
            a_tensor(&format!("{prefix}_tensor"), t)?
        }
    })
}

fn label_encoder(l: &m::LabelEncoder, e: &mut Emit<'_>) -> R {
    let v = e.domain_version(ML).unwrap_or(0);
    if v < 2 {
        // Opset 2 keys/values attributes replace classes_strings.
        return e.need_domain(ML, 2);
    }
    let mut attrs = vec![one_of(e, "keys", &l.keys)?, one_of(e, "values", &l.values)?];
    let uses_tensor = !matches!(l.values.dtype(), DType::F32 | DType::I64 | DType::String);
    // The default tensor is a one-element 1-D tensor.
    let default_1d = l.default.reshape(vec![l.default.len()])?;
    if uses_tensor {
        attrs.push(a_tensor("default_tensor", &default_1d)?);
    } else {
        let missing = || Error::model("LabelEncoder has an empty default value");
        match l.default.dtype() {
            DType::String => {
                let s = l.default.strings()?.first().cloned().ok_or_else(missing)?;
                attrs.push(a_str("default_string", &s))
            }
            DType::F32 => {
                let v = *l.default.to_vec::<f32>()?.first().ok_or_else(missing)?;
                attrs.push(a_float("default_float", v))
            }
            DType::I64 => {
                let v = *l.default.to_vec::<i64>()?.first().ok_or_else(missing)?;
                attrs.push(a_int("default_int64", v))
            }
            _ => {
                e.need_domain(ML, 4)?;
                attrs.push(a_tensor("default_tensor", &default_1d)?);
            }
        }
    }
    let (ins, outs) = (e.ins.clone(), e.outs.clone());
    e.add("LabelEncoder", ML, ins, outs, attrs)
}

fn tree_ensemble(t: &m::TreeEnsemble, e: &mut Emit<'_>) -> R {
    e.need_domain(ML, 5)?;
    let n = t.nodes.len();
    let (mut feat, mut tids, mut fids, mut tleaf, mut fleaf) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut modes = Vec::with_capacity(n);
    let mut splits = Vec::with_capacity(n);
    let mut missing = Vec::with_capacity(n);
    let mut members = Vec::new();
    let branch = |b: Branch| match b {
        Branch::Node(i) => (i as i64, 0),
        Branch::Leaf(i) => (i as i64, 1),
    };
    for node in &t.nodes {
        feat.push(node.feature as i64);
        let (ti, tl) = branch(node.if_true);
        let (fi, fl) = branch(node.if_false);
        tids.push(ti);
        tleaf.push(tl);
        fids.push(fi);
        fleaf.push(fl);
        modes.push(match node.mode {
            NodeMode::Leq => 0u8,
            NodeMode::Lt => 1,
            NodeMode::Gte => 2,
            NodeMode::Gt => 3,
            NodeMode::Eq => 4,
            NodeMode::Neq => 5,
            NodeMode::Member => 6,
        });
        splits.push(node.split);
        missing.push(node.missing_tracks_true as i64);
        if node.mode == NodeMode::Member {
            if !members.is_empty() {
                members.push(f64::NAN);
            }
            members.extend_from_slice(&node.members);
        }
    }
    // Thresholds and weights are written in the input's float type.
    let float_t = |v: Vec<f64>, dtype: Option<DType>| -> R<Tensor> {
        Ok(match dtype {
            Some(DType::F64) => Tensor::from_vec(vec![v.len()], v)?,
            Some(DType::F16) => Tensor::from_vec(
                vec![v.len()],
                v.iter().map(|&x| xnpu_core::f16::from_f64(x)).collect(),
            )?,
            _ => Tensor::from_vec(vec![v.len()], v.iter().map(|&x| x as f32).collect())?,
        })
    };
    let dtype = e.in_dtype(0);
    let mut attrs = vec![
        a_ints("nodes_featureids", &feat),
        a_ints("nodes_truenodeids", &tids),
        a_ints("nodes_falsenodeids", &fids),
        a_ints("nodes_trueleafs", &tleaf),
        a_ints("nodes_falseleafs", &fleaf),
        a_tensor("nodes_modes", &Tensor::from_vec(vec![n], modes)?)?,
        a_tensor("nodes_splits", &float_t(splits, dtype)?)?,
        a_ints(
            "leaf_targetids",
            &t.leaves.iter().map(|l| l.target as i64).collect::<Vec<_>>(),
        ),
        a_tensor(
            "leaf_weights",
            &float_t(t.leaves.iter().map(|l| l.weight).collect(), dtype)?,
        )?,
        a_usizes("tree_roots", &t.roots),
        a_int("n_targets", t.n_targets as i64),
        a_int(
            "aggregate_function",
            match t.aggregate {
                Aggregate::Average => 0,
                Aggregate::Sum => 1,
                Aggregate::Min => 2,
                Aggregate::Max => 3,
            },
        ),
        a_int(
            "post_transform",
            match t.post_transform {
                PostTransform::None => 0,
                PostTransform::Softmax => 1,
                PostTransform::Logistic => 2,
                PostTransform::SoftmaxZero => 3,
            },
        ),
    ];
    if missing.iter().any(|&m| m != 0) {
        attrs.push(a_ints("nodes_missing_value_tracks_true", &missing));
    }
    if t.nodes.iter().any(|n| n.mode == NodeMode::Member) {
        attrs.push(a_tensor("membership_values", &float_t(members, dtype)?)?);
    }
    let (ins, outs) = (e.ins.clone(), e.outs.clone());
    e.add("TreeEnsemble", ML, ins, outs, attrs)
}

pub(super) fn ml(op: &m::Op, e: &mut Emit<'_>) -> R {
    let (ins, outs) = (e.ins.clone(), e.outs.clone());
    match op {
        m::Op::LabelEncoder(l) => label_encoder(l, e),
        m::Op::TreeEnsemble(t) => tree_ensemble(t, e),
        m::Op::ArrayFeatureExtractor(_) => e.add("ArrayFeatureExtractor", ML, ins, outs, vec![]),
        m::Op::Binarizer(b) => e.add(
            "Binarizer",
            ML,
            ins,
            outs,
            vec![a_float("threshold", b.threshold)],
        ),
        m::Op::Adagrad(a) => e.add(
            "Adagrad",
            TRAINING,
            ins,
            outs,
            vec![
                a_float("decay_factor", a.decay_factor),
                a_float("epsilon", a.epsilon),
                a_float("norm_coefficient", a.norm_coefficient),
            ],
        ),
        m::Op::Adam(a) => e.add(
            "Adam",
            TRAINING,
            ins,
            outs,
            vec![
                a_float("alpha", a.alpha),
                a_float("beta", a.beta),
                a_float("epsilon", a.epsilon),
                a_float("norm_coefficient", a.norm_coefficient),
                a_float("norm_coefficient_post", a.norm_coefficient_post),
            ],
        ),
        m::Op::Momentum(a) => e.add(
            "Momentum",
            TRAINING,
            ins,
            outs,
            vec![
                a_float("alpha", a.alpha),
                a_float("beta", a.beta),
                a_float("norm_coefficient", a.norm_coefficient),
                a_str("mode", if a.nesterov { "nesterov" } else { "standard" }),
            ],
        ),
    }
}

// ---------- sequence ----------

pub(super) fn sequence(op: &sq::Op, e: &mut Emit<'_>) -> R {
    match op {
        sq::Op::SequenceEmpty(s) => e.simple(
            "SequenceEmpty",
            vec![a_int("dtype", s.dtype.onnx_code() as i64)],
        ),
        sq::Op::SplitToSequence(s) => e.simple(
            "SplitToSequence",
            vec![a_int("axis", s.axis), a_bool("keepdims", s.keepdims)],
        ),
        sq::Op::ConcatFromSequence(c) => e.simple(
            "ConcatFromSequence",
            vec![a_int("axis", c.axis), a_bool("new_axis", c.new_axis)],
        ),
        sq::Op::Optional(o) => {
            let attrs = o.elem.iter().map(|t| a_type("type", t)).collect();
            e.simple("Optional", attrs)
        }
        sq::Op::OptionalHasElement(_) | sq::Op::OptionalGetElement(_) => {
            // Before opset 18 the input must be given and be an optional.
            let optional_in = matches!(e.in_type(0), Some(xnpu_core::ValueType::Optional(_)));
            if !e.has(0) || !optional_in {
                e.need(18)?;
            }
            e.simple(op.name(), vec![])
        }
        other => e.simple(other.name(), vec![]),
    }
}

// ---------- text ----------

pub(super) fn text(op: &tx::Op, e: &mut Emit<'_>) -> R {
    match op {
        tx::Op::StringNormalizer(s) => {
            let mut attrs = vec![
                a_str(
                    "case_change_action",
                    match s.case_change {
                        CaseChange::None => "NONE",
                        CaseChange::Lower => "LOWER",
                        CaseChange::Upper => "UPPER",
                    },
                ),
                a_bool("is_case_sensitive", s.case_sensitive),
            ];
            if !s.stopwords.is_empty() {
                attrs.push(a_strs("stopwords", &s.stopwords));
            }
            if !s.locale.is_empty() {
                attrs.push(a_str("locale", &s.locale));
            }
            e.simple("StringNormalizer", attrs)
        }
        tx::Op::StringSplit(s) => {
            let mut attrs = vec![];
            if let Some(d) = &s.delimiter {
                attrs.push(a_str("delimiter", d));
            }
            if let Some(k) = s.maxsplit {
                attrs.push(a_int("maxsplit", k.min(i64::MAX as usize) as i64));
            }
            e.simple("StringSplit", attrs)
        }
        tx::Op::StringConcat(_) => e.simple("StringConcat", vec![]),
        tx::Op::RegexFullMatch(r) => e.simple("RegexFullMatch", vec![a_str("pattern", &r.pattern)]),
        tx::Op::TfIdfVectorizer(t) => {
            let mut attrs = vec![
                a_str(
                    "mode",
                    match t.mode {
                        TfIdfMode::Tf => "TF",
                        TfIdfMode::Idf => "IDF",
                        TfIdfMode::TfIdf => "TFIDF",
                    },
                ),
                a_int("min_gram_length", t.min_gram_length as i64),
                a_int("max_gram_length", t.max_gram_length as i64),
                a_int("max_skip_count", t.max_skip_count as i64),
                a_usizes("ngram_counts", &t.ngram_counts),
                a_usizes("ngram_indexes", &t.ngram_indexes),
                match &t.pool {
                    NgramPool::Ints(p) => a_ints("pool_int64s", p),
                    NgramPool::Strings(p) => a_strs("pool_strings", p),
                },
            ];
            if !t.weights.is_empty() {
                attrs.push(a_floats("weights", &t.weights));
            }
            e.simple("TfIdfVectorizer", attrs)
        }
    }
}
