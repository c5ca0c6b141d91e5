//! The C examples (`examples/c/`), compiled with the system C compiler against
//! `include/xnpu.h` and the `libxnpu_ffi.so` cargo built for this test, run and checked:
//! `classify` against ONNX Runtime's probabilities, `devices` against `xnpu::devices()`, and
//! `stress` natively and under valgrind (no leak, no invalid access).
//!
//! The programs are built in a temporary folder outside the repository and run without
//! `VIRTUAL_ENV`, `XNPU_SITE_PACKAGES` and `XNPU_PLUGIN_PATH`, so that discovery finds no
//! vendor library or plugin to load: the leak check covers xnpu, not OpenVINO.
#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Instant;

use common::repo;

/// Compiles `examples/c/<name>.c` into `<build dir>/<out>`, warnings as errors.
fn compile(name: &str, out: &str) -> PathBuf {
    common::cc(&repo().join(format!("examples/c/{name}.c")), out)
}

/// Runs a program (or valgrind on one) with discovery kept to xnpu's own devices.
fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&std::ffi::OsStr]) -> Output {
    let program = program.as_ref();
    let output = common::command(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {}: {e} (valgrind: apt-get install valgrind, as scripts/common.sh's \
                 ensure_toolchain does)",
                program.to_string_lossy()
            )
        });
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    output
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exited with {}:\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn model() -> PathBuf {
    repo().join("models/tinycnn.onnx")
}

#[test]
fn classify_prints_onnx_runtimes_top_class_for_each_image() {
    let exe = compile("classify", "classify");
    let image = repo().join("models/tinycnn.image.npy");
    let out = stdout(&run(&exe, &[model().as_os_str(), image.as_os_str()]));
    print!("{out}");
    let reference = xnpu::npy::read(&repo().join("models/tinycnn.probs.ort.npy"))
        .expect("the reference probabilities");
    let classes = *reference.shape().last().expect("rows of classes");
    let probs: Vec<f32> = reference.to_vec().expect("float32 probabilities");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("image ")).collect();
    assert_eq!(
        rows.len(),
        probs.len() / classes,
        "one line per image:\n{out}"
    );
    for (r, (line, row)) in rows.iter().zip(probs.chunks(classes)).enumerate() {
        let best = (0..classes)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .expect("at least one class");
        let (class, p) = line
            .strip_prefix(&format!("image {r}: top class "))
            .and_then(|s| s.split_once(", probability "))
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        assert_eq!(class.parse::<usize>().ok(), Some(best), "{line}");
        let p: f32 = p.parse().expect("a probability");
        assert!(
            (p - row[best]).abs() < 1e-4,
            "{line}: ONNX Runtime says {}",
            row[best]
        );
    }
}

#[test]
fn devices_lists_what_discovery_finds_with_statuses() {
    let exe = compile("devices", "devices");
    let out = stdout(&run(&exe, &[]));
    print!("{out}");
    let cpu = out
        .lines()
        .find(|l| l.starts_with("cpu "))
        .unwrap_or_else(|| panic!("no cpu line:\n{out}"));
    assert!(cpu.contains("available"), "{cpu}");
    // Every device row carries one of discovery's statuses, and the count line counts them.
    let labels = [
        "available",
        "library missing",
        "driver not bound",
        "no permission",
        "not present",
        "unsupported",
    ];
    let rows: Vec<&str> = out
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' ') && !l.contains(" devices, xnpu "))
        .collect();
    for row in &rows {
        assert!(
            labels.iter().any(|s| row.contains(s)),
            "no status in {row:?}"
        );
    }
    assert!(
        out.contains(&format!(
            "{} devices, xnpu {}",
            rows.len(),
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
}

#[test]
fn stress_runs_every_path_two_hundred_times() {
    let exe = compile("stress", "stress");
    let out = stdout(&run(&exe, &[model().as_os_str(), "200".as_ref()]));
    print!("{out}");
    assert!(
        out.contains("stress: 200 of 200 cycles,") && out.contains(" 0 problems"),
        "{out}"
    );
}

/// Cycles under valgrind: each takes about 0.3 s there on a 2-core machine.
const VALGRIND_CYCLES: &str = "30";

#[test]
fn stress_under_valgrind_leaks_nothing_and_touches_no_invalid_memory() {
    let exe = compile("stress", "stress-valgrind");
    let start = Instant::now();
    let output = run(
        "valgrind",
        &[
            "--leak-check=full".as_ref(),
            "--errors-for-leak-kinds=definite".as_ref(),
            "--error-exitcode=1".as_ref(),
            exe.as_os_str(),
            model().as_os_str(),
            VALGRIND_CYCLES.as_ref(),
        ],
    );
    let log = String::from_utf8_lossy(&output.stderr);
    let out = stdout(&output);
    print!("{out}");
    let summary: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR SUMMARY") || l.contains("definitely lost"))
        .collect();
    println!(
        "{} ({:.1} s)",
        summary.join("\n"),
        start.elapsed().as_secs_f64()
    );
    assert!(
        log.contains("ERROR SUMMARY: 0 errors from 0 contexts"),
        "valgrind found errors"
    );
    assert!(out.contains(&format!(
        "stress: {VALGRIND_CYCLES} of {VALGRIND_CYCLES} cycles,"
    )));
}
