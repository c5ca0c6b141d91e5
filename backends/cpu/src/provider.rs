//! The CPU backend's entry in xnpu's backend registry: device `cpu`.

use std::sync::Arc;

use xnpu_graph::backend::{Available, Offers, Provider};

use crate::CpuBackend;

/// Offers the CPU backend, always, as device `cpu`, and its reference kernels alone as
/// `cpu:reference`.
pub struct CpuProvider;

/// The registry's entry for this crate.
pub static PROVIDER: CpuProvider = CpuProvider;

impl Provider for CpuProvider {
    fn family(&self) -> &'static str {
        "cpu"
    }

    fn discover(&self) -> Offers {
        Offers {
            available: vec![
                Available {
                    id: "cpu".into(),
                    backend: Arc::new(CpuBackend::new()),
                    detail: format!("xnpu's CPU backend: {}", crate::fast::describe()),
                },
                Available {
                    id: crate::REFERENCE_ID.into(),
                    backend: Arc::new(CpuBackend::reference()),
                    detail: "xnpu's reference kernels alone (the oracle of the tests)".into(),
                },
            ],
            ..Offers::default()
        }
    }
}
