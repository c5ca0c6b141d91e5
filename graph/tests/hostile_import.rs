//! Hostile models: each is refused with an error that says what is wrong, where, and which
//! limit it passed — never a crash, an abort, a hang or gigabytes allocated. One test per
//! class of input a probe of the CLI found: functions that recurse or multiply, nesting past
//! the limits, tensor data declared far beyond the file, attributes that size allocations,
//! and names that would write control characters to a terminal.

use prost::Message;
use xnpu_core::ErrorKind;
use xnpu_graph::onnx::proto::{
    type_proto, AttributeProto, AttributeType, FunctionProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, SparseTensorProto, TensorProto, TypeProto, ValueInfoProto,
};
use xnpu_graph::onnx::{import_model, load, load_bytes, DataDir, MAX_NESTING, MAX_NODES};

fn vi_of(name: &str, elem_type: i32) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: None,
            })),
            denotation: String::new(),
        }),
        doc_string: String::new(),
    }
}

fn vi(name: &str) -> ValueInfoProto {
    vi_of(name, 1)
}

fn node(op_type: &str, domain: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        op_type: op_type.into(),
        domain: domain.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Graph as i32,
        g: Some(Box::new(g)),
        ..Default::default()
    }
}

fn ref_attr(name: &str, to: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Graph as i32,
        ref_attr_name: to.into(),
        ..Default::default()
    }
}

fn opset(domain: &str, version: i64) -> OperatorSetIdProto {
    OperatorSetIdProto {
        domain: domain.into(),
        version,
    }
}

/// A model of `graph` with the functions `functions` in domain "local".
fn model_with(graph: GraphProto, functions: Vec<FunctionProto>) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![opset("", 17), opset("local", 1)],
        graph: Some(graph),
        functions,
        ..Default::default()
    }
}

fn function(name: &str, inputs: &[&str], nodes: Vec<NodeProto>) -> FunctionProto {
    FunctionProto {
        name: name.into(),
        domain: "local".into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec!["y".into()],
        node: nodes,
        opset_import: vec![opset("", 17), opset("local", 1)],
        ..Default::default()
    }
}

/// The main graph: `y = call(x)`, with `c` a bool input beside `x`.
fn calling(op_type: &str, attrs: Vec<AttributeProto>) -> GraphProto {
    GraphProto {
        node: vec![NodeProto {
            attribute: attrs,
            ..node(op_type, "local", &["c", "x"], &["y"])
        }],
        input: vec![vi_of("c", 9), vi("x")],
        output: vec![vi("y")],
        ..Default::default()
    }
}

fn import_err(m: &ModelProto) -> xnpu_core::Error {
    match load_bytes(m.encode_to_vec().into(), "m.onnx", None) {
        Ok(_) => panic!("the model was imported"),
        Err(e) => e,
    }
}

fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{msg:?} does not mention {p:?}");
    }
}

#[test]
fn a_function_that_calls_itself_is_refused_naming_the_chain() {
    // f calls f.
    let f = function(
        "f",
        &["c", "x"],
        vec![node("f", "local", &["c", "x"], &["y"])],
    );
    let e = import_err(&model_with(calling("f", vec![]), vec![f]));
    assert_eq!(
        e.to_string(),
        "m.onnx: function \"local.f\" calls itself: \"local.f\" → \"local.f\""
    );
    assert_eq!(e.kind(), ErrorKind::Model);

    // f → g → f, the cycle reached through a call in f's own body.
    let f = function(
        "f",
        &["c", "x"],
        vec![
            node("Identity", "", &["x"], &["t"]),
            node("g", "local", &["c", "t"], &["y"]),
        ],
    );
    let g = function(
        "g",
        &["c", "x"],
        vec![node("f", "local", &["c", "x"], &["y"])],
    );
    let e = import_err(&model_with(calling("f", vec![]), vec![f, g]));
    assert_mentions(
        &e.to_string(),
        &["function \"local.f\" calls itself: \"local.f\" → \"local.g\" → \"local.f\""],
    );
}

