//! Every op that goes by several names (one per kind) gives, for each kind, a name its
//! `OpDef::NAMES` lists, and every listed name is given by some kind. Capability tables,
//! `--explain` and the registry's checks trust `NAMES`; a kind added without its name (or a
//! name listed that no kind gives) fails here. Each list of kinds is checked exhaustive by a
//! `match`, so a new variant does not compile until it is listed here too.

use std::collections::BTreeSet;

use xnpu_core::DType;
use xnpu_ops::elementwise::{
    Activation, ActivationKind as A, BiasGelu, Binary, BinaryKind as B, Unary, UnaryKind as U,
    Variadic, VariadicKind as V,
};
use xnpu_ops::nn::{GlobalKind, GlobalPool, Pool, PoolKind, Window as PoolWindow};
use xnpu_ops::reduce::{
    ArgKind, ArgReduce, Reduce, ReduceKind as R, SkipNormalization, Softmax, SoftmaxKind,
};
use xnpu_ops::rnn::{Cell, Direction, Recurrent};
use xnpu_ops::signal::{Window, WindowKind};
use xnpu_ops::tensor::{CumKind, Cumulative, DepthMode, DepthSpace};
use xnpu_ops::OpDef;

/// Asserts that the names `ops` give are exactly `T::NAMES` (as sets).
fn check<T: OpDef>(ops: &[T]) {
    let given: BTreeSet<&str> = ops.iter().map(OpDef::name).collect();
    let listed: BTreeSet<&str> = T::NAMES.iter().copied().collect();
    let op = std::any::type_name::<T>();
    let unlisted: Vec<_> = given.difference(&listed).collect();
    let ungiven: Vec<_> = listed.difference(&given).collect();
    assert!(
        unlisted.is_empty(),
        "{op}: names given but not in NAMES: {unlisted:?}"
    );
    assert!(ungiven.is_empty(), "{op}: NAMES no kind gives: {ungiven:?}");
    assert_eq!(T::NAMES.len(), listed.len(), "{op}: NAMES repeats a name");
}

#[test]
fn unary_kinds_are_named() {
    let kinds = [
        U::Neg,
        U::Abs,
        U::Reciprocal,
        U::Sqrt,
        U::Exp,
        U::Log,
        U::Ceil,
        U::Floor,
        U::Round,
        U::Sign,
        U::Erf,
        U::Sin,
        U::Cos,
        U::Tan,
        U::Asin,
        U::Acos,
        U::Atan,
        U::Sinh,
        U::Cosh,
        U::Asinh,
        U::Acosh,
        U::Atanh,
        U::Tanh,
        U::Not,
        U::BitwiseNot,
    ];
    for k in kinds {
        match k {
            U::Neg | U::Abs | U::Reciprocal | U::Sqrt | U::Exp | U::Log | U::Ceil | U::Floor => {}
            U::Round | U::Sign | U::Erf | U::Sin | U::Cos | U::Tan | U::Asin | U::Acos => {}
            U::Atan | U::Sinh | U::Cosh | U::Asinh | U::Acosh | U::Atanh | U::Tanh => {}
            U::Not | U::BitwiseNot => {}
        }
    }
    check(&kinds.map(|kind| Unary { kind }));
}

#[test]
fn binary_kinds_are_named() {
    let kinds = [
        B::Add,
        B::Sub,
        B::Mul,
        B::Div,
        B::Pow,
        B::Mod { fmod: false },
        B::Mod { fmod: true },
        B::BitShift { left: false },
        B::BitShift { left: true },
        B::BitwiseAnd,
        B::BitwiseOr,
        B::BitwiseXor,
        B::And,
        B::Or,
        B::Xor,
        B::Equal,
        B::Less,
        B::Greater,
        B::LessOrEqual,
        B::GreaterOrEqual,
    ];
    for k in kinds {
        match k {
            B::Add | B::Sub | B::Mul | B::Div | B::Pow | B::Mod { .. } | B::BitShift { .. } => {}
            B::BitwiseAnd | B::BitwiseOr | B::BitwiseXor | B::And | B::Or | B::Xor => {}
            B::Equal | B::Less | B::Greater | B::LessOrEqual | B::GreaterOrEqual => {}
        }
    }
    check(&kinds.map(|kind| Binary {
        kind,
        legacy_axis: None,
    }));
}

#[test]
fn activation_kinds_are_named() {
    let kinds = [
        A::Sigmoid,
        A::Relu,
        A::LeakyRelu { alpha: 0.1 },
        A::Elu { alpha: 1.0 },
        A::Selu {
            alpha: 1.0,
            gamma: 1.0,
        },
        A::Celu { alpha: 1.0 },
        A::ThresholdedRelu { alpha: 1.0 },
        A::HardSigmoid {
            alpha: 0.2,
            beta: 0.5,
        },
        A::HardSwish,
        A::Softplus,
        A::Softsign,
        A::Mish,
        A::Gelu { tanh: false },
        A::Gelu { tanh: true },
        A::Swish { alpha: 1.0 },
        A::Shrink {
            bias: 0.0,
            lambd: 0.5,
        },
    ];
    for k in kinds {
        match k {
            A::Sigmoid | A::Relu | A::LeakyRelu { .. } | A::Elu { .. } | A::Selu { .. } => {}
            A::Celu { .. } | A::ThresholdedRelu { .. } | A::HardSigmoid { .. } | A::HardSwish => {}
            A::Softplus
            | A::Softsign
            | A::Mish
            | A::Gelu { .. }
            | A::Swish { .. }
            | A::Shrink { .. } => {}
        }
    }
    check(&kinds.map(|kind| Activation { kind }));
}

