//! Device discovery. For now the CPU (with the ISA features the kernels can use); NPU
//! backends add their devices as they land.

/// One device xnpu can run on.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub backend: &'static str,
    pub name: String,
    pub vendor: String,
    /// ISA features, driver or library version: what a user checks first.
    pub details: String,
    pub available: bool,
}

/// Every device on this machine.
pub fn devices() -> Vec<Device> {
    vec![cpu_device()]
}

fn cpu_device() -> Device {
    let (vendor, name) = cpu_names();
    Device {
        backend: "cpu",
        name,
        vendor,
        details: cpu_features().join(" "),
        available: true,
    }
}

fn cpu_names() -> (String, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
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
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
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
