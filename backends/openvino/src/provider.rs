//! OpenVINO's entry in xnpu's backend registry: one backend per device OpenVINO lists
//! (`openvino:cpu`, `openvino:gpu`, `openvino:npu`), when its library is found.

use std::sync::Arc;

use xnpu_graph::backend::{Available, Backend, Offers, Provider};

use crate::{find_library, OpenVino, OpenVinoBackend};

/// Offers a backend per OpenVINO device. `XNPU_OPENVINO_CONFIG` (`KEY=VALUE,...`) adds
/// OpenVINO properties to every compile.
pub struct OpenVinoProvider;

/// The registry's entry for this crate.
pub static PROVIDER: OpenVinoProvider = OpenVinoProvider;

impl Provider for OpenVinoProvider {
    fn family(&self) -> &'static str {
        "openvino"
    }

    fn discover(&self) -> Offers {
        let mut offers = Offers::default();
        if let Err(e) = discover_into(&mut offers) {
            offers.notes.push(format!("openvino: {e}"));
        }
        offers
    }
}

fn discover_into(offers: &mut Offers) -> xnpu_core::Result<()> {
    let path = match find_library() {
        Ok(p) => p,
        // Not installed: `xnpu devices` says where it looked; no note on every session
        // unless the user pointed at a library.
        Err(e) if std::env::var_os("XNPU_OPENVINO_LIB").is_some() => return Err(e),
        Err(_) => return Ok(()),
    };
    let config = match std::env::var("XNPU_OPENVINO_CONFIG") {
        Ok(text) => {
            OpenVinoBackend::parse_config(&text).map_err(|e| e.context("XNPU_OPENVINO_CONFIG"))?
        }
        Err(_) => Vec::new(),
    };
    let ov = Arc::new(OpenVino::open_at(&path)?);
    for d in ov.devices()? {
        match OpenVinoBackend::listed(ov.clone(), &d.name) {
            Ok(b) => {
                let driver = d
                    .driver_version
                    .as_ref()
                    .map(|v| format!(", driver {v}"))
                    .unwrap_or_default();
                offers.available.push(Available {
                    id: b.name().to_string(),
                    detail: format!(
                        "OpenVINO {} device {}: {}{driver} ({})",
                        ov.version(),
                        d.name,
                        d.full_name,
                        ov.library().display()
                    ),
                    backend: Arc::new(b.with_config(config.clone())),
                });
            }
            Err(e) => offers.notes.push(format!("openvino {}: {e}", d.name)),
        }
    }
    Ok(())
}