#[test]
fn variadic_and_reduce_kinds_are_named() {
    let kinds = [V::Max, V::Min, V::Sum, V::Mean];
    for k in kinds {
        match k {
            V::Max | V::Min | V::Sum | V::Mean => {}
        }
    }
    check(&kinds.map(|kind| Variadic { kind }));

    let kinds = [
        R::Max,
        R::Min,
        R::Sum,
        R::Mean,
        R::Prod,
        R::L1,
        R::L2,
        R::LogSum,
        R::LogSumExp,
        R::SumSquare,
    ];
    for k in kinds {
        match k {
            R::Max | R::Min | R::Sum | R::Mean | R::Prod => {}
            R::L1 | R::L2 | R::LogSum | R::LogSumExp | R::SumSquare => {}
        }
    }
    check(&kinds.map(|kind| Reduce {
        kind,
        axes: None,
        keepdims: true,
        noop_with_empty_axes: false,
    }));

    let kinds = [
        SoftmaxKind::Softmax,
        SoftmaxKind::LogSoftmax,
        SoftmaxKind::Hardmax,
    ];
    for k in kinds {
        match k {
            SoftmaxKind::Softmax | SoftmaxKind::LogSoftmax | SoftmaxKind::Hardmax => {}
        }
    }
    check(&kinds.map(|kind| Softmax {
        kind,
        axis: -1,
        coerce_2d: false,
    }));

    let kinds = [ArgKind::Max, ArgKind::Min];
    for k in kinds {
        match k {
            ArgKind::Max | ArgKind::Min => {}
        }
    }
    check(&kinds.map(|kind| ArgReduce {
        kind,
        axis: 0,
        keepdims: true,
        select_last_index: false,
    }));

    let kinds = [CumKind::Sum, CumKind::Prod];
    for k in kinds {
        match k {
            CumKind::Sum | CumKind::Prod => {}
        }
    }
    check(&kinds.map(|kind| Cumulative {
        kind,
        exclusive: false,
        reverse: false,
    }));
}

#[test]
fn pool_window_and_cell_kinds_are_named() {
    let kinds = [
        PoolKind::Average {
            count_include_pad: false,
        },
        PoolKind::Max {
            column_major: false,
        },
        PoolKind::Lp { p: 2.0 },
    ];
    for k in &kinds {
        match k {
            PoolKind::Average { .. } | PoolKind::Max { .. } | PoolKind::Lp { .. } => {}
        }
    }
    check(&kinds.map(|kind| Pool {
        kind,
        window: PoolWindow::default(),
    }));

    let kinds = [
        GlobalKind::Average,
        GlobalKind::Max,
        GlobalKind::Lp { p: 2.0 },
    ];
    for k in &kinds {
        match k {
            GlobalKind::Average | GlobalKind::Max | GlobalKind::Lp { .. } => {}
        }
    }
    check(&kinds.map(|kind| GlobalPool { kind }));

    let kinds = [WindowKind::Hann, WindowKind::Hamming, WindowKind::Blackman];
    for k in kinds {
        match k {
            WindowKind::Hann | WindowKind::Hamming | WindowKind::Blackman => {}
        }
    }
    check(&kinds.map(|kind| Window {
        kind,
        periodic: true,
        dtype: DType::F32,
    }));

    let cells = [
        Cell::Rnn,
        Cell::Gru {
            linear_before_reset: false,
        },
        Cell::Lstm {
            input_forget: false,
        },
    ];
    for c in &cells {
        match c {
            Cell::Rnn | Cell::Gru { .. } | Cell::Lstm { .. } => {}
        }
    }
    check(&cells.map(|cell| Recurrent {
        cell,
        direction: Direction::Forward,
        hidden_size: None,
        activations: Vec::new(),
        clip: None,
        batch_first: false,
    }));
}

#[test]
fn flag_named_ops_are_named() {
    check(&[false, true].map(|tanh| BiasGelu { tanh }));
    check(&[false, true].map(|simplified| SkipNormalization {
        simplified,
        epsilon: 1e-5,
    }));
    check(&[false, true].map(|to_depth| DepthSpace {
        to_depth,
        blocksize: 2,
        mode: DepthMode::Dcr,
    }));
}

#[test]
fn random_forms_are_named() {
    use xnpu_ops::elementwise::{Distribution as D, Random};
    let dists = [
        D::Uniform {
            low: 0.0,
            high: 1.0,
        },
        D::Normal {
            mean: 0.0,
            scale: 1.0,
        },
    ];
    let mut ops = Vec::new();
    for dist in dists {
        match dist {
            D::Uniform { .. } | D::Normal { .. } => {}
        }
        for shape in [Some(vec![2]), None] {
            ops.push(Random {
                dist,
                shape,
                ..Random::default()
            });
        }
    }
    check(&ops);
}
