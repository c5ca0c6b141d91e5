//! The CPU row: model, vendor, threads and the ISA features the kernels can use.

use std::path::Path;

use super::{Device, DeviceStatus};

pub(super) fn device(root: &Path, arch: &str) -> Device {
    let (vendor, name) = cpu_names(root, arch);
    Device {
        backend: "cpu",
        name: "cpu",
        vendor,
        device: name,
        details: cpu_features().join(" "),
        library: None,
        driver: None,
        status: DeviceStatus::Available,
        hint: "xnpu's own CPU backend; always available".into(),
    }
}

/// Vendor and model from `<root>/proc/cpuinfo`, with the thread count.
fn cpu_names(root: &Path, arch: &str) -> (String, String) {
    let info = std::fs::read_to_string(root.join("proc/cpuinfo")).unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let vendor = field("vendor_id")
        .or_else(|| field("CPU implementer"))
        .unwrap_or_else(|| "unknown".into());
    let name = field("model name")
        .or_else(|| field("Model"))
        .unwrap_or_else(|| arch.to_string());
    let threads = if root == Path::new("/") {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        info.lines()
            .filter(|l| l.starts_with("processor"))
            .count()
            .max(1)
    };
    (vendor, format!("{name} ({threads} threads)"))
}

/// The SIMD features of this CPU that matter for kernels.
pub fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut f = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! probe {
            ($($name:tt),*) => {$(
                if std::is_x86_feature_detected!($name) { f.push($name); }
            )*};
        }
        probe!(
            "sse4.2",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vnni",
            "avx512bf16",
            "avx512fp16",
            "avxvnni"
        );
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! probe {
            ($($name:tt),*) => {$(
                if std::arch::is_aarch64_feature_detected!($name) { f.push($name); }
            )*};
        }
        probe!("neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2");
    }
    f
}
