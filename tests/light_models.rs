//! The `light_*` models shipped in the onnx wheel (resnet50, densenet121, inception v1/v2,
//! shufflenet, squeezenet, vgg19, zfnet512, alexnet) run and match their stored outputs, fed
//! and compared the way onnx's own runner does: the one real input is
//! `arange(n).reshape(shape) / n` as float32 (unknown dims 1), rtol 1e-3 (2e-3 for densenet121),
//! atol 1e-7. Each model runs at pass levels `none` and `all`; both must match.

mod common;

use std::path::Path;

use xnpu::graph::onnx::DataDir;
use xnpu::graph::passes::Level;
use xnpu::{Session, SessionOptions, ValueType};

/// Runs one model at one level; returns the optimisation report's summary.
fn run_one(model: &Path, level: Level) -> Result<String, String> {
    let stem = model
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string();
    let session =
        Session::load_with(model, SessionOptions::new().level(level)).map_err(|e| e.to_string())?;
    let inputs = common::light_inputs(&session)?;
    let got = session.run_positional(inputs).map_err(|e| e.to_string())?;
    let expected_path = model.with_file_name(format!("{stem}_output_0.pb"));
    let expected = common::read_value(&expected_path, &ValueType::Unknown, &DataDir::default())
        .map_err(|e| e.to_string())?;
    let rtol = if stem.contains("densenet121") {
        2e-3
    } else {
        1e-3
    };
    common::compare(&got[0], &expected, rtol, 1e-7)?;
    Ok(session.optimization_report().to_string())
}

#[test]
fn light_models_match_their_stored_outputs() {
    let models = common::light_models();
    let mut failures = Vec::new();
    for m in &models {
        for level in [Level::None, Level::All] {
            let t0 = std::time::Instant::now();
            let r = run_one(m, level);
            let name = m
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            println!(
                "{name} [{level}]: {} in {:.2} s",
                match &r {
                    Ok(report) => report.as_str(),
                    Err(_) => "FAILED",
                },
                t0.elapsed().as_secs_f64()
            );
            if let Err(e) = r {
                failures.push(format!("{name} at level {level}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "light models that fail:\n{}",
        failures.join("\n")
    );
}
