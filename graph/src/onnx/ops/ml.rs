//! Import of the `ml` family. See `tensor.rs` for the shape of a translator.

use super::Registry;

pub fn register(_r: &mut Registry) {}
