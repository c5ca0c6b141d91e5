//! One problem: a single ONNX node with its attributes and input tensors, built into an
//! ONNX model (graph inputs for runtime tensors, initializers for constants) that every
//! backend runs. A problem prints itself completely enough to be rebuilt by hand, and can be
//! written out as `model.onnx` plus one `.npy` per runtime input for `xnpu run`.

use std::fmt;
use std::path::Path;

use prost::Message;
use xnpu::graph::onnx::proto::{
    tensor_shape_proto::dimension, tensor_shape_proto::Dimension, type_proto, AttributeProto,
    AttributeType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use xnpu::graph::onnx::DataDir;
use xnpu::graph::Model;
use xnpu::{Tensor, Value};

/// The default-domain opset every problem is written at (Gelu needs 20; Reduce ops take
/// their axes as an input since 18).
pub const OPSET: i64 = 21;

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(&'static str),
}

/// A node input: a tensor fed at run time, a constant of the model, or absent (an omitted
/// optional input, written as "").
#[derive(Clone)]
pub enum Arg {
    Input(Tensor),
    Const(Tensor),
    Absent,
}

impl Arg {
    pub fn tensor(&self) -> Option<&Tensor> {
        match self {
            Arg::Input(t) | Arg::Const(t) => Some(t),
            Arg::Absent => None,
        }
    }
}

/// What the test knows how to compute naively for this problem (see `naive.rs`).
#[derive(Clone, Debug, PartialEq)]
pub enum Naive {
    Conv,
    MatMul,
    Gemm,
}

#[derive(Clone)]
pub struct Problem {
    pub op: &'static str,
    pub attrs: Vec<(&'static str, Attr)>,
    pub inputs: Vec<Arg>,
    pub outputs: usize,
    /// How many terms each output element sums (1 for elementwise ops): float tolerances
    /// grow with it.
    pub accum: usize,
    pub naive: Option<Naive>,
    /// The default-domain opset of the model ([`OPSET`] unless the op needs a later one).
    pub opset: i64,
}

impl Problem {
    pub fn new(op: &'static str) -> Problem {
        Problem {
            op,
            attrs: Vec::new(),
            inputs: Vec::new(),
            outputs: 1,
            accum: 1,
            naive: None,
            opset: OPSET,
        }
    }

    /// Writes the model at `opset` (for ops newer than [`OPSET`]).
    pub fn opset(mut self, opset: i64) -> Problem {
        self.opset = opset;
        self
    }

    pub fn attr(mut self, name: &'static str, a: Attr) -> Problem {
        self.attrs.push((name, a));
        self
    }

    pub fn input(mut self, t: Tensor) -> Problem {
        self.inputs.push(Arg::Input(t));
        self
    }

    pub fn constant(mut self, t: Tensor) -> Problem {
        self.inputs.push(Arg::Const(t));
        self
    }

    /// A constant or a runtime input, as `constant` says.
    pub fn arg(mut self, t: Tensor, constant: bool) -> Problem {
        self.inputs.push(if constant {
            Arg::Const(t)
        } else {
            Arg::Input(t)
        });
        self
    }

    pub fn absent(mut self) -> Problem {
        self.inputs.push(Arg::Absent);
        self
    }

    pub fn outputs(mut self, n: usize) -> Problem {
        self.outputs = n;
        self
    }

    pub fn accum(mut self, n: usize) -> Problem {
        self.accum = n.max(1);
        self
    }

    pub fn naive(mut self, n: Naive) -> Problem {
        self.naive = Some(n);
        self
    }

    pub fn get_attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(n, _)| *n == name).map(|(_, a)| a)
    }

    pub fn int_attr(&self, name: &str, default: i64) -> i64 {
        match self.get_attr(name) {
            Some(Attr::Int(i)) => *i,
            _ => default,
        }
    }

    pub fn ints_attr(&self, name: &str) -> Option<&[i64]> {
        match self.get_attr(name) {
            Some(Attr::Ints(v)) => Some(v),
            _ => None,
        }
    }

    pub fn float_attr(&self, name: &str, default: f32) -> f32 {
        match self.get_attr(name) {
            Some(Attr::Float(f)) => *f,
            _ => default,
        }
    }

    pub fn str_attr(&self, name: &str) -> Option<&'static str> {
        match self.get_attr(name) {
            Some(Attr::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn input_name(k: usize) -> String {
        format!("in{k}")
    }

    /// The runtime inputs, in graph-input order, with their names.
    pub fn feeds(&self) -> Vec<(String, Value)> {
        self.inputs
            .iter()
            .enumerate()
            .filter_map(|(k, a)| match a {
                Arg::Input(t) => Some((Problem::input_name(k), Value::Tensor(t.clone()))),
                _ => None,
            })
            .collect()
    }

    /// The ONNX model: one node, runtime inputs as graph inputs with static shapes, constants
    /// as initializers; outputs untyped (shape inference decides).
    pub fn to_proto(&self) -> ModelProto {
        let mut graph = GraphProto {
            name: self.op.to_lowercase(),
            ..Default::default()
        };
        let mut node = NodeProto {
            name: format!("{}_0", self.op.to_lowercase()),
            op_type: self.op.to_string(),
            ..Default::default()
        };
        for (k, a) in self.inputs.iter().enumerate() {
            let name = Problem::input_name(k);
            match a {
                Arg::Input(t) => {
                    graph.input.push(value_info(&name, Some(t)));
                    node.input.push(name);
                }
                Arg::Const(t) => {
                    graph.initializer.push(tensor_proto(&name, t));
                    node.input.push(name);
                }
                Arg::Absent => node.input.push(String::new()),
            }
        }
        // Trailing absent inputs are dropped, as exporters do.
        while node.input.last().is_some_and(String::is_empty) {
            node.input.pop();
        }
        for k in 0..self.outputs {
            let name = format!("out{k}");
            graph.output.push(value_info(&name, None));
            node.output.push(name);
        }
        node.attribute = self.attrs.iter().map(|(n, a)| attribute(n, a)).collect();
        graph.node.push(node);
        ModelProto {
            ir_version: 10,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: self.opset,
            }],
            producer_name: "xnpu backend_suite".into(),
            graph: Some(graph),
            ..Default::default()
        }
    }

    /// The model imported into xnpu's IR.
    pub fn model(&self) -> xnpu::Result<Model> {
        let name = format!("{}.onnx", self.op.to_lowercase());
        xnpu::graph::onnx::import_model(&self.to_proto(), &name, &DataDir::default())
    }

    /// Writes `model.onnx` and one `inK.npy` per runtime input into `dir`, and returns the
    /// `xnpu run` arguments that feed them.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<String> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("model.onnx"), self.to_proto().encode_to_vec())?;
        let mut args = Vec::new();
        for (name, v) in self.feeds() {
            let path = dir.join(format!("{name}.npy"));
            if let Value::Tensor(t) = &v {
                xnpu::npy::write(&path, t).map_err(std::io::Error::other)?;
            }
            args.push(format!("--input {name}={}", path.display()));
        }
        Ok(args.join(" "))
    }
}

