//! Vectorisable elementary functions and the row kernels built on them: softmax, layer
//! normalisation, GELU.
//!
//! The functions are written as branch-free arithmetic on one `f32` so that the compiler
//! vectorises the loops that call them; [`vectorised`] compiles such a loop once more with
//! AVX2 and FMA and runs that copy where the CPU has them. Accuracy (checked against `f64`
//! in the tests): [`exp`] within 2 ulp, [`erfc`] within 2e-6 relative (a Chebyshev fit,
//! Numerical Recipes' `erfcc`), so GELU keeps its relative accuracy far into the negative
//! tail, where `0.5 x (1 + erf)` computed with an absolute-error erf would not.

/// Defines `fn NAME(args) [-> T] { body }` that runs `body` compiled for AVX2 and FMA where
/// this CPU has them (its loops vectorised 8 lanes wide), otherwise for the build's
/// baseline. The body is written out twice, once inside a `#[target_feature]` function, so
/// that its loops, the closures it defines and the `#[inline(always)]` functions it calls
/// are all compiled for AVX2 (a closure or function merely called from such a function is
/// compiled for the baseline unless the optimiser happens to inline it).
macro_rules! vectorised_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident $(<$($g:ident : $b:path),+>)? ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name $(<$($g: $b),+>)? ($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2 $(<$($g: $b),+>)? ($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            if $crate::Features::get().isa >= $crate::Isa::Avx2Fma {
                // SAFETY: AVX2 and FMA were detected on this CPU (`Features::get`).
                return unsafe { avx2($($arg),*) };
            }
            $body
        }
    };
}
pub(crate) use vectorised_fn;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding it rounds an f32 below 2^22 in magnitude to an integer.
const ROUNDER: f32 = 12_582_912.0;

/// e^x (subnormal results included; 0 below -104, +inf above 88.7, NaN for NaN).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let c = x.clamp(-104.0, 88.722_83);
    // n = round(c / ln 2), read back from the rounded float's low mantissa bits.
    let t = c * LOG2E + ROUNDER;
    let n = (t.to_bits() as i32).wrapping_sub(ROUNDER.to_bits() as i32);
    let k = t - ROUNDER;
    let r = c - k * LN2_HI - k * LN2_LO;
    // e^r on [-ln2/2, ln2/2]: Cephes' degree-6 polynomial.
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n as two normal factors, n in [-150, 128].
    let n1 = n >> 1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n - n1 + 127) as u32) << 23);
    let y = y * s1 * s2;
    let y = if x < -104.0 { 0.0 } else { y };
    let y = if x > 88.722_83 { f32::INFINITY } else { y };
    if x.is_nan() {
        x
    } else {
        y
    }
}

/// erfc(x) = 1 - erf(x), with relative error below 2e-6 for every x (the fit's 1.2e-7 plus
/// f32 rounding of `x^2` in the exponent).
#[inline(always)]
pub fn erfc(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = 0.170_872_77_f32;
    let p = p * t - 0.822_152_23;
    let p = p * t + 1.488_515_9;
    let p = p * t - 1.135_204;
    let p = p * t + 0.278_868_07;
    let p = p * t - 0.186_288_06;
    let p = p * t + 0.096_784_18;
    let p = p * t + 0.374_091_96;
    let p = p * t + 1.000_023_7;
    let p = p * t - 1.265_512_2;
    let r = t * exp(p - z * z);
    if x < 0.0 {
        2.0 - r
    } else {
        r
    }
}

/// GELU, `0.5 x (1 + erf(x / sqrt 2))`, as `0.5 x erfc(-x / sqrt 2)`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * erfc(-x * std::f32::consts::FRAC_1_SQRT_2)
}

/// GELU's tanh form, `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`, as
/// `x sigmoid(2 u)` (the same function, without tanh's cancellation).
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2 / pi)
    let u = C * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

