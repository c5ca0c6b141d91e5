//! The op families: one proptest strategy each, and how many problems the suite draws from
//! it (pinned so that the suite's time is stable; `PROPTEST_CASES` overrides every count).

mod elementwise;
mod layout;
mod nn;
mod reduce;

use proptest::strategy::BoxedStrategy;

use crate::problem::Problem;

pub struct Family {
    pub name: &'static str,
    pub cases: u32,
    pub strategy: fn() -> BoxedStrategy<Problem>,
}

const fn f(name: &'static str, cases: u32, strategy: fn() -> BoxedStrategy<Problem>) -> Family {
    Family {
        name,
        cases,
        strategy,
    }
}

/// Every family, in the order the summary table lists them.
pub const ALL: &[Family] = &[
    f("binary", 40, elementwise::binary),
    f("compare", 25, elementwise::compare),
    f("where", 10, elementwise::where_),
    f("unary", 30, elementwise::unary),
    f("activation", 30, elementwise::activation),
    f("clip", 20, elementwise::clip),
    f("cast", 25, elementwise::cast),
    f("matmul", 35, nn::matmul),
    f("gemm", 30, nn::gemm),
    f("conv", 35, nn::conv),
    f("conv_transpose", 20, nn::conv_transpose),
    f("pool", 35, nn::pool),
    f("global_pool", 10, nn::global_pool),
    f("attention", 25, nn::attention),
    f("softmax", 20, reduce::softmax),
    f("layer_norm", 20, reduce::layer_norm),
    f("reduce", 30, reduce::reduce),
    f("arg_reduce", 15, reduce::arg_reduce),
    f("transpose", 15, layout::transpose),
    f("reshape", 15, layout::reshape),
    f("flatten", 10, layout::flatten),
    f("concat", 15, layout::concat),
    f("slice", 20, layout::slice),
    f("gather", 15, layout::gather),
    f("split", 15, layout::split),
    f("squeeze", 10, layout::squeeze),
    f("unsqueeze", 10, layout::unsqueeze),
    f("expand", 15, layout::expand),
    f("pad", 15, layout::pad),
];
