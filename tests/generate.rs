//! Text generation (`xnpu::generate`) on the tiny Phi-3 models that
//! `scripts/make_llm_models.py` builds with onnxruntime-genai's model builder (random
//! weights, fixed seeds; `scripts/test.sh` makes them in `target/llm`, `XNPU_LLM_MODELS`
//! overrides), compared with onnxruntime-genai itself (`scripts/ref_genai.py`, run with
//! `XNPU_PYTHON`, default `.venv/bin/python`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use xnpu::generate::{Finish, GenerateOptions, LanguageModel, ModelOptions, Sampling};
use xnpu::graph::backend::CompileCache;
use xnpu::SessionOptions;

const PROMPT: &str = "The quick brown fox jumps over the lazy dog.";
/// 37 tokens with the tiny tokenizer (checked below).
const LONG_PROMPT: &str =
    "All that glitters is not gold. The river flows from the mountains down to the sea.";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn model_dir(name: &str) -> PathBuf {
    let dir = std::env::var_os("XNPU_LLM_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/llm"))
        .join(name);
    assert!(
        dir.join("genai_config.json").is_file(),
        "{}: missing; make the models with scripts/test.sh (or .venv/bin/python \
         scripts/make_llm_models.py target/llm)",
        dir.display()
    );
    dir
}

fn python() -> PathBuf {
    std::env::var_os("XNPU_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"))
}

fn cpu_options() -> SessionOptions {
    SessionOptions::new()
        .devices("cpu-only".parse().expect("policy"))
        .compile_cache(CompileCache::Off)
}

fn load(name: &str) -> LanguageModel {
    LanguageModel::load(
        model_dir(name),
        ModelOptions {
            session: cpu_options(),
            prefill: None,
        },
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// onnxruntime-genai's greedy generation: (prompt ids, generated ids).
fn genai(
    name: &str,
    prompt: &str,
    max_tokens: usize,
    chunk: Option<usize>,
) -> (Vec<u32>, Vec<u32>) {
    let mut cmd = Command::new(python());
    cmd.arg(root().join("scripts/ref_genai.py"))
        .arg(model_dir(name))
        .args(["--prompt", prompt, "--max-tokens", &max_tokens.to_string()])
        .args(["--no-eos", "--no-hf"]);
    if let Some(c) = chunk {
        cmd.args(["--chunk", &c.to_string()]);
    }
    let out = cmd.output().expect("run scripts/ref_genai.py");
    assert!(
        out.status.success(),
        "ref_genai.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ref_genai.py JSON");
    let ids = |k: &str| -> Vec<u32> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("no {k} in {v}"))
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect()
    };
    (ids("prompt_ids"), ids("generated_ids"))
}

fn greedy(max_tokens: usize, chunk: Option<usize>) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        chunk_size: chunk,
        ignore_eos: true,
        ..GenerateOptions::default()
    }
}

fn check_against_genai(name: &str) {
    let lm = load(name);
    let (want_prompt, want) = genai(name, PROMPT, 32, None);
    let prompt = lm.encode(PROMPT).expect("encode");
    assert_eq!(
        prompt, want_prompt,
        "{name}: tokenizer ids differ from onnxruntime-genai's"
    );
    let mut streamed = Vec::new();
    let g = lm
        .generate(PROMPT, &greedy(32, None), |t| {
            streamed.push(t.id);
            true
        })
        .expect("generate");
    assert_eq!(
        g.ids, want,
        "{name}: greedy tokens differ from onnxruntime-genai's"
    );
    assert_eq!(streamed, g.ids);
    assert_eq!(g.finish, Finish::Length);
    assert_eq!(g.stats.generated_tokens, 32);
    assert_eq!(g.stats.decode_steps, 31);
    assert_eq!(g.text, lm.decode(&g.ids).expect("decode"));
}

#[test]
fn greedy_fp32_matches_onnxruntime_genai() {
    check_against_genai("tiny-fp32");
}

#[test]
fn greedy_int4_matches_onnxruntime_genai() {
    // accuracy_level 4: ONNX Runtime quantises the activations to int8 per block.
    check_against_genai("tiny-int4");
}

