//! A run can be cancelled from another thread, given a time limit, and held to a memory
//! limit: each stops with an error naming where, never a hang or an abort.

use std::time::{Duration, Instant};

use prost::Message;
use xnpu::core::error::ErrorKind;
use xnpu::graph::onnx::proto::{
    tensor_shape_proto::dimension, tensor_shape_proto::Dimension, type_proto, AttributeProto,
    AttributeType, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use xnpu::{RunOptions, Session, SessionOptions, Tensor, Value};

/// ONNX's element type codes used here.
const FLOAT: i32 = 1;
const INT64: i32 = 7;
const BOOL: i32 = 9;

fn vi(name: &str, elem: i32, dims: Option<&[i64]>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem,
                shape: dims.map(|dims| TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            value: Some(dimension::Value::DimValue(d)),
                            denotation: String::new(),
                        })
                        .collect(),
                }),
            })),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: format!("{op}_0"),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn model(graph: GraphProto) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

fn session(graph: GraphProto, options: SessionOptions) -> Session {
    let model = xnpu::graph::onnx::load_bytes(model(graph).into(), "limits.onnx", None)
        .expect("the model imports");
    Session::new(model, options.devices("cpu".parse().unwrap())).expect("the model compiles")
}

/// A Loop whose body passes its condition on unchanged: with `true` it never ends. The
/// condition is the graph's input `cond`, or (`constant`) an initializer holding `true`.
fn endless_loop_graph(constant: bool) -> GraphProto {
    let body = GraphProto {
        name: "body".into(),
        node: vec![node("Identity", &["c"], &["c_out"], vec![])],
        input: vec![vi("i", INT64, Some(&[])), vi("c", BOOL, Some(&[]))],
        output: vec![vi("c_out", BOOL, Some(&[]))],
        ..Default::default()
    };
    let attr = AttributeProto {
        name: "body".into(),
        r#type: AttributeType::Graph as i32,
        g: Some(Box::new(body)),
        ..Default::default()
    };
    let cond = TensorProto {
        name: "cond".into(),
        data_type: BOOL,
        int32_data: vec![1],
        ..Default::default()
    };
    GraphProto {
        name: "endless".into(),
        node: vec![node("Loop", &["", "cond"], &["last"], vec![attr])],
        input: if constant {
            vec![]
        } else {
            vec![vi("cond", BOOL, Some(&[]))]
        },
        initializer: if constant { vec![cond] } else { vec![] },
        output: vec![vi("last", BOOL, None)],
        ..Default::default()
    }
}

fn endless_loop() -> Session {
    session(endless_loop_graph(false), SessionOptions::new())
}

fn forever(s: &Session, options: &RunOptions) -> xnpu::Result<Vec<(String, Value)>> {
    s.run_with([("cond", Value::from(Tensor::scalar(true)))], Some(options))
}

#[test]
fn a_time_limit_stops_an_endless_loop() {
    let s = endless_loop();
    let t0 = Instant::now();
    let e = forever(&s, &RunOptions::new().timeout(Duration::from_millis(200))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("time limit of 0.200 s"), "{msg}");
    assert!(msg.contains("Loop") && msg.contains("iteration"), "{msg}");
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn terminate_from_another_thread_cancels_a_run() {
    let s = endless_loop();
    let options = RunOptions::new();
    let remote = options.clone();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        remote.terminate();
    });
    let e = forever(&s, &options).unwrap_err();
    stopper.join().unwrap();
    assert_eq!(e.kind(), ErrorKind::Cancelled, "{e}");
    assert!(e.to_string().contains("the run was cancelled"), "{e}");
    // Terminated options stop later runs at once, until reset.
    let e = forever(&s, &options).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Cancelled);
    options.reset();
    assert!(!options.is_terminated());
}

/// y = Expand(x, [n]): an output of n floats from a one-float input.
fn expand(n: i64, options: SessionOptions) -> Session {
    let shape = TensorProto {
        name: "shape".into(),
        dims: vec![1],
        data_type: INT64,
        int64_data: vec![n],
        ..Default::default()
    };
    session(
        GraphProto {
            name: "expand".into(),
            node: vec![node("Expand", &["x", "shape"], &["y"], vec![])],
            input: vec![vi("x", FLOAT, Some(&[1]))],
            output: vec![vi("y", FLOAT, None)],
            initializer: vec![shape],
            ..Default::default()
        },
        options,
    )
}

