//! QNN's entry in xnpu's backend registry: `qnn:htp` (the Hexagon NPU, on Arm) or
//! `qnn:htp-sim` (Qualcomm's HTP simulator, on x86_64). Discovered on demand only: opening
//! libQnnHtp.so costs about 40 ms and prints a line on stdout.

use std::sync::Arc;

use xnpu_core::{Error, Result};
use xnpu_graph::backend::{Available, Backend, DeviceKind, Offers, Provider};

use crate::{ffi, find_library, Qnn, QnnBackend, QnnLibrary, DEFAULT_SIM_SOC};

/// Offers the HTP (or its simulator) when QNN's libraries are found.
pub struct QnnProvider;

/// The registry's entry for this crate.
pub static PROVIDER: QnnProvider = QnnProvider;

impl Provider for QnnProvider {
    fn family(&self) -> &'static str {
        "qnn"
    }

    fn on_demand(&self) -> bool {
        true
    }

    /// The real HTP only on Arm; on x86_64 the simulator, which is of CPU kind.
    fn may_offer(&self, kind: DeviceKind) -> bool {
        match kind {
            DeviceKind::Npu => cfg!(target_arch = "aarch64"),
            DeviceKind::Cpu => cfg!(target_arch = "x86_64"),
            DeviceKind::Gpu => false,
        }
    }

    fn discover(&self) -> Offers {
        match create() {
            Ok(a) => Offers {
                available: vec![a],
                ..Offers::default()
            },
            Err(e) => {
                let why = format!("qnn: {e}");
                Offers {
                    available: Vec::new(),
                    // Every session hears of it only when the user pointed at QNN's libraries.
                    notes: std::env::var_os("XNPU_QNN_LIB_DIR")
                        .map(|_| vec![why.clone()])
                        .unwrap_or_default(),
                    unavailable: Some(why),
                }
            }
        }
    }
}

/// The HTP SoC model of `XNPU_QNN_SOC` (a number, 0 for none), or the default:
/// [`DEFAULT_SIM_SOC`] on the x86_64 simulator (fp32 computes as fp16, like the device),
/// none on Arm.
pub fn soc_from_env() -> Result<u32> {
    match std::env::var("XNPU_QNN_SOC") {
        Ok(v) => v.trim().parse().map_err(|_| {
            Error::invalid_input(format!(
                "XNPU_QNN_SOC={v} is not a number (an HTP SoC model, 0 for none)"
            ))
        }),
        Err(_) if cfg!(target_arch = "x86_64") => Ok(DEFAULT_SIM_SOC),
        Err(_) => Ok(0),
    }
}

fn create() -> Result<Available> {
    let soc = soc_from_env()?;
    let path = find_library("libQnnHtp.so")?;
    let lib = Arc::new(QnnLibrary::open(&path)?);
    let build = lib.build_id().unwrap_or_else(|e| format!("unknown ({e})"));
    let provider = lib
        .providers()
        .iter()
        .find(|p| p.backend_id == lib.backend_id())
        .map(|p| {
            let v = |v: ffi::Version| format!("{}.{}.{}", v.major, v.minor, v.patch);
            format!(
                "{} (core API {}, backend API {})",
                p.name,
                v(p.core),
                v(p.backend)
            )
        })
        .unwrap_or_else(|| format!("backend id {}", lib.backend_id()));
    let backend = QnnBackend::new(Arc::new(Qnn::new(lib, soc)?));
    let soc_text = if soc == 0 {
        "no SoC model".to_string()
    } else {
        format!("SoC model {soc}")
    };
    let what = if backend.kind() == DeviceKind::Npu {
        "the Hexagon NPU"
    } else if soc == 0 {
        "Qualcomm's HTP simulator, running on the CPU (not an NPU), exact fp32"
    } else {
        "Qualcomm's HTP simulator, running on the CPU (not an NPU), fp32 computed as fp16 like \
         the device"
    };
    Ok(Available {
        id: backend.name().to_string(),
        detail: format!(
            "QNN {provider}, build {build}, {soc_text}: {what} ({})",
            path.display()
        ),
        backend: Arc::new(backend),
    })
}