#[test]
fn greedy_int4_fp32_activations_matches_onnxruntime_genai() {
    // accuracy_level 1: the same int4 weights with fp32 activations.
    check_against_genai("tiny-int4-acc1");
}

#[test]
fn greedy_int4_qdq_matches_onnxruntime_genai() {
    // INT4 DequantizeLinear + MatMul, as NPU quantisers write it (ONNX Runtime's
    // MatMulNBitsQuantizer in QDQ form): the passes make it MatMulNBits.
    check_against_genai("tiny-int4-qdq");
}

#[test]
fn int4_qdq_weights_become_matmul_nbits() {
    use xnpu::graph::passes::{optimize, Options};
    let path = model_dir("tiny-int4-qdq").join("model.onnx");
    let mut model = xnpu::graph::onnx::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let dq = model.op_histogram().get("DequantizeLinear").copied();
    assert_eq!(dq, Some(11), "{:?}", model.op_histogram());
    let report = optimize(&mut model, &Options::default()).expect("optimize");
    let hist = model.op_histogram();
    assert_eq!(hist.get("MatMulNBits"), Some(&11), "{report}: {hist:?}");
    assert!(!hist.contains_key("DequantizeLinear"), "{report}: {hist:?}");
    assert!(!hist.contains_key("MatMul"), "{report}: {hist:?}");
}

#[test]
fn chunked_prefill_gives_the_whole_prompt_tokens() {
    for name in ["tiny-int4", "tiny-fp32"] {
        let lm = load(name);
        let ids = lm.encode(LONG_PROMPT).expect("encode");
        assert_eq!(ids.len(), 37, "the long prompt should be 37 tokens");
        let whole = lm
            .generate_ids(&ids, &greedy(24, None), |_| true)
            .expect("whole");
        let chunked = lm
            .generate_ids(&ids, &greedy(24, Some(16)), |_| true)
            .expect("chunked");
        assert_eq!(
            chunked.ids, whole.ids,
            "{name}: chunk 16 differs from one prefill"
        );
        let (_, want) = genai(name, LONG_PROMPT, 24, Some(16));
        assert_eq!(
            chunked.ids, want,
            "{name}: chunk 16 differs from onnxruntime-genai's"
        );
    }
}

#[test]
fn the_kv_cache_is_updated_in_place() {
    let lm = load("tiny-int4");
    let ids = lm.encode(LONG_PROMPT).expect("encode");
    let mut g = lm.start(&ids, &greedy(20, Some(16))).expect("start");
    let before = g.cache_addresses();
    assert!(before.iter().all(|&a| a != 0));
    let mut n = 0;
    while let Some(t) = g.next_token().expect("token") {
        assert!((t.id as usize) < lm.config().model.vocab_size);
        assert_eq!(
            g.cache_addresses(),
            before,
            "token {n}: a cache buffer moved"
        );
        n += 1;
    }
    assert_eq!(n, 20);
}

#[test]
fn prefill_and_decode_on_different_backends_share_the_cache() {
    let name = "tiny-fp32";
    let split = LanguageModel::load(
        model_dir(name),
        ModelOptions {
            session: cpu_options(),
            // The prompt runs on the CPU backend loaded as a plugin (it receives the model
            // as ONNX bytes, GroupQueryAttention and all), the tokens on the built-in one.
            prefill: Some(
                SessionOptions::new()
                    .compile_cache(CompileCache::Off)
                    .backend(common::plugin_cpu()),
            ),
        },
    )
    .expect("load");
    let lm = load(name);
    let ids = lm.encode(LONG_PROMPT).expect("encode");
    let want = lm
        .generate_ids(&ids, &greedy(16, Some(16)), |_| true)
        .expect("one");
    let got = split
        .generate_ids(&ids, &greedy(16, Some(16)), |_| true)
        .expect("split");
    assert_eq!(got.ids, want.ids);
}

