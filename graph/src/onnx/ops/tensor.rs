//! Import of the `tensor` family.

use xnpu_core::Result;
use xnpu_ops::tensor::{self as t, Identity};

use super::{NodeCtx, Registry};
use crate::ir::Op;

pub fn register(r: &mut Registry) {
    r.add("", "Identity", 1, identity);
}

fn op(o: t::Op) -> Op {
    Op::Tensor(o)
}

fn identity(_n: &mut NodeCtx<'_>) -> Result<Op> {
    Ok(op(t::Op::Identity(Identity)))
}
