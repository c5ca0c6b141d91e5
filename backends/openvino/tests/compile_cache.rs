//! xnpu's cache of OpenVINO compiled models, against the real OpenVINO from the pinned wheel
//! on its CPU device: a compile writes one sealed blob that the next core imports without
//! compiling; a damaged, stale or unimportable blob is compiled again and replaced; many
//! threads, and many processes (this test binary run again as a child), sharing one fresh
//! folder all succeed with the same outputs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use sha2::{Digest, Sha256};
use xnpu_backend_openvino::{CacheUse, OpenVino, OpenVinoBackend, BLOB_EXTENSION, BLOB_KIND};
use xnpu_core::blob;
use xnpu_core::{Tensor, Value};
use xnpu_graph::backend::{CompileCache, CompileOptions, Executable};
use xnpu_graph::Graph;

fn openvino() -> Arc<OpenVino> {
    Arc::new(OpenVino::open().unwrap_or_else(|e| {
        panic!("{e}\n(scripts/test.sh installs the openvino wheel into .venv)")
    }))
}

/// A backend on a core of its own, as another process would have.
fn ov_cpu() -> OpenVinoBackend {
    OpenVinoBackend::new(openvino(), "CPU").unwrap()
}

fn tinycnn() -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    xnpu_graph::onnx::load(&root.join("models/tinycnn.onnx"))
        .unwrap()
        .graph
}

fn image() -> Value {
    let n = 2 * 3 * 32 * 32;
    Value::Tensor(
        Tensor::from_vec(
            vec![2, 3, 32, 32],
            (0..n).map(|i| ((i as f32) * 0.37).sin()).collect(),
        )
        .unwrap(),
    )
}

fn cached(dir: &Path) -> CompileOptions {
    CompileOptions {
        cache: CompileCache::Dir(dir.to_path_buf()),
        threads: Some(1),
        ..Default::default()
    }
}

/// The bytes of the model's output on [`image`].
fn output(exe: &dyn Executable) -> Vec<u8> {
    let out = exe.run(&[image()]).unwrap();
    out[0].as_tensor().unwrap().raw_bytes().to_vec()
}

/// Every file in the backend's cache folder (sorted), temporary ones included.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("openvino_cpu"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// The one blob in the cache folder (and nothing else there).
fn the_blob(dir: &Path) -> PathBuf {
    let f = files(dir);
    assert_eq!(f.len(), 1, "one file, no temporary ones: {f:?}");
    assert_eq!(
        f[0].extension().and_then(|x| x.to_str()),
        Some(BLOB_EXTENSION)
    );
    f[0].clone()
}

fn entry<'a>(header: &'a [(String, String)], key: &str) -> &'a str {
    header
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {header:?}"))
}

#[test]
fn a_compile_writes_one_sealed_blob_that_another_core_imports_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let g = tinycnn();
    let first = ov_cpu().compile_partition(&g, &cached(dir.path())).unwrap();
    assert_eq!(first.cache_use(), &CacheUse::Compiled);
    assert!(!first.loaded_from_cache());
    let path = the_blob(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    let header = blob::header(&bytes).unwrap();
    assert_eq!(entry(&header, "kind"), BLOB_KIND);
    assert_eq!(entry(&header, "openvino"), openvino().version());
    assert_eq!(entry(&header, "device"), "CPU");
    assert!(entry(&header, "plugins").contains("openvino_intel_cpu_plugin"));
    let props = entry(&header, "properties");
    assert!(props.contains("INFERENCE_NUM_THREADS=1"), "{props}");

    let second = ov_cpu().compile_partition(&g, &cached(dir.path())).unwrap();
    assert_eq!(second.cache_use(), &CacheUse::Imported);
    assert!(second.loaded_from_cache());
    assert_eq!(
        std::fs::read(the_blob(dir.path())).unwrap(),
        bytes,
        "left as it was"
    );
    assert_eq!(output(&first), output(&second));
    // The import took the compile's properties, not the device's defaults.
    for (key, want) in [
        ("INFERENCE_PRECISION_HINT", "f32"),
        ("INFERENCE_NUM_THREADS", "1"),
        ("PERFORMANCE_HINT", "LATENCY"),
    ] {
        assert_eq!(second.compiled().property(key).unwrap(), want, "{key}");
    }

    // Other compile properties are another blob; no cache folder is no blob.
    let o = CompileOptions {
        threads: Some(2),
        ..cached(dir.path())
    };
    let third = ov_cpu().compile_partition(&g, &o).unwrap();
    assert_eq!(third.cache_use(), &CacheUse::Compiled);
    assert_eq!(
        third.compiled().property("INFERENCE_NUM_THREADS").unwrap(),
        "2"
    );
    assert_eq!(files(dir.path()).len(), 2);
    let off = CompileOptions {
        cache: CompileCache::Off,
        ..Default::default()
    };
    let fourth = ov_cpu().compile_partition(&g, &off).unwrap();
    assert_eq!(fourth.cache_use(), &CacheUse::Off);
    assert_eq!(output(&fourth), output(&first));
}

