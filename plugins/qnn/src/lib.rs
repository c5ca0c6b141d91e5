//! The QNN backend as an xnpu plugin (`libxnpu_plugin_qnn.so`): the same crate the runtime
//! links in behind its `qnn` feature, exported through the plugin ABI for hosts built
//! without it.
//!
//! Configuration: empty for the default HTP SoC model (on x86_64, Qualcomm's HTP simulator
//! modelling `DEFAULT_SIM_SOC`, so that fp32 computes as fp16 like the device; on Arm none,
//! the device's own), or `soc=N` (`soc=0`: no SoC model; on the simulator, exact fp32). The
//! library is found as the built-in backend finds it (`XNPU_QNN_LIB_DIR`, the
//! `onnxruntime-qnn` wheel in a virtual environment, `QNN_SDK_ROOT`).

use std::sync::Arc;

use xnpu_backend_qnn::{find_library, Qnn, QnnBackend, QnnLibrary, DEFAULT_SIM_SOC};
use xnpu_core::{Error, Result};
use xnpu_graph::backend::Backend;

fn parse_config(config: &str) -> Result<u32> {
    let mut soc = if cfg!(target_arch = "x86_64") {
        DEFAULT_SIM_SOC
    } else {
        0
    };
    for item in config.split([',', ' ']).filter(|t| !t.is_empty()) {
        match item.split_once('=') {
            Some(("soc", n)) => {
                soc = n.trim().parse().map_err(|_| {
                    Error::invalid_input(format!(
                        "qnn plugin config: soc={n} is not a number (an HTP SoC model; 0 for none)"
                    ))
                })?
            }
            _ => {
                return Err(Error::invalid_input(format!(
                    "qnn plugin config: unknown setting \"{item}\" (known: soc=N)"
                )))
            }
        }
    }
    Ok(soc)
}

fn create(config: &str) -> Result<Box<dyn Backend>> {
    let soc = parse_config(config)?;
    let lib = Arc::new(QnnLibrary::open(&find_library("libQnnHtp.so")?)?);
    let q = Arc::new(Qnn::new(lib, soc)?);
    Ok(Box::new(QnnBackend::new(q)))
}

xnpu_graph::export_plugin!("qnn", create);

#[cfg(test)]
mod tests {
    use super::parse_config;

    #[test]
    fn config_is_empty_or_a_soc() {
        assert_eq!(parse_config("soc=0").unwrap(), 0);
        assert_eq!(parse_config(" soc=57 ").unwrap(), 57);
        assert!(parse_config("soc=x").is_err());
        assert!(parse_config("fp16").is_err());
        parse_config("").unwrap();
    }
}
