//! Import of the `ml` family: `ai.onnx.ml` ops and the `ai.onnx.preview.training` optimizers.

use xnpu_core::{DType, Error, Result, Tensor};
use xnpu_ops::ml::{
    self as m, Adagrad, Adam, Aggregate, ArrayFeatureExtractor, Binarizer, Branch, LabelEncoder,
    Momentum, NodeMode, PostTransform, TreeEnsemble, TreeLeaf, TreeNode,
};

use super::{NodeCtx, OnnxImport, Registry};
use crate::ir::Op;

const ML: &str = "ai.onnx.ml";
const TRAINING: &str = "ai.onnx.preview.training";

impl OnnxImport for xnpu_ops::ml::LabelEncoder {
    fn register(r: &mut Registry) {
        r.add(ML, "LabelEncoder", 1, label_encoder_v1);
        r.add(ML, "LabelEncoder", 2, label_encoder);
    }
}

impl OnnxImport for xnpu_ops::ml::TreeEnsemble {
    fn register(r: &mut Registry) {
        r.add(ML, "TreeEnsemble", 5, tree_ensemble);
    }
}

impl OnnxImport for xnpu_ops::ml::ArrayFeatureExtractor {
    fn register(r: &mut Registry) {
        r.add(ML, "ArrayFeatureExtractor", 1, array_feature_extractor);
    }
}

impl OnnxImport for xnpu_ops::ml::Binarizer {
    fn register(r: &mut Registry) {
        r.add(ML, "Binarizer", 1, binarizer);
    }
}

impl OnnxImport for xnpu_ops::ml::Adagrad {
    fn register(r: &mut Registry) {
        r.add(TRAINING, "Adagrad", 1, adagrad);
    }
}

impl OnnxImport for xnpu_ops::ml::Adam {
    fn register(r: &mut Registry) {
        r.add(TRAINING, "Adam", 1, adam);
    }
}

impl OnnxImport for xnpu_ops::ml::Momentum {
    fn register(r: &mut Registry) {
        r.add(TRAINING, "Momentum", 1, momentum);
    }
}

fn op(o: m::Op) -> Op {
    Op::Ml(o)
}

fn vector<T: xnpu_core::Elem>(v: Vec<T>) -> Result<Tensor> {
    Tensor::from_vec(vec![v.len()], v)
}

fn strings(v: Vec<String>) -> Result<Tensor> {
    Tensor::from_strings(vec![v.len()], v)
}

/// Opset 1: `classes_strings` maps strings to their positions (string input) or positions to
/// strings (int64 input).
fn label_encoder_v1(n: &mut NodeCtx<'_>) -> Result<Op> {
    let classes = n.strings("classes_strings")?.unwrap_or_default();
    let positions: Vec<i64> = (0..classes.len() as i64).collect();
    let (keys, values, default) = match n.input_dtype(0) {
        Some(DType::String) => (
            strings(classes)?,
            vector(positions)?,
            Tensor::scalar(n.int("default_int64", -1)?),
        ),
        Some(DType::I64) => (
            vector(positions)?,
            strings(classes)?,
            Tensor::from_strings(vec![], vec![n.string("default_string", "_Unused")?])?,
        ),
        Some(d) => {
            return Err(Error::model(format!(
                "LabelEncoder-1 maps string or int64 inputs, got {d}"
            )))
        }
        None => {
            return Err(Error::unsupported(
                "LabelEncoder-1 needs the input's dtype to be known at import",
            ))
        }
    };
    Ok(op(m::Op::LabelEncoder(LabelEncoder {
        keys,
        values,
        default,
    })))
}

/// Exactly one of the attributes `<prefix>_floats`, `_int64s`, `_strings`, `_tensor`, as a
/// 1-D tensor.
fn one_of(n: &NodeCtx<'_>, prefix: &str) -> Result<Tensor> {
    let mut found = Vec::new();
    if let Some(v) = n.floats(&format!("{prefix}_floats"))? {
        found.push(vector(v)?);
    }
    if let Some(v) = n.ints(&format!("{prefix}_int64s"))? {
        found.push(vector(v)?);
    }
    if let Some(v) = n.strings(&format!("{prefix}_strings"))? {
        found.push(strings(v)?);
    }
    if let Some(t) = n.tensor(&format!("{prefix}_tensor"))? {
        found.push(t.reshape(vec![t.len()])?);
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        k => Err(Error::model(format!(
            "exactly one of the attributes {prefix}_floats, {prefix}_int64s, {prefix}_strings, {prefix}_tensor must be given, got {k}"
        ))),
    }
}

