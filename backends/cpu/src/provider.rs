//! The reference CPU backend's entry in xnpu's backend registry: device `cpu`.

use std::sync::Arc;

use xnpu_graph::backend::{Available, Offers, Provider};

use crate::CpuBackend;

/// Offers the reference CPU backend, always, as device `cpu`.
pub struct CpuProvider;

/// The registry's entry for this crate.
pub static PROVIDER: CpuProvider = CpuProvider;

impl Provider for CpuProvider {
    fn family(&self) -> &'static str {
        "cpu"
    }

    fn discover(&self) -> Offers {
        Offers {
            available: vec![Available {
                id: "cpu".into(),
                backend: Arc::new(CpuBackend::new()),
                detail: "xnpu's reference CPU backend".into(),
            }],
            ..Offers::default()
        }
    }
}
