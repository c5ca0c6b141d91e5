//! The reference CPU backend as a plugin. The backend is the same crate the runtime links
//! in (`xnpu-backend-cpu`); this crate only exports it through the plugin ABI, so that a
//! second backend crate exporting a plugin never clashes with it in one binary.
//!
//! Configuration: empty for the full CPU backend, or a capability table as JSON to restrict
//! it (what tests use to give plugin instances different capabilities).

use xnpu_backend_cpu::CpuBackend;
use xnpu_core::Result;
use xnpu_graph::backend::{Backend, CapabilityTable};

fn create(config: &str) -> Result<Box<dyn Backend>> {
    if config.trim().is_empty() {
        Ok(Box::new(CpuBackend::new()))
    } else {
        Ok(Box::new(CpuBackend::with_table(
            CapabilityTable::from_json(config)?,
        )))
    }
}

xnpu_graph::export_plugin!("cpu", create);