fn label_encoder(n: &mut NodeCtx<'_>) -> Result<Op> {
    let keys = one_of(n, "keys")?;
    let values = one_of(n, "values")?;
    if keys.len() != values.len() {
        return Err(Error::model(format!(
            "there are {} keys and {} values; they must pair up",
            keys.len(),
            values.len()
        )));
    }
    let allowed = [
        DType::String,
        DType::I64,
        DType::F32,
        DType::I32,
        DType::I16,
        DType::F64,
    ];
    for (what, t) in [("keys", &keys), ("values", &values)] {
        if !allowed.contains(&t.dtype()) {
            return Err(Error::unsupported(format!(
                "LabelEncoder {what} of dtype {} are not supported",
                t.dtype()
            )));
        }
    }
    let from_tensor = n.has_attr("values_tensor");
    let default = match n.tensor("default_tensor")? {
        Some(d) if from_tensor => {
            if d.dtype() != values.dtype() || d.len() != 1 {
                return Err(Error::model(format!(
                    "attribute \"default_tensor\" must be one {} value, got {}{:?}",
                    values.dtype(),
                    d.dtype(),
                    d.shape()
                )));
            }
            d.reshape(vec![])?
        }
        _ => match values.dtype() {
            DType::String => {
                Tensor::from_strings(vec![], vec![n.string("default_string", "_Unused")?])?
            }
            DType::F32 if !from_tensor => Tensor::scalar(n.float("default_float", -0.0)?),
            DType::I64 if !from_tensor => Tensor::scalar(n.int("default_int64", -1)?),
            DType::F32 => Tensor::scalar(-0.0f32),
            DType::F64 => Tensor::scalar(-0.0f64),
            DType::I64 => Tensor::scalar(-1i64),
            DType::I32 => Tensor::scalar(-1i32),
            DType::I16 => Tensor::scalar(-1i16),
            d => {
                return Err(Error::unsupported(format!(
                    "LabelEncoder values of dtype {d} are not supported"
                )))
            }
        },
    };
    Ok(op(m::Op::LabelEncoder(LabelEncoder {
        keys,
        values,
        default,
    })))
}

fn req_ints(n: &NodeCtx<'_>, name: &str) -> Result<Vec<i64>> {
    n.ints(name)?
        .ok_or_else(|| Error::model(format!("required attribute \"{name}\" is missing")))
}

fn req_tensor(n: &NodeCtx<'_>, name: &str) -> Result<Tensor> {
    n.tensor(name)?
        .ok_or_else(|| Error::model(format!("required attribute \"{name}\" is missing")))
}

fn index(name: &str, i: usize, v: i64, len: usize, of: &str) -> Result<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&u| u < len)
        .ok_or_else(|| Error::model(format!("{name}[{i}] = {v} is out of range for {len} {of}")))
}

fn tree_ensemble(n: &mut NodeCtx<'_>) -> Result<Op> {
    let arrays = NodeArrays::read(n)?;
    let leaf_targets = req_ints(n, "leaf_targetids")?;
    let leaf_weights = req_tensor(n, "leaf_weights")?.to_f64_vec()?;
    let n_targets = match n.opt_int("n_targets")? {
        Some(t) => usize::try_from(t)
            .map_err(|_| Error::model(format!("attribute \"n_targets\" must be >= 0, got {t}")))?,
        None => leaf_targets.iter().max().map_or(0, |&m| m.max(-1) + 1) as usize,
    };
    let leaves = tree_leaves(&leaf_targets, &leaf_weights, n_targets)?;
    let members = n
        .tensor("membership_values")?
        .map(|t| t.to_f64_vec())
        .transpose()?;
    let nodes = arrays.nodes(members.as_deref().unwrap_or(&[]), leaves.len())?;
    let roots = req_ints(n, "tree_roots")?
        .iter()
        .enumerate()
        .map(|(i, &r)| index("tree_roots", i, r, nodes.len(), "nodes"))
        .collect::<Result<Vec<_>>>()?;
    Ok(op(m::Op::TreeEnsemble(TreeEnsemble {
        nodes,
        leaves,
        roots,
        n_targets,
        aggregate: aggregate(n)?,
        post_transform: post_transform(n)?,
    })))
}