/// Functions `f0` … `f{levels}`: f0 is one Identity, and each other calls the one below
/// `calls` times in a row.
fn multiplying(levels: usize, calls: usize) -> Vec<FunctionProto> {
    let mut fs = vec![function(
        "f0",
        &["c", "x"],
        vec![node("Identity", "", &["x"], &["y"])],
    )];
    for k in 1..=levels {
        let below = format!("f{}", k - 1);
        let mut nodes = Vec::new();
        let mut cur = "x".to_string();
        for i in 0..calls {
            let out = if i + 1 == calls {
                "y".to_string()
            } else {
                format!("t{i}")
            };
            nodes.push(node(&below, "local", &["c", &cur], &[&out]));
            cur = out;
        }
        fs.push(function(&format!("f{k}"), &["c", "x"], nodes));
    }
    fs
}

#[test]
fn functions_that_double_at_every_level_are_refused_before_expanding() {
    // 40 functions, each calling the next twice: 2^39 nodes from a few KB.
    let m = model_with(calling("f39", vec![]), multiplying(39, 2));
    assert!(m.encode_to_vec().len() < 8 << 10);
    let e = import_err(&m);
    assert_eq!(
        e.to_string(),
        format!(
            "m.onnx: the model has {} nodes once its functions are inlined (bodies included), \
             more than the {MAX_NODES} xnpu imports",
            1u64 << 39
        )
    );
    assert_eq!(e.kind(), ErrorKind::Unsupported);

    // Past 2^64 the count saturates instead of wrapping round to a small number.
    let e = import_err(&model_with(calling("f40", vec![]), multiplying(40, 4)));
    assert_mentions(&e.to_string(), &["more than 2^64 nodes"]);
}

#[test]
fn graphs_passed_to_functions_count_toward_the_expansion() {
    // f0 is an If whose branches are both the graph its caller passes as "b"; each f_k calls
    // the one below twice, passing "b" down. The functions alone are 2^14 Ifs, but each If
    // imports the 300-node graph twice: 2^15 · 300 nodes.
    let mut fs = vec![function(
        "f0",
        &["c", "x"],
        vec![NodeProto {
            attribute: vec![ref_attr("then_branch", "b"), ref_attr("else_branch", "b")],
            ..node("If", "", &["c"], &["y"])
        }],
    )];
    for k in 1..=14 {
        let below = format!("f{}", k - 1);
        let call = |i: &str, o: &str| NodeProto {
            attribute: vec![ref_attr("b", "b")],
            ..node(&below, "local", &["c", i], &[o])
        };
        fs.push(function(
            &format!("f{k}"),
            &["c", "x"],
            vec![call("x", "t"), call("t", "y")],
        ));
    }
    let mut body = GraphProto {
        output: vec![vi("o299")],
        ..Default::default()
    };
    for i in 0..300 {
        let from = if i == 0 {
            "x".to_string()
        } else {
            format!("o{}", i - 1)
        };
        body.node
            .push(node("Identity", "", &[&from], &[&format!("o{i}")]));
    }
    let m = model_with(calling("f14", vec![graph_attr("b", body)]), fs);
    let e = import_err(&m);
    assert_mentions(
        &e.to_string(),
        &[
            &format!("the model has {} nodes", (1u64 << 14) + (1u64 << 15) * 300),
            &format!("more than the {MAX_NODES} xnpu imports"),
        ],
    );
}

/// Functions `f0` … `f{levels}`: f0 is one Identity; each other is an If whose then-branch
/// calls the one below and whose else-branch is an Identity. Each level is a function call
/// and a body: f_k is imported `2 · (levels - k) + 1` levels down.
fn nested_through_bodies(levels: usize) -> Vec<FunctionProto> {
    let mut fs = vec![function(
        "f0",
        &["c", "x"],
        vec![node("Identity", "", &["x"], &["y"])],
    )];
    for k in 1..=levels {
        let then_branch = GraphProto {
            node: vec![node(&format!("f{}", k - 1), "local", &["c", "x"], &["b"])],
            output: vec![vi("b")],
            ..Default::default()
        };
        let else_branch = GraphProto {
            node: vec![node("Identity", "", &["x"], &["b"])],
            output: vec![vi("b")],
            ..Default::default()
        };
        fs.push(function(
            &format!("f{k}"),
            &["c", "x"],
            vec![NodeProto {
                attribute: vec![
                    graph_attr("then_branch", then_branch),
                    graph_attr("else_branch", else_branch),
                ],
                ..node("If", "", &["c"], &["y"])
            }],
        ));
    }
    fs
}