#[test]
fn a_truncated_bit_flipped_or_unimportable_blob_is_compiled_again_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let g = tinycnn();
    let want = output(&ov_cpu().compile_partition(&g, &cached(dir.path())).unwrap());
    let path = the_blob(dir.path());
    let good = std::fs::read(&path).unwrap();
    let header = blob::header(&good).unwrap();
    let compat: Vec<(&str, &str)> = header[1..]
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    let damaged: [(&str, Vec<u8>, &str); 5] = [
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "corrupt (checksum mismatch)",
        ),
        ("bit-flipped", flipped, "corrupt (checksum mismatch)"),
        ("empty", Vec::new(), "corrupt (not an xnpu blob)"),
        (
            "another file",
            b"garbage that is not a blob at all, written by someone else".to_vec(),
            "corrupt (not an xnpu blob)",
        ),
        // Whole and made here, but not a model OpenVINO can import.
        (
            "unimportable",
            blob::seal(BLOB_KIND, &compat, b"not an exported model"),
            "not imported (OpenVINO",
        ),
    ];
    for (what, bytes, why) in damaged {
        std::fs::write(&path, &bytes).unwrap();
        let exe = ov_cpu().compile_partition(&g, &cached(dir.path())).unwrap();
        match exe.cache_use() {
            CacheUse::Recompiled(w) => assert!(w.starts_with(why), "{what}: {w}"),
            other => panic!("{what}: {other:?}"),
        }
        assert!(!exe.loaded_from_cache(), "{what}");
        assert_eq!(output(&exe), want, "{what}");
        // Replaced by a whole blob, which the next compile imports.
        let now = std::fs::read(the_blob(dir.path())).unwrap();
        assert_eq!(blob::header(&now).unwrap(), header, "{what}");
        let next = ov_cpu().compile_partition(&g, &cached(dir.path())).unwrap();
        assert_eq!(next.cache_use(), &CacheUse::Imported, "{what}");
        assert_eq!(output(&next), want, "{what}");
    }
}

#[test]
fn a_blob_sealed_for_another_openvino_build_or_device_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let g = tinycnn();
    let want = output(&ov_cpu().compile_partition(&g, &cached(dir.path())).unwrap());
    let path = the_blob(dir.path());
    let good = std::fs::read(&path).unwrap();
    let header = blob::header(&good).unwrap();
    // The real export, resealed as if made elsewhere.
    let payload = blob::open(BLOB_KIND, &[], &good).unwrap().to_vec();
    for (key, other) in [
        ("openvino", "2026.3.1-00000-fake"),
        ("device_name", "Intel(R) Core(TM) Ultra 7 165H"),
        ("plugins", "openvino_intel_cpu_plugin: 2026.3.1-00000-fake"),
        ("xnpu", "0.0.1"),
    ] {
        let resealed: Vec<(&str, &str)> = header[1..]
            .iter()
            .map(|(k, v)| (k.as_str(), if k == key { other } else { v.as_str() }))
            .collect();
        std::fs::write(&path, blob::seal(BLOB_KIND, &resealed, &payload)).unwrap();
        let exe = ov_cpu().compile_partition(&g, &cached(dir.path())).unwrap();
        let expected = format!("stale ({key} is \"{other}\" in the blob, ");
        match exe.cache_use() {
            CacheUse::Recompiled(w) => assert!(w.starts_with(&expected), "{key}: {w}"),
            u => panic!("{key}: {u:?}"),
        }
        assert_eq!(output(&exe), want, "{key}");
        let now = std::fs::read(the_blob(dir.path())).unwrap();
        assert_eq!(blob::header(&now).unwrap(), header, "{key}: replaced");
    }
}

#[test]
fn large_weights_read_from_a_file_are_cached_too() {
    let dir = tempfile::tempdir().unwrap();
    let g = tinycnn();
    let first = ov_cpu()
        .inline_limit(0)
        .compile_partition(&g, &cached(dir.path()))
        .unwrap();
    let second = ov_cpu()
        .inline_limit(0)
        .compile_partition(&g, &cached(dir.path()))
        .unwrap();
    assert_eq!(first.cache_use(), &CacheUse::Compiled);
    assert_eq!(second.cache_use(), &CacheUse::Imported);
    the_blob(dir.path());
    assert_eq!(output(&first), output(&second));
}

