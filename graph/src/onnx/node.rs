//! `NodeCtx`: what a translator sees of one ONNX node — typed attribute getters that say
//! which attribute is wrong and why, the opset version, and its inputs' types and constants.

use xnpu_core::{DType, Error, Result, Tensor, ValueType};

use super::proto::{AttributeProto, AttributeType, GraphProto, NodeProto};
use super::tensor::{tensor_from_proto, DataDir};
use super::types::value_type;
use crate::ir::Graph;

/// Imports a body graph in the scope of the node being translated.
pub(crate) type SubgraphFn<'a> = dyn Fn(&GraphProto) -> Result<Graph> + 'a;

pub struct NodeCtx<'a> {
    pub(crate) node: &'a NodeProto,
    pub(crate) opset: i64,
    pub(crate) input_types: Vec<Option<ValueType>>,
    pub(crate) input_consts: Vec<Option<Tensor>>,
    pub(crate) dir: &'a DataDir,
    pub(crate) subgraph: &'a SubgraphFn<'a>,
    /// Set by [`NodeCtx::arrange_inputs`]: for each IR input, the ONNX input it reads.
    pub(crate) arrangement: Option<Vec<Option<usize>>>,
}

fn type_name(t: i32) -> &'static str {
    match AttributeType::try_from(t) {
        Ok(AttributeType::Float) => "FLOAT",
        Ok(AttributeType::Int) => "INT",
        Ok(AttributeType::String) => "STRING",
        Ok(AttributeType::Tensor) => "TENSOR",
        Ok(AttributeType::Graph) => "GRAPH",
        Ok(AttributeType::Floats) => "FLOATS",
        Ok(AttributeType::Ints) => "INTS",
        Ok(AttributeType::Strings) => "STRINGS",
        Ok(AttributeType::Tensors) => "TENSORS",
        Ok(AttributeType::Graphs) => "GRAPHS",
        Ok(AttributeType::SparseTensor) => "SPARSE_TENSOR",
        Ok(AttributeType::SparseTensors) => "SPARSE_TENSORS",
        Ok(AttributeType::TypeProto) => "TYPE_PROTO",
        Ok(AttributeType::TypeProtos) => "TYPE_PROTOS",
        _ => "UNDEFINED",
    }
}

impl<'a> NodeCtx<'a> {
    /// The opset version of the node's domain in this model.
    pub fn opset(&self) -> i64 {
        self.opset
    }

    pub fn op_type(&self) -> &str {
        &self.node.op_type
    }

    /// Number of inputs, absent optional ones (empty names) included.
    pub fn n_inputs(&self) -> usize {
        self.node.input.len()
    }

    /// Makes the IR node's inputs differ from the ONNX node's: IR input `i` is ONNX input
    /// `order[i]` (`None`, or an ONNX input the node does not have, is an absent input). For
    /// ops that share an IR op with another ONNX op whose inputs come in another order.
    pub fn arrange_inputs(&mut self, order: &[Option<usize>]) {
        self.arrangement = Some(order.to_vec());
    }

    /// Whether input `i` is given (exists and has a non-empty name).
    pub fn has_input(&self, i: usize) -> bool {
        self.node.input.get(i).is_some_and(|s| !s.is_empty())
    }

    /// Number of outputs, unused ones (empty names) included.
    pub fn n_outputs(&self) -> usize {
        self.node.output.len()
    }

    pub fn has_output(&self, i: usize) -> bool {
        self.node.output.get(i).is_some_and(|s| !s.is_empty())
    }

    /// The type of input `i` as known at import.
    pub fn input_type(&self, i: usize) -> Option<&ValueType> {
        self.input_types.get(i).and_then(|t| t.as_ref())
    }

    /// The dtype of input `i` when it is a tensor of known dtype.
    pub fn input_dtype(&self, i: usize) -> Option<DType> {
        self.input_type(i).and_then(|t| t.tensor()).map(|t| t.dtype)
    }