#[test]
fn sampling_is_seeded_and_the_iterator_matches_the_callback() {
    let lm = load("tiny-int4");
    let ids = lm.encode(PROMPT).expect("encode");
    let opts = |seed| GenerateOptions {
        max_tokens: 24,
        ignore_eos: true,
        sampling: Sampling {
            do_sample: true,
            temperature: 0.9,
            top_k: 40,
            top_p: 0.95,
            repetition_penalty: 1.1,
            seed,
        },
        ..GenerateOptions::default()
    };
    let a = lm.generate_ids(&ids, &opts(1), |_| true).expect("a");
    let b = lm.generate_ids(&ids, &opts(1), |_| true).expect("b");
    let c = lm.generate_ids(&ids, &opts(2), |_| true).expect("c");
    assert_eq!(a.ids, b.ids);
    assert_ne!(a.ids, c.ids);
    let it: Vec<u32> = lm
        .start(&ids, &opts(1))
        .expect("start")
        .map(|t| t.expect("token").id)
        .collect();
    assert_eq!(it, a.ids);
    // Stopping from the callback.
    let mut n = 0;
    let s = lm
        .generate_ids(&ids, &opts(1), |_| {
            n += 1;
            n < 5
        })
        .expect("stopped");
    assert_eq!(s.finish, Finish::Stopped);
    assert_eq!(s.ids, a.ids[..5]);
}

/// A copy of a model folder (the big files linked) that a test may change.
fn scratch_copy(name: &str) -> tempfile::TempDir {
    let src = model_dir(name);
    let dst = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(&src).expect("read model folder") {
        let p = e.expect("entry").path();
        if p.is_file() {
            std::fs::copy(&p, dst.path().join(p.file_name().expect("name"))).expect("copy");
        }
    }
    dst
}

fn load_err(dir: &Path) -> String {
    LanguageModel::load(
        dir,
        ModelOptions {
            session: cpu_options(),
            prefill: None,
        },
    )
    .expect_err("loading should fail")
    .to_string()
}

#[test]
fn a_folder_without_genai_config_is_refused_clearly() {
    let dir = scratch_copy("tiny-int4");
    std::fs::remove_file(dir.path().join("genai_config.json")).expect("rm");
    let e = load_err(dir.path());
    assert!(e.contains("no genai_config.json"), "{e}");
    assert!(e.contains(&dir.path().display().to_string()), "{e}");
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_clearly() {
    let lm = load("tiny-int4");
    let ctx = lm.config().model.context_length;
    let ids: Vec<u32> = (0..ctx + 5).map(|i| 300 + (i % 200) as u32).collect();
    let e = lm
        .generate_ids(&ids, &greedy(4, None), |_| true)
        .expect_err("too long")
        .to_string();
    assert!(
        e.contains(&format!("the prompt has {} tokens", ctx + 5)),
        "{e}"
    );
    assert!(e.contains(&format!("context holds {ctx}")), "{e}");
    // A max_length below the prompt is refused the same way.
    let ids = lm.encode(LONG_PROMPT).expect("encode");
    let opts = GenerateOptions {
        max_length: Some(20),
        ..greedy(4, None)
    };
    let e = lm
        .generate_ids(&ids, &opts, |_| true)
        .expect_err("max_length")
        .to_string();
    assert!(
        e.contains("the prompt has 37 tokens") && e.contains("max_length"),
        "{e}"
    );
    // Token ids outside the vocabulary.
    let e = lm
        .generate_ids(&[5, 100_000], &greedy(4, None), |_| true)
        .expect_err("bad id")
        .to_string();
    assert!(e.contains("100000") && e.contains("vocabulary"), "{e}");
}

#[test]
fn a_tokenizer_that_does_not_match_the_vocabulary_is_refused_clearly() {
    let dir = scratch_copy("tiny-int4");
    let path = dir.path().join("tokenizer.json");
    let mut tok: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    // A tokenizer of a bigger model: tokens beyond this model's 523.
    let added = tok["added_tokens"].as_array_mut().expect("added_tokens");
    for (k, id) in (0..40).map(|k| (k, 600 + k)) {
        added.push(serde_json::json!({
            "id": id, "content": format!("<extra_{k}>"), "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true
        }));
    }
    std::fs::write(&path, tok.to_string()).expect("write");
    let e = load_err(dir.path());
    assert!(e.contains("tokenizer.json does not match the model"), "{e}");
    assert!(e.contains("523"), "{e}");
}
