//! Tensors for problems, and the shape strategies the families share.
//!
//! A tensor's values come from a seed (shrinking a problem shrinks its shapes and
//! attributes; its values follow from the seed), within a range that suits the op: floats on a
//! grid of `step` (exact in f16, and coarse enough that comparisons and pooling meet ties),
//! integers within the range and the dtype, bools at random.

use proptest::prelude::*;
use xnpu::core::{bf16, f16};
use xnpu::{DType, Tensor};

/// Every dtype the families draw from, f32 first (proptest shrinks towards the first).
pub const FLOATS: &[DType] = &[DType::F32, DType::F16, DType::F64];
pub const NUMERIC: &[DType] = &[
    DType::F32,
    DType::F16,
    DType::F64,
    DType::I32,
    DType::I64,
    DType::I8,
    DType::U8,
];
pub const SIGNED: &[DType] = &[
    DType::F32,
    DType::F16,
    DType::F64,
    DType::I32,
    DType::I64,
    DType::I8,
];
/// Data movement: every numeric dtype and bool.
pub const ANY: &[DType] = &[
    DType::F32,
    DType::F16,
    DType::F64,
    DType::I32,
    DType::I64,
    DType::I8,
    DType::U8,
    DType::Bool,
];

/// Where values lie. Integer dtypes take the integers of `[lo, hi]` (clamped to the dtype),
/// floats the multiples of `step` in it; `nonzero` leaves out |x| < `step` (integers: 0).
#[derive(Clone, Copy, Debug)]
pub struct Vals {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
    pub nonzero: bool,
}

impl Vals {
    pub const fn new(lo: f64, hi: f64) -> Vals {
        Vals {
            lo,
            hi,
            step: 1.0 / 64.0,
            nonzero: false,
        }
    }
    pub const fn step(mut self, step: f64) -> Vals {
        self.step = step;
        self
    }
    pub const fn nonzero(mut self) -> Vals {
        self.nonzero = true;
        self
    }
}

/// Values of order 1, the default.
pub const UNIT: Vals = Vals::new(-2.0, 2.0);

/// The representable range of an integer dtype.
pub fn int_range(d: DType) -> (f64, f64) {
    match d {
        DType::I8 => (-128.0, 127.0),
        DType::U8 => (0.0, 255.0),
        DType::I16 => (-32768.0, 32767.0),
        DType::U16 => (0.0, 65535.0),
        DType::I32 => (-2147483648.0, 2147483647.0),
        DType::U32 => (0.0, 4294967295.0),
        DType::Bool => (0.0, 1.0),
        _ => (-9.0e15, 9.0e15),
    }
}

/// splitmix64: a tiny deterministic generator for tensor values.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn int(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next() % ((hi - lo) as u64 + 1)) as i64
    }
}

/// One value of `vals` for dtype `d`.
fn value(rng: &mut Rng, d: DType, vals: &Vals) -> f64 {
    if d == DType::Bool {
        return (rng.next() & 1) as f64;
    }
    let (lo, hi, step) = if d.is_float() {
        (vals.lo, vals.hi, vals.step)
    } else {
        let (a, b) = int_range(d);
        (vals.lo.max(a).ceil(), vals.hi.min(b).floor(), 1.0)
    };
    let (klo, khi) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
    loop {
        let k = rng.int(klo, khi);
        if !(vals.nonzero && k == 0) || (klo == 0 && khi == 0) {
            return k as f64 * step;
        }
    }
}

/// A tensor of dtype `d` and shape `shape` with values of `vals` drawn from `seed`.
pub fn tensor(d: DType, shape: &[usize], seed: u64, vals: Vals) -> Tensor {
    let n: usize = shape.iter().product();
    let mut rng = Rng::new(seed);
    let v: Vec<f64> = (0..n).map(|_| value(&mut rng, d, &vals)).collect();
    from_f64(d, shape, &v)
}

