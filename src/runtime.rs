//! `Session`: a model imported once and run many times, with inputs checked against the
//! model's declared types (symbols bound per run).

use std::collections::HashMap;
use std::path::Path;

use xnpu_core::{Bytes, Error, Result, Value, ValueType};
use xnpu_graph::{onnx, Model};

/// The name and declared type of a model input or output.
#[derive(Clone, Debug, PartialEq)]
pub struct IoInfo {
    pub name: String,
    pub ty: ValueType,
    /// For an input: whether the model gives it a default (an initializer of the same name).
    pub has_default: bool,
}

/// A model ready to run on the reference CPU backend.
#[derive(Debug)]
pub struct Session {
    model: Model,
}

impl Session {
    /// Loads an ONNX file (memory-mapped; external data is read from its folder).
    pub fn load(path: impl AsRef<Path>) -> Result<Session> {
        Ok(Session::from_model(onnx::load(path.as_ref())?))
    }

    /// Loads an ONNX model from memory; it may not use external data.
    pub fn from_bytes(bytes: impl Into<Bytes>, name: &str) -> Result<Session> {
        Ok(Session::from_model(onnx::load_bytes(
            bytes.into(),
            name,
            None,
        )?))
    }

    pub fn from_model(model: Model) -> Session {
        Session { model }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn inputs(&self) -> Vec<IoInfo> {
        let g = &self.model.graph;
        g.inputs
            .iter()
            .map(|&id| IoInfo {
                name: g.values[id].name.clone(),
                ty: g.values[id].ty.clone(),
                has_default: g.values[id].constant.is_some(),
            })
            .collect()
    }

    pub fn outputs(&self) -> Vec<IoInfo> {
        let g = &self.model.graph;
        g.outputs
            .iter()
            .map(|&id| IoInfo {
                name: g.values[id].name.clone(),
                ty: g.values[id].ty.clone(),
                has_default: false,
            })
            .collect()
    }

    /// The output types once the inputs' symbolic dims are bound to concrete sizes (for
    /// example `batch` → 4): symbols that shape inference carried to the outputs resolve to
    /// numbers, which is what a backend compiling static shapes needs.
    pub fn output_types_for(&self, input_dims: &[(&str, &[usize])]) -> Result<Vec<ValueType>> {
        let infos = self.inputs();
        let mut bindings = HashMap::new();
        for (name, dims) in input_dims {
            let info = infos.iter().find(|i| i.name == *name).ok_or_else(|| {
                Error::invalid_input(format!("the model has no input \"{name}\""))
                    .context(&self.model.name)
            })?;
            if let Some(shape) = info.ty.tensor().and_then(|t| t.shape.as_ref()) {
                shape.bind(dims, &mut bindings).map_err(|e| {
                    e.context(format!("input \"{name}\""))
                        .context(&self.model.name)
                })?;
            }
        }
        Ok(self
            .outputs()
            .into_iter()
            .map(|o| resolve(&o.ty, &bindings))
            .collect())
    }

    /// Runs the model on named inputs and returns every output, named, in model order.
    pub fn run<'a>(
        &self,
        inputs: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<Vec<(String, Value)>> {
        let infos = self.inputs();
        let mut slots: Vec<Option<Value>> = vec![None; infos.len()];
        for (name, v) in inputs {
            let pos = infos.iter().position(|i| i.name == name).ok_or_else(|| {
                let known: Vec<_> = infos.iter().map(|i| i.name.as_str()).collect();
                Error::invalid_input(format!(
                    "the model has no input \"{name}\" (inputs: {})",
                    known.join(", ")
                ))
                .context(&self.model.name)
            })?;
            slots[pos] = Some(v);
        }
        let outputs = self.run_positional(slots)?;
        Ok(self
            .outputs()
            .into_iter()
            .map(|i| i.name)
            .zip(outputs)
            .collect())
    }

    /// Runs the model on inputs given in model order (`None` uses the input's default).
    pub fn run_positional(&self, inputs: Vec<Option<Value>>) -> Result<Vec<Value>> {
        let infos = self.inputs();
        if inputs.len() > infos.len() {
            return Err(Error::invalid_input(format!(
                "{} inputs given, the model has {}",
                inputs.len(),
                infos.len()
            ))
            .context(&self.model.name));
        }
        let mut bindings = HashMap::new();
        for (info, v) in infos.iter().zip(&inputs) {
            match v {
                None if !info.has_default => {
                    return Err(
                        Error::invalid_input(format!("input \"{}\" is missing", info.name))
                            .context(&self.model.name),
                    )
                }
                None => {}
                Some(v) => check_input(&info.ty, v, &mut bindings).map_err(|e| {
                    e.context(format!("input \"{}\"", info.name))
                        .context(&self.model.name)
                })?,
            }
        }
        for info in infos.iter().skip(inputs.len()) {
            if !info.has_default {
                return Err(
                    Error::invalid_input(format!("input \"{}\" is missing", info.name))
                        .context(&self.model.name),
                );
            }
        }
        xnpu_backend_cpu::run_graph(&self.model.graph, &inputs, &[])
            .map_err(|e| e.context(&self.model.name))
    }
}

fn resolve(ty: &ValueType, bindings: &HashMap<String, usize>) -> ValueType {
    match ty {
        ValueType::Tensor(t) => ValueType::Tensor(xnpu_core::TensorType {
            dtype: t.dtype,
            shape: t.shape.as_ref().map(|s| s.resolve(bindings)),
        }),
        ValueType::Sequence(e) => ValueType::Sequence(Box::new(resolve(e, bindings))),
        ValueType::Optional(e) => ValueType::Optional(Box::new(resolve(e, bindings))),
        ValueType::Unknown => ValueType::Unknown,
    }
}

/// Checks a value against a declared type, binding the type's symbols.
fn check_input(ty: &ValueType, v: &Value, bindings: &mut HashMap<String, usize>) -> Result<()> {
    match (ty, v) {
        (ValueType::Unknown, _) => Ok(()),
        (ValueType::Tensor(tt), Value::Tensor(t)) => {
            if tt.dtype != t.dtype() {
                return Err(Error::invalid_input(format!(
                    "expected dtype {}, got {}",
                    tt.dtype,
                    t.dtype()
                )));
            }
            match &tt.shape {
                Some(s) => s.bind(t.shape(), bindings),
                None => Ok(()),
            }
        }
        (ValueType::Sequence(_), Value::Sequence { .. }) => Ok(()),
        (ValueType::Optional(_), Value::Optional { .. }) => Ok(()),
        (ValueType::Optional(inner), v) => check_input(inner, v, bindings),
        (expected, v) => Err(Error::invalid_input(format!(
            "expected {expected}, got {}",
            v.describe()
        ))),
    }
}
