//! The generator every random op draws from: the Mersenne Twister (MT19937) seeded and read
//! the way NumPy's legacy `numpy.random.RandomState` does. ONNX leaves the generator to the
//! implementation; ONNX's reference implementation draws from `RandomState(seed)`, so with
//! this one a seeded xnpu op gives exactly the reference's values (RandomUniform's
//! `rand`, RandomNormal's `randn`, Bernoulli's `binomial(1, p)`, training Dropout's
//! `uniform(0, 1)`), and `numpy.random.RandomState(seed)` reproduces any seeded run.
//!
//! An op without a seed starts from a seed the operating system gives: new draws every run.

use rand_core::{OsRng, TryRngCore};
use rand_mt::Mt;
use xnpu_core::{Error, Result};

/// NumPy's `RandomState` over MT19937: 53-bit doubles, the polar Gaussian that keeps its
/// second value, and the binomial's inversion for `n = 1`.
pub struct RandomState {
    mt: Mt,
    /// The second value of the last polar draw, returned by the next `gauss`.
    spare: Option<f64>,
}

impl RandomState {
    /// `RandomState(seed)` for a seed in `[0, 2^32)`; a larger or negative one is taken
    /// modulo 2^32 (where NumPy refuses it).
    pub fn seeded(seed: i64) -> RandomState {
        RandomState {
            // Modulo 2^32 is the documented reading of an out-of-range seed.
            mt: Mt::new(seed as u32),
            spare: None,
        }
    }

    /// A float seed attribute (RandomUniform, RandomNormal, Bernoulli): truncated to an
    /// integer as the reference's `int(seed)` does (saturating at the i64 range, then modulo
    /// 2^32); NaN or none draws from the system.
    pub fn from_float_seed(seed: Option<f32>, what: &str) -> Result<RandomState> {
        match seed {
            Some(s) if !s.is_nan() => Ok(Self::seeded(s.trunc() as i64)),
            _ => Self::from_os(what),
        }
    }

    /// Seeded from the operating system's generator.
    pub fn from_os(what: &str) -> Result<RandomState> {
        let seed = OsRng
            .try_next_u32()
            .map_err(|e| Error::compute(format!("{what}: no random seed: {e}")))?;
        Ok(Self::seeded(i64::from(seed)))
    }

    /// A double in `[0, 1)` from two draws (27 and 26 bits), as `RandomState.random_sample`.
    pub fn double(&mut self) -> f64 {
        let a = f64::from(self.mt.next_u32() >> 5);
        let b = f64::from(self.mt.next_u32() >> 6);
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// A standard normal draw, as `RandomState.standard_normal` (Marsaglia's polar method,
    /// each pair's second value kept for the next call).
    pub fn gauss(&mut self) -> f64 {
        if let Some(g) = self.spare.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.double() - 1.0;
            let x2 = 2.0 * self.double() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.spare = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// One draw of `binomial(1, p)` for `p` in `[0, 1]`, as `RandomState.binomial` computes
    /// it for `n = 1`: the inversion algorithm on the smaller of `p` and `1 - p` (one double
    /// per call, even for `p` = 0 or 1).
    pub fn bernoulli(&mut self, p: f64) -> bool {
        if p <= 0.5 {
            self.inversion(p)
        } else {
            !self.inversion(1.0 - p)
        }
    }

    /// NumPy's `random_binomial_inversion` with `n = 1`: whether the draw is 1.
    fn inversion(&mut self, p: f64) -> bool {
        let q = 1.0 - p;
        let qn = q.ln().exp();
        let np = p;
        // min(n, np + 10 sqrt(np q + 1)), as an integer: 1 unless the bound rounds below it.
        let bound = (np + 10.0 * (np * q + 1.0).sqrt()).min(1.0) as i64;
        let mut x = 0i64;
        let mut px = qn;
        let mut u = self.double();
        while u > px {
            x += 1;
            if x > bound {
                x = 0;
                px = qn;
                u = self.double();
            } else {
                u -= px;
                px = ((1 - x + 1) as f64 * p * px) / (x as f64 * q);
            }
        }
        x == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The values NumPy 2.4 gives (`.tolist()`, so every digit of the double).
    #[test]
    fn draws_equal_numpys_random_state() {
        let mut r = RandomState::seeded(0);
        let u: Vec<f64> = (0..3).map(|_| r.double()).collect();
        // RandomState(0).random_sample(3)
        assert_eq!(
            u,
            [0.5488135039273248, 0.7151893663724195, 0.6027633760716439]
        );
        let mut r = RandomState::seeded(0);
        let g: Vec<f64> = (0..5).map(|_| r.gauss()).collect();
        // RandomState(0).standard_normal(5): the odd count leaves a spare unused.
        let want = [
            1.764052345967664,
            0.4001572083672233,
            0.9787379841057392,
            2.240893199201458,
            1.8675579901499675,
        ];
        assert_eq!(g, want);
        // RandomState(2**32 - 1).random_sample(2): the largest seed.
        let mut r = RandomState::seeded(u32::MAX.into());
        assert_eq!(
            [r.double(), r.double()],
            [0.0976320289940138, 0.9123828453026218]
        );
    }

    #[test]
    fn bernoulli_equals_numpys_binomial_and_draws_once_per_element() {
        // RandomState(5).binomial(1, p), then .random_sample(1): p = 0 and 1 draw too, so the
        // stream after them lines up.
        let p = [0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.8, 0.5, 0.0, 1.0, 0.0, 0.4];
        let mut r = RandomState::seeded(5);
        let got: Vec<u8> = p.iter().map(|&p| u8::from(r.bernoulli(p))).collect();
        assert_eq!(got, [0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 1]);
        assert_eq!(r.double(), 0.4413092228959531);
    }

    #[test]
    fn float_seeds_truncate_and_nan_draws_from_the_system() {
        let mut a = RandomState::from_float_seed(Some(0.9), "test").unwrap();
        let mut b = RandomState::seeded(0);
        assert_eq!(a.double(), b.double());
        assert!(RandomState::from_float_seed(Some(f32::NAN), "test").is_ok());
    }
}
