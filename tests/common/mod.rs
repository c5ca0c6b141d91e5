//! Shared by the ONNX test runners: reading onnx's test data (.pb) and comparing values
//! the way onnx's own backend runner does.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use prost::Message;
use xnpu::graph::onnx::proto::{elem_kind, OptionalProto, SequenceProto, TensorProto};
use xnpu::graph::onnx::tensor::tensor_from_proto;
use xnpu::graph::onnx::DataDir;
use xnpu::{DType, Error, Result, Tensor, Value, ValueType};

pub fn read_value(path: &Path, ty: &ValueType, dir: &DataDir) -> Result<Value> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bad = |e: prost::DecodeError| Error::model(format!("{}: {e}", path.display()));
    match ty {
        ValueType::Sequence(_) => {
            let sp = SequenceProto::decode(bytes.as_slice()).map_err(bad)?;
            sequence_value(&sp, dir)
        }
        ValueType::Optional(_) => {
            let op = OptionalProto::decode(bytes.as_slice()).map_err(bad)?;
            optional_value(&op, dir)
        }
        _ => {
            let tp = TensorProto::decode(bytes.as_slice()).map_err(bad)?;
            Ok(Value::Tensor(tensor_from_proto(&tp, dir)?))
        }
    }
}

fn sequence_value(sp: &SequenceProto, dir: &DataDir) -> Result<Value> {
    if sp.elem_type != elem_kind::TENSOR && !sp.tensor_values.is_empty() {
        return Err(Error::unsupported(
            "only sequences of tensors are supported",
        ));
    }
    let items = sp
        .tensor_values
        .iter()
        .map(|t| tensor_from_proto(t, dir))
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::Sequence {
        elem: ValueType::Unknown,
        items,
    })
}

fn optional_value(op: &OptionalProto, dir: &DataDir) -> Result<Value> {
    let value = if let Some(t) = &op.tensor_value {
        Some(Box::new(Value::Tensor(tensor_from_proto(t, dir)?)))
    } else if let Some(s) = &op.sequence_value {
        Some(Box::new(sequence_value(s, dir)?))
    } else {
        None
    };
    Ok(Value::Optional {
        elem: ValueType::Unknown,
        value,
    })
}

/// Compares like `numpy.testing.assert_allclose` (NaN equals NaN) after checking dtype and
/// shape; integers, bools and strings must be equal.
pub fn compare_tensor(
    got: &Tensor,
    want: &Tensor,
    rtol: f64,
    atol: f64,
) -> std::result::Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {} expected {}", got.dtype(), want.dtype()));
    }
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?} expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    if want.dtype() == DType::String {
        return if got.strings().ok() == want.strings().ok() {
            Ok(())
        } else {
            Err(format!(
                "strings {:?} expected {:?}",
                got.preview(6),
                want.preview(6)
            ))
        };
    }
    let g = got.to_f64_vec().map_err(|e| e.to_string())?;
    let w = want.to_f64_vec().map_err(|e| e.to_string())?;
    // The narrow floats (float8, float4) compare as floats: NaN equals NaN.
    let exact = want.dtype().kind() != xnpu::core::dtype::Kind::Float;
    let mut bad = 0;
    let mut first = None;
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let ok = if exact {
            a == b
        } else if a.is_nan() || b.is_nan() {
            a.is_nan() && b.is_nan()
        } else if a.is_infinite() || b.is_infinite() {
            a == b
        } else {
            (a - b).abs() <= atol + rtol * b.abs()
        };
        if !ok {
            bad += 1;
            first.get_or_insert((i, a, b));
        }
    }
    match first {
        None => Ok(()),
        Some((i, a, b)) => Err(format!(
            "{bad}/{} values differ; first at {i}: got {a}, expected {b}",
            w.len()
        )),
    }
}

pub fn compare(got: &Value, want: &Value, rtol: f64, atol: f64) -> std::result::Result<(), String> {
    match (got, want) {
        (Value::Tensor(g), Value::Tensor(w)) => compare_tensor(g, w, rtol, atol),
        (Value::Sequence { items: g, .. }, Value::Sequence { items: w, .. }) => {
            if g.len() != w.len() {
                return Err(format!("sequence of {} expected {}", g.len(), w.len()));
            }
            for (k, (a, b)) in g.iter().zip(w).enumerate() {
                compare_tensor(a, b, rtol, atol).map_err(|e| format!("item {k}: {e}"))?;
            }
            Ok(())
        }
        (Value::Optional { value: g, .. }, Value::Optional { value: w, .. }) => match (g, w) {
            (None, None) => Ok(()),
            (Some(a), Some(b)) => compare(a, b, rtol, atol),
            _ => Err(format!(
                "optional {} expected {}",
                got.describe(),
                want.describe()
            )),
        },
        // An optional holding a value compares with the bare value.
        (Value::Optional { value: Some(g), .. }, w) => compare(g, w, rtol, atol),
        (g, Value::Optional { value: Some(w), .. }) => compare(g, w, rtol, atol),
        _ => Err(format!("{} expected {}", got.describe(), want.describe())),
    }
}

/// Where the generated ONNX cases are (`XNPU_ONNX_CASES`, default `target/onnx-cases`).
pub fn cases_dir() -> PathBuf {
    std::env::var_os("XNPU_ONNX_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/onnx-cases"))
}