#[test]
fn nesting_past_the_limit_is_refused_and_up_to_it_imports() {
    // 31 levels: f0 is imported 63 levels down, within the limit of 64 (and within the stack
    // of a test thread).
    let m = model_with(calling("f31", vec![]), nested_through_bodies(31));
    let model = load_bytes(m.encode_to_vec().into(), "m.onnx", None).unwrap();
    assert_eq!(model.op_histogram()["If"], 31);

    // 33 levels: f0 would be 67 down.
    let e = import_err(&model_with(
        calling("f33", vec![]),
        nested_through_bodies(33),
    ));
    assert_mentions(
        &e.to_string(),
        &[
            &format!("nest more than {MAX_NESTING} deep"),
            "inside functions \"local.f33\" → \"local.f32\"",
        ],
    );

    // A plain chain of calls, 70 deep.
    let e = import_err(&model_with(calling("f70", vec![]), multiplying(70, 1)));
    assert_eq!(
        e.to_string(),
        format!(
            "m.onnx: bodies (If, Loop, Scan) and calls of model-local functions nest more than \
             {MAX_NESTING} deep (inside functions \"local.f70\" → \"local.f69\" → \
             \"local.f68\" → … → \"local.f9\" → \"local.f8\" → \"local.f7\" (64 functions))"
        )
    );
}

#[test]
fn protobuf_nesting_past_the_decoders_limit_is_one_short_sentence() {
    // Bodies inside bodies, 40 deep: each is three messages (node, attribute, graph).
    let mut g = GraphProto::default();
    for _ in 0..40 {
        g = GraphProto {
            node: vec![NodeProto {
                attribute: vec![graph_attr("then_branch", g)],
                ..node("If", "", &["c"], &["y"])
            }],
            ..Default::default()
        };
    }
    let m = model_with(g, vec![]);
    let msg = import_err(&m).to_string();
    assert!(
        msg.starts_with(
            "m.onnx: not a valid ONNX model: its protobuf messages nest deeper than the \
             decoder's limit of 100 levels at ModelProto.graph > GraphProto.node > \
             NodeProto.attribute > AttributeProto.g > … > "
        ),
        "{msg}"
    );
    assert!(msg.ends_with(" levels down)"), "{msg}");
    assert!(msg.len() < 300, "{} bytes: {msg}", msg.len());
}

/// A sparse f32 initializer of `len` elements with no values given.
fn empty_sparse(name: &str, len: i64) -> SparseTensorProto {
    SparseTensorProto {
        values: Some(TensorProto {
            name: name.into(),
            dims: vec![0],
            data_type: 1,
            ..Default::default()
        }),
        indices: Some(TensorProto {
            dims: vec![0],
            data_type: 7,
            ..Default::default()
        }),
        dims: vec![len],
    }
}

#[test]
fn tensor_data_expanded_past_the_models_allowance_is_refused() {
    // Three sparse initializers of 512 KiB each under an allowance of 1 MiB: each alone
    // fits, the third passes the total.
    let g = GraphProto {
        node: vec![node("Identity", "", &["s0"], &["y"])],
        sparse_initializer: (0..3)
            .map(|i| empty_sparse(&format!("s{i}"), 1 << 17))
            .collect(),
        output: vec![vi("y")],
        ..Default::default()
    };
    let dir = DataDir::with_limit(None, 1 << 20).unwrap();
    let e = import_model(&model_with(g.clone(), vec![]), "m.onnx", &dir).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sparse initializer: sparse tensor \"s2\": the dense form of the sparse tensor would \
         take 524288 bytes in memory, with the 1048576 bytes already taken more than the \
         1048576 bytes import allocates for one model's tensor data (sparse tensors made \
         dense, values in typed fields, strings)"
    );

    // A sparse constant attribute counts toward the same total.
    let mut g = g;
    g.sparse_initializer.truncate(1);
    g.node.insert(
        0,
        NodeProto {
            name: "k".into(),
            attribute: vec![AttributeProto {
                name: "sparse_value".into(),
                r#type: AttributeType::SparseTensor as i32,
                sparse_tensor: Some(empty_sparse("k", 3 << 16)),
                ..Default::default()
            }],
            ..node("Constant", "", &[], &["k_out"])
        },
    );
    let dir = DataDir::with_limit(None, 1 << 20).unwrap();
    let e = import_model(&model_with(g, vec![]), "m.onnx", &dir).unwrap_err();
    assert_mentions(
        &e.to_string(),
        &[
            "node \"k\" (Constant)",
            "sparse tensor \"k\"",
            "more than the 1048576 bytes",
        ],
    );

    // The default allowance: one dense form of 4 GiB is within a tensor's limit, but
    // declaring it takes a few bytes, so the model's total is what stops a file of three.
    // (Only the first is checked here without allocating it: a 2^33-byte one is refused by
    // the per-tensor limit before the total.)
    let g = GraphProto {
        node: vec![node("Identity", "", &["s0"], &["y"])],
        sparse_initializer: vec![empty_sparse("s0", 1 << 31)],
        output: vec![vi("y")],
        ..Default::default()
    };
    let e = import_err(&model_with(g, vec![]));
    assert_mentions(
        &e.to_string(),
        &[
            "sparse tensor \"s0\"",
            "8589934592 bytes, over the limit of 4294967296",
        ],
    );
}

