//! AVX-512 intrinsics are stable from Rust 1.89; the workspace builds with 1.82+. With an
//! older compiler the packed AVX-512 GEMM is left out (`xnpu_avx512` unset) and every CPU
//! takes the portable path.

use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(xnpu_avx512)");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_string))
        .and_then(|v| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()));
    if minor.is_some_and(|m| m >= 89) {
        println!("cargo:rustc-cfg=xnpu_avx512");
    }
}