/// 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// Lanes of the chunked reductions: enough independent sums for the compiler to fill two
/// 8-wide registers.
const LANES: usize = 16;

#[inline(always)]
pub(crate) fn sum_by(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += f(x);
        }
    }
    let mut s: f32 = chunks.remainder().iter().map(|&x| f(x)).sum();
    for a in acc {
        s += a;
    }
    s
}

#[inline(always)]
pub(crate) fn max_of(v: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a = if x > *a { x } else { *a };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &x in acc.iter().chain(chunks.remainder()) {
        m = if x > m { x } else { m };
    }
    m
}

/// What [`softmax`] writes for each row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxOut {
    /// e^(x - max) / sum.
    Softmax,
    /// x - max - ln(sum).
    LogSoftmax,
}

vectorised_fn! {
    /// Softmax of each row of `n` elements of `rows`, in place (a NaN in a row makes the row
    /// NaN; a row of -inf is NaN, as `x - max` is).
    pub fn softmax(rows: &mut [f32], n: usize, out: SoftmaxOut) {
        if n == 0 {
            return;
        }
        for row in rows.chunks_mut(n) {
            softmax_row(row, out);
        }
    }
}

/// One row of [`softmax`] (for callers inside a [`vectorised_fn!`] body).
#[inline(always)]
pub fn softmax_row(row: &mut [f32], out: SoftmaxOut) {
    // NaN is skipped by the max but reaches the sum, so the whole row becomes NaN.
    let max = max_of(row);
    match out {
        SoftmaxOut::Softmax => {
            for x in row.iter_mut() {
                *x = exp(*x - max);
            }
            let inv = 1.0 / sum_by(row, |x| x);
            for x in row.iter_mut() {
                *x *= inv;
            }
        }
        SoftmaxOut::LogSoftmax => {
            let log_sum = sum_by(row, |x| exp(x - max)).ln();
            for x in row.iter_mut() {
                *x = (*x - max) - log_sum;
            }
        }
    }
}