#[test]
fn sparse_indices_outside_the_tensor_are_refused() {
    for (indices, dims) in [
        (vec![0i64, -1], vec![2i64]),          // linear, negative
        (vec![0, 2], vec![2]),                 // linear, past the end
        (vec![0, 5, 1, 1], vec![2, 3]),        // coordinates, past a dim
        (vec![-1, 0, 1, 1], vec![2, 3]),       // coordinates, negative
        (vec![i64::MAX, 0, 1, 1], vec![2, 3]), // coordinates that would overflow
    ] {
        let nnz = if dims.len() == 1 {
            indices.len()
        } else {
            indices.len() / dims.len()
        };
        let sp = SparseTensorProto {
            values: Some(TensorProto {
                name: "s".into(),
                dims: vec![nnz as i64],
                data_type: 1,
                float_data: vec![1.0; nnz],
                ..Default::default()
            }),
            indices: Some(TensorProto {
                dims: if dims.len() == 1 {
                    vec![nnz as i64]
                } else {
                    vec![nnz as i64, dims.len() as i64]
                },
                data_type: 7,
                int64_data: indices.clone(),
                ..Default::default()
            }),
            dims: dims.clone(),
        };
        let g = GraphProto {
            node: vec![node("Identity", "", &["s"], &["y"])],
            sparse_initializer: vec![sp],
            output: vec![vi("y")],
            ..Default::default()
        };
        let msg = import_err(&model_with(g, vec![])).to_string();
        assert_mentions(&msg, &["sparse tensor \"s\": index [", "] is outside ["]);
    }
}

#[test]
fn an_attribute_does_not_size_an_allocation_beyond_what_the_model_has() {
    let body = GraphProto {
        node: vec![
            node("Identity", "", &["s"], &["s_out"]),
            node("Identity", "", &["x_t"], &["y_t"]),
        ],
        input: vec![vi("s"), vi("x_t")],
        output: vec![vi("s_out"), vi("y_t")],
        ..Default::default()
    };
    let scan = |n: i64, dirs: Option<Vec<i64>>| {
        let mut attrs = vec![
            graph_attr("body", body.clone()),
            AttributeProto {
                name: "num_scan_inputs".into(),
                r#type: AttributeType::Int as i32,
                i: n,
                ..Default::default()
            },
        ];
        if let Some(d) = dirs {
            attrs.push(AttributeProto {
                name: "scan_input_directions".into(),
                r#type: AttributeType::Ints as i32,
                ints: d,
                ..Default::default()
            });
        }
        model_with(
            GraphProto {
                node: vec![NodeProto {
                    name: "scan".into(),
                    attribute: attrs,
                    ..node("Scan", "", &["s0", "xs"], &["s_final", "ys"])
                }],
                input: vec![vi("s0"), vi("xs")],
                output: vec![vi("s_final"), vi("ys")],
                ..Default::default()
            },
            vec![],
        )
    };
    let e = import_err(&scan((1 << 31) - 1, None));
    assert_eq!(
        e.to_string(),
        "m.onnx: node \"scan\" (Scan): attribute num_scan_inputs is 2147483647; it must be \
         from 1 to 2 (the node has 2 inputs, its body 2)"
    );
    let e = import_err(&scan(1, Some(vec![0, 1, 0])));
    assert_mentions(
        &e.to_string(),
        &["attribute scan_input_directions has 3 entries, the node has 1 scan inputs"],
    );
    load_bytes(
        scan(1, Some(vec![1])).encode_to_vec().into(),
        "m.onnx",
        None,
    )
    .unwrap();
}

