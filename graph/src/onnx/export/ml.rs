//! Export of the `ml` family: ai.onnx.ml ops and the training optimizers.

use xnpu_core::{DType, Error, Tensor};
use xnpu_ops::ml::{self as m, Aggregate, Branch, NodeMode, PostTransform};

use super::{
    a_float, a_floats, a_int, a_ints, a_str, a_strs, a_tensor, a_usizes, AttributeProto, Emit,
    OnnxExport, R,
};

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
    e.in_domain("LabelEncoder", ML, attrs)
}

fn tree_ensemble(t: &m::TreeEnsemble, e: &mut Emit<'_>) -> R {
    e.need_domain(ML, 5)?;
    let cols = NodeColumns::of(&t.nodes);
    // Thresholds and weights are written in the input's float type.
    let dtype = e.in_dtype(0);
    let mut attrs = vec![
        a_ints("nodes_featureids", &cols.feature),
        a_ints("nodes_truenodeids", &cols.true_ids),
        a_ints("nodes_falsenodeids", &cols.false_ids),
        a_ints("nodes_trueleafs", &cols.true_leaf),
        a_ints("nodes_falseleafs", &cols.false_leaf),
        a_tensor(
            "nodes_modes",
            &Tensor::from_vec(vec![cols.modes.len()], cols.modes)?,
        )?,
        a_tensor("nodes_splits", &float_t(cols.splits, dtype)?)?,
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
        a_int("aggregate_function", aggregate_code(t.aggregate)),
        a_int("post_transform", post_transform_code(t.post_transform)),
    ];
    if cols.missing.iter().any(|&m| m != 0) {
        attrs.push(a_ints("nodes_missing_value_tracks_true", &cols.missing));
    }
    if t.nodes.iter().any(|n| n.mode == NodeMode::Member) {
        attrs.push(a_tensor(
            "membership_values",
            &float_t(cols.members, dtype)?,
        )?);
    }
    e.in_domain("TreeEnsemble", ML, attrs)
}

/// TreeEnsemble's per-node attributes, a column each.
struct NodeColumns {
    feature: Vec<i64>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    true_leaf: Vec<i64>,
    false_leaf: Vec<i64>,
    modes: Vec<u8>,
    splits: Vec<f64>,
    missing: Vec<i64>,
    /// The member sets of Member nodes, in node order, NaN between them.
    members: Vec<f64>,
}

impl NodeColumns {
    fn of(nodes: &[m::TreeNode]) -> NodeColumns {
        let n = nodes.len();
        let mut c = NodeColumns {
            feature: Vec::with_capacity(n),
            true_ids: Vec::with_capacity(n),
            false_ids: Vec::with_capacity(n),
            true_leaf: Vec::with_capacity(n),
            false_leaf: Vec::with_capacity(n),
            modes: Vec::with_capacity(n),
            splits: Vec::with_capacity(n),
            missing: Vec::with_capacity(n),
            members: Vec::new(),
        };
        let branch = |b: Branch| match b {
            Branch::Node(i) => (i as i64, 0),
            Branch::Leaf(i) => (i as i64, 1),
        };
        for node in nodes {
            c.feature.push(node.feature as i64);
            let (ti, tl) = branch(node.if_true);
            let (fi, fl) = branch(node.if_false);
            c.true_ids.push(ti);
            c.true_leaf.push(tl);
            c.false_ids.push(fi);
            c.false_leaf.push(fl);
            c.modes.push(mode_code(node.mode));
            c.splits.push(node.split);
            c.missing.push(node.missing_tracks_true as i64);
            if node.mode == NodeMode::Member {
                if !c.members.is_empty() {
                    c.members.push(f64::NAN);
                }
                c.members.extend_from_slice(&node.members);
            }
        }
        c
    }
}

/// Values as a 1-D tensor of the input's float type (f32 unless f64 or f16).
fn float_t(v: Vec<f64>, dtype: Option<DType>) -> R<Tensor> {
    Ok(match dtype {
        Some(DType::F64) => Tensor::from_vec(vec![v.len()], v)?,
        Some(DType::F16) => Tensor::from_vec(
            vec![v.len()],
            v.iter().map(|&x| xnpu_core::f16::from_f64(x)).collect(),
        )?,
        _ => Tensor::from_vec(vec![v.len()], v.iter().map(|&x| x as f32).collect())?,
    })
}

fn mode_code(mode: NodeMode) -> u8 {
    match mode {
        NodeMode::Leq => 0,
        NodeMode::Lt => 1,
        NodeMode::Gte => 2,
        NodeMode::Gt => 3,
        NodeMode::Eq => 4,
        NodeMode::Neq => 5,
        NodeMode::Member => 6,
    }
}

fn aggregate_code(a: Aggregate) -> i64 {
    match a {
        Aggregate::Average => 0,
        Aggregate::Sum => 1,
        Aggregate::Min => 2,
        Aggregate::Max => 3,
    }
}

fn post_transform_code(p: PostTransform) -> i64 {
    match p {
        PostTransform::None => 0,
        PostTransform::Softmax => 1,
        PostTransform::Logistic => 2,
        PostTransform::SoftmaxZero => 3,
    }
}

impl OnnxExport for m::LabelEncoder {
    fn export(&self, e: &mut Emit<'_>) -> R {
        label_encoder(self, e)
    }
}

impl OnnxExport for m::TreeEnsemble {
    fn export(&self, e: &mut Emit<'_>) -> R {
        tree_ensemble(self, e)
    }
}

impl OnnxExport for m::ArrayFeatureExtractor {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.in_domain("ArrayFeatureExtractor", ML, vec![])
    }
}

impl OnnxExport for m::Binarizer {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.in_domain("Binarizer", ML, vec![a_float("threshold", self.threshold)])
    }
}

impl OnnxExport for m::Adagrad {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.in_domain(
            "Adagrad",
            TRAINING,
            vec![
                a_float("decay_factor", self.decay_factor),
                a_float("epsilon", self.epsilon),
                a_float("norm_coefficient", self.norm_coefficient),
            ],
        )
    }
}

impl OnnxExport for m::Adam {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.in_domain(
            "Adam",
            TRAINING,
            vec![
                a_float("alpha", self.alpha),
                a_float("beta", self.beta),
                a_float("epsilon", self.epsilon),
                a_float("norm_coefficient", self.norm_coefficient),
                a_float("norm_coefficient_post", self.norm_coefficient_post),
            ],
        )
    }
}

impl OnnxExport for m::Momentum {
    fn export(&self, e: &mut Emit<'_>) -> R {
        e.in_domain(
            "Momentum",
            TRAINING,
            vec![
                a_float("alpha", self.alpha),
                a_float("beta", self.beta),
                a_float("norm_coefficient", self.norm_coefficient),
                a_str(
                    "mode",
                    if self.nesterov {
                        "nesterov"
                    } else {
                        "standard"
                    },
                ),
            ],
        )
    }
}