#[test]
fn a_memory_limit_refuses_an_output_before_allocating() {
    let x = || {
        [(
            "x",
            Value::from(Tensor::from_vec(vec![1], vec![1.0f32]).unwrap()),
        )]
    };
    // 4 MiB of output against 1 MiB.
    let s = expand(1 << 20, SessionOptions::new().max_memory(1 << 20));
    let e = s.run(x()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("over the memory limit of 1.0 MiB"), "{msg}");
    assert!(msg.contains("Expand"), "{msg}");
    // The same model within its limit.
    let s = expand(1 << 20, SessionOptions::new().max_memory(64 << 20));
    let out = s.run(x()).unwrap();
    assert_eq!(out[0].1.as_tensor().unwrap().len(), 1 << 20);
    // And with run options, the session's limit still holds.
    let s = expand(1 << 20, SessionOptions::new().max_memory(1 << 20));
    assert!(s.run_with(x(), Some(&RunOptions::new())).is_err());
}

// The same limits through the CLI, and the settings it refuses or warns about.

/// Runs the CLI with `env` added and `stdin`; the exit status (None for a signal), stdout,
/// stderr. A command still running after 60 s is killed and fails the test: none may hang.
fn xnpu(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> (Option<i32>, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_xnpu"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start xnpu");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("xnpu {args:?} still ran after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_stops_an_endless_model_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("endless.onnx");
    std::fs::write(&path, model(endless_loop_graph(true))).unwrap();
    let t0 = Instant::now();
    let (code, _, err) = xnpu(
        &[
            "run",
            path.to_str().unwrap(),
            "--timeout",
            "0.5",
            "--devices",
            "cpu",
        ],
        &[],
        None,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("time limit of 0.500 s"), "{err}");
    assert!(err.contains("Loop"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30));
}

#[test]
fn the_cli_refuses_an_output_past_max_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("expand.onnx");
    let shape = TensorProto {
        name: "shape".into(),
        dims: vec![1],
        data_type: INT64,
        int64_data: vec![1 << 40],
        ..Default::default()
    };
    let graph = GraphProto {
        name: "expand".into(),
        node: vec![node("Expand", &["x", "shape"], &["y"], vec![])],
        input: vec![vi("x", FLOAT, Some(&[1]))],
        output: vec![vi("y", FLOAT, None)],
        initializer: vec![shape],
        ..Default::default()
    };
    std::fs::write(&path, model(graph)).unwrap();
    let (code, _, err) = xnpu(
        &[
            "run",
            path.to_str().unwrap(),
            "--random",
            "--max-memory",
            "64M",
        ],
        &[],
        None,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("memory limit of 64.0 MiB"), "{err}");
}

#[test]
fn a_model_comes_from_standard_input_and_a_fifo_is_refused() {
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/tinycnn.onnx")).unwrap();
    let (code, out, err) = xnpu(&["info", "-"], &[], Some(&bytes));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("Conv"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.onnx");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let (code, _, err) = xnpu(&["info", fifo.to_str().unwrap()], &[], None);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("FIFO") && err.contains("regular files"),
        "{err}"
    );
}

#[test]
fn settings_that_cannot_apply_are_refused_or_warned_about() {
    let tiny = "models/tinycnn.onnx";
    for (args, says) in [
        (
            vec!["run", tiny, "--random", "--iterations", "0"],
            "--iterations",
        ),
        (vec!["partition", tiny, "--hop-cost", "NaN"], "--hop-cost"),
        (vec!["info", tiny, "--timeout=-1"], "--timeout"),
        (vec!["info", tiny, "--max-memory", "lots"], "--max-memory"),
    ] {
        let (code, _, err) = xnpu(&args, &[], None);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A cache folder that cannot be made: the run works and says why nothing is kept.
    let (code, _, err) = xnpu(
        &["run", tiny, "--random", "--cache-dir", "/dev/null/cache"],
        &[],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("WARN") && err.contains("/dev/null is not a folder"),
        "{err}"
    );
    // A malformed OpenVINO setting is a warning naming it, not a device that silently
    // disappears (when OpenVINO is installed; its absence is not a note).
    let (code, _, err) = xnpu(
        &["run", tiny, "--random"],
        &[("XNPU_OPENVINO_CONFIG", "garbage")],
        None,
    );
    assert_eq!(code, Some(0), "{err}");
    let (_, devices, _) = xnpu(&["devices"], &[], None);
    if devices.contains("openvino:cpu") {
        assert!(
            err.contains("XNPU_OPENVINO_CONFIG") && err.contains("\"garbage\" is not KEY=VALUE"),
            "{err}"
        );
    }
}
