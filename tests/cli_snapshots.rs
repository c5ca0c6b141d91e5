//! Snapshot tests of the CLI's words: `--help` of every command, `xnpu devices` on fixture
//! trees, and the errors a new user meets (tests/cli/*.toml, run by trycmd from the
//! repository root). `TRYCMD=overwrite cargo test --test cli_snapshots` rewrites them after a
//! deliberate change; review the diff.

#[test]
fn cli_snapshots() {
    // A compile cache of the test's own: a read-only home would otherwise add a warning.
    let cache = tempfile::tempdir().expect("a temporary folder");
    trycmd::TestCases::new()
        .register_bin("xnpu", std::path::Path::new(env!("CARGO_BIN_EXE_xnpu")))
        .env("XNPU_LOG", "warn")
        .env("NO_COLOR", "1")
        .env("XNPU_CACHE_DIR", cache.path().display().to_string())
        .case("tests/cli/*.toml");
}