/// TreeEnsemble's per-node attributes, one entry per node each.
struct NodeArrays {
    featureids: Vec<i64>,
    truenodeids: Vec<i64>,
    falsenodeids: Vec<i64>,
    trueleafs: Vec<i64>,
    falseleafs: Vec<i64>,
    modes: Vec<i64>,
    splits: Vec<f64>,
    missing: Option<Vec<i64>>,
}

impl NodeArrays {
    /// The attributes, checked to have one entry per node.
    fn read(n: &NodeCtx<'_>) -> Result<NodeArrays> {
        let modes = req_tensor(n, "nodes_modes")?;
        let modes = match modes.dtype() {
            DType::U8 => modes.to_i64_vec()?,
            d => {
                return Err(Error::model(format!(
                    "attribute \"nodes_modes\" must be a uint8 tensor, got {d}"
                )))
            }
        };
        let a = NodeArrays {
            featureids: req_ints(n, "nodes_featureids")?,
            truenodeids: req_ints(n, "nodes_truenodeids")?,
            falsenodeids: req_ints(n, "nodes_falsenodeids")?,
            trueleafs: req_ints(n, "nodes_trueleafs")?,
            falseleafs: req_ints(n, "nodes_falseleafs")?,
            modes,
            splits: req_tensor(n, "nodes_splits")?.to_f64_vec()?,
            missing: n.ints("nodes_missing_value_tracks_true")?,
        };
        let n_nodes = a.featureids.len();
        for (name, len) in [
            ("nodes_truenodeids", a.truenodeids.len()),
            ("nodes_falsenodeids", a.falsenodeids.len()),
            ("nodes_trueleafs", a.trueleafs.len()),
            ("nodes_falseleafs", a.falseleafs.len()),
            ("nodes_modes", a.modes.len()),
            ("nodes_splits", a.splits.len()),
        ] {
            if len != n_nodes {
                return Err(Error::model(format!(
                    "attribute \"{name}\" has {len} entries, \"nodes_featureids\" has {n_nodes}"
                )));
            }
        }
        if let Some(m) = &a.missing {
            if m.len() != n_nodes {
                return Err(Error::model(format!(
                    "attribute \"nodes_missing_value_tracks_true\" has {} entries, there are {n_nodes} nodes",
                    m.len()
                )));
            }
        }
        Ok(a)
    }

    /// The nodes; the member sets of Member nodes are, in node order, the NaN-terminated
    /// runs of `members` (`membership_values`).
    fn nodes(&self, members: &[f64], n_leaves: usize) -> Result<Vec<TreeNode>> {
        let n_nodes = self.featureids.len();
        let mut sets = members.split(|v| v.is_nan()).map(<[f64]>::to_vec);
        let branch = |name: &str, i: usize, leaf: i64, id: i64| -> Result<Branch> {
            Ok(match leaf {
                0 => Branch::Node(index(name, i, id, n_nodes, "nodes")?),
                _ => Branch::Leaf(index(name, i, id, n_leaves, "leaves")?),
            })
        };
        (0..n_nodes)
            .map(|i| {
                let mode = node_mode(i, self.modes[i])?;
                let members = if mode == NodeMode::Member {
                    sets.next().ok_or_else(|| {
                        Error::model(format!(
                            "node {i} is a set membership node but \"membership_values\" has no set left for it"
                        ))
                    })?
                } else {
                    vec![]
                };
                Ok(TreeNode {
                    mode,
                    feature: usize::try_from(self.featureids[i]).map_err(|_| {
                        Error::model(format!(
                            "nodes_featureids[{i}] = {} is negative",
                            self.featureids[i]
                        ))
                    })?,
                    split: self.splits[i],
                    members,
                    missing_tracks_true: self.missing.as_ref().is_some_and(|m| m[i] != 0),
                    if_true: branch("nodes_truenodeids", i, self.trueleafs[i], self.truenodeids[i])?,
                    if_false: branch(
                        "nodes_falsenodeids",
                        i,
                        self.falseleafs[i],
                        self.falsenodeids[i],
                    )?,
                })
            })
            .collect()
    }
}

/// The leaves: one target index and weight each.
fn tree_leaves(targets: &[i64], weights: &[f64], n_targets: usize) -> Result<Vec<TreeLeaf>> {
    if targets.len() != weights.len() {
        return Err(Error::model(format!(
            "\"leaf_targetids\" has {} entries, \"leaf_weights\" has {}",
            targets.len(),
            weights.len()
        )));
    }
    targets
        .iter()
        .zip(weights)
        .enumerate()
        .map(|(i, (&t, &w))| {
            Ok(TreeLeaf {
                target: index("leaf_targetids", i, t, n_targets, "targets")?,
                weight: w,
            })
        })
        .collect()
}

