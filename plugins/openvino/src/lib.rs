//! The OpenVINO backend as an xnpu plugin (`libxnpu_plugin_openvino.so`): the same crate
//! the runtime links in behind its `openvino` feature, exported through the plugin ABI for
//! hosts built without it.
//!
//! Configuration: empty for OpenVINO's preferred device (NPU, then GPU, then CPU), or a
//! device name (`CPU`, `NPU`, `GPU.1`), optionally followed by OpenVINO properties as
//! `KEY=VALUE` (`NPU NPU_COMPILER_TYPE=DRIVER`). The library is found as the built-in
//! backend finds it (`XNPU_OPENVINO_LIB`, an `openvino` wheel, the system folders).

use std::sync::Arc;

use xnpu_backend_openvino::{OpenVino, OpenVinoBackend};
use xnpu_core::Result;
use xnpu_graph::backend::Backend;

fn create(config: &str) -> Result<Box<dyn Backend>> {
    let (device, props): (Vec<&str>, Vec<&str>) =
        config.split_whitespace().partition(|t| !t.contains('='));
    let ov = Arc::new(OpenVino::open()?);
    let backend = match device.as_slice() {
        [] => OpenVinoBackend::preferred(ov)?,
        [d] => OpenVinoBackend::new(ov, d)?,
        more => {
            return Err(xnpu_core::Error::invalid_input(format!(
                "openvino plugin config names {} devices ({}); give one",
                more.len(),
                more.join(", ")
            )))
        }
    };
    let config = OpenVinoBackend::parse_config(&props.join(","))?;
    Ok(Box::new(backend.with_config(config)))
}

xnpu_graph::export_plugin!("openvino", create);
