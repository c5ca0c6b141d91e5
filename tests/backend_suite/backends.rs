//! Which backends the suite runs on: every one the registry can drive here (on-demand
//! providers and plugins included), and for each backend the suite expects that is absent,
//! why — from discovery's rows (`xnpu devices`) or the registry's notes. The parent asks a
//! child (`--discover`) so that no vendor library is ever loaded in the parent.

use std::path::{Path, PathBuf};

use xnpu::graph::backend::DeviceKind;

use crate::compare::Compute;
use crate::protocol::Line;

/// Backends the suite expects on a development machine: the reference, the reference as a
/// plugin, OpenVINO's CPU device built in and as a plugin, and QNN's HTP simulator. Every
/// row of `xnpu devices` is expected too (an NPU absent here is reported as skipped).
const EXPECTED: &[&str] = &[
    "cpu",
    "plugin:cpu",
    "openvino:cpu",
    "plugin:openvino:cpu",
    "qnn:htp-sim",
];

/// A backend the suite runs on.
pub struct Target {
    /// The device id, as `--devices` takes it.
    pub id: String,
    pub detail: String,
    pub compute: Compute,
}

/// A backend the suite expected and could not run on, with why.
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

/// The folder cargo writes the workspace's plugins to: the test executable's folder's
/// parent (`target/release/deps/backend_suite-…` → `target/release`).
pub fn build_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

/// Adds the build folder to the plugin search path (before the registry's first call).
pub fn use_built_plugins() {
    if let Some(dir) = build_dir() {
        xnpu::plugins::add_search_dir(dir);
    }
}

/// The precision a backend computes floats in: fp16 on NPUs and wherever its provider says
/// so (QNN's simulator with a SoC model: "fp32 computed as fp16").
fn compute_of(kind: DeviceKind, detail: &str) -> Compute {
    if kind == DeviceKind::Npu || detail.contains("as fp16") {
        Compute::F16
    } else {
        Compute::Exact
    }
}

/// The backends to run on, in the registry's order, and the expected ones that are absent.
/// Call before anything else reads the registry (plugins are discovered once).
pub fn discover() -> (Vec<Target>, Vec<Skipped>) {
    use_built_plugins();
    let (available, notes) = xnpu::registry::everything();
    // The reference kernels are the oracle: not a target compared with themselves.
    let targets: Vec<Target> = available
        .iter()
        .filter(|a| a.id != xnpu_backend_cpu::REFERENCE_ID)
        .map(|a| Target {
            id: a.id.clone(),
            detail: a.detail.clone(),
            compute: compute_of(a.backend.kind(), &a.detail),
        })
        .collect();
    let rows = xnpu::devices();
    let mut expected: Vec<String> = EXPECTED.iter().map(|s| s.to_string()).collect();
    for r in &rows {
        if !expected.contains(&r.id()) {
            expected.push(r.id());
        }
    }
    if let Ok(more) = std::env::var("XNPU_SUITE_EXPECT") {
        expected.extend(more.split(',').map(|s| s.trim().to_string()));
    }
    let mut skipped = Vec::new();
    for id in expected {
        if id.is_empty() || targets.iter().any(|t| t.id.eq_ignore_ascii_case(&id)) {
            continue;
        }
        let row = rows.iter().find(|r| r.id().eq_ignore_ascii_case(&id));
        let family = id.split(':').next().unwrap_or(&id);
        let note = notes
            .iter()
            .find(|n| n.starts_with(&format!("{family}:")) || n.contains(&id));
        let reason = match (row, note) {
            (_, Some(n)) => n.clone(),
            (Some(r), None) if !r.available() => {
                if r.hint.is_empty() {
                    r.status.to_string()
                } else {
                    format!("{} — {}", r.status, r.hint)
                }
            }
            (Some(r), None) => format!(
                "discovery finds it ({}) but no provider offers it",
                r.status
            ),
            (None, None) => match id.strip_prefix("plugin:") {
                Some(name) => plugin_missing(name),
                // No row of its own: what discovery says of its family.
                None => match rows.iter().find(|r| r.backend == family) {
                    Some(r) => format!("{}: {} — {}", r.id(), r.status, r.hint),
                    None => "no provider offers it on this machine".into(),
                },
            },
        };
        skipped.push(Skipped { id, reason });
    }
    (targets, skipped)
}

/// `--discover`: prints what [`discover`] finds as protocol lines.
pub fn print_discovery() {
    let (targets, skipped) = discover();
    for t in targets {
        Line::Target {
            id: t.id,
            compute: t.compute,
            detail: t.detail,
        }
        .send();
    }
    for s in skipped {
        Line::Skipped {
            id: s.id,
            reason: s.reason,
        }
        .send();
    }
    Line::End.send();
}

/// The backends, as a child finds them with `--discover`.
pub fn discover_in_child() -> Result<(Vec<Target>, Vec<Skipped>), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .arg("--discover")
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let (mut targets, mut skipped, mut ended) = (Vec::new(), Vec::new(), false);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match Line::parse(line) {
            Some(Line::Target {
                id,
                compute,
                detail,
            }) => targets.push(Target {
                id,
                detail,
                compute,
            }),
            Some(Line::Skipped { id, reason }) => skipped.push(Skipped { id, reason }),
            Some(Line::End) => ended = true,
            _ => {}
        }
    }
    if !ended {
        return Err(format!("discovery's process ended early ({})", out.status));
    }
    Ok((targets, skipped))
}

/// Why a plugin the suite expects was not found.
fn plugin_missing(id: &str) -> String {
    let name = id.split(':').next().unwrap_or(id);
    let file = xnpu::plugins::plugin_file_name(name);
    let dirs: Vec<String> = xnpu::plugins::search_path()
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    let found = xnpu::plugins::search_path()
        .iter()
        .any(|d| Path::new(d).join(&file).exists());
    if found {
        format!("{file} is in the plugin search path but offers no backend named {id}")
    } else {
        format!(
            "no {file} in the plugin search path ({}): build it with cargo build --release -p \
             xnpu-plugin-{name}",
            dirs.join(", ")
        )
    }
}