/// The onnx wheel's `light_*.onnx` models, sorted; panics (a test failure) when they are
/// missing, with what to run.
pub fn light_models() -> Vec<PathBuf> {
    let dir = cases_dir().join("light");
    let mut models: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "no light models at {} ({e}); run scripts/test.sh",
                dir.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    models.sort();
    assert!(
        models.len() >= 8,
        "expected the 8+ light models, found {}",
        models.len()
    );
    models
}

/// The input onnx's runner feeds a light model: `arange(n).reshape(dims) / n` as float32,
/// unknown dims 1.
pub fn light_input(ty: &ValueType) -> std::result::Result<Tensor, String> {
    let ValueType::Tensor(tt) = ty else {
        return Err(format!("input type {ty} is not a tensor"));
    };
    let dims: Vec<usize> = tt
        .shape
        .as_ref()
        .map(|s| s.0.iter().map(|d| d.known().unwrap_or(1)).collect())
        .unwrap_or_default();
    let n: usize = dims.iter().product();
    let data = (0..n).map(|i| i as f32 / n as f32).collect();
    Tensor::from_vec(dims, data).map_err(|e| e.to_string())
}

/// Light-model inputs for a session, in model order (`None` for inputs with a default).
pub fn light_inputs(session: &xnpu::Session) -> std::result::Result<Vec<Option<Value>>, String> {
    session
        .inputs()
        .iter()
        .map(|info| {
            if info.has_default {
                Ok(None)
            } else {
                light_input(&info.ty)
                    .map(|t| Some(Value::Tensor(t)))
                    .map_err(|e| format!("input {}: {e}", info.name))
            }
        })
        .collect()
}

/// Per-case tolerances written by the generator (`tolerance.txt`: "rtol atol", or
/// `tolerance.json`: `{"rtol": .., "atol": ..}`), else onnx's defaults.
pub fn tolerances(case: &Path) -> (f64, f64) {
    if let Ok(s) = std::fs::read_to_string(case.join("tolerance.json")) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
            if let (Some(r), Some(a)) = (v["rtol"].as_f64(), v["atol"].as_f64()) {
                return (r, a);
            }
        }
    }
    std::fs::read_to_string(case.join("tolerance.txt"))
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((1e-3, 1e-7))
}

/// The `test_data_set_*` folders of a case, sorted.
pub fn data_sets(case: &Path) -> Vec<PathBuf> {
    let mut sets: Vec<PathBuf> = std::fs::read_dir(case)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
                })
                .collect()
        })
        .unwrap_or_default();
    sets.sort();
    sets
}

/// `prefix_0.pb`, `prefix_1.pb`, ... while they exist.
pub fn numbered(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    (0..)
        .map(|i| dir.join(format!("{prefix}_{i}.pb")))
        .take_while(|p| p.exists())
        .collect()
}

/// Runs every data set of an ONNX case through `session` and compares the outputs with the
/// expected ones at the case's tolerances.
pub fn check_case(session: &xnpu::Session, case: &Path) -> std::result::Result<(), String> {
    let (rtol, atol) = tolerances(case);
    let dir = DataDir::default();
    let in_types: Vec<ValueType> = session.inputs().into_iter().map(|i| i.ty).collect();
    let out_types: Vec<ValueType> = session.outputs().into_iter().map(|i| i.ty).collect();
    let sets = data_sets(case);
    if sets.is_empty() {
        return Err("no test data".into());
    }
    for set in sets {
        let inputs: xnpu::Result<Vec<Option<Value>>> = numbered(&set, "input")
            .iter()
            .enumerate()
            .map(|(i, p)| {
                read_value(p, in_types.get(i).unwrap_or(&ValueType::Unknown), &dir).map(Some)
            })
            .collect();
        let expected: xnpu::Result<Vec<Value>> = numbered(&set, "output")
            .iter()
            .enumerate()
            .map(|(i, p)| read_value(p, out_types.get(i).unwrap_or(&ValueType::Unknown), &dir))
            .collect();
        let (inputs, expected) = match (inputs, expected) {
            (Ok(i), Ok(e)) => (i, e),
            (Err(e), _) | (_, Err(e)) => return Err(format!("test data: {e}")),
        };
        let got = session
            .run_positional(inputs)
            .map_err(|e| format!("run: {e}"))?;
        if got.len() != expected.len() {
            return Err(format!(
                "{} outputs, expected {}",
                got.len(),
                expected.len()
            ));
        }
        for (k, (g, w)) in got.iter().zip(&expected).enumerate() {
            compare(g, w, rtol, atol).map_err(|e| format!("output {k}: {e}"))?;
        }
    }
    Ok(())
}

/// A failure reason on one line, cut at `max` bytes (on a character boundary) unless
/// `verbose`.
pub fn one_line(why: &str, max: usize, verbose: bool) -> String {
    let mut why = why.replace('\n', " ");
    if !verbose && why.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|&i| why.is_char_boundary(i))
            .unwrap_or(0);
        why.truncate(cut);
        why.push('…');
    }
    why
}

/// The reference CPU backend loaded as a plugin (`cargo build --release --workspace` writes
/// it beside the test executables' `deps/` folder): it receives partitions as ONNX bytes.
pub fn plugin_cpu() -> std::sync::Arc<dyn xnpu::graph::backend::Backend> {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("build folder");
    let path = dir.join(xnpu::plugins::plugin_file_name("cpu"));
    let plugin = xnpu::plugins::Plugin::load(&path)
        .unwrap_or_else(|e| panic!("{e} (build it with cargo build --release --workspace)"));
    std::sync::Arc::new(plugin.create_backend("").expect("plugin backend"))
}