#[test]
fn unsupported_data_types_are_named_with_their_code() {
    let with_type = |data_type: i32| {
        let g = GraphProto {
            node: vec![node("Identity", "", &["w"], &["y"])],
            initializer: vec![TensorProto {
                name: "w".into(),
                dims: vec![1],
                data_type,
                raw_data: vec![0u8; 1].into(),
                ..Default::default()
            }],
            output: vec![vi("y")],
            ..Default::default()
        };
        import_err(&model_with(g, vec![])).to_string()
    };
    assert_eq!(
        with_type(99),
        "m.onnx: initializer: tensor \"w\": data type code 99 is not one xnpu knows (ONNX \
         codes run from 0 to 26)"
    );
    assert_eq!(
        with_type(14),
        "m.onnx: initializer: tensor \"w\": data type COMPLEX64 (code 14) is not supported"
    );
}

#[test]
fn control_characters_in_names_are_escaped_in_messages() {
    let evil = NodeProto {
        name: "evil\n\x1b[2J\u{202e}".into(),
        ..node("Bogus\x1b[31m", "", &["x"], &["y\r"])
    };
    let g = GraphProto {
        node: vec![evil],
        input: vec![vi("x")],
        output: vec![vi("y\r")],
        ..Default::default()
    };
    let msg = import_err(&model_with(g, vec![])).to_string();
    assert_eq!(
        msg,
        "m.onnx: node \"evil\\n\\x1b[2J\\u{202e}\" (Bogus\\x1b[31m): op Bogus\\x1b[31m of \
         domain \"ai.onnx\" (opset 17) is not supported"
    );

    // A name that reaches a message without the helper (an attribute value here) is escaped
    // all the same on the way out.
    let g = GraphProto {
        node: vec![NodeProto {
            attribute: vec![AttributeProto {
                name: "to".into(),
                r#type: AttributeType::String as i32,
                s: b"FLOAT\x07\x1b]0;title\x07".to_vec().into(),
                ..Default::default()
            }],
            ..node("Cast", "", &["x"], &["y"])
        }],
        input: vec![vi("x")],
        output: vec![vi("y")],
        ..Default::default()
    };
    let mut m = model_with(g, vec![]);
    m.opset_import = vec![opset("", 1)];
    let msg = import_err(&m).to_string();
    assert!(!msg.chars().any(|c| c.is_control()), "{msg:?}");
    assert_mentions(&msg, &["FLOAT\\x07\\x1b]0;title\\x07"]);
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_as_a_model_and_as_external_data() {
    use xnpu_graph::onnx::proto::{tensor_proto::DataLocation, StringStringEntryProto};
    let dir = tempfile::tempdir().unwrap();
    let mkfifo = |name: &str| {
        let path = dir.path().join(name);
        let ok = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo runs")
            .success();
        assert!(ok, "mkfifo {}", path.display());
        path
    };
    // Without the check both opens would wait for a writer forever.
    let e = load(&mkfifo("model.onnx")).unwrap_err();
    assert_mentions(
        &e.to_string(),
        &["model.onnx: ", "the model is a FIFO (named pipe)"],
    );

    mkfifo("w.bin");
    let entry = |k: &str, v: &str| StringStringEntryProto {
        key: k.into(),
        value: v.into(),
    };
    let g = GraphProto {
        node: vec![node("Identity", "", &["w"], &["y"])],
        initializer: vec![TensorProto {
            name: "w".into(),
            dims: vec![4],
            data_type: 1,
            data_location: DataLocation::External as i32,
            external_data: vec![entry("location", "w.bin")],
            ..Default::default()
        }],
        output: vec![vi("y")],
        ..Default::default()
    };
    let path = dir.path().join("m.onnx");
    std::fs::write(&path, model_with(g, vec![]).encode_to_vec()).unwrap();
    let e = load(&path).unwrap_err();
    assert_mentions(
        &e.to_string(),
        &[
            "m.onnx: initializer: tensor \"w\": ",
            "the external data file is a FIFO (named pipe)",
        ],
    );
}