    /// The value of input `i` when it is a constant (initializer).
    pub fn const_input(&self, i: usize) -> Option<&Tensor> {
        self.input_consts.get(i).and_then(|t| t.as_ref())
    }

    pub fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    pub fn has_attr(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }

    /// Names of all attributes, for refusing unknown ones where that matters.
    pub fn attr_names(&self) -> impl Iterator<Item = &str> {
        self.node.attribute.iter().map(|a| a.name.as_str())
    }

    fn typed(&self, name: &str, want: AttributeType) -> Result<Option<&'a AttributeProto>> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) if a.r#type == want as i32 || a.r#type == AttributeType::Undefined as i32 => {
                Ok(Some(a))
            }
            Some(a) => Err(Error::model(format!(
                "attribute \"{name}\" must be {}, got {}",
                type_name(want as i32),
                type_name(a.r#type)
            ))),
        }
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.typed(name, AttributeType::Int)?.map(|a| a.i))
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(self.opt_int(name)?.unwrap_or(default))
    }

    /// A required INT attribute.
    pub fn req_int(&self, name: &str) -> Result<i64> {
        self.opt_int(name)?
            .ok_or_else(|| Error::model(format!("required attribute \"{name}\" is missing")))
    }

    pub fn opt_float(&self, name: &str) -> Result<Option<f32>> {
        Ok(self.typed(name, AttributeType::Float)?.map(|a| a.f))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(self.opt_float(name)?.unwrap_or(default))
    }

    pub fn opt_string(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .typed(name, AttributeType::String)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned()))
    }

    pub fn string(&self, name: &str, default: &str) -> Result<String> {
        Ok(self
            .opt_string(name)?
            .unwrap_or_else(|| default.to_string()))
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>> {
        Ok(self.typed(name, AttributeType::Strings)?.map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        }))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>> {
        match self.typed(name, AttributeType::Tensor)? {
            None => Ok(None),
            Some(a) => {
                let t = a
                    .t
                    .as_ref()
                    .ok_or_else(|| Error::model(format!("attribute \"{name}\" has no tensor")))?;
                tensor_from_proto(t, self.dir)
                    .map(Some)
                    .map_err(|e| e.context(format!("attribute \"{name}\"")))
            }
        }
    }

    /// A SPARSE_TENSOR attribute, expanded to a dense tensor.
    pub fn sparse_tensor(&self, name: &str) -> Result<Option<Tensor>> {
        match self.typed(name, AttributeType::SparseTensor)? {
            None => Ok(None),
            Some(a) => {
                let sp = a.sparse_tensor.as_ref().ok_or_else(|| {
                    Error::model(format!("attribute \"{name}\" has no sparse tensor"))
                })?;
                super::tensor::sparse_to_dense(sp, self.dir)
                    .map(|(_, t)| Some(t))
                    .map_err(|e| e.context(format!("attribute \"{name}\"")))
            }
        }
    }

    /// A TYPE_PROTO attribute as an IR type.
    pub fn type_attr(&self, name: &str) -> Result<Option<ValueType>> {
        match self.typed(name, AttributeType::TypeProto)? {
            None => Ok(None),
            Some(a) => match &a.tp {
                Some(tp) => value_type(tp).map(Some),
                None => Err(Error::model(format!("attribute \"{name}\" has no type"))),
            },
        }
    }

    /// A required GRAPH attribute, imported as a body in this node's scope.
    pub fn graph(&mut self, name: &str) -> Result<Graph> {
        self.opt_graph(name)?
            .ok_or_else(|| Error::model(format!("required attribute \"{name}\" is missing")))
    }

    /// An optional GRAPH attribute, imported as a body in this node's scope.
    pub fn opt_graph(&mut self, name: &str) -> Result<Option<Graph>> {
        let Some(a) = self.typed(name, AttributeType::Graph)? else {
            return Ok(None);
        };
        let g =
            a.g.as_ref()
                .ok_or_else(|| Error::model(format!("attribute \"{name}\" has no graph")))?;
        (self.subgraph)(g)
            .map(Some)
            .map_err(|e| e.context(format!("body \"{name}\"")))
    }
}
