//! (in progress)
use xnpu_core::Result;

use super::Options;
use crate::ir::Graph;

pub fn run(_graph: &mut Graph, _options: &Options<'_>) -> Result<usize> {
    Ok(0)
}