/// A tensor of dtype `d` holding `v` (converted as `as` does).
pub fn from_f64(d: DType, shape: &[usize], v: &[f64]) -> Tensor {
    let shape = shape.to_vec();
    let t = match d {
        DType::F32 => Tensor::from_vec(shape, v.iter().map(|&x| x as f32).collect()),
        DType::F64 => Tensor::from_vec(shape, v.to_vec()),
        DType::F16 => Tensor::from_vec(shape, v.iter().map(|&x| f16::from_f64(x)).collect()),
        DType::Bf16 => Tensor::from_vec(shape, v.iter().map(|&x| bf16::from_f64(x)).collect()),
        DType::I8 => Tensor::from_vec(shape, v.iter().map(|&x| x as i8).collect()),
        DType::U8 => Tensor::from_vec(shape, v.iter().map(|&x| x as u8).collect()),
        DType::I16 => Tensor::from_vec(shape, v.iter().map(|&x| x as i16).collect()),
        DType::U16 => Tensor::from_vec(shape, v.iter().map(|&x| x as u16).collect()),
        DType::I32 => Tensor::from_vec(shape, v.iter().map(|&x| x as i32).collect()),
        DType::U32 => Tensor::from_vec(shape, v.iter().map(|&x| x as u32).collect()),
        DType::I64 => Tensor::from_vec(shape, v.iter().map(|&x| x as i64).collect()),
        DType::U64 => Tensor::from_vec(shape, v.iter().map(|&x| x as u64).collect()),
        DType::Bool => Tensor::from_vec(shape, v.iter().map(|&x| x != 0.0).collect()),
        other => panic!("no {other} tensors in the suite"),
    };
    t.expect("values match the shape")
}

/// An i64 tensor (shapes, axes, indices given to ops as inputs).
pub fn i64s(v: &[i64]) -> Tensor {
    Tensor::from_vec(vec![v.len()], v.to_vec()).expect("a 1-D tensor")
}

/// A scalar of dtype `d`.
pub fn scalar(d: DType, x: f64) -> Tensor {
    from_f64(d, &[], &[x])
}

/// One of `list`, shrinking towards the first.
pub fn dtype(list: &'static [DType]) -> impl Strategy<Value = DType> + Clone {
    prop::sample::select(list)
}

/// A dim: mostly small, sometimes an odd prime.
pub fn dim() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![6 => 1usize..=3, 2 => Just(5usize), 1 => Just(7usize)]
}

/// A dim that may be 0 (for ops that take empty tensors).
pub fn dim0() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![6 => 1usize..=3, 2 => Just(5usize), 1 => Just(7usize), 1 => Just(0usize)]
}

/// A shape of rank in `ranks`, its dims from `dim0()` when `empty`, else `dim()`.
pub fn shape(ranks: std::ops::RangeInclusive<usize>, empty: bool) -> BoxedStrategy<Vec<usize>> {
    if empty {
        prop::collection::vec(dim0(), ranks).boxed()
    } else {
        prop::collection::vec(dim(), ranks).boxed()
    }
}

/// How many leading dims an operand drops from the broadcast shape: mostly none, so that
/// scalars and short operands are common but not the rule.
pub fn leading_drop() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![3 => Just(0usize), 2 => 0usize..=5]
}

/// An operand shape that broadcasts (numpy rules) to `out`: its last `out.len() - drop`
/// dims, where bit `k` of `ones` makes dim `k` (counted from the right) 1.
pub fn broadcast_from(out: &[usize], drop: usize, ones: u32) -> Vec<usize> {
    let keep = out.len() - drop.min(out.len());
    let tail = &out[out.len() - keep..];
    tail.iter()
        .enumerate()
        .map(|(i, &d)| {
            let from_right = keep - 1 - i;
            if ones >> from_right & 1 == 1 {
                1
            } else {
                d
            }
        })
        .collect()
}

/// Numpy broadcasting of two shapes (for shapes the generators made compatible).
pub fn broadcast(a: &[usize], b: &[usize]) -> Vec<usize> {
    let r = a.len().max(b.len());
    (0..r)
        .map(|i| {
            let da = if i + a.len() >= r {
                a[i + a.len() - r]
            } else {
                1
            };
            let db = if i + b.len() >= r {
                b[i + b.len() - r]
            } else {
                1
            };
            if da == 1 {
                db
            } else {
                da
            }
        })
        .collect()
}

/// A permutation of `0..n` from a seed (Fisher–Yates).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    let mut rng = Rng::new(seed);
    for i in (1..n).rev() {
        let j = rng.int(0, i as i64) as usize;
        p.swap(i, j);
    }
    p
}