/// The comparison of `nodes_modes[i]`.
fn node_mode(i: usize, mode: i64) -> Result<NodeMode> {
    Ok(match mode {
        0 => NodeMode::Leq,
        1 => NodeMode::Lt,
        2 => NodeMode::Gte,
        3 => NodeMode::Gt,
        4 => NodeMode::Eq,
        5 => NodeMode::Neq,
        6 => NodeMode::Member,
        m => {
            return Err(Error::model(format!(
                "nodes_modes[{i}] = {m} is not a known comparison (0..=6)"
            )))
        }
    })
}

fn aggregate(n: &NodeCtx<'_>) -> Result<Aggregate> {
    Ok(match n.int("aggregate_function", 1)? {
        0 => Aggregate::Average,
        1 => Aggregate::Sum,
        2 => Aggregate::Min,
        3 => Aggregate::Max,
        a => {
            return Err(Error::model(format!(
                "attribute \"aggregate_function\" must be 0..=3, got {a}"
            )))
        }
    })
}

fn post_transform(n: &NodeCtx<'_>) -> Result<PostTransform> {
    Ok(match n.int("post_transform", 0)? {
        0 => PostTransform::None,
        1 => PostTransform::Softmax,
        2 => PostTransform::Logistic,
        3 => PostTransform::SoftmaxZero,
        4 => {
            return Err(Error::unsupported(
                "TreeEnsemble post_transform PROBIT (4) is not supported",
            ))
        }
        p => {
            return Err(Error::model(format!(
                "attribute \"post_transform\" must be 0..=4, got {p}"
            )))
        }
    })
}

fn array_feature_extractor(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(m::Op::ArrayFeatureExtractor(ArrayFeatureExtractor)))
}

fn binarizer(n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(m::Op::Binarizer(Binarizer {
        threshold: n.float("threshold", 0.0)?,
    })))
}

/// Checks that the inputs are `R, T` and `groups` groups of one length.
fn check_groups(n: &NodeCtx<'_>, groups: usize, outputs: usize) -> Result<()> {
    let rest = n.n_inputs().saturating_sub(2);
    if rest == 0 || !rest.is_multiple_of(groups) {
        return Err(Error::model(format!(
            "{} expects R, T and {groups} groups of tensors of one length, got {} inputs",
            n.op_type(),
            n.n_inputs()
        )));
    }
    let per = rest / groups;
    if n.n_outputs() > outputs * per {
        return Err(Error::model(format!(
            "{} with {per} tensors to optimize has at most {} outputs, got {}",
            n.op_type(),
            outputs * per,
            n.n_outputs()
        )));
    }
    Ok(())
}

fn adagrad(n: &mut NodeCtx<'_>) -> Result<Op> {
    check_groups(n, 3, 2)?;
    Ok(op(m::Op::Adagrad(Adagrad {
        decay_factor: n.float("decay_factor", 0.0)?,
        epsilon: n.float("epsilon", 1e-6)?,
        norm_coefficient: n.float("norm_coefficient", 0.0)?,
    })))
}

fn adam(n: &mut NodeCtx<'_>) -> Result<Op> {
    check_groups(n, 4, 3)?;
    Ok(op(m::Op::Adam(Adam {
        alpha: n.float("alpha", 0.9)?,
        beta: n.float("beta", 0.999)?,
        epsilon: n.float("epsilon", 1e-6)?,
        norm_coefficient: n.float("norm_coefficient", 0.0)?,
        norm_coefficient_post: n.float("norm_coefficient_post", 0.0)?,
    })))
}

fn momentum(n: &mut NodeCtx<'_>) -> Result<Op> {
    check_groups(n, 3, 2)?;
    let req = |name: &str| -> Result<f32> {
        n.opt_float(name)?
            .ok_or_else(|| Error::model(format!("required attribute \"{name}\" is missing")))
    };
    let nesterov = match n.string("mode", "")?.as_str() {
        "standard" => false,
        "nesterov" => true,
        m => {
            return Err(Error::model(format!(
                "attribute \"mode\" must be \"standard\" or \"nesterov\", got {m:?}"
            )))
        }
    };
    Ok(op(m::Op::Momentum(Momentum {
        alpha: req("alpha")?,
        beta: req("beta")?,
        norm_coefficient: req("norm_coefficient")?,
        nesterov,
    })))
}
