//! `include/xnpu.h` is what cbindgen makes of `src/` with `cbindgen.toml`: a change to the C
//! ABI that was not written to the header fails here. `XNPU_BLESS=1` rewrites the header.

use std::path::Path;

#[test]
fn committed_header_matches_the_sources() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen reads src/");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let fresh = String::from_utf8(fresh).expect("cbindgen writes UTF-8");
    let path = dir.join("include/xnpu.h");
    if std::env::var_os("XNPU_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).expect("writing include/xnpu.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale (or missing): the C ABI in ffi/src changed. Refresh it with\n    \
         XNPU_BLESS=1 cargo test --release -p xnpu-ffi --test header\nand commit it.",
        path.display()
    );
}
