//! The bodies of xnpu's fuzz targets: each takes the bytes libFuzzer made and hands them to
//! the library's own entry point for hostile input (a model file, a `.npy`, a language-model
//! folder, values from a plugin). The `fuzz_targets/` binaries are one line each around
//! these functions, and `tests/regressions.rs` replays kept inputs through the same
//! functions without libFuzzer.
//!
//! An `Err` from the library is the right answer to bad input; a panic, an abort, a hang or
//! an allocation beyond the fuzzer's limit is a bug. Where the library documents a property
//! that no input may break, a target asserts it too (named in its doc).

use std::path::PathBuf;
use std::sync::Arc;

use prost::Message;
use xnpu::generate::{LanguageModel, ModelOptions};
use xnpu::SessionOptions;
use xnpu_core::{Bytes, Result, Value};
use xnpu_graph::ir::Graph;
use xnpu_graph::onnx::{self, proto::ModelProto, proto::StringStringEntryProto};
use xnpu_graph::passes::{self, Level};

/// A target's body: the bytes libFuzzer made.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz_targets/*.rs` and of the folders of `seeds/`,
/// `regressions/` and `corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("onnx_import", onnx_import),
    ("shape_inference", shape_inference),
    ("passes", passes),
    ("session", session),
    ("npy", npy),
    ("genai_config", genai_config),
    ("plugin_abi", plugin_abi),
];

/// The name models are imported under (errors start with it).
const NAME: &str = "fuzz.onnx";

/// ONNX import exactly as `Session::from_bytes` does it: decode, check opsets, import the
/// graph and its bodies, inline functions, infer types.
pub fn onnx_import(data: &[u8]) {
    let _ = onnx::load_bytes(Bytes::copy_from_slice(data), NAME, None);
}

/// Shape inference over imported graphs, two ways: a model file (imported, so inferred once,
/// then inferred again, strictly, over its own result, and its bodies leniently), and the
/// same bytes as a graph a host sends a plugin, marked as the exact form, whose declared types
/// are taken as written and then inferred over (`onnx::load_sent_bytes`).
pub fn shape_inference(data: &[u8]) {
    if let Ok(mut model) = onnx::load_bytes(Bytes::copy_from_slice(data), NAME, None) {
        infer_all(&mut model.graph);
    }
    let Ok(mut proto) = ModelProto::decode(data) else {
        return;
    };
    let key = onnx::export::EXACT_KEY;
    proto.metadata_props.retain(|kv| kv.key != key);
    proto.metadata_props.push(StringStringEntryProto {
        key: key.into(),
        value: "exact".into(),
    });
    let sent = Bytes::from(proto.encode_to_vec());
    if let Ok(mut model) = onnx::load_sent_bytes(sent, NAME) {
        infer_all(&mut model.graph);
    }
}

/// Infers `graph` strictly (an error is a fine answer), then every body of control flow
/// leniently, as the importer does.
fn infer_all(graph: &mut Graph) {
    let _ = graph.infer_types();
    infer_bodies(graph);
}

fn infer_bodies(graph: &mut Graph) {
    for node in &mut graph.nodes {
        for body in node.op.subgraphs_mut() {
            let _ = body.infer_types_with(false);
            infer_bodies(body);
        }
    }
}

/// Constant folding evaluates nodes on the reference kernels, as the runtime's does.
fn evaluate(node: &xnpu_graph::Node, inputs: &[Option<&Value>]) -> Result<Vec<Value>> {
    xnpu_backend_cpu::run_node(node, inputs)
}

/// The pass pipeline at every level over an imported model, with the reference kernels
/// folding constants (as `Session::new` runs it). Asserts what `passes` promises: a pipeline
/// that succeeds keeps the graph's inputs and outputs (names and order).
pub fn passes(data: &[u8]) {
    let Ok(model) = onnx::load_bytes(Bytes::copy_from_slice(data), NAME, None) else {
        return;
    };
    let names = |m: &xnpu_graph::Model, ids: &[usize]| -> Vec<String> {
        ids.iter()
            .map(|&v| m.graph.values[v].name.clone())
            .collect()
    };
    let inputs = names(&model, &model.graph.inputs);
    let outputs = names(&model, &model.graph.outputs);
    for level in [Level::None, Level::Basic, Level::All] {
        let mut m = model.clone();
        let options = passes::Options {
            level,
            evaluate: Some(&evaluate),
            ..passes::Options::default()
        };
        if passes::optimize(&mut m, &options).is_ok() {
            assert_eq!(
                names(&m, &m.graph.inputs),
                inputs,
                "level {level} changed the graph's inputs"
            );
            assert_eq!(
                names(&m, &m.graph.outputs),
                outputs,
                "level {level} changed the graph's outputs"
            );
        }
    }
}

/// `Session::from_bytes`: import, passes, partition, compile, with the CPU backend named
/// (see [`cpu_only`]).
pub fn session(data: &[u8]) {
    let Ok(model) = onnx::load_bytes(Bytes::copy_from_slice(data), NAME, None) else {
        return;
    };
    let _ = xnpu::Session::new(model, cpu_only());
}

/// The default session options with the CPU backend named, so that no device is looked
/// for: no plugin library (one lies next to the replay test's executable in the main
/// build's folder) nor driver is loaded, whatever the machine has or `XNPU_DEVICES` says.
fn cpu_only() -> SessionOptions {
    SessionOptions {
        backends: vec![Arc::new(xnpu_backend_cpu::CpuBackend::new())],
        ..SessionOptions::default()
    }
}

/// The `.npy` reader. Asserts that a tensor it reads is written back and read again to the
/// same dtype, shape and bytes.
pub fn npy(data: &[u8]) {
    let Ok(t) = xnpu::npy::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    if let Ok(again) = xnpu::npy::encode(&t) {
        let back = xnpu::npy::decode(Bytes::from(again))
            .unwrap_or_else(|e| panic!("a .npy the writer made does not read back: {e}"));
        assert_eq!(back.dtype(), t.dtype());
        assert_eq!(back.shape(), t.shape());
        assert_eq!(back.raw_bytes(), t.raw_bytes());
    }
}

/// A language-model folder as `LanguageModel::load` reads it: `genai_config.json` is the
/// input up to its first NUL byte (JSON cannot hold one), `tokenizer.json` the rest (a
/// minimal valid tokenizer when there is no NUL). No decoder model is there, so a load
/// that gets past the config and tokenizer checks ends at "cannot open the decoder" (on
/// the CPU backend alone, should the decoder's name reach a model file).
pub fn genai_config(data: &[u8]) {
    const TOKENIZER: &[u8] = br#"{"version":"1.0","model":{"type":"WordLevel","vocab":{"a":0,"<unk>":1},"unk_token":"<unk>"}}"#;
    let (config, tokenizer) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, TOKENIZER),
    };
    let dir = model_dir();
    std::fs::write(dir.join("genai_config.json"), config).expect("writing the fuzz folder");
    std::fs::write(dir.join("tokenizer.json"), tokenizer).expect("writing the fuzz folder");
    let options = ModelOptions {
        session: cpu_only(),
        prefill: None,
    };
    let _ = LanguageModel::load(&dir, options);
}

/// This process's language-model folder (in the temporary folder; only the two files the
/// target writes are ever in it).
fn model_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("xnpu-fuzz-genai-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the fuzz folder");
        dir
    })
    .clone()
}

mod plugin_abi;
pub use plugin_abi::plugin_abi;