#[test]
fn a_users_cache_dir_leaves_caching_to_openvino() {
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let b = ov_cpu().with_config(vec![(
        "CACHE_DIR".into(),
        theirs.path().to_string_lossy().into_owned(),
    )]);
    let exe = b
        .compile_partition(&tinycnn(), &cached(ours.path()))
        .unwrap();
    assert_eq!(exe.cache_use(), &CacheUse::Off);
    assert!(files(ours.path()).is_empty());
    assert!(std::fs::read_dir(theirs.path()).unwrap().count() >= 1);
}

#[test]
fn threads_sharing_a_fresh_cache_folder_all_succeed_alike() {
    let dir = tempfile::tempdir().unwrap();
    let g = tinycnn();
    let n = 8;
    let start = Barrier::new(n);
    let outs: Vec<(Vec<u8>, CacheUse)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                s.spawn(|| {
                    let b = ov_cpu();
                    start.wait();
                    let exe = b.compile_partition(&g, &cached(dir.path())).unwrap();
                    (output(&exe), exe.cache_use().clone())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (o, u) in &outs {
        assert_eq!(o, &outs[0].0);
        assert!(
            matches!(u, CacheUse::Compiled | CacheUse::Imported),
            "{u:?}"
        );
    }
    the_blob(dir.path());
    let last = ov_cpu().compile_partition(&g, &cached(dir.path())).unwrap();
    assert_eq!(last.cache_use(), &CacheUse::Imported);
    assert_eq!(output(&last), outs[0].0);
}

/// Set in a child process of [`processes_sharing_a_fresh_cache_folder_all_succeed_alike`]:
/// the cache folder it compiles into.
const CHILD_DIR: &str = "XNPU_TEST_OPENVINO_CACHE_CHILD";
/// How many times a child compiles (each through a core of its own).
const CHILD_COMPILES: usize = 3;

/// The child's side: does nothing unless [`CHILD_DIR`] is set; then compiles the model
/// [`CHILD_COMPILES`] times into that folder and prints one line per compile: how it went
/// through the cache and a digest of the output.
#[test]
fn child_compiling_into_a_shared_folder() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let g = tinycnn();
    for _ in 0..CHILD_COMPILES {
        let exe = ov_cpu()
            .compile_partition(&g, &cached(Path::new(&dir)))
            .unwrap();
        let digest: String = Sha256::digest(output(&exe))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let how = match exe.cache_use() {
            CacheUse::Imported => "imported".to_string(),
            CacheUse::Compiled => "compiled".to_string(),
            other => format!("{other:?}").replace(' ', "_"),
        };
        println!("xnpu-cache-child {how} {digest}");
    }
}

#[test]
fn processes_sharing_a_fresh_cache_folder_all_succeed_alike() {
    // 8 processes at once on a fresh folder, for a number of rounds (each a fresh folder).
    // With OpenVINO's CACHE_DIR, the same 8 processes died of SIGBUS in 8 of 160 runs.
    let rounds: usize = std::env::var("XNPU_TEST_CACHE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let exe = std::env::current_exe().unwrap();
    let mut digests = std::collections::BTreeSet::new();
    let (mut compiled, mut imported) = (0, 0);
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..8)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "child_compiling_into_a_shared_folder",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD_DIR, dir.path())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "round {round}: {:?}\n{text}",
                out.status
            );
            let lines: Vec<Vec<&str>> = text
                .lines()
                // libtest prints "test <name> ... " before the first line.
                .filter_map(|l| l.split_once("xnpu-cache-child ").map(|(_, r)| r))
                .map(|l| l.split(' ').collect())
                .collect();
            assert_eq!(lines.len(), CHILD_COMPILES, "round {round}: {text}");
            for (i, l) in lines.iter().enumerate() {
                match (i, l[0]) {
                    (0, "compiled") => compiled += 1,
                    (_, "imported") => imported += 1,
                    // Its own blob, or another's, is there after its first compile.
                    _ => panic!("round {round}, compile {i}: {l:?}"),
                }
                digests.insert(l[1].to_string());
            }
        }
        the_blob(dir.path());
    }
    assert_eq!(digests.len(), 1, "one output: {digests:?}");
    assert!(imported >= rounds * 8 * (CHILD_COMPILES - 1));
    println!("{rounds} rounds of 8 processes: {compiled} compiles, {imported} imports");
}