vectorised_fn! {
    /// Layer normalisation of each row of `n` elements: `(x - mean) / sqrt(var + eps) * scale
    /// + bias`, with `scale` and `bias` (absent: 0) of `n` elements each, from `x` into `y`
    /// (nothing is written when the sizes disagree).
    pub fn layer_norm(
        x: &[f32],
        y: &mut [f32],
        n: usize,
        scale: &[f32],
        bias: Option<&[f32]>,
        eps: f32,
    ) {
        if n == 0 || scale.len() != n || bias.is_some_and(|b| b.len() != n) {
            return;
        }
        for (xr, yr) in x.chunks(n).zip(y.chunks_mut(n)) {
            let mean = sum_by(xr, |v| v) / n as f32;
            let var = sum_by(xr, |v| (v - mean) * (v - mean)) / n as f32;
            let inv = 1.0 / (var + eps).sqrt();
            match bias {
                Some(b) => {
                    for (((o, &v), &s), &b) in yr.iter_mut().zip(xr).zip(scale).zip(b) {
                        *o = (v - mean) * inv * s + b;
                    }
                }
                None => {
                    for ((o, &v), &s) in yr.iter_mut().zip(xr).zip(scale) {
                        *o = (v - mean) * inv * s;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f32, b: f64) -> f64 {
        if b == 0.0 {
            (a as f64).abs()
        } else {
            ((a as f64 - b) / b).abs()
        }
    }

    #[test]
    fn exp_within_a_few_ulp_and_its_edges() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            worst = worst.max(rel(exp(x), (x as f64).exp()));
            x += 0.0137;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-110.0), 0.0);
        assert!(rel(exp(-95.0), (-95f64).exp()) < 1e-3); // subnormal: fewer bits
        assert!(rel(exp(88.7), (88.7f32 as f64).exp()) < 3e-7);
        assert_eq!(exp(100.0), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }

    fn erfc64(x: f64) -> f64 {
        // Continued by series / asymptotics is overkill here: integrate numerically.
        // erfc(x) = 2/sqrt(pi) * integral_x^inf e^{-t^2} dt, Simpson on [x, x + 12].
        let (a, b, n) = (x, x.max(0.0) + 12.0, 200_000);
        let h = (b - a) / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(a) + f(b);
        for i in 1..n {
            s += f(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erfc_and_gelu_keep_relative_accuracy_in_the_tail() {
        for &x in &[-3.0f32, -1.0, -0.3, 0.0, 0.01, 0.5, 1.0, 2.0, 4.0, 7.0] {
            let want = erfc64(x as f64);
            assert!(
                rel(erfc(x), want) < 2e-6,
                "erfc({x}) = {} vs {want}",
                erfc(x)
            );
        }
        for &x in &[-7.0f32, -5.0, -2.0, -0.5, 0.5, 3.0] {
            let want = 0.5 * x as f64 * erfc64(-(x as f64) / 2f64.sqrt());
            assert!(
                rel(gelu(x), want) < 1e-6,
                "gelu({x}) = {} vs {want}",
                gelu(x)
            );
        }
        assert_eq!(gelu(0.0), 0.0);
        assert!(gelu(f32::NAN).is_nan());
        let t = |x: f64| {
            0.5 * x
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
        };
        for &x in &[-6.0f32, -2.0, -0.1, 0.0, 0.7, 3.0] {
            let want = t(x as f64);
            assert!(
                rel(gelu_tanh(x), want) < 1e-6,
                "gelu_tanh({x}) = {} vs {want}",
                gelu_tanh(x)
            );
        }
    }

    #[test]
    fn softmax_rows_match_f64() {
        let n = 37;
        let mut v = crate::test_values(n * 3, 1);
        v.iter_mut().for_each(|x| *x *= 20.0);
        let orig = v.clone();
        softmax(&mut v, n, SoftmaxOut::Softmax);
        let mut logs = orig.clone();
        softmax(&mut logs, n, SoftmaxOut::LogSoftmax);
        for r in 0..3 {
            let row = &orig[r * n..(r + 1) * n];
            let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
            let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
            for i in 0..n {
                let want = (row[i] as f64 - max).exp() / sum;
                assert!((v[r * n + i] as f64 - want).abs() <= 1e-6 * want.max(1e-30) + 1e-12);
                let lwant = row[i] as f64 - max - sum.ln();
                assert!(
                    (logs[r * n + i] as f64 - lwant).abs() < 1e-5,
                    "{} vs {lwant}",
                    logs[r * n + i]
                );
            }
        }
        let mut masked = [0.5, f32::NEG_INFINITY, 1.5];
        softmax(&mut masked, 3, SoftmaxOut::Softmax);
        assert_eq!(masked[1], 0.0);
        let mut nan = [0.5, f32::NAN, 1.5];
        softmax(&mut nan, 3, SoftmaxOut::Softmax);
        assert!(nan.iter().all(|x| x.is_nan()));
    }

    #[test]
    fn layer_norm_matches_f64() {
        let n = 50;
        let x: Vec<f32> = crate::test_values(n * 2, 2)
            .iter()
            .map(|v| v * 3.0 + 1.0)
            .collect();
        let scale = crate::test_values(n, 3);
        let bias = crate::test_values(n, 4);
        let mut y = vec![0.0; n * 2];
        layer_norm(&x, &mut y, n, &scale, Some(&bias), 1e-5);
        for r in 0..2 {
            let row: Vec<f64> = x[r * n..(r + 1) * n].iter().map(|&v| v as f64).collect();
            let mean = row.iter().sum::<f64>() / n as f64;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
            for i in 0..n {
                let want = (row[i] - mean) / (var + 1e-5).sqrt() * scale[i] as f64 + bias[i] as f64;
                assert!(
                    (y[r * n + i] as f64 - want).abs() < 1e-5,
                    "{} vs {want}",
                    y[r * n + i]
                );
            }
        }
    }
}