fn attribute(name: &str, a: &Attr) -> AttributeProto {
    let mut p = AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    match a {
        Attr::Int(i) => {
            p.r#type = AttributeType::Int as i32;
            p.i = *i;
        }
        Attr::Ints(v) => {
            p.r#type = AttributeType::Ints as i32;
            p.ints = v.clone();
        }
        Attr::Float(f) => {
            p.r#type = AttributeType::Float as i32;
            p.f = *f;
        }
        Attr::Str(s) => {
            p.r#type = AttributeType::String as i32;
            p.s = xnpu::core::Bytes::from_static(s.as_bytes());
        }
    }
    p
}

fn value_info(name: &str, t: Option<&Tensor>) -> ValueInfoProto {
    let r#type = t.map(|t| TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: t.dtype().onnx_code(),
            shape: Some(TensorShapeProto {
                dim: t
                    .shape()
                    .iter()
                    .map(|&d| Dimension {
                        value: Some(dimension::Value::DimValue(d as i64)),
                        denotation: String::new(),
                    })
                    .collect(),
            }),
        })),
        denotation: String::new(),
    });
    ValueInfoProto {
        name: name.to_string(),
        r#type,
        doc_string: String::new(),
    }
}

fn tensor_proto(name: &str, t: &Tensor) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: t.dtype().onnx_code(),
        raw_data: xnpu::core::Bytes::copy_from_slice(t.raw_bytes()),
        ..Default::default()
    }
}

/// A tensor as `f32[2, 3]`, with its values when there are few.
pub fn describe_tensor(t: &Tensor, values: usize) -> String {
    let mut s = format!("{}{:?}", t.dtype(), t.shape());
    if t.len() <= values {
        if let Ok(v) = t.to_f64_vec() {
            let shown: Vec<String> = v.iter().map(|x| format!("{x}")).collect();
            s.push_str(&format!(" = [{}]", shown.join(", ")));
        }
    }
    s
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attr::Int(i) => write!(f, "{i}"),
            Attr::Ints(v) => write!(f, "{v:?}"),
            Attr::Float(x) => write!(f, "{x}"),
            Attr::Str(s) => write!(f, "{s:?}"),
        }
    }
}

impl Problem {
    /// One line: `Conv(in0: f32[1, 2, 5] input, in1: f32[3, 2, 2] const, in2: absent)
    /// {strides=[2], group=1}`, values shown for tensors of at most `values` elements.
    pub fn describe(&self, values: usize) -> String {
        let args: Vec<String> = self
            .inputs
            .iter()
            .enumerate()
            .map(|(k, a)| match a {
                Arg::Input(t) => format!("in{k}: {} input", describe_tensor(t, values)),
                Arg::Const(t) => format!("in{k}: {} const", describe_tensor(t, values)),
                Arg::Absent => format!("in{k}: absent"),
            })
            .collect();
        let attrs: Vec<String> = self.attrs.iter().map(|(n, a)| format!("{n}={a}")).collect();
        let mut s = format!("{}({})", self.op, args.join(", "));
        if !attrs.is_empty() {
            s.push_str(&format!(" {{{}}}", attrs.join(", ")));
        }
        if self.outputs != 1 {
            s.push_str(&format!(" -> {} outputs", self.outputs));
        }
        s
    }

    /// The short form used in failure headers: op, dtypes and shapes.
    pub fn signature(&self) -> String {
        let shapes: Vec<String> = self
            .inputs
            .iter()
            .filter_map(|a| a.tensor().map(|t| format!("{}{:?}", t.dtype(), t.shape())))
            .collect();
        format!("{}({})", self.op, shapes.join(", "))
    }
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(16))
    }
}
